#include "daemon/launcher.hpp"

#include "daemon/load_driver.hpp"
#include "daemon/load_outputs.hpp"
#include "daemon/metrics_scrape.hpp"
#include "daemon/process.hpp"
#include "daemon/transport_config.hpp"

#include "actors/system_config.hpp"
#include "actors/tracer.hpp"
#include "actors/transport.hpp"
#include "actors/type_registry.hpp"
#include "config/cluster_config.hpp"
#include "config/manifest.hpp"
#include "workload/generator.hpp"
#include "workload/metrics/summary.hpp"
#include "workload/metrics/writers.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

extern char** environ;

namespace accellm::daemon {
namespace {

using namespace std::chrono_literals;

// --- load -------------------------------------------------------------------

result<std::vector<load_request>> make_requests(const load_options& o) {
  auto kind = workload::parse_shape(o.workload);
  if (!kind) return std::move(kind).err();
  auto trace = workload::generate({.kind = *kind,
                                   .rate = o.rate,
                                   .duration = o.duration,
                                   .arrivals = workload::arrival_process::poisson,
                                   .cv = 1.0,
                                   .seed = o.seed,
                                   .max_requests = 0});
  if (!trace) return std::move(trace).err();
  for (auto& r : *trace) {  // a small model's context: clamp, as the table says
    r.prompt_tokens = std::min(r.prompt_tokens, o.max_prompt);
    r.output_tokens = std::min(r.output_tokens, o.max_output);
  }
  return with_prompts(*trace, o.seed);
}

// Prints the table; with --out writes the files (with the instances `seen`
// in /metrics, when scraped) and hands them to after_outputs.
int report(const load_outcome& out, const load_options& o, const std::string& label,
           const std::optional<instance_timeline>& seen) {
  metrics::run_record rec = out.record;
  rec.policy = label;
  rec.setting = "live";
  rec.offered_rate = o.rate;
  if (seen) {
    // Utilisation windows only where the coordinator exports busy time;
    // without it (an older coordinator) the report says it is missing. The
    // table's idle column comes from the same instances ("-": unknown).
    if (seen->has_busy()) rec.busy_window = live_busy_window(rec.makespan, o.metrics_every);
    rec.instances = seen->records(rec.makespan, rec.busy_window);
  }
  const metrics::summary sum = metrics::summarize(rec, {});
  std::cout << metrics::format_comparison({{&rec, sum}});
  std::size_t failed = 0;
  for (std::size_t i = 0; i < out.errors.size(); ++i) {
    if (out.errors[i].empty()) continue;
    if (failed++ < 5)
      std::cerr << "request " << rec.requests[i].id << ": " << out.errors[i] << '\n';
  }
  std::cout << out.finished << " of " << rec.requests.size() << " requests ended, " << failed
            << " failed" << (out.drained ? "" : ", the rest did not finish in time") << '\n';
  if (!o.out.empty()) {
    if (auto s = write_load_outputs(o.out, rec, sum); !s) {
      std::cerr << "accellm load: " << s.err().message() << '\n';
      return exit_failure;
    }
    if (o.after_outputs) {
      if (const int code = o.after_outputs(o.out); code != 0) return code;
    }
  }
  return out.drained && failed == 0 ? exit_ok : exit_failure;
}

int drive_and_report(const actors::endpoint& at, const actors::transport_options& t,
                     const load_options& o, const std::string& label) {
  auto reqs = make_requests(o);
  if (!reqs) {
    std::cerr << "accellm load: " << reqs.err().what() << '\n';
    return exit_config;
  }
  if (!o.out.empty()) {
    if (auto s = prepare_out_dir(o.out); !s) {
      std::cerr << "accellm load: " << s.err().message() << '\n';
      return exit_config;
    }
  }
  std::optional<metrics_scraper> scraper;
  if (!o.metrics_url.empty()) {
    auto target = parse_metrics_url(o.metrics_url);
    if (!target) {
      std::cerr << "accellm load: " << target.err().message() << '\n';
      return exit_config;
    }
    if (!o.out.empty()) scraper.emplace(*target, o.metrics_every);  // for the files only
  }
  actors::system_config cfg;
  if (auto ok = actors::apply(t, cfg); !ok) {
    std::cerr << "accellm load: " << ok.err().what() << '\n';
    return exit_config;
  }
  caf::actor_system sys{cfg};
  auto coord = actors::connect(sys, at.host, at.port, t);
  if (!coord) {
    std::cerr << "accellm load: cannot reach the coordinator at " << actors::to_string(at) << ": "
              << coord.err().message() << '\n';
    return exit_failure;
  }
  std::cerr << "load: " << reqs->size() << " " << o.workload << " requests at " << o.rate
            << " req/s over " << std::chrono::duration<double>(o.duration).count()
            << " s (prompts <= " << o.max_prompt << ", outputs <= " << o.max_output
            << " tokens) to " << actors::to_string(at) << '\n';
  // Ids of this run: a random high base, so that two drivers do not collide.
  const request_id base = (std::random_device{}() & 0xFFFFFull) << 32;
  if (scraper) {
    if (auto s = scraper->start(); !s) {
      std::cerr << "accellm load: --metrics " << o.metrics_url << ": " << s.err().message() << '\n';
      return exit_failure;
    }
  }
  auto out = drive(sys, *coord, *reqs, base, o.drain, o.progress);
  if (!out) {
    std::cerr << "accellm load: " << out.err().what() << '\n';
    return exit_failure;
  }
  std::optional<instance_timeline> seen;
  if (scraper) {
    std::size_t failed = 0;
    seen = scraper->stop(failed);
    if (failed > 0) {
      std::cerr << "load: " << failed << " of " << failed + seen->scrapes() << " scrapes of "
                << o.metrics_url << " failed; the instance files have gaps\n";
    }
  }
  return report(*out, o, label, seen);
}

// --- children -----------------------------------------------------------------

struct child {
  std::string name;
  pid_t pid = -1;
};

// Starts this very binary again (/proc/self/exe: still right if the file was
// replaced meanwhile) with `args`, argv[0] its path as `ps` should show it.
result<pid_t> spawn_self(const std::vector<std::string>& args) {
  std::error_code ec;
  std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec || self.empty()) self = "/proc/self/exe";
  std::vector<char*> argv;
  argv.push_back(self.data());
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (int e = posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ); e != 0) {
    return fail(errc::io_failure, std::string{"cannot start a child: "} + std::strerror(e));
  }
  return pid;
}

