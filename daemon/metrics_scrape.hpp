// metrics_scrape: per-instance data of a live run (roles, KV memory,
// iterations) from the coordinator's Prometheus /metrics, for the report of
// `accellm load --metrics URL` and `accellm up --workload`. The load client
// sees only its requests; the coordinator's gauges are sampled instead.
//
//   parse_prometheus    the text format, one prom_sample per line
//   parse_metrics_url   http://HOST:PORT[/PATH] (default path /metrics)
//   instance_timeline   scrapes -> metrics::instance_record per instance
//   metrics_scraper     a thread that scrapes every N ms until stopped
//
// What a scrape gives is coarser than the simulator's records: roles and
// memory at the scrape times (docs/operations.md's accellm_instance_role,
// accellm_instance_kv_bytes, accellm_kv_cache_usage_perc), busy time only as
// the rise of accellm_instance_busy_seconds_total between two scrapes (spread
// evenly over that interval), no pool label. KV bytes become blocks through
// the block size, inferred as the greatest common divisor of every non-zero
// byte count seen (the gauges are blocks * bytes per block); an instance's
// total blocks follow from its usage share.
//
// Counters (iterations, KV bytes sent, busy seconds) count from the first
// scrape: what an instance had before it is not the run's. A counter that
// drops, or comes back after its instance vanished from a scrape (lost, its
// series removed; a worker that rejoins keeps its name and starts again from
// 0), started again from 0 since the scrape before; so does one first seen
// after the first scrape (an instance that joined during the run).
//
// Thread contract: parse_* and instance_timeline are plain values; a
// metrics_scraper is owned by one thread (main()), its own thread only
// scrapes into the timeline it hands back from stop().
#pragma once

#include "common/result.hpp"
#include "workload/metrics/records.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace accellm::daemon {

/// One sample line: `name{key="value",...} value`.
struct prom_sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;

  /// The label's value, "" when the sample has no such label.
  std::string label(std::string_view key) const;
};

/// Parses Prometheus text exposition; `#` lines and blank lines are skipped.
/// Errors: errc::malformed naming the line number and what is wrong.
result<std::vector<prom_sample>> parse_prometheus(std::string_view text);

/// Where to scrape.
struct http_target {
  std::string host;
  std::uint16_t port = 0;
  std::string path = "/metrics";
};

/// `http://HOST:PORT[/PATH]`. Errors: errc::config naming the URL (another
/// scheme, no port, a port out of range).
result<http_target> parse_metrics_url(const std::string& url);

/// Scrapes folded into per-instance records.
class instance_timeline {
 public:
  /// Adds one scrape taken `at` (since the run's start; non-decreasing).
  void add(metrics::nanos at, const std::vector<prom_sample>& scrape);

  /// One record per instance named in any scrape, in order of first sight
  /// (id = that index, name = its `instance` label, pool empty): roles as
  /// contiguous spans from its first sample until `end` (or the scrape after
  /// its last one, if it vanished), memory in blocks where the block size
  /// could be inferred, total_blocks, and the rise of its iteration, KV-sent
  /// and busy counters (busy stays 0 without has_busy()). With a
  /// `busy_window` > 0, busy_windows holds the busy time in windows of that
  /// width from 0 (run_record::busy_window), each rise spread evenly over
  /// the interval between its two scrapes.
  std::vector<metrics::instance_record> records(metrics::nanos end,
                                                metrics::nanos busy_window = {}) const;

  std::size_t scrapes() const { return times_.size(); }

  /// Whether any scrape had accellm_instance_busy_seconds_total (a
  /// coordinator older than that metric has none: the busy time is unknown,
  /// not zero).
  bool has_busy() const;

 private:
  struct point {
    std::size_t scrape = 0;  ///< index into times_
    std::optional<messages::role> role;
    bool reported = false;  ///< the instance's load gauges were there
    std::uint64_t primary_bytes = 0, replica_bytes = 0;
    double usage = 0;
    std::optional<double> iterations, kv_sent, busy_s;  ///< counters, when served
  };
  /// Calls rise(from, to, amount) for each rise of `counter` over `pts`
  /// between the scrapes at times `from` and `to` (see the top of the file).
  template <class F>
  void each_rise(const std::vector<point>& pts, std::optional<double> point::*counter,
                 F&& rise) const;

  std::vector<metrics::nanos> times_;
  std::vector<std::string> names_;
  std::vector<std::vector<point>> points_;  ///< per instance, in scrape order
};

/// The width of the utilisation windows of a live run ending at `end`,
/// scraped every `every`: about 200 windows, in whole milliseconds, never
/// narrower than one scrape interval (finer ones would only show the
/// even spread of one rise).
metrics::nanos live_busy_window(metrics::nanos end, std::chrono::milliseconds every);

/// Scrapes `target` every `every` on a thread of its own.
class metrics_scraper {
 public:
  metrics_scraper(http_target target, std::chrono::milliseconds every);
  ~metrics_scraper();  ///< stops and joins the thread if still running
  metrics_scraper(const metrics_scraper&) = delete;
  metrics_scraper& operator=(const metrics_scraper&) = delete;

  /// Takes the first scrape now (time 0) and starts the thread. Errors:
  /// errc::io_failure when the endpoint does not answer 200 within 2 s,
  /// errc::malformed when its answer does not parse: the URL is wrong.
  status start();

  /// Stops the thread, takes one last scrape (the counters' rise since the
  /// previous one) and returns what it saw; `failed` gets the number of
  /// scrapes that did not answer or parse (the run goes on without them).
  instance_timeline stop(std::size_t& failed);

 private:
  struct shared;
  std::unique_ptr<shared> s_;
};

}  // namespace accellm::daemon
