#include "cli/simulate_command.hpp"

#include "actors/tracer.hpp"
#include "cli/progress.hpp"
#include "cli/report_command.hpp"
#include "config/cluster_config.hpp"
#include "simulator/compare.hpp"
#include "workload/generator.hpp"
#include "workload/metrics/goodput.hpp"
#include "workload/metrics/writers.hpp"
#include "workload/trace_reader.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace accellm::cli {
namespace {

namespace fs = std::filesystem;

struct simulate_flags {
  std::string cluster;
  std::string workload = "conv";
  double rate = 0;
  double duration_s = 60;
  std::string policy = "all";
  std::uint64_t seed = 1;
  std::string out;
  std::vector<double> sweep;
  bool goodput = false;
  std::string arrivals = "poisson";
  double cv = 1.0;
  double ttft_ms = -1;
  double tbt_ms = -1;
  bool quiet = false;
  bool no_report = false;
  std::vector<std::string> faults;  ///< KIND:INSTANCE@SECONDS
  std::string trace;                ///< message trace file; "" = none
};

int fail_with(const std::string& what, int code = 1) {
  std::cerr << "accellm simulate: " << what << "\n";
  return code;
}

// The requests: generated from a shape, or read from a trace file (whose own
// timestamps are kept unless --rate rescales them).
result<workload::trace> make_trace(const simulate_flags& f, double rate) {
  auto kind = workload::parse_shape(f.workload);
  if (kind) {
    auto arrivals = workload::parse_arrival_process(f.arrivals);
    if (!arrivals) return std::move(arrivals).err();
    workload::generator_options g;
    g.kind = *kind;
    g.rate = rate;
    g.duration = std::chrono::nanoseconds{static_cast<std::int64_t>(f.duration_s * 1e9)};
    g.arrivals = *arrivals;
    g.cv = f.cv;
    g.seed = f.seed;
    return workload::generate(g);
  }
  if (!fs::exists(f.workload)) {
    return fail(errc::config,
                "--workload '" + f.workload + "' is neither conv, code nor an existing trace file");
  }
  auto t = workload::read_trace(f.workload);
  if (!t || rate <= 0) return t;
  return workload::rescale_to_rate(std::move(*t), rate);
}

std::vector<std::string> policies_of(const std::string& p) {
  if (p == "all") return {"vllm", "splitwise", "accellm"};
  return {p};
}

status write_outputs(const fs::path& dir, const std::vector<simulator::policy_outcome>& runs,
                     const std::string& table) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(errc::io_failure, dir.string() + ": " + ec.message());
  std::vector<metrics::labelled_run> labelled;
  for (const auto& r : runs) {
    const std::string p = r.best.record.policy;
    if (auto s = metrics::write_requests_csv(dir / (p + "-requests.csv"), r.best.record); !s)
      return s;
    if (auto s = metrics::write_instances_csv(dir / (p + "-instances.csv"), r.best.record); !s) {
      return s;
    }
    if (auto s = metrics::write_memory_csv(dir / (p + "-memory.csv"), r.best.record); !s) return s;
    if (auto s = metrics::write_roles_csv(dir / (p + "-roles.csv"), r.best.record); !s) return s;
    if (auto s = metrics::write_utilisation_csv(dir / (p + "-utilisation.csv"), r.best.record);
        !s) {
      return s;
    }
    if (auto s = metrics::write_tbt_histogram_csv(dir / (p + "-tbt-histogram.csv"), r.best.record);
        !s) {
      return s;
    }
    labelled.push_back({&r.best.record, r.best_summary});
  }
  std::ofstream json(dir / "summary.json");
  json << metrics::summary_json(labelled) << "\n";
  std::ofstream txt(dir / "comparison.txt");
  txt << table;
  if (!json || !txt) return fail(errc::io_failure, dir.string() + ": cannot write the summary");
  return {};
}

// What the faults did to each policy's requests.
std::string takeover_lines(const std::vector<simulator::policy_outcome>& runs) {
  std::ostringstream out;
  for (const auto& r : runs) {
    const metrics::summary& s = r.best_summary;
    out << r.best.record.policy << ": " << s.takeovers << " requests taken over, "
        << s.takeovers_from_replica << " from a replica; resumed after " << std::fixed
        << std::setprecision(1) << s.resume.mean << " ms mean, " << s.resume.p99 << " ms p99; "
        << s.completed << " of " << s.requests << " completed\n";
  }
  return out.str();
}

