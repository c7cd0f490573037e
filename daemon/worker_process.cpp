#include "daemon/worker_process.hpp"

#include "daemon/instance_host.hpp"
#include "daemon/process.hpp"
#include "daemon/transport_config.hpp"
#include "daemon/worker_node.hpp"

#include "actors/atoms.hpp"
#include "actors/caf_error.hpp"
#include "actors/system_config.hpp"
#include "actors/thread_sched.hpp"
#include "actors/transport.hpp"
#include "actors/type_registry.hpp"
#include "config/cluster_config.hpp"
#include "device/backend.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <iostream>

namespace accellm::daemon {
namespace {

struct worker_setup {
  config::cluster_config cluster;
  actors::endpoint coordinator;
  std::string device;
  std::string token;
  std::shared_ptr<spdlog::logger> log;
};

result<worker_setup> prepare(const worker_flags& f) {
  config::cluster_config c;
  if (!f.config.empty()) {
    auto loaded = config::load_cluster_config(f.config);
    if (!loaded) return std::move(loaded).err();
    c = std::move(*loaded);
  }
  if (f.model) c.model = *f.model;
  if (f.host) c.daemon.worker_host = *f.host;
  if (f.kv_port) c.daemon.worker_kv_port = *f.kv_port;
  if (f.instance.empty()) return fail(errc::config, "--instance: a name is required");
  const std::string& host = c.daemon.worker_host;
  if (host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]") {
    return fail(errc::config, "[worker] host / --host: '" + host +
                                  "' is not an address partners can reach; give this "
                                  "machine's address on the cluster network");
  }
  auto ep = actors::parse_endpoint(f.coordinator);
  if (!ep) return fail(errc::config, "--coordinator: " + ep.err().message());
  auto log = make_logger(f.instance, f.log_level.value_or(c.daemon.log_level));
  if (!log) return std::move(log).err();
  std::string token = cluster_token(c.daemon.token);
  if (token.empty()) {
    return fail(errc::config,
                "no cluster token: set [security] token in --config or ACCELLM_CLUSTER_TOKEN");
  }
  std::string device = f.device.value_or(c.daemon.worker_device);
  return worker_setup{.cluster = std::move(c),
                      .coordinator = std::move(*ep),
                      .device = std::move(device),
                      .token = std::move(token),
                      .log = std::move(*log)};
}

// Calls `attempt` until it succeeds, `again` (given its error) says not to
// retry, or `wait` has passed; `again` logs why it retries. Between tries it
// waits half a second, and a SIGINT or SIGTERM ends the retries: `signal`
// holds it. (main()'s thread: wall time is fine.)
template <class Attempt, class Again>
auto keep_trying(std::chrono::seconds wait, int& signal, Attempt attempt, Again again)
    -> decltype(attempt()) {
  const auto give_up = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto out = attempt();
    if (out || std::chrono::steady_clock::now() >= give_up || !again(out.err())) return out;
    signal = wait_for_signal(std::chrono::milliseconds{500});
    if (signal != 0) return fail(errc::io_failure, "stopped by a signal");
  }
}

// Connects to the coordinator, retrying while it is not up yet (for `wait`).
result<caf::actor> reach(caf::actor_system& sys, const worker_setup& w,
                         const actors::transport_options& t, std::chrono::seconds wait,
                         int& signal) {
  return keep_trying(
      wait, signal, [&] { return actors::connect(sys, w.coordinator.host, w.coordinator.port, t); },
      [&](const error& e) {
        w.log->warn("coordinator at {} not reachable yet: {}", actors::to_string(w.coordinator),
                    e.message());
        return true;
      });
}

caf::io::middleman_actor connector(caf::actor_system& sys, const actors::transport_options& t) {
  return t.tls ? sys.openssl_manager().actor_handle() : sys.middleman().actor_handle();
}

// How one membership of the cluster ended.
enum class ending {
  stopped,  ///< SIGINT or SIGTERM: exit 0
  cut_off,  ///< the coordinator was lost or fenced this instance: join again
  failed,   ///< could not join: exit 1
};

