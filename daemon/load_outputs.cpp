#include "daemon/load_outputs.hpp"

#include "workload/metrics/writers.hpp"

#include <fstream>
#include <system_error>

namespace accellm::daemon {

namespace fs = std::filesystem;

status prepare_out_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!ec && !fs::is_directory(dir, ec)) ec = std::make_error_code(std::errc::not_a_directory);
  if (ec) {
    return fail(errc::config,
                "--out " + dir.string() + ": cannot make the directory: " + ec.message());
  }
  return {};
}

status write_load_outputs(const fs::path& dir, const metrics::run_record& run,
                          const metrics::summary& sum) {
  const std::string p = run.policy;
  if (auto s = metrics::write_requests_csv(dir / (p + "-requests.csv"), run); !s) return s;
  if (auto s = metrics::write_tbt_histogram_csv(dir / (p + "-tbt-histogram.csv"), run); !s) {
    return s;
  }
  if (auto s = metrics::write_instances_csv(dir / (p + "-instances.csv"), run); !s) return s;
  if (auto s = metrics::write_memory_csv(dir / (p + "-memory.csv"), run); !s) return s;
  bool roles = false;
  for (const auto& i : run.instances) roles = roles || !i.roles.empty();
  std::error_code ec;
  fs::remove(dir / (p + "-roles.csv"), ec);  // not a previous run's
  fs::remove(dir / (p + "-utilisation.csv"), ec);
  if (roles) {
    if (auto s = metrics::write_roles_csv(dir / (p + "-roles.csv"), run); !s) return s;
  }
  if (run.busy_window > metrics::nanos::zero()) {
    if (auto s = metrics::write_utilisation_csv(dir / (p + "-utilisation.csv"), run); !s) {
      return s;
    }
  }
  std::ofstream json(dir / "summary.json");
  json << metrics::summary_json({{&run, sum}}) << '\n';
  json.close();
  if (!json) return fail(errc::io_failure, (dir / "summary.json").string() + ": cannot write");
  return {};
}

}  // namespace accellm::daemon
