#include "daemon/metrics_scrape.hpp"

#include <httplib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <stop_token>
#include <thread>

namespace accellm::daemon {
namespace {

using metrics::nanos;

error bad_line(std::size_t line, const std::string& why) {
  return fail(errc::malformed, "/metrics line " + std::to_string(line) + ": " + why);
}

result<double> parse_value(std::string_view v, std::size_t line) {
  if (v == "+Inf") return std::numeric_limits<double>::infinity();
  if (v == "-Inf") return -std::numeric_limits<double>::infinity();
  if (v == "NaN") return std::numeric_limits<double>::quiet_NaN();
  double out = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc{} || end != v.data() + v.size()) {
    return bad_line(line, "'" + std::string{v} + "' is not a number");
  }
  return out;
}

// `{k="v",...}` from `text` at `pos` (just after the brace); `pos` ends
// after the closing brace.
status parse_labels(std::string_view text, std::size_t& pos, std::size_t line, prom_sample& s) {
  while (pos < text.size() && text[pos] != '}') {
    const auto eq = text.find('=', pos);
    if (eq == std::string_view::npos || eq + 1 >= text.size() || text[eq + 1] != '"') {
      return bad_line(line, "a label without =\"value\"");
    }
    std::string key{text.substr(pos, eq - pos)}, value;
    pos = eq + 2;
    for (; pos < text.size() && text[pos] != '"'; ++pos) {
      if (text[pos] == '\\' && pos + 1 < text.size()) {
        ++pos;
        value += text[pos] == 'n' ? '\n' : text[pos];
      } else {
        value += text[pos];
      }
    }
    if (pos >= text.size()) return bad_line(line, "an unterminated label value");
    ++pos;  // the closing quote
    if (pos < text.size() && text[pos] == ',') ++pos;
    s.labels.emplace_back(std::move(key), std::move(value));
  }
  if (pos >= text.size()) return bad_line(line, "no closing }");
  ++pos;
  return {};
}

result<prom_sample> parse_line(std::string_view text, std::size_t line) {
  prom_sample s;
  std::size_t pos = text.find_first_of("{ ");
  if (pos == 0 || pos == std::string_view::npos) return bad_line(line, "no metric name and value");
  s.name = std::string{text.substr(0, pos)};
  if (text[pos] == '{') {
    ++pos;
    if (auto ok = parse_labels(text, pos, line, s); !ok) return std::move(ok).err();
  }
  const auto start = text.find_first_not_of(' ', pos);
  if (start == std::string_view::npos) return bad_line(line, "no value");
  const auto end = text.find(' ', start);  // a timestamp may follow
  auto v = parse_value(text.substr(start, end - start), line);
  if (!v) return std::move(v).err();
  s.value = *v;
  return s;
}

std::optional<messages::role> role_named(std::string_view name) {
  for (const auto r : {messages::role::prefill, messages::role::decode, messages::role::mixed}) {
    if (messages::to_string(r) == name) return r;
  }
  return std::nullopt;
}

std::uint64_t as_count(double v) {
  return std::isfinite(v) && v > 0 ? static_cast<std::uint64_t>(std::llround(v)) : 0;
}

std::optional<double> finite(double v) {
  return std::isfinite(v) ? std::optional<double>{v} : std::nullopt;
}

nanos from_seconds(double s) {
  return nanos{static_cast<std::int64_t>(std::llround(s * 1e9))};
}

// Adds `seconds` of busy time, spread evenly over [from, to), to windows of
// width `w` (all of it to the window of `to` when the interval is empty).
void spread(std::vector<double>& windows, nanos w, nanos from, nanos to, double seconds) {
  auto window = [&windows, w](nanos t) -> double& {
    const auto k = static_cast<std::size_t>(std::max(t, nanos{0}) / w);
    if (windows.size() <= k) windows.resize(k + 1, 0.0);
    return windows[k];
  };
  if (to <= from) {
    window(to) += seconds;
    return;
  }
  const double per_ns = seconds / static_cast<double>((to - from).count());
  for (nanos t = from; t < to;) {
    const nanos upto = std::min(to, (t / w + 1) * w);
    window(t) += per_ns * static_cast<double>((upto - t).count());
    t = upto;
  }
}

}  // namespace

std::string prom_sample::label(std::string_view key) const {
  for (const auto& [k, v] : labels) {
    if (k == key) return v;
  }
  return {};
}