// Registers `inst` with the coordinator; its SetRole, or the refusal. When
// `rejoining`, a refusal because the old instance of this name still counts
// as live (the coordinator has not noticed its loss yet) is retried until
// `wait` has passed.
result<messages::set_role> enroll(caf::actor_system& sys, const worker_setup& w,
                                  const caf::actor& coord, const messages::register_worker& reg,
                                  const instance_actors& inst, const caf::actor& node,
                                  bool rejoining, std::chrono::seconds wait, int& signal) {
  caf::scoped_actor self{sys};
  auto attempt = [&] {
    result<messages::set_role> out = fail(errc::internal, "no answer from the coordinator");
    self->request(coord, std::chrono::seconds{10}, actors::register_atom::value,
                  messages::encode(reg), inst.manager, node, inst.replica)
        .receive(
            [&](actors::msg_atom, const messages::capnp_blob& b) {
              out = messages::decode<messages::set_role>(b);
            },
            [&](caf::error& err) {
              // The coordinator's refusals keep their errc (in_use: retried).
              const error e = from_caf(err);
              out = e.code() == errc::internal ? fail(errc::io_failure, sys.render(err)) : e;
            });
    return out;
  };
  return keep_trying(wait, signal, attempt, [&](const error& e) {
    const bool retry = rejoining && e.code() == errc::in_use;
    if (retry)
      w.log->warn("the coordinator still counts '{}' as live; retrying", reg.instance_name);
    return retry;
  });
}