// "exited with code N" / "was killed by signal N", for a waitpid status.
std::string ending_of(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  return "was killed by signal " + std::to_string(WTERMSIG(status));
}

// "" while running, else how it ended.
std::string exited(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) != pid) return {};
  return ending_of(status);
}

// Stops every child still running: SIGTERM, SIGKILL after 10 s. False when
// one of them did not then exit 0 (a daemon that crashes while stopping is
// an error, not a quiet exit); children that had ended before are reported,
// as watch() does, and left out of that verdict.
bool stop_children(std::vector<child>& kids) {
  for (auto& k : kids) {
    if (k.pid <= 0) continue;
    if (auto why = exited(k.pid); !why.empty()) {
      std::cerr << "up: " << k.name << " (pid " << k.pid << ") " << why << '\n';
      k.pid = -1;
    }
  }
  for (auto it = kids.rbegin(); it != kids.rend(); ++it) {
    if (it->pid > 0) kill(it->pid, SIGTERM);
  }
  bool clean = true;
  for (auto& k : kids) {
    if (k.pid <= 0) continue;
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    int status = 0;
    while (waitpid(k.pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > give_up) {
        std::cerr << "up: " << k.name << " did not stop in 10 s: SIGKILL\n";
        kill(k.pid, SIGKILL);
        waitpid(k.pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::cerr << "up: " << k.name << " " << ending_of(status) << " while stopping\n";
      clean = false;
    }
  }
  kids.clear();
  return clean;
}

// Waits for the coordinator's ready file: "CAF_PORT HTTP_PORT".
result<std::pair<std::uint16_t, std::uint16_t>> await_ready(const std::filesystem::path& file,
                                                            const child& coord) {
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < give_up) {
    std::ifstream in{file};
    unsigned caf = 0, http = 0;
    if (in >> caf >> http)
      return std::pair{static_cast<std::uint16_t>(caf), static_cast<std::uint16_t>(http)};
    if (auto why = exited(coord.pid); !why.empty()) {
      return fail(errc::io_failure, "the coordinator " + why);
    }
    std::this_thread::sleep_for(50ms);
  }
  return fail(errc::io_failure, "the coordinator did not listen within 30 s");
}

// Polls /health until `n` instances have joined.
status await_workers(const std::string& host, std::uint16_t http, std::uint32_t n,
                     const std::vector<child>& kids) {
  httplib::Client cli{host, http};
  cli.set_connection_timeout(1, 0);
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < give_up) {
    if (auto res = cli.Get("/health"); res && res->status == 200) {
      const auto at = res->body.find("\"instances\":");
      if (at != std::string::npos && std::stoul(res->body.substr(at + 12)) >= n) return {};
    }
    for (const auto& k : kids) {
      if (auto why = exited(k.pid); !why.empty()) return fail(errc::io_failure, k.name + " " + why);
    }
    std::this_thread::sleep_for(100ms);
  }
  return fail(errc::io_failure, "the workers did not all join within 60 s");
}