result<std::vector<prom_sample>> parse_prometheus(std::string_view text) {
  std::vector<prom_sample> out;
  std::size_t line = 0;
  while (!text.empty()) {
    ++line;
    const auto nl = text.find('\n');
    std::string_view l = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.empty() || l.front() == '#') continue;
    auto s = parse_line(l, line);
    if (!s) return std::move(s).err();
    out.push_back(std::move(*s));
  }
  return out;
}

result<http_target> parse_metrics_url(const std::string& url) {
  const std::string scheme = "http://";
  auto bad = [&url](const std::string& why) {
    return fail(errc::config, "--metrics '" + url + "': " + why);
  };
  if (url.rfind(scheme, 0) != 0) return bad("give http://HOST:PORT[/PATH]");
  const std::string rest = url.substr(scheme.size());
  const auto slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  const auto colon = authority.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad("no HOST:PORT");
  const std::string port = authority.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535) {
    return bad("port '" + port + "' is not in 1..65535");
  }
  return http_target{.host = authority.substr(0, colon),
                     .port = static_cast<std::uint16_t>(value),
                     .path = slash == std::string::npos ? "/metrics" : rest.substr(slash)};
}

// --- instance_timeline ------------------------------------------------------

void instance_timeline::add(nanos at, const std::vector<prom_sample>& scrape) {
  const std::size_t k = times_.size();
  times_.push_back(at);
  std::map<std::string, point> now;
  for (const prom_sample& s : scrape) {
    if (!s.name.starts_with("accellm_")) continue;
    const std::string name = s.label("instance");
    if (name.empty()) continue;
    point& p = now[name];
    p.scrape = k;
    if (s.name == "accellm_instance_role" && s.value == 1) {
      p.role = role_named(s.label("role"));
    } else if (s.name == "accellm_instance_kv_bytes") {
      p.reported = true;
      (s.label("copy") == "replica" ? p.replica_bytes : p.primary_bytes) = as_count(s.value);
    } else if (s.name == "accellm_kv_cache_usage_perc") {
      p.usage = s.value;
    } else if (s.name == "accellm_instance_iterations_total") {
      p.iterations = finite(s.value);
    } else if (s.name == "accellm_instance_kv_sent_bytes_total") {
      p.kv_sent = finite(s.value);
    } else if (s.name == "accellm_instance_busy_seconds_total") {
      p.busy_s = finite(s.value);
    }
  }
  for (auto& [name, p] : now) {
    auto it = std::find(names_.begin(), names_.end(), name);
    if (it == names_.end()) {
      names_.push_back(name);
      points_.emplace_back();
      it = names_.end() - 1;
    }
    points_[static_cast<std::size_t>(it - names_.begin())].push_back(p);
  }
}

bool instance_timeline::has_busy() const {
  for (const auto& pts : points_) {
    for (const point& p : pts) {
      if (p.busy_s) return true;
    }
  }
  return false;
}

template <class F>
void instance_timeline::each_rise(const std::vector<point>& pts,
                                  std::optional<double> point::*counter, F&& rise) const {
  for (std::size_t j = 0; j < pts.size(); ++j) {
    const std::optional<double>& v = pts[j].*counter;
    const std::size_t k = pts[j].scrape;
    if (!v || k == 0) continue;  // at the first scrape: from before the run
    // From the previous scrape's value if the instance was in it with this
    // counter; else (it joined, or came back as a new instance) from 0.
    const bool follows = j > 0 && pts[j - 1].scrape + 1 == k && (pts[j - 1].*counter);
    double base = follows ? *(pts[j - 1].*counter) : 0.0;
    if (*v < base) base = 0;  // a reset: a new instance under the same name
    if (*v > base) rise(times_[k - 1], times_[k], *v - base);
  }
}

