#include "daemon/worker_node.hpp"

#include "actors/atoms.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <map>
#include <set>
#include <vector>

namespace accellm::daemon {
namespace {

struct node_state {
  worker_node_options opt;
  caf::actor coordinator;
  std::vector<std::string> wanted;             ///< endpoints by instance id
  std::map<std::string, caf::actor> resolved;  ///< endpoint -> its kv_replica
  std::set<std::string> pending;               ///< connects in flight
  static inline const char* name = "worker_node";
};

using node_actor = caf::stateful_actor<node_state>;

// The worker's KV receivers by instance id, from what is resolved so far.
void push_receivers(node_actor* self) {
  auto& s = self->state;
  std::vector<caf::actor> out(s.wanted.size());
  for (std::size_t i = 0; i < s.wanted.size(); ++i) {
    if (auto it = s.resolved.find(s.wanted[i]); it != s.resolved.end()) out[i] = it->second;
  }
  self->send(s.opt.worker, actors::peers_atom::value, std::move(out));
}

void resolve(node_actor* self, const std::string& ep) {
  auto& s = self->state;
  const auto colon = ep.rfind(':');
  if (colon == std::string::npos) return;
  const std::string host = ep.substr(0, colon);
  const auto port = static_cast<std::uint16_t>(std::stoul(ep.substr(colon + 1)));
  s.pending.insert(ep);
  self->request(s.opt.connector, s.opt.connect_timeout, caf::connect_atom::value, host, port)
      .then(
          [self, ep](const caf::node_id&, caf::strong_actor_ptr& ptr,
                     const std::set<std::string>&) {
            auto& st = self->state;
            st.pending.erase(ep);
            if (!ptr) return;
            st.resolved[ep] = caf::actor_cast<caf::actor>(std::move(ptr));
            if (st.opt.log) st.opt.log->info("KV receiver at {} connected directly", ep);
            push_receivers(self);
          },
          [self, ep](caf::error& err) {
            auto& st = self->state;
            st.pending.erase(ep);
            if (st.opt.log) {
              st.opt.log->warn("cannot reach the KV receiver at {}: {}", ep,
                               self->system().render(err));
            }
          });
}

void on_endpoints(node_actor* self, std::vector<std::string> endpoints) {
  auto& s = self->state;
  s.wanted = std::move(endpoints);
  for (const std::string& ep : s.wanted) {
    if (ep.empty() || s.resolved.count(ep) != 0 || s.pending.count(ep) != 0) continue;
    if (ep == s.opt.own_endpoint) {
      s.resolved[ep] = s.opt.replica;
      continue;
    }
    resolve(self, ep);
  }
  push_receivers(self);
}

caf::behavior worker_node(node_actor* self, worker_node_options opt) {
  self->state.opt = std::move(opt);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& s = self->state;
    if (dm.source != s.coordinator.address()) return;
    if (s.opt.log) s.opt.log->error("lost the coordinator: {}", self->system().render(dm.reason));
    if (s.opt.lost) s.opt.lost->store(true);
  });
  return {
      [self](actors::peers_atom, caf::actor coordinator) {
        self->state.coordinator = coordinator;
        self->monitor(coordinator);
      },
      [self](actors::peers_atom, std::vector<std::string> endpoints) {
        on_endpoints(self, std::move(endpoints));
      },
  };
}

}  // namespace

caf::actor spawn_worker_node(caf::actor_system& sys, worker_node_options options) {
  return sys.spawn(worker_node, std::move(options));
}

}  // namespace accellm::daemon