std::string settings_note(const std::vector<simulator::policy_outcome>& runs) {
  std::string out;
  for (const auto& r : runs) {
    if (r.tried.size() < 2) continue;
    out += r.best.record.policy + ": best of";
    for (const auto& [setting, sum] : r.tried) {
      out += " [" + setting + ": JCT " + std::to_string(static_cast<long>(sum.jct.mean)) +
             " ms, attainment " + std::to_string(static_cast<int>(sum.attainment * 100)) + "%]";
    }
    out += " -> " + r.best.record.setting + "\n";
  }
  return out;
}

result<std::vector<simulator::policy_outcome>> run_at(const simulate_flags& f,
                                                      const config::cluster_config& c,
                                                      const metrics::slo_options& slo,
                                                      const std::vector<simulator::fault>& faults,
                                                      double rate) {
  auto trace = make_trace(f, rate);
  if (!trace) return std::move(trace).err();
  simulator::compare_options o;
  o.cluster = c;
  o.trace = std::move(*trace);
  o.offered_rate = rate > 0 ? rate : workload::mean_rate(o.trace);
  o.policies = policies_of(f.policy);
  o.slo = slo;
  o.faults = faults;
  o.trace_file = f.trace;
  std::shared_ptr<progress_meter> meter;
  if (!f.quiet) {
    meter = std::make_shared<progress_meter>(std::cerr, stderr_is_terminal());
    o.progress = [rate, meter](const std::string& what) {
      meter->finish();
      std::cerr << "simulate: rate " << rate << " req/s, " << what << "\n";
    };
    // A bar on a terminal, a line every few wall seconds elsewhere, while
    // one run lasts (the CLI, not the simulator, may read the wall clock).
    o.run_progress = [meter](const std::string& what, const simulator::run_progress& p) {
      meter->update(what, p.simulated, p.horizon, p.finished, p.total);
    };
  }
  auto out = simulator::compare(o);
  if (meter) meter->finish();
  return out;
}

int run_simulate(const simulate_flags& f) {
  auto c = config::load_cluster_config(f.cluster);
  if (!c) return fail_with(c.err().what(), 2);
  metrics::slo_options slo;
  slo.ttft_ms = f.ttft_ms >= 0 ? f.ttft_ms : c->slo.ttft_ms;
  slo.tbt_ms = f.tbt_ms >= 0 ? f.tbt_ms : c->slo.tbt_ms;
  if (f.policy != "all" && f.policy != "vllm" && f.policy != "splitwise" && f.policy != "accellm") {
    return fail_with("--policy must be all, vllm, splitwise or accellm, not '" + f.policy + "'", 2);
  }
  std::vector<simulator::fault> faults = c->faults;  // the file's [[faults]], then --fault
  for (const std::string& text : f.faults) {
    auto fault = simulator::parse_fault(text);
    if (!fault) return fail_with("--fault: " + fault.err().message(), 2);
    faults.push_back(*fault);
  }
  std::cout << "cluster: " << config::describe(*c) << "\n";
  std::vector<double> rates = f.sweep.empty() ? std::vector<double>{f.rate} : f.sweep;
  for (const double rate : rates) {
    simulate_flags at = f;  // a sweep traces each rate beside --trace
    if (!f.trace.empty() && !f.sweep.empty()) {
      std::ostringstream r;
      r << "rate" << rate;
      at.trace = actors::trace_file_for(f.trace, r.str());
    }
    auto runs = run_at(at, *c, slo, faults, rate);
    if (!runs) return fail_with(runs.err().what(), runs.err().code() == errc::internal ? 1 : 2);
    std::vector<metrics::labelled_run> labelled;
    for (const auto& r : *runs) labelled.push_back({&r.best.record, r.best_summary});
    const std::string table = metrics::format_comparison(labelled) + settings_note(*runs);
    std::cout << "\nworkload " << f.workload << ", offered " << labelled.front().run->offered_rate
              << " req/s, " << labelled.front().run->requests.size() << " requests\n"
              << table;
    for (const auto& r : *runs) {
      std::cout << r.best.record.policy << ": trace hash " << std::hex << r.best.trace_hash
                << std::dec << ", " << r.best.iterations << " iterations, "
                << (r.best.drained ? "drained" : "NOT drained") << "\n";
    }
    if (!faults.empty()) std::cout << takeover_lines(*runs);
    if (!f.out.empty()) {
      const fs::path dir =
          f.sweep.empty() ? fs::path{f.out} : fs::path{f.out} / ("rate-" + std::to_string(rate));
      if (auto s = write_outputs(dir, *runs, table); !s) return fail_with(s.err().what());
    }
  }
  if (f.goodput) {
    if (slo.ttft_ms <= 0 && slo.tbt_ms <= 0) {
      return fail_with("--goodput needs SLOs: [slo] in the cluster file or --ttft-slo/--tbt-slo",
                       2);
    }
    nlohmann::ordered_json found = nlohmann::ordered_json::array();
    for (const std::string& p : policies_of(f.policy)) {
      simulate_flags one = f;
      one.policy = p;
      one.quiet = true;
      one.trace.clear();  // the probes are not traced
      auto g = metrics::search_goodput(
          [&](double rate) -> result<double> {
            auto runs = run_at(one, *c, slo, faults, rate);
            if (!runs) return std::move(runs).err();
            return runs->front().best_summary.attainment;
          },
          std::max(0.1, f.rate > 0 ? f.rate / 4 : 0.5), 1000.0);
      if (!g) return fail_with(g.err().what());
      const auto eff = metrics::cost_efficiency(g->rate, c->price_per_hour * c->instances,
                                                c->power_watts * c->instances / 1000.0);
      std::cout << "goodput " << p << ": " << g->rate << " req/s (" << g->probes.size()
                << " probes), " << eff.per_dollar_hour << " req/s per $/h, " << eff.per_kw
                << " req/s per kW\n";
      found.push_back({{"policy", p},
                       {"rate", g->rate},
                       {"per_dollar_hour", eff.per_dollar_hour},
                       {"per_kw", eff.per_kw}});
    }
    if (!f.out.empty()) {
      std::ofstream json(fs::path{f.out} / "goodput.json");
      json << nlohmann::ordered_json{{"goodput", std::move(found)}}.dump(2) << "\n";
      if (!json) return fail_with(f.out + "/goodput.json: cannot write");
    }
  }
  // The path goes to stderr: stdout is the same bytes for the same seed,
  // whatever the output directory.
  if (!f.out.empty() && !f.no_report) return write_report(f.out, "accellm simulate", std::cerr);
  return 0;
}

}  // namespace

