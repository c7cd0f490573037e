#include "workload/report/report_html.hpp"

#include "workload/metrics/detail/number_format.hpp"
#include "workload/report/cdf.hpp"
#include "workload/report/plot_data.hpp"
#include "workload/report/svg.hpp"

#include <algorithm>
#include <fstream>
#include <map>

namespace accellm::report {
namespace {

namespace fs = std::filesystem;
using metrics::detail::fixed;

constexpr std::string_view style =
    R"(body{font-family:sans-serif;margin:24px;max-width:760px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:36px;border-bottom:1px solid #ccc}
h3{font-size:15px;margin-top:24px}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}p.note{color:#555;font-size:13px}
svg{display:block;margin:8px 0 16px}
)";

// Colours by policy name, the same in every plot of the page.
class palette {
 public:
  explicit palette(const results& r) {
    for (const rate_data& rate : r.rates) {
      for (const run_data& run : rate.runs) {
        if (!colours_.contains(run.policy)) {
          colours_[run.policy] = policy_colour(run.policy, colours_.size());
        }
      }
    }
  }
  std::string of(const std::string& policy) const {
    const auto it = colours_.find(policy);
    return it != colours_.end() ? it->second : policy_colour(policy, colours_.size());
  }

 private:
  std::map<std::string, std::string> colours_;
};

std::string summary_table(const rate_data& rate) {
  std::string out =
      "<table>\n<tr><th>policy</th><th>setting</th><th>completed req/s</th><th>TTFT p50 / p99 "
      "ms</th><th>TBT p50 / p99 ms</th><th>JCT mean / p99 ms</th><th>SLO attainment</th></tr>\n";
  for (const run_data& r : rate.runs) {
    out += "<tr><td>" + escape(r.policy) + "</td><td>" + escape(r.setting) + "</td><td>" +
           fixed(r.throughput_rps, 2) + "</td><td>" + fixed(r.ttft.p50, 1) + " / " +
           fixed(r.ttft.p99, 1) + "</td><td>" + fixed(r.tbt.p50, 1) + " / " + fixed(r.tbt.p99, 1) +
           "</td><td>" + fixed(r.jct.mean, 0) + " / " + fixed(r.jct.p99, 0) + "</td><td>" +
           fixed(r.attainment * 100, 1) + "%</td></tr>\n";
  }
  return out + "</table>\n";
}

std::string cdf_charts(const rate_data& rate, const palette& colours) {
  line_chart ttft{.title = "TTFT, CDF per policy",
                  .x = {.label = "time to first token (ms)", .log = true},
                  .y = {.label = "fraction of requests", .log = false},
                  .lines = {},
                  .steps = true,
                  .unit_y = true,
                  .note = ""};
  line_chart tbt = ttft, jct = ttft;
  tbt.title = "TBT, CDF per policy";
  tbt.x.label = "time between tokens (ms)";
  tbt.y.label = "fraction of token gaps";
  jct.title = "JCT, CDF per policy";
  jct.x.label = "job completion time (ms)";
  for (const run_data& r : rate.runs) {
    const std::string c = colours.of(r.policy);
    ttft.lines.push_back(
        {.name = r.policy, .colour = c, .points = cdf(r.ttft_ms), .dashed = false});
    jct.lines.push_back({.name = r.policy, .colour = c, .points = cdf(r.jct_ms), .dashed = false});
    tbt.lines.push_back(
        {.name = r.policy, .colour = c, .points = cdf(r.tbt_histogram), .dashed = false});
    if (!r.has_tbt_histogram) tbt.note = "a policy has no\ntbt-histogram.csv";
  }
  if (tbt.note.empty()) tbt.note = "gaps in bins,\n20 per decade";
  return render(ttft) + render(tbt) + render(jct);
}

std::string note(const std::string& text) {
  return "<p class=\"note\">" + escape(text) + "</p>\n";
}

// A live run (`accellm load`) marks its setting so.
bool is_live(const run_data& r) {
  return r.setting == "live";
}

std::string memory_chart(const rate_data& rate, const palette& colours) {
  std::string missing;
  for (const run_data& r : rate.runs) {
    if (r.memory.empty()) missing += (missing.empty() ? "" : ", ") + r.policy;
  }
  if (std::all_of(rate.runs.begin(), rate.runs.end(),
                  [](const run_data& r) { return r.memory.empty(); })) {
    return note("No KV memory samples in these outputs (" + missing +
                "): a load run has them only with --metrics (the coordinator's /metrics).");
  }
  line_chart c{.title = "KV memory of the cluster over time",
               .x = {.label = "time (s)", .log = false},
               .y = {.label = "% of all KV blocks", .log = false},
               .lines = {},
               .steps = true,
               .unit_y = false,
               .note = "solid: primary\ndashed: replica"};
  for (const run_data& r : rate.runs) {
    memory_lines m = memory_over_time(r);
    const std::string col = colours.of(r.policy);
    c.lines.push_back({.name = r.policy + " primary",
                       .colour = col,
                       .points = std::move(m.primary),
                       .dashed = false});
    c.lines.push_back({.name = r.policy + " replica",
                       .colour = col,
                       .points = std::move(m.replica),
                       .dashed = true});
  }
  std::string out = render(c);
  if (!missing.empty()) out += note("No KV memory samples for " + missing + ".");
  return out;
}

std::string timeline(const run_data& r) {
  if (r.instances.empty()) {
    return note(r.policy + ": no per-instance data in these outputs" +
                (is_live(r) ? " (the load client sees only its requests; accellm load "
                              "--metrics URL samples the coordinator's instances)."
                            : "."));
  }
  timeline_chart c{.title = r.policy + ": instance roles and utilisation",
                   .x_label = "time (s)",
                   .x_end = r.makespan_s,
                   .lanes = {},
                   .legend = {{"prefill", role_colour("prefill")},
                              {"decode", role_colour("decode")},
                              {"mixed", role_colour("mixed")}},
                   .level_name = "busy (row = 0..1)"};
  for (const instance_data& i : r.instances) {
    c.lanes.push_back({.label = i.name + (i.pool.empty() ? "" : " " + i.pool),
                       .segments = role_segments(i.roles, r.makespan_s),
                       .level = busy_line(i.busy)});
  }
  std::string out = render(c);
  if (is_live(r)) {
    out += note(r.policy + ": roles as sampled from /metrics" +
                (r.has_utilisation
                     ? "; utilisation from the rise of accellm_instance_busy_seconds_total "
                       "between scrapes."
                     : "; no utilisation (the coordinator exported no "
                       "accellm_instance_busy_seconds_total)."));
  } else if (!r.has_roles || !r.has_utilisation) {
    out += note(r.policy +
                ": no roles.csv or utilisation.csv in these outputs (written since issue 7).");
  }
  return out;
}

std::string cost_charts(const rate_data& rate, const palette& colours) {
  if (std::all_of(rate.runs.begin(), rate.runs.end(),
                  [](const run_data& r) { return r.price_per_hour <= 0 && r.power_kw <= 0; })) {
    return note("No price or power in these outputs (a load run knows neither).");
  }
  bar_chart dollars{
      .title = "Completed req/s per $/h of the cluster", .y_label = "req/s per $/h", .bars = {}};
  bar_chart kw{
      .title = "Completed req/s per kW of the cluster", .y_label = "req/s per kW", .bars = {}};
  for (const run_data& r : rate.runs) {
    const std::string col = colours.of(r.policy);
    dollars.bars.push_back(
        {.name = r.policy,
         .colour = col,
         .value = r.price_per_hour > 0 ? r.throughput_rps / r.price_per_hour : 0});
    kw.bars.push_back({.name = r.policy,
                       .colour = col,
                       .value = r.power_kw > 0 ? r.throughput_rps / r.power_kw : 0});
  }
  return render(dollars) + render(kw);
}

std::string goodput_charts(const results& r, const palette& colours) {
  bar_chart g{
      .title = "Goodput (highest rate with >= 90% SLO attainment)", .y_label = "req/s", .bars = {}};
  bar_chart dollars{.title = "Goodput per $/h", .y_label = "req/s per $/h", .bars = {}};
  bar_chart kw{.title = "Goodput per kW", .y_label = "req/s per kW", .bars = {}};
  for (const goodput_data& x : r.goodput) {
    const std::string col = colours.of(x.policy);
    g.bars.push_back({.name = x.policy, .colour = col, .value = x.rate});
    dollars.bars.push_back({.name = x.policy, .colour = col, .value = x.per_dollar_hour});
    kw.bars.push_back({.name = x.policy, .colour = col, .value = x.per_kw});
  }
  return "<h2>Goodput and cost efficiency</h2>\n" + render(g) + render(dollars) + render(kw);
}

// Latency against offered rate, one line per policy (sweeps).
std::string sweep_charts(const results& r, const palette& colours) {
  struct metric {
    std::string title, label;
    latency run_data::*field;
  };
  const metric metrics[] = {{"TTFT against offered rate", "TTFT (ms)", &run_data::ttft},
                            {"TBT against offered rate", "TBT (ms)", &run_data::tbt},
                            {"JCT against offered rate", "JCT (ms)", &run_data::jct}};
  std::string out = "<h2>Latency against request rate</h2>\n";
  for (const metric& m : metrics) {
    line_chart c{.title = m.title,
                 .x = {.label = "offered rate (req/s)", .log = false},
                 .y = {.label = m.label, .log = true},
                 .lines = {},
                 .steps = false,
                 .unit_y = false,
                 .note = "solid: P50\ndashed: P99"};
    std::map<std::string, std::pair<series, series>> by_policy;
    std::vector<std::string> order;
    for (const rate_data& rate : r.rates) {
      for (const run_data& run : rate.runs) {
        auto [it, fresh] = by_policy.try_emplace(run.policy);
        if (fresh) {
          order.push_back(run.policy);
          const std::string col = colours.of(run.policy);
          it->second = {{.name = run.policy + " P50", .colour = col, .points = {}, .dashed = false},
                        {.name = run.policy + " P99", .colour = col, .points = {}, .dashed = true}};
        }
        it->second.first.points.push_back({rate.rate, (run.*m.field).p50});
        it->second.second.points.push_back({rate.rate, (run.*m.field).p99});
      }
    }
    for (const std::string& p : order) {
      c.lines.push_back(by_policy[p].first);
      c.lines.push_back(by_policy[p].second);
    }
    out += render(c);
  }
  return out;
}

std::string rate_section(const rate_data& rate, const palette& colours, bool sweep) {
  std::string out = sweep ? "<h2>Offered rate " + fixed(rate.rate, 2) + " req/s</h2>\n"
                          : "<h2>Summary at " + fixed(rate.rate, 2) + " req/s</h2>\n";
  out += summary_table(rate);
  out += "<h3>Latency distributions</h3>\n" + cdf_charts(rate, colours);
  out += "<h3>KV memory</h3>\n" + memory_chart(rate, colours);
  out += "<h3>Instances</h3>\n";
  for (const run_data& r : rate.runs) out += timeline(r);
  out += "<h3>Cost efficiency at this rate</h3>\n" + cost_charts(rate, colours);
  return out;
}

}  // namespace

