#include "daemon/worker_node.hpp"

#include "actors/atoms.hpp"
#include "actors/transport.hpp"

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
  std::vector<std::string> endpoints;          ///< by instance id
  std::map<std::string, std::uint32_t> tries;  ///< endpoint -> connect attempts so far
  std::set<std::string> connected;             ///< direct connections made
  bool connecting = false;                     ///< one connect in flight at a time
  static inline const char* name = "worker_node";
};

using node_actor = caf::stateful_actor<node_state>;

void connect_next(node_actor* self);

// The next endpoint to connect to: a live instance before this one (by id)
// not connected yet and not given up on; "" when there is none.
std::string next_endpoint(const node_state& s) {
  for (const std::string& ep : s.endpoints) {
    if (ep == s.opt.own_endpoint) break;  // later instances connect to this one
    if (ep.empty() || s.connected.count(ep) != 0) continue;
    const auto t = s.tries.find(ep);
    if (t == s.tries.end() || t->second < s.opt.connect_attempts) return ep;
  }
  return {};
}

void on_connect_failed(node_actor* self, const std::string& ep, const caf::error& err) {
  auto& s = self->state;
  s.connecting = false;
  const std::uint32_t tries = ++s.tries[ep];
  if (s.opt.log) {
    s.opt.log->warn("cannot connect to the KV receiver at {} (attempt {} of {}): {}", ep, tries,
                    s.opt.connect_attempts, self->system().render(err));
  }
  self->delayed_send(self, s.opt.retry_interval, actors::tick_atom::value);
}

void connect_next(node_actor* self) {
  auto& s = self->state;
  if (s.connecting) return;
  const std::string ep = next_endpoint(s);
  if (ep.empty()) return;
  auto at = actors::parse_endpoint(ep);
  if (!at) {  // the coordinator built it from a registration: never expected
    s.tries[ep] = s.opt.connect_attempts;
    return connect_next(self);
  }
  s.connecting = true;
  self->request(s.opt.connector, s.opt.connect_timeout, caf::connect_atom::value, at->host,
                at->port)
      .then(
          [self, ep](const caf::node_id&, caf::strong_actor_ptr&, const std::set<std::string>&) {
            auto& st = self->state;
            st.connecting = false;
            st.connected.insert(ep);
            if (st.opt.log) st.opt.log->info("connected to the KV receiver at {} directly", ep);
            connect_next(self);
          },
          [self, ep](caf::error& err) { on_connect_failed(self, ep, err); });
}

void on_peers(node_actor* self, std::vector<std::string> endpoints,
              std::vector<caf::actor> replicas) {
  auto& s = self->state;
  s.endpoints = std::move(endpoints);
  for (std::size_t i = 0; i < replicas.size() && i < s.endpoints.size(); ++i) {
    if (s.endpoints[i] == s.opt.own_endpoint) replicas[i] = s.opt.replica;  // no proxy for itself
  }
  self->send(s.opt.worker, actors::peers_atom::value, std::move(replicas));
  connect_next(self);
}

caf::behavior worker_node(node_actor* self, worker_node_options opt) {
  self->state.opt = std::move(opt);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& s = self->state;
    const bool coordinator = dm.source == s.coordinator.address();
    if (!coordinator && dm.source != s.opt.manager.address()) return;
    if (s.opt.log) {
      s.opt.log->error("{}: {}", coordinator ? "lost the coordinator" : "this instance was fenced",
                       self->system().render(dm.reason));
    }
    if (s.opt.lost) s.opt.lost->store(true);
  });
  if (self->state.opt.manager) self->monitor(self->state.opt.manager);
  return {
      [self](actors::peers_atom, caf::actor coordinator) {
        self->state.coordinator = coordinator;
        self->monitor(coordinator);
      },
      [self](actors::peers_atom, std::vector<std::string> endpoints,
             std::vector<caf::actor> replicas) {
        on_peers(self, std::move(endpoints), std::move(replicas));
      },
      [self](actors::tick_atom) { connect_next(self); },
  };
}

}  // namespace

caf::actor spawn_worker_node(caf::actor_system& sys, worker_node_options options) {
  return sys.spawn(worker_node, std::move(options));
}

}  // namespace accellm::daemon
