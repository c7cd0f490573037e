// launcher: `accellm up --config C.toml`, a whole cluster on this machine:
// a coordinator and N workers as child processes on loopback.
//
//   spawn the coordinator ──> wait for its ready file (its CAF and HTTP ports)
//   spawn N workers (w0..wN-1) ──> wait until /health counts N instances
//   print where everything listens; write the manifest of the processes
//   (config/manifest.hpp) for `accellm chaos`, removed when `up` ends
//   then either drive a workload through it (load_options) and print the
//   metrics table, or wait for Ctrl-C (SIGINT) or SIGTERM
//   stop: SIGTERM to every child, SIGKILL to one that has not exited in 10 s
//
// A cluster file without a token gets a random one for this run (passed to
// the children in ACCELLM_CLUSTER_TOKEN). A child that exits early ends the
// launch with its exit code named.
//
// Thread contract: run_up() is main()'s; it forks before it starts threads.
#pragma once

#include "daemon/load_driver.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace accellm::daemon {

/// A workload to drive through a cluster (`up` after start, or `load`).
struct load_options {
  std::string workload = "conv";  ///< conv | code (Azure-shaped lengths)
  double rate = 2.0;              ///< requests per second
  std::chrono::milliseconds duration{std::chrono::seconds{10}};
  std::uint32_t max_prompt = 256;  ///< lengths are clamped to these (small models)
  std::uint32_t max_output = 32;
  std::uint64_t seed = 1;
  std::chrono::seconds drain{120};  ///< wait for the last requests at most this long
  std::filesystem::path out;        ///< daemon/load_outputs.hpp's files here when not empty
  /// Called as the drive goes (daemon/load_driver.hpp); may be empty.
  std::function<void(const load_progress&)> progress;
  /// The coordinator's /metrics (http://HOST:PORT/metrics), scraped every
  /// `metrics_every` for the instance files of `out`; empty: none (`up`
  /// fills in its own coordinator's).
  std::string metrics_url;
  std::chrono::milliseconds metrics_every{500};
  /// Called with `out` once its files are written (the CLI writes the
  /// report); its non-zero exit code becomes the run's. May be empty.
  std::function<int(const std::filesystem::path&)> after_outputs;
};

struct up_flags {
  std::filesystem::path config;
  std::optional<std::uint32_t> workers;  ///< default: [cluster] instances
  std::optional<std::string> device;     ///< default: [worker] device
  std::optional<std::string> log_level;
  std::optional<load_options> load;  ///< run this workload, print, stop
  /// Where to write the manifest (`accellm chaos`); empty: config::default_manifest().
  std::filesystem::path manifest;
  /// Every process writes its message trace beside this path, named after
  /// it (actors::trace_file_for: run.trace -> run-coordinator.trace,
  /// run-w0.trace, ...); empty: none.
  std::filesystem::path trace;
};

int run_up(const up_flags& flags);

/// `accellm load`: connects to the coordinator's CAF port at `coordinator`
/// (HOST:PORT) with the transport of `config` (may be empty: plain TCP),
/// drives the workload, prints the table; exit code as process.hpp.
int run_load(const std::string& coordinator, const std::filesystem::path& config,
             const load_options& options);

}  // namespace accellm::daemon