// The coordinator's view after a run, from its /metrics: per instance its
// role, iterations, busy seconds, KV bytes sent to partners, how many of
// them went through same-node rings, and the copies it dropped.
void print_instance_metrics(const std::string& host, std::uint16_t http) {
  httplib::Client cli{host, http};
  auto res = cli.Get("/metrics");
  if (!res || res->status != 200) return;
  std::cout << "coordinator /metrics (http://" << host << ':' << http << "/metrics):\n";
  std::istringstream in{res->body};
  for (std::string line; std::getline(in, line);) {
    const bool role = line.rfind("accellm_instance_role{", 0) == 0 && line.ends_with(" 1");
    if (role || line.rfind("accellm_instance_iterations_total{", 0) == 0 ||
        line.rfind("accellm_instance_busy_seconds_total{", 0) == 0 ||
        line.rfind("accellm_instance_kv_sent_bytes_total{", 0) == 0 ||
        line.rfind("accellm_instance_kv_shared_bytes_total{", 0) == 0 ||
        line.rfind("accellm_instance_kv_copied_bytes_total{", 0) == 0 ||
        line.rfind("accellm_instance_replicas_dropped_total{", 0) == 0 ||
        line.rfind("accellm_requests_finished_total", 0) == 0) {
      std::cout << "  " << line << '\n';
    }
  }
}

