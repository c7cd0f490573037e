#include "cli/daemon_commands.hpp"

#include "daemon/chaos.hpp"
#include "daemon/coordinator_process.hpp"
#include "daemon/launcher.hpp"
#include "daemon/worker_process.hpp"

#include "cli/progress.hpp"
#include "cli/report_command.hpp"

#include <memory>

namespace accellm::cli {
namespace {

const char* const levels = "trace, debug, info, warn, error, off";

void add_coordinator(CLI::App& app, std::function<int()>& run) {
  auto f = std::make_shared<daemon::coordinator_flags>();
  CLI::App* cmd = app.add_subcommand("coordinator", "run the coordinator daemon (CAF + HTTP)");
  cmd->add_option("--config", f->config, "cluster file (TOML)")->required();
  cmd->add_option("--port", f->port, "CAF port (overrides [coordinator] port; 0 = any)");
  cmd->add_option("--http-port", f->http_port, "HTTP port (overrides [coordinator] http_port)");
  cmd->add_option("--log-level", f->log_level, levels);
  cmd->add_option("--ready-file", f->ready_file, "write 'CAF_PORT HTTP_PORT' here once listening");
  cmd->add_option("--trace", f->trace, "write the message trace here (docs/tracing.md)");
  cmd->callback([f, &run] { run = [f] { return daemon::run_coordinator(*f); }; });
}

void add_worker(CLI::App& app, std::function<int()>& run) {
  auto f = std::make_shared<daemon::worker_flags>();
  auto wait_s = std::make_shared<unsigned>(30);
  CLI::App* cmd = app.add_subcommand("worker", "run a worker daemon hosting one instance");
  cmd->add_option("--coordinator", f->coordinator, "HOST:PORT of the coordinator's CAF port")
      ->required();
  cmd->add_option("--instance", f->instance, "this instance's name, unique in the cluster")
      ->required();
  cmd->add_option("--device", f->device, "cpu, cuda:N, sim:h100, sim:ascend910b2, ...");
  cmd->add_option("--config", f->config, "cluster file: model, batching, token, transport");
  cmd->add_option("--model", f->model, "model catalogue key (overrides [cluster] model)");
  cmd->add_option("--host", f->host, "address partners reach this worker at ([worker] host)");
  cmd->add_option("--kv-port", f->kv_port, "port of its KV receiver ([worker] kv_port; 0 = any)");
  cmd->add_option("--log-level", f->log_level, levels);
  cmd->add_option("--connect-wait", *wait_s, "seconds to retry the coordinator (default 30)");
  cmd->add_option("--trace", f->trace, "write the message trace here (docs/tracing.md)");
  cmd->callback([f, wait_s, &run] {
    f->connect_wait = std::chrono::seconds{*wait_s};
    run = [f] { return daemon::run_worker(*f); };
  });
}

// A progress display on stderr for a drive (a bar on a terminal).
std::function<void(const daemon::load_progress&)> load_meter(const std::string& label) {
  auto meter =
      std::make_shared<progress_meter>(std::cerr, stderr_is_terminal(), progress_meter::clock_fn{},
                                       std::chrono::seconds{3}, meter_kind::live);
  return [meter, label](const daemon::load_progress& p) {
    meter->update(label, p.elapsed, p.span, p.finished, p.total);
    if (p.done) meter->finish();
  };
}

// --workload/--rate/--duration/...: the load both `up` and `load` drive.
std::shared_ptr<daemon::load_options> add_load_flags(CLI::App* cmd, bool required) {
  auto o = std::make_shared<daemon::load_options>();
  auto* w = cmd->add_option("--workload", o->workload, "conv or code (Azure-shaped lengths)");
  if (required) w->required();
  cmd->add_option("--rate", o->rate, "requests per second (default 2)")->check(CLI::PositiveNumber);
  cmd->add_option_function<double>(
         "--duration",
         [o](double s) { o->duration = std::chrono::milliseconds{static_cast<long>(s * 1000)}; },
         "seconds of arrivals (default 10)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-prompt", o->max_prompt, "clamp prompts to this many tokens (256)")
      ->check(CLI::Range(1u, 1u << 20));
  cmd->add_option("--max-output", o->max_output, "clamp outputs to this many tokens (32)")
      ->check(CLI::Range(1u, 1u << 20));
  cmd->add_option("--seed", o->seed, "workload seed (1)");
  cmd->add_option("--out", o->out,
                  "write the requests, instances and summary here, and report.html");
  // The report, as simulate writes it, once the outputs are there (its
  // path on stderr, like simulate).
  auto no_report = std::make_shared<bool>(false);
  cmd->add_flag("--no-report", *no_report, "do not write DIR/report.html after the outputs");
  o->after_outputs = [no_report](const std::filesystem::path& dir) {
    return *no_report ? 0 : write_report(dir, "accellm load", std::cerr);
  };
  return o;
}

void add_up(CLI::App& app, std::function<int()>& run) {
  auto f = std::make_shared<daemon::up_flags>();
  CLI::App* cmd = app.add_subcommand("up", "start a local cluster (coordinator + N workers)");
  cmd->add_option("--config", f->config, "cluster file (TOML)")->required();
  cmd->add_option("--workers", f->workers, "worker processes (default: [cluster] instances)")
      ->check(CLI::Range(1u, 256u));
  cmd->add_option("--device", f->device, "device of every worker (default: [worker] device)");
  cmd->add_option("--log-level", f->log_level, levels);
  cmd->add_option("--trace", f->trace,
                  "message traces: FILE-coordinator, FILE-w0, ... beside FILE (docs/tracing.md)");
  cmd->add_option("--manifest", f->manifest,
                  "write the cluster's processes here for `accellm chaos` (default "
                  "$TMPDIR/accellm-NAME.manifest.toml)");
  auto load = add_load_flags(cmd, false);
  cmd->callback([f, load, cmd, &run] {
    if (cmd->count("--workload") > 0) {
      f->load = *load;
      f->load->progress = load_meter("load " + load->workload);
    }
    run = [f] { return daemon::run_up(*f); };
  });
}

void add_load(CLI::App& app, std::function<int()>& run) {
  auto at = std::make_shared<std::string>();
  auto config = std::make_shared<std::filesystem::path>();
  CLI::App* cmd = app.add_subcommand("load", "drive a live cluster and print the metrics table");
  cmd->add_option("--coordinator", *at, "HOST:PORT of the coordinator's CAF port")->required();
  cmd->add_option("--config", *config, "cluster file, for its transport (TLS) settings");
  auto load = add_load_flags(cmd, true);
  cmd->add_option("--metrics", load->metrics_url,
                  "http://HOST:PORT/metrics of the coordinator: scraped for the instance files "
                  "of --out (roles, KV memory)");
  cmd->callback([at, config, load, &run] {
    load->progress = load_meter("load " + load->workload);
    run = [at, config, load] { return daemon::run_load(*at, *config, *load); };
  });
}

void add_chaos(CLI::App& app, std::function<int()>& run) {
  auto f = std::make_shared<daemon::chaos_flags>();
  CLI::App* cmd =
      app.add_subcommand("chaos", "inject a failure into a running cluster (docs/resilience.md)");
  cmd->add_option("action", f->action, "kill, stop, resume, partition, heal or slow")->required();
  cmd->add_option("target", f->target, "a process of the cluster: coordinator, w0, w1, ...")
      ->required();
  cmd->add_option("--manifest", f->manifest, "the cluster's manifest (accellm up --manifest)");
  cmd->add_option("--cluster", f->cluster, "the name of a cluster `accellm up` started");
  cmd->add_option("--at", f->at, "act this many seconds after the cluster started");
  cmd->add_option("--delay-ms", f->delay_ms, "slow: netem delay (default 100)");
  cmd->add_option("--rate", f->rate, "slow: cap the bandwidth instead (tbf), e.g. 1mbit");
  cmd->callback([f, &run] { run = [f] { return daemon::run_chaos(*f); }; });
}

}  // namespace

void add_daemon_commands(CLI::App& app, std::function<int()>& run) {
  add_coordinator(app, run);
  add_worker(app, run);
  add_up(app, run);
  add_load(app, run);
  add_chaos(app, run);
}

}  // namespace accellm::cli
