// Coordination overhead of a live local cluster (issue 5's target: under
// 1 ms p99 on loopback).
//
//   bench_coordination [RATE] [SECONDS] [WORKERS] [POLICY] [DEVICE] [CPU_COMPUTE] [TRACE]
//                               (defaults 10 10 4 accellm cpu background, no trace)
//
// TRACE, a file name: every process writes its message trace beside it
// (actors::trace_file_for: FILE-coordinator, FILE-w0, ...), to compare the
// figures with and without --trace.
//
// The coordinator runs in this process (published on loopback like the
// daemon's); WORKERS `accellm worker --device DEVICE` processes join it; a
// conv workload (prompts <= 128, outputs <= 32 tokens) arrives at RATE req/s
// for SECONDS. DEVICE cpu runs cpu-tiny on this host's cores; a sim:* device
// runs llama2-7b's cost model on the real clock, so nothing computes beside
// the actors. CPU_COMPUTE is the workers' [worker] cpu_compute. Every IterationReport and finished
// request goes through an observer here, which measures, on the one monotonic clock all processes
// of a host share:
//
//   iteration gap     from an iteration's end on the worker (its Execute
//                     left the manager at start_ns, the device ran duration_ns)
//                     to the next iteration's start, for iterations that
//                     followed at once (the instance had work queued):
//                     IterationDone and export of KV rows, the manager's
//                     batch forming, Execute to the device thread.
//   arrival->Execute  from a request's arrival at the coordinator to the
//                     start of the iteration that computed its first token:
//                     the policy, AssignPrefill over TCP, and waiting for
//                     the iteration the instance was running (continuous
//                     batching admits a prompt at an iteration boundary).
//    less device busy the same from arrival or that iteration's end,
//                     whichever is later: the coordination part alone.
//   report hop        an IterationReport's age when the coordinator handles
//                     it: one worker-to-coordinator hop over loopback.
#include "daemon/coordinator_process.hpp"
#include "daemon/load_driver.hpp"
#include "daemon/process.hpp"

#include "actors/system_config.hpp"
#include "actors/thread_sched.hpp"
#include "actors/tracer.hpp"
#include "actors/transport.hpp"
#include "actors/type_registry.hpp"
#include "config/cluster_config.hpp"
#include "workload/generator.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

extern char** environ;

namespace {

using namespace accellm;
using namespace std::chrono_literals;

class probe final : public coordinator::observer {
 public:
  void on_iteration(const messages::iteration_report& r) override {
    // The coordinator's actor calls this as the report arrives: its age is
    // one hop from a worker's instance_manager (the same host's clock).
    const auto now =
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    std::lock_guard lock{mutex_};
    if (now >= r.load.time_ns) hops_.push_back(now - r.load.time_ns);
    ends_[r.instance].push_back(r.start_ns + r.duration_ns);
    auto& last = last_[r.instance];
    if (last.busy && r.start_ns >= last.end_ns) gaps_.push_back(r.start_ns - last.end_ns);
    last.end_ns = r.start_ns + r.duration_ns;
    last.busy = r.load.running_decode > 0 || r.load.queued_requests > 0;
  }
  void on_role(instance_id, messages::role, std::string_view, std::uint64_t) override {}
  void on_finished(const coordinator::request_timeline& t) override {
    std::lock_guard lock{mutex_};
    if (t.tokens == 0 || t.first_execute_ns < t.arrival_ns) return;
    delays_.push_back(t.first_execute_ns - t.arrival_ns);
    // The part that is not waiting for the device: from arrival, or from the
    // end of the iteration the instance was running then, to the Execute.
    const auto& ends = ends_[t.prefill_instance];
    auto it = std::upper_bound(ends.begin(), ends.end(), t.first_execute_ns);
    std::uint64_t free_at = t.arrival_ns;
    if (it != ends.begin()) free_at = std::max(free_at, *std::prev(it));
    waits_.push_back(t.first_execute_ns - free_at);
  }
  void on_joined(instance_id, std::string_view, std::uint64_t) override {
    std::lock_guard lock{mutex_};
    ++joined_;
  }
  std::size_t joined() {
    std::lock_guard lock{mutex_};
    return joined_;
  }
  struct all_samples {
    std::vector<std::uint64_t> gaps, delays, waits, hops;
  };
  all_samples samples() {
    std::lock_guard lock{mutex_};
    return {gaps_, delays_, waits_, hops_};
  }

 private:
  struct last_iteration {
    std::uint64_t end_ns = 0;
    bool busy = false;
  };
  std::mutex mutex_;
  std::unordered_map<instance_id, last_iteration> last_;
  std::unordered_map<instance_id, std::vector<std::uint64_t>> ends_;  ///< iteration ends, ascending
  std::vector<std::uint64_t> gaps_, delays_, waits_, hops_;
  std::size_t joined_ = 0;
};

double ms_at(std::vector<std::uint64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return static_cast<double>(v[i]) / 1e6;
}

void line(const char* what, const std::vector<std::uint64_t>& v) {
  std::printf("%-18s %8zu %9.3f %9.3f %9.3f   %s\n", what, v.size(), ms_at(v, 0.5), ms_at(v, 0.99),
              ms_at(v, 1.0), ms_at(v, 0.99) < 1.0 ? "p99 < 1 ms: met" : "p99 < 1 ms: NOT met");
}

pid_t spawn_worker(std::uint16_t port, int i, const std::string& config, const std::string& trace) {
  std::vector<std::string> args = {ACCELLM_BINARY,  "worker",
                                   "--coordinator", "127.0.0.1:" + std::to_string(port),
                                   "--instance",    "w" + std::to_string(i),
                                   "--config",      config,
                                   "--log-level",   "warn"};
  if (!trace.empty()) {
    args.insert(args.end(), {"--trace", actors::trace_file_for(trace, "w" + std::to_string(i))});
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, ACCELLM_BINARY, nullptr, nullptr, argv.data(), environ) != 0) return -1;
  return pid;
}

}  // namespace