void add_simulate_command(CLI::App& app, std::function<int()>& run) {
  auto f = std::make_shared<simulate_flags>();
  CLI::App* cmd = app.add_subcommand("simulate", "compare policies on a simulated cluster");
  cmd->add_option("--cluster", f->cluster, "cluster file (TOML)")->required();
  cmd->add_option("--workload", f->workload,
                  "conv, code, or a trace file (Azure, Splitwise, Mooncake)");
  cmd->add_option("--rate", f->rate, "requests per second (rescales a trace file)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--duration", f->duration_s, "seconds of arrivals (generated workloads)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--policy", f->policy, "all, vllm, splitwise or accellm");
  cmd->add_option("--seed", f->seed, "workload seed");
  cmd->add_option("--out", f->out, "directory for CSV and JSON results");
  cmd->add_option("--sweep-rates", f->sweep, "run at each of these rates")->delimiter(',');
  cmd->add_flag("--goodput", f->goodput, "search the highest rate with >= 90% SLO attainment");
  cmd->add_option("--fault", f->faults,
                  "inject a failure: KIND:INSTANCE@SECONDS, KIND kill (noticed at once) or stop "
                  "(noticed after [network] timeout_ms + heartbeat_ms); repeatable, added to the "
                  "cluster file's [[faults]]");
  cmd->add_option("--trace", f->trace,
                  "write the message trace here; several runs (policies, settings, sweep "
                  "rates) write FILE-<run> beside it (docs/tracing.md)");
  cmd->add_option("--arrivals", f->arrivals, "poisson or gamma");
  cmd->add_option("--cv", f->cv, "coefficient of variation of gamma arrivals")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--ttft-slo", f->ttft_ms, "absolute TTFT SLO in ms (overrides the file)");
  cmd->add_option("--tbt-slo", f->tbt_ms, "absolute TBT SLO in ms (overrides the file)");
  cmd->add_flag("--no-report", f->no_report, "do not write DIR/report.html after the outputs");
  cmd->callback([f, &run] {
    run = [f] {
      if (f->rate <= 0 && f->sweep.empty() && workload::parse_shape(f->workload)) {
        return fail_with("--rate is required for a generated workload", 2);
      }
      return run_simulate(*f);
    };
  });
}

}  // namespace accellm::cli
