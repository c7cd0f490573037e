#include "daemon/coordinator_process.hpp"

#include "daemon/process.hpp"
#include "daemon/transport_config.hpp"

#include "actors/system_config.hpp"
#include "actors/thread_sched.hpp"
#include "actors/transport.hpp"
#include "actors/type_registry.hpp"
#include "config/cluster_config.hpp"
#include "coordinator/coordinator.hpp"
#include "coordinator/http/http_server.hpp"
#include "coordinator/http/live_metrics.hpp"
#include "coordinator/policies/accellm.hpp"
#include "coordinator/policies/splitwise.hpp"
#include "coordinator/policies/vllm.hpp"
#include "device/model_spec.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <iostream>

namespace accellm::daemon {
namespace {

struct daemon_setup {
  config::cluster_config cluster;
  std::shared_ptr<spdlog::logger> log;
  std::string token;
};

result<daemon_setup> prepare(const coordinator_flags& f) {
  auto c = config::load_cluster_config(f.config);
  if (!c) return std::move(c).err();
  if (f.port) c->daemon.coordinator_port = *f.port;
  if (f.http_port) c->daemon.http_port = *f.http_port;
  auto log = make_logger("coordinator", f.log_level.value_or(c->daemon.log_level));
  if (!log) return std::move(log).err();
  std::string token = cluster_token(c->daemon.token);
  if (token.empty()) {
    return fail(errc::config, f.config.string() +
                                  ": no cluster token: set [security] token or the "
                                  "ACCELLM_CLUSTER_TOKEN environment variable");
  }
  return daemon_setup{.cluster = std::move(*c), .log = std::move(*log), .token = std::move(token)};
}

// serve(), once the trace is open: `trace` (may be null) outlives the
// actor system, which waits for every actor before it goes.
int serve_with(const daemon_setup& d, const coordinator_flags& f, actors::system_config& cfg,
               actors::tracer* trace) {
  const config::cluster_config& c = d.cluster;
  const auto transport = transport_of(c.daemon);
  // The coordinator's observer must outlive it: declared before the actor
  // system, whose destructor waits for every actor. (Declared after it, it
  // went first, and a coordinator still handling the loss of a stopping
  // worker wrote into the freed metrics: a crash at SIGTERM.)
  coordinator::http::live_metrics metrics;
  // Every thread the actor system starts inherits it (actors/thread_sched.hpp).
  (void)actors::request_time_slice(actors::daemon_time_slice);
  caf::actor_system sys{cfg};
  if (auto ok = actors::self_test(sys); !ok) {
    d.log->error("self-test: {}", ok.err().what());
    return exit_failure;
  }
  auto coord = spawn_live_coordinator(
      sys, c, d.token, &metrics, d.log,
      trace != nullptr ? trace->point("coordinator") : actors::trace_point{});
  int code = exit_ok;
  auto caf_port = actors::publish(sys, coord, c.daemon.coordinator_host,
                                  static_cast<std::uint16_t>(c.daemon.coordinator_port), transport);
  coordinator::http::http_options web;
  web.host = c.daemon.http_host;
  web.port = static_cast<std::uint16_t>(c.daemon.http_port);
  web.logger = d.log;
  web.threads = c.daemon.http_threads;
  web.request_timeout = std::chrono::seconds{c.daemon.request_timeout_s};
  web.max_body_bytes = std::size_t{c.daemon.max_body_kib} * 1024;
  if (const device::model_spec* m = device::find_model(c.model); m != nullptr) {
    web.limits.vocab_size = static_cast<token_id>(m->vocab);
    web.limits.max_prompt_tokens = m->max_context > 1 ? m->max_context - 1 : 1;
    web.limits.max_tokens = m->max_context;
  }
  coordinator::http::http_server http{sys, coord, web,
                                      [&metrics] {
                                        const std::uint32_t n = metrics.live_instances();
                                        return coordinator::http::health_status{.ready = n > 0,
                                                                                .instances = n};
                                      },
                                      &metrics};
  result<std::uint16_t> http_port = fail(errc::internal, "not started");
  if (!caf_port) {
    d.log->error("{}", caf_port.err().what());
    code = exit_failure;
  } else if (http_port = http.start(); !http_port) {
    d.log->error("HTTP: {}", http_port.err().what());
    code = exit_failure;
  } else {
    d.log->info(
        "cluster '{}' ({} on {}, policy {}): workers register at {}:{} ({}), HTTP at "
        "http://{}:{}",
        c.name, c.model, c.device, c.daemon.policy, c.daemon.coordinator_host, *caf_port,
        transport.tls ? "TLS" : "plain TCP", c.daemon.http_host, *http_port);
    if (!f.ready_file.empty())
      std::ofstream{f.ready_file} << *caf_port << ' ' << *http_port << '\n';
    const int sig = wait_for_stop();
    d.log->info("stopping ({})", sig == SIGINT ? "SIGINT" : "SIGTERM");
  }
  http.stop();
  caf::anon_send_exit(coord, caf::exit_reason::user_shutdown);
  return code;
}

int serve(const daemon_setup& d, const coordinator_flags& f) {
  const config::cluster_config& c = d.cluster;
  const auto transport = transport_of(c.daemon);
  actors::system_config cfg;
  if (auto ok = actors::apply(transport, cfg); !ok) {
    d.log->error("{}", ok.err().what());
    return exit_config;
  }
  actors::on_oversized_frame([log = d.log](const std::string& line) { log->warn("{}", line); });
  return with_trace(f.trace, "coordinator", *d.log,
                    [&](actors::tracer* trace) { return serve_with(d, f, cfg, trace); });
}

}  // namespace

std::shared_ptr<coordinator::policy> make_policy(const config::cluster_config& c) {
  const auto& p = c.daemon.policy;
  if (p == "vllm") {
    return std::make_shared<coordinator::vllm_policy>(c.policy.vllm == config::vllm_chunking::on);
  }
  if (p == "splitwise") {
    const auto& sizes = c.policy.splitwise_prompt_instances;
    return std::make_shared<coordinator::splitwise_policy>(
        sizes.empty() ? 0 : sizes.front(), c.policy.splitwise_prompt_max_pending_tokens);
  }
  return std::make_shared<coordinator::accellm_policy>(
      c.policy.splitwise_prompt_max_pending_tokens);
}

caf::actor spawn_live_coordinator(caf::actor_system& sys, const config::cluster_config& c,
                                  std::string token, coordinator::observer* obs,
                                  std::shared_ptr<spdlog::logger> log, actors::trace_point trace) {
  const device::model_spec* model = device::find_model(c.model);
  return coordinator::spawn_coordinator(sys,
                                        {.instances = 0,
                                         .blocks_per_instance = 0,
                                         .block_tokens = c.batching.block_tokens,
                                         .token_times = true,
                                         .token_ids = true,
                                         .cluster_token = std::move(token),
                                         .model = c.model,
                                         .vocab = model != nullptr ? model->vocab : 0,
                                         .max_context = model != nullptr ? model->max_context : 0,
                                         .log = std::move(log),
                                         .trace = std::move(trace)},
                                        make_policy(c), obs);
}

int run_coordinator(const coordinator_flags& flags) {
  block_stop_signals();
  auto d = prepare(flags);
  if (!d) {
    std::cerr << "accellm coordinator: " << d.err().what() << '\n';
    return exit_config;
  }
  return serve(*d, flags);
}

}  // namespace accellm::daemon