std::vector<metrics::instance_record> instance_timeline::records(nanos end,
                                                                 nanos busy_window) const {
  std::uint64_t block = 0;  // gcd of every byte count: bytes per block
  for (const auto& pts : points_) {
    for (const point& p : pts) block = std::gcd(block, std::gcd(p.primary_bytes, p.replica_bytes));
  }
  std::vector<metrics::instance_record> out;
  for (std::size_t i = 0; i < names_.size(); ++i) {
    const auto& pts = points_[i];
    metrics::instance_record r;
    r.id = static_cast<instance_id>(i);
    r.name = names_[i];
    r.bytes_per_block = block;
    const std::size_t last = pts.back().scrape;
    const nanos stop = last + 1 < times_.size() ? times_[last + 1] : std::max(end, times_[last]);
    for (std::size_t k = 0; k < pts.size(); ++k) {
      const point& p = pts[k];
      const nanos at = times_[p.scrape];
      if (p.role && (r.roles.empty() || r.roles.back().role != *p.role)) {
        if (!r.roles.empty()) r.roles.back().end = at;
        r.roles.push_back({.start = at, .end = stop, .role = *p.role, .pool = {}});
      }
      if (!p.reported || block == 0) continue;
      const std::uint64_t primary = p.primary_bytes / block, replica = p.replica_bytes / block;
      if (p.usage > 0) {
        r.total_blocks =
            std::max(r.total_blocks, as_count(static_cast<double>(primary + replica) / p.usage));
      }
      if (r.memory.empty() || r.memory.back().primary_blocks != primary ||
          r.memory.back().replica_blocks != replica) {
        r.memory.push_back({.time = at, .primary_blocks = primary, .replica_blocks = replica});
      }
    }
    for (const auto& span : r.roles) {
      r.time_in_role[static_cast<std::size_t>(span.role)] += span.end - span.start;
    }
    double iterations = 0, kv_sent = 0, busy = 0;
    each_rise(pts, &point::iterations, [&iterations](nanos, nanos, double d) { iterations += d; });
    each_rise(pts, &point::kv_sent, [&kv_sent](nanos, nanos, double d) { kv_sent += d; });
    std::vector<double> windows;  // seconds
    each_rise(pts, &point::busy_s, [&busy, &windows, busy_window](nanos from, nanos to, double d) {
      busy += d;
      if (busy_window > nanos::zero()) spread(windows, busy_window, from, to, d);
    });
    r.iterations = as_count(iterations);
    r.kv_bytes_sent = as_count(kv_sent);
    r.busy = from_seconds(busy);
    for (const double w : windows) r.busy_windows.push_back(from_seconds(w));
    out.push_back(std::move(r));
  }
  return out;
}

nanos live_busy_window(nanos end, std::chrono::milliseconds every) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(end / 200);
  return std::max<nanos>({ms, every, std::chrono::milliseconds{1}});
}

// --- metrics_scraper --------------------------------------------------------

struct metrics_scraper::shared {
  http_target target;
  std::chrono::milliseconds every;
  std::chrono::steady_clock::time_point origin;
  instance_timeline timeline;  ///< written by the thread only, read after join
  std::size_t failed = 0;      ///< likewise
  std::mutex m;
  std::condition_variable_any wake;
  std::jthread thread;

  // One scrape; false when it did not answer 200 or did not parse.
  status scrape_once() {
    httplib::Client cli{target.host, target.port};
    cli.set_connection_timeout(2, 0);
    cli.set_read_timeout(2, 0);
    auto res = cli.Get(target.path);
    if (!res) {
      return fail(errc::io_failure, "no answer from http://" + target.host + ":" +
                                        std::to_string(target.port) + target.path + ": " +
                                        httplib::to_string(res.error()));
    }
    if (res->status != 200) {
      return fail(errc::io_failure, "http://" + target.host + ":" + std::to_string(target.port) +
                                        target.path + " answered " + std::to_string(res->status));
    }
    auto samples = parse_prometheus(res->body);
    if (!samples) return std::move(samples).err();
    // This thread is the load command's own observer (like main()): it may
    // read the wall clock.
    timeline.add(std::chrono::steady_clock::now() - origin, *samples);
    return {};
  }

  void run(std::stop_token stop) {
    std::unique_lock lock{m};
    while (!wake.wait_for(lock, stop, every, [] { return false; })) {
      if (stop.stop_requested()) return;
      if (!scrape_once()) ++failed;
    }
  }
};

metrics_scraper::metrics_scraper(http_target target, std::chrono::milliseconds every)
    : s_{std::make_unique<shared>()} {
  s_->target = std::move(target);
  s_->every = every;
}

metrics_scraper::~metrics_scraper() {
  if (s_->thread.joinable()) {
    s_->thread.request_stop();
    s_->thread.join();
  }
}

status metrics_scraper::start() {
  s_->origin = std::chrono::steady_clock::now();
  if (auto ok = s_->scrape_once(); !ok) return ok;
  s_->thread = std::jthread{[s = s_.get()](std::stop_token stop) { s->run(std::move(stop)); }};
  return {};
}

instance_timeline metrics_scraper::stop(std::size_t& failed) {
  if (s_->thread.joinable()) {
    s_->thread.request_stop();
    s_->thread.join();
    if (!s_->scrape_once()) ++s_->failed;  // what rose since the last tick
  }
  failed = s_->failed;
  return std::move(s_->timeline);
}

}  // namespace accellm::daemon