int main(int argc, char** argv) {
  const double rate = argc > 1 ? std::stod(argv[1]) : 10.0;
  const double seconds = argc > 2 ? std::stod(argv[2]) : 10.0;
  const int workers = argc > 3 ? std::stoi(argv[3]) : 4;
  const std::string policy = argc > 4 ? argv[4] : "accellm";
  const std::string device = argc > 5 ? argv[5] : "cpu";
  const std::string cpu_compute = argc > 6 ? argv[6] : "background";
  const std::string trace_file = argc > 7 ? argv[7] : "";
  const std::string model = device == "cpu" ? "cpu-tiny" : "llama2-7b";
  const std::string config =
      "/tmp/accellm-coordination-bench-" + std::to_string(getpid()) + ".toml";
  std::ofstream{config} << "[cluster]\nmodel = \"" << model << "\"\ndevice = \"" << device
                        << "\"\ntp = 1\ninstances = " << (workers + workers % 2)
                        << "\n[batching]\nmax_batch_size = 64\n"
                        << "[coordinator]\npolicy = \"" << policy << "\"\n"
                        << "[worker]\ndevice = \"" << device << "\"\ncpu_compute = \""
                        << cpu_compute << "\"\n"
                        << "[security]\ntoken = \"bench\"\n";
  auto c = config::load_cluster_config(config);
  if (!c) {
    std::cerr << c.err().what() << '\n';
    return 2;
  }
  auto tracer = daemon::open_trace(
      trace_file.empty() ? "" : actors::trace_file_for(trace_file, "coordinator"), "coordinator");
  if (!tracer) {
    std::cerr << tracer.err().what() << '\n';
    return 2;
  }
  const actors::transport_options transport;
  actors::system_config cfg;
  if (!actors::apply(transport, cfg)) return 1;
  probe obs;  // before the actor system: the coordinator's observer outlives it
  // Every thread the actor system starts inherits it (actors/thread_sched.hpp).
  (void)actors::request_time_slice(actors::daemon_time_slice);
  caf::actor_system sys{cfg};
  if (auto ok = actors::self_test(sys); !ok) return 1;
  auto coord = daemon::spawn_live_coordinator(
      sys, *c, "bench", &obs, nullptr,
      *tracer ? (*tracer)->point("coordinator") : actors::trace_point{});
  auto port = actors::publish(sys, coord, "127.0.0.1", 0, transport);
  if (!port) {
    std::cerr << port.err().what() << '\n';
    return 1;
  }
  std::vector<pid_t> pids;
  for (int i = 0; i < workers; ++i) pids.push_back(spawn_worker(*port, i, config, trace_file));
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (obs.joined() < static_cast<std::size_t>(workers) &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(20ms);
  }
  int code = 0;
  if (obs.joined() < static_cast<std::size_t>(workers)) {
    std::cerr << "only " << obs.joined() << " of " << workers << " workers joined\n";
    code = 1;
  } else {
    auto trace = workload::generate(
        {.kind = workload::shape::conversation,
         .rate = rate,
         .duration = std::chrono::milliseconds{static_cast<long>(seconds * 1000)},
         .arrivals = workload::arrival_process::poisson,
         .cv = 1.0,
         .seed = 1,
         .max_requests = 0});
    for (auto& r : *trace) {
      r.prompt_tokens = std::min(r.prompt_tokens, 128u);
      r.output_tokens = std::min(r.output_tokens, 32u);
    }
    auto out = daemon::drive(sys, coord, daemon::with_prompts(*trace, 1), 1, 60s);
    const auto got = obs.samples();
    std::printf(
        "live cluster: %d x %s %s (cpu_compute %s), %s, conv at %.1f req/s for %.0f s: %zu "
        "requests, %zu ended%s\n\n",
        workers, device.c_str(), model.c_str(), cpu_compute.c_str(), policy.c_str(), rate, seconds,
        trace->size(), out ? out->finished : 0, trace_file.empty() ? "" : "; traced");
    std::printf("%-18s %8s %9s %9s %9s\n", "ms", "samples", "p50", "p99", "max");
    line("iteration gap", got.gaps);
    line("arrival->Execute", got.delays);
    line(" less device busy", got.waits);
    line("report hop", got.hops);
  }
  for (pid_t p : pids) kill(p, SIGTERM);
  for (pid_t p : pids) waitpid(p, nullptr, 0);
  caf::anon_send_exit(coord, caf::exit_reason::user_shutdown);
  std::remove(config.c_str());
  return code;
}