// One membership: connects, spawns the instance on `dev`, registers and
// serves until a signal, a cut-off or a fence ends it; the instance's actors
// are gone when it returns.
ending membership(caf::actor_system& sys, worker_setup& w, const worker_flags& f,
                  const actors::transport_options& transport, device_choice dev, bool rejoining,
                  const actors::trace_point& trace) {
  int signal = 0;
  auto coord = reach(sys, w, transport, f.connect_wait, signal);
  if (signal != 0) return ending::stopped;
  if (!coord) {
    w.log->error("cannot reach the coordinator at {}: {}", actors::to_string(w.coordinator),
                 coord.err().message());
    return ending::failed;
  }
  const device::kv_geometry kv = dev.kv;
  const std::string device_name = dev.name;
  const std::string model = dev.model->name;
  instance_actors inst = spawn_instance(sys, w.cluster, std::move(dev), *coord, trace);
  caf::scoped_actor self{sys};
  auto stop = [&](const std::vector<caf::actor>& actors) {
    for (const auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    for (const auto& a : actors) self->wait_for(a);  // the device is freed with its worker
  };
  auto kv_port =
      actors::publish(sys, inst.replica, w.cluster.daemon.worker_host,
                      static_cast<std::uint16_t>(w.cluster.daemon.worker_kv_port), transport);
  if (!kv_port) {
    w.log->error("{}", kv_port.err().what());
    stop(inst.all());
    return ending::failed;
  }
  const std::string own = w.cluster.daemon.worker_host + ":" + std::to_string(*kv_port);
  auto lost = std::make_shared<std::atomic<bool>>(false);
  auto node = spawn_worker_node(sys, {.worker = inst.worker,
                                      .manager = inst.manager,
                                      .replica = inst.replica,
                                      .own_endpoint = own,
                                      .connector = connector(sys, transport),
                                      .connect_timeout = transport.connect_timeout,
                                      .retry_interval = std::chrono::seconds{1},
                                      .connect_attempts = 10,
                                      .log = w.log,
                                      .lost = lost});
  caf::anon_send(node, actors::peers_atom::value, *coord);
  const messages::register_worker reg{.epoch = 0,
                                      .cluster_token = w.token,
                                      .instance_name = f.instance,
                                      .device = device_name,
                                      .model = model,
                                      .tp = w.cluster.tp,
                                      .kv_blocks = kv.total_blocks,
                                      .block_tokens = kv.block_tokens,
                                      .host = w.cluster.daemon.worker_host,
                                      .pid = static_cast<std::uint32_t>(getpid()),
                                      .kv_bytes_per_block = kv.bytes_per_block,
                                      .protocol_version = messages::protocol_version,
                                      .kv_port = *kv_port};
  auto role = enroll(sys, w, *coord, reg, inst, node, rejoining, f.connect_wait, signal);
  ending how = ending::failed;
  if (signal != 0) {
    how = ending::stopped;
  } else if (!role) {
    w.log->error("the coordinator refused this worker: {}", role.err().message());
  } else {
    w.log->info("joined as instance {} ({} {}, {} KV blocks, KV receiver at {}), role {}",
                role->instance, model, device_name, kv.total_blocks, own,
                messages::to_string(role->role));
    const int sig = wait_for_stop(lost.get());
    how = sig == 0 ? ending::cut_off : ending::stopped;
    w.log->info("stopping ({})", sig == 0        ? "cut off from the cluster"
                                 : sig == SIGINT ? "SIGINT"
                                                 : "SIGTERM");
  }
  stop({node});
  stop(inst.all());
  (void)actors::unpublish(sys, inst.replica, *kv_port, transport);
  return how;
}

// serve(), once the trace is open: `trace` (may be null) outlives the
// actor system, which waits for every actor before it goes.
int serve_with(worker_setup& w, const worker_flags& f, const actors::transport_options& transport,
               actors::system_config& cfg, actors::tracer* trace) {
  auto dev = make_device(w.device, w.cluster);
  if (!dev) {
    w.log->error("{}", dev.err().what());
    return exit_config;
  }
  for (const std::string& line : dev->setup) w.log->info("{}", line);
  // KV chunks, freed once sent, are reused already faulted in.
  if (config::is_real_device(w.device) && !device::keep_freed_host_buffers())
    w.log->warn("the C library refused to keep freed buffers: KV chunks use fresh memory");
  // Every thread the actor system starts inherits it (actors/thread_sched.hpp).
  (void)actors::request_time_slice(actors::daemon_time_slice);
  caf::actor_system sys{cfg};
  const auto point = trace != nullptr ? trace->point("worker") : actors::trace_point{};
  if (auto ok = actors::self_test(sys); !ok) {
    w.log->error("self-test: {}", ok.err().what());
    return exit_failure;
  }
  // Cut off (the coordinator was lost, or declared this instance lost and
  // fenced it): whatever the instance held went on elsewhere, so it starts
  // over with fresh actors on a fresh device and joins as a new instance.
  for (bool rejoining = false;; rejoining = true) {
    if (rejoining) {
      w.log->warn("dropping this instance's state and joining the cluster again");
      dev = make_device(w.device, w.cluster);
      if (!dev) {
        w.log->error("{}", dev.err().what());
        return exit_failure;
      }
    }
    switch (membership(sys, w, f, transport, std::move(*dev), rejoining, point)) {
      case ending::stopped:
        return exit_ok;
      case ending::failed:
        return exit_failure;
      case ending::cut_off:
        break;
    }
  }
}

int serve(worker_setup& w, const worker_flags& f) {
  const auto transport = transport_of(w.cluster.daemon);
  actors::system_config cfg;
  if (auto ok = actors::apply(transport, cfg); !ok) {
    w.log->error("{}", ok.err().what());
    return exit_config;
  }
  actors::on_oversized_frame([log = w.log](const std::string& line) { log->warn("{}", line); });
  return with_trace(f.trace, f.instance, *w.log,
                    [&](actors::tracer* trace) { return serve_with(w, f, transport, cfg, trace); });
}

}  // namespace

int run_worker(const worker_flags& flags) {
  block_stop_signals();
  auto w = prepare(flags);
  if (!w) {
    std::cerr << "accellm worker: " << w.err().what() << '\n';
    return exit_config;
  }
  return serve(*w, flags);
}

}  // namespace accellm::daemon