// Writes the processes' manifest (whole or not at all: renamed into place).
status write_manifest(const std::filesystem::path& path, const std::string& cluster,
                      const std::vector<child>& kids, double started) {
  config::cluster_manifest m{.cluster = cluster, .started_unix_s = started, .processes = {}};
  for (const child& k : kids) {
    m.processes.push_back(
        {.name = k.name, .pid = static_cast<std::uint32_t>(k.pid), .netns = {}, .dev = {}});
  }
  const auto tmp = path.string() + ".tmp";
  {
    std::ofstream out{tmp};
    out << config::to_toml(m);
    if (!out) return fail(errc::io_failure, "cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return fail(errc::io_failure, "cannot write " + path.string() + ": " + ec.message());
  return {};
}

// Until SIGINT or SIGTERM; a child that exits meanwhile is reported (the
// cluster goes on without it).
void watch(std::vector<child>& kids) {
  std::vector<bool> reported(kids.size(), false);
  while (wait_for_signal(200ms) == 0) {
    for (std::size_t i = 0; i < kids.size(); ++i) {
      if (reported[i]) continue;
      if (auto why = exited(kids[i].pid); !why.empty()) {
        std::cerr << "up: " << kids[i].name << " (pid " << kids[i].pid << ") " << why << '\n';
        reported[i] = true;
        kids[i].pid = -1;  // reaped: nothing left to stop
      }
    }
  }
}

}  // namespace

int run_load(const std::string& coordinator, const std::filesystem::path& config,
             const load_options& options) {
  auto at = actors::parse_endpoint(coordinator);
  if (!at) {
    std::cerr << "accellm load: --coordinator: " << at.err().message() << '\n';
    return exit_config;
  }
  config::cluster_config c;
  if (!config.empty()) {
    auto loaded = config::load_cluster_config(config);
    if (!loaded) {
      std::cerr << "accellm load: " << loaded.err().what() << '\n';
      return exit_config;
    }
    c = std::move(*loaded);
  }
  return drive_and_report(*at, transport_of(c.daemon), options, c.daemon.policy);
}

int run_up(const up_flags& f) {
  auto c = config::load_cluster_config(f.config);
  if (!c) {
    std::cerr << "accellm up: " << c.err().what() << '\n';
    return exit_config;
  }
  block_stop_signals();  // children reset nothing: they block the same and wait for them
  if (cluster_token(c->daemon.token).empty()) {  // a secret for this run only
    std::random_device rd;
    const std::string token = std::to_string(rd()) + std::to_string(rd());
    setenv("ACCELLM_CLUSTER_TOKEN", token.c_str(), 1);
  }
  const std::uint32_t n = f.workers.value_or(c->instances);
  const std::string device = f.device.value_or(c->daemon.worker_device);
  const std::string config = std::filesystem::absolute(f.config).string();
  const std::filesystem::path ready =
      std::filesystem::temp_directory_path() / ("accellm-up-" + std::to_string(getpid()));
  std::filesystem::remove(ready);
  std::vector<std::string> log;
  if (f.log_level) log = {"--log-level", *f.log_level};
  std::vector<child> kids;
  const double started =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::filesystem::path manifest =
      f.manifest.empty() ? config::default_manifest(c->name) : f.manifest;
  bool wrote_manifest = false;
  auto start = [&](std::string name, std::vector<std::string> args) -> bool {
    args.insert(args.end(), log.begin(), log.end());
    if (!f.trace.empty()) {
      args.insert(args.end(),
                  {"--trace", actors::trace_file_for(std::filesystem::absolute(f.trace), name)});
    }
    auto pid = spawn_self(args);
    if (!pid) {
      std::cerr << "accellm up: " << pid.err().what() << '\n';
      return false;
    }
    kids.push_back({std::move(name), *pid});
    return true;
  };
  int code = exit_failure;
  if (start("coordinator", {"coordinator", "--config", config, "--ready-file", ready.string()})) {
    auto ports = await_ready(ready, kids.front());
    bool ok = ports.ok();
    if (!ok) std::cerr << "accellm up: " << ports.err().what() << '\n';
    const std::string caf_at =
        c->daemon.coordinator_host + ":" + std::to_string(ok ? ports->first : 0);
    for (std::uint32_t i = 0; ok && i < n; ++i) {
      const std::string name = "w" + std::to_string(i);
      ok = start(name, {"worker", "--coordinator", caf_at, "--instance", name, "--device", device,
                        "--config", config});
    }
    if (ok) {
      if (auto s = await_workers(c->daemon.http_host, ports->second, n, kids); !s) {
        std::cerr << "accellm up: " << s.err().what() << '\n';
        ok = false;
      }
    }
    if (ok) {
      if (auto s = write_manifest(manifest, c->name, kids, started); !s) {
        std::cerr << "accellm up: " << s.err().what() << '\n';
        ok = false;
      }
      wrote_manifest = ok;
    }
    if (ok) {
      std::cout << "cluster '" << c->name << "' is up: " << n << " x " << device << " " << c->model
                << ", policy " << c->daemon.policy << "\n  coordinator  pid " << kids[0].pid
                << "  CAF " << caf_at << "  HTTP http://" << c->daemon.http_host << ':'
                << ports->second << "  (/v1/requests, /health, /metrics)\n";
      for (std::size_t i = 1; i < kids.size(); ++i) {
        std::cout << "  " << kids[i].name << "           pid " << kids[i].pid << '\n';
      }
      std::cout << "  manifest     " << manifest.string()
                << "  (accellm chaos ACTION w0 --manifest " << manifest.string() << ")\n";
      std::cout.flush();
      if (f.load) {
        load_options o = *f.load;  // its instances: this coordinator's /metrics
        if (o.metrics_url.empty()) {
          o.metrics_url =
              "http://" + c->daemon.http_host + ':' + std::to_string(ports->second) + "/metrics";
        }
        code = drive_and_report(*actors::parse_endpoint(caf_at), transport_of(c->daemon), o,
                                c->daemon.policy);
        print_instance_metrics(c->daemon.http_host, ports->second);
      } else {
        std::cout << "Ctrl-C stops it." << std::endl;
        watch(kids);
        code = exit_ok;
      }
    }
  }
  if (!stop_children(kids) && code == exit_ok) code = exit_failure;
  std::filesystem::remove(ready);
  std::error_code gone;
  if (wrote_manifest) std::filesystem::remove(manifest, gone);
  return code;
}

}  // namespace accellm::daemon