std::string render_html(const results& r) {
  const palette colours{r};
  std::string policies;
  for (const run_data& run : r.rates.front().runs) {
    policies += (policies.empty() ? "" : ", ") + run.policy;
  }
  bool live = true;
  for (const rate_data& rate : r.rates) {
    live = live && std::all_of(rate.runs.begin(), rate.runs.end(), is_live);
  }
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
      "<title>accellm report</title>\n<style>\n" +
      std::string{style} + "</style>\n</head>\n<body>\n<h1>accellm " +
      (live ? "load" : "simulation") + " report</h1>\n";
  out += "<p>Policies: " + escape(policies) + ". " +
         (r.sweep ? std::to_string(r.rates.size()) + " offered rates." : std::string{"One rate."}) +
         (live ? " A live cluster; times are wall-clock, as the load client saw them (network "
                 "included)."
               : " Each policy at its best setting; times are virtual.") +
         "</p>\n";
  if (r.sweep) out += sweep_charts(r, colours);
  if (!r.goodput.empty()) out += goodput_charts(r, colours);
  for (const rate_data& rate : r.rates) out += rate_section(rate, colours, r.sweep);
  return out + "</body>\n</html>\n";
}

result<fs::path> write_report(const fs::path& dir) {
  auto r = read_results(dir);
  if (!r) return std::move(r).err();
  const std::string html = render_html(*r);
  const fs::path path = dir / "report.html", tmp = dir / ".report.html.tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(html.data(), static_cast<std::streamsize>(html.size()));
    out.close();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      return fail(errc::io_failure, "cannot write " + tmp.string());
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return fail(errc::io_failure, "cannot write " + path.string() + ": " + ec.message());
  }
  return path;
}

}  // namespace accellm::report
