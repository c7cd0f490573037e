#include "workload/report/results.hpp"

#include "workload/report/csv_table.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

namespace accellm::report {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

result<std::string> slurp(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    return fail(errc::not_found, path.string() + ": no such file");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (!in) return fail(errc::io_failure, path.string() + ": cannot read");
  return buf.str();
}

// nlohmann's parse errors say "at line L, column C"; that is the boundary
// where its exceptions become values.
result<json> read_json(const fs::path& path) {
  auto text = slurp(path);
  if (!text) return std::move(text).err();
  try {
    return json::parse(*text);
  } catch (const json::parse_error& e) {
    return fail(errc::malformed, path.string() + ": " + e.what());
  }
}

// Looks up `field` ("summary.ttft_ms.p99") under `j`; errors name the file
// and the whole path of the field.
class json_fields {
 public:
  json_fields(const fs::path& file, std::string where) : file_(file), where_(std::move(where)) {}

  result<double> number(const json& j, std::string_view field) const {
    const json* v = find(j, field);
    if (v == nullptr || !v->is_number()) return missing(field, "a number");
    return v->get<double>();
  }

  result<std::string> text(const json& j, std::string_view field) const {
    const json* v = find(j, field);
    if (v == nullptr || !v->is_string()) return missing(field, "a string");
    return v->get<std::string>();
  }

 private:
  static const json* find(const json& j, std::string_view field) {
    const json* cur = &j;
    while (!field.empty()) {
      const auto dot = field.find('.');
      const std::string key{field.substr(0, dot)};
      if (!cur->is_object() || !cur->contains(key)) return nullptr;
      cur = &(*cur)[key];
      field = dot == std::string_view::npos ? std::string_view{} : field.substr(dot + 1);
    }
    return cur;
  }

  error missing(std::string_view field, std::string_view what) const {
    return fail(errc::malformed, file_.string() + ": " + where_ + "." + std::string{field} +
                                     ": missing or not " + std::string{what});
  }

  fs::path file_;
  std::string where_;
};

status read_summary(const json& j, const json_fields& f, run_data& r) {
  ACCELLM_TRY_ASSIGN(r.policy, f.text(j, "policy"));
  ACCELLM_TRY_ASSIGN(r.setting, f.text(j, "setting"));
  ACCELLM_TRY_ASSIGN(r.offered_rate, f.number(j, "offered_rate"));
  ACCELLM_TRY_ASSIGN(r.makespan_s, f.number(j, "makespan_s"));
  ACCELLM_TRY_ASSIGN(r.throughput_rps, f.number(j, "summary.throughput_rps"));
  ACCELLM_TRY_ASSIGN(r.attainment, f.number(j, "summary.attainment"));
  ACCELLM_TRY_ASSIGN(r.price_per_hour, f.number(j, "summary.price_per_hour"));
  ACCELLM_TRY_ASSIGN(r.power_kw, f.number(j, "summary.power_kw"));
  const std::pair<latency*, std::string> stats[] = {
      {&r.ttft, "ttft_ms"}, {&r.tbt, "tbt_ms"}, {&r.jct, "jct_ms"}};
  for (const auto& [lat, name] : stats) {
    ACCELLM_TRY_ASSIGN(lat->mean, f.number(j, "summary." + name + ".mean"));
    ACCELLM_TRY_ASSIGN(lat->p50, f.number(j, "summary." + name + ".p50"));
    ACCELLM_TRY_ASSIGN(lat->p99, f.number(j, "summary." + name + ".p99"));
  }
  if (r.policy.empty() || r.policy.find_first_of("/\\") != std::string::npos) {
    return fail(errc::malformed, "policy '" + r.policy + "' cannot name files");
  }
  return {};
}

status read_requests(const fs::path& path, run_data& r) {
  auto t = read_csv(path);
  if (!t) return std::move(t).err();
  auto ttft = t->column("ttft_ms");
  if (!ttft) return std::move(ttft).err();
  auto jct = t->column("jct_ms");
  if (!jct) return std::move(jct).err();
  for (std::size_t i = 0; i < t->rows(); ++i) {
    auto a = t->maybe_number(i, *ttft);
    if (!a) return std::move(a).err();
    if (*a) r.ttft_ms.push_back(**a);
    auto b = t->maybe_number(i, *jct);
    if (!b) return std::move(b).err();
    if (*b) r.jct_ms.push_back(**b);
  }
  return {};
}

// Columns of `t` by name, in the order asked; an error names the first missing one.
result<std::vector<std::size_t>> columns(const csv_table& t,
                                         std::initializer_list<std::string_view> names) {
  std::vector<std::size_t> out;
  for (const auto name : names) {
    auto c = t.column(name);
    if (!c) return std::move(c).err();
    out.push_back(*c);
  }
  return out;
}

// Every listed column of row i as numbers.
result<std::vector<double>> numbers(const csv_table& t, std::size_t i,
                                    const std::vector<std::size_t>& cols) {
  std::vector<double> out;
  for (const std::size_t c : cols) {
    auto v = t.number(i, c);
    if (!v) return std::move(v).err();
    out.push_back(*v);
  }
  return out;
}

status read_instances(const fs::path& path, run_data& r, std::map<std::string, std::size_t>& ids) {
  auto t = read_csv(path);
  if (!t) return std::move(t).err();
  auto c = columns(*t, {"id", "name", "pool", "total_blocks"});
  if (!c) return std::move(c).err();
  for (std::size_t i = 0; i < t->rows(); ++i) {
    instance_data d;
    d.id = t->text(i, (*c)[0]);
    d.name = t->text(i, (*c)[1]);
    d.pool = t->text(i, (*c)[2]);
    ACCELLM_TRY_ASSIGN(d.total_blocks, t->number(i, (*c)[3]));
    ids[d.id] = r.instances.size();
    r.instances.push_back(std::move(d));
  }
  return {};
}

// The row's instance column as an index into r.instances.
result<std::size_t> instance_of(const csv_table& t, std::size_t row, std::size_t col,
                                const std::map<std::string, std::size_t>& ids) {
  const auto it = ids.find(t.text(row, col));
  if (it != ids.end()) return it->second;
  auto n = t.number(row, col);  // names the line and the value
  if (!n) return std::move(n).err();
  return fail(errc::malformed, t.path().string() + ": instance " + t.text(row, col) +
                                   " is not in the instances file");
}

status read_memory(const fs::path& path, run_data& r,
                   const std::map<std::string, std::size_t>& ids) {
  auto t = read_csv(path);
  if (!t) return std::move(t).err();
  auto c = columns(*t, {"time_s", "primary_blocks", "replica_blocks"});
  if (!c) return std::move(c).err();
  auto inst = t->column("instance");
  if (!inst) return std::move(inst).err();
  for (std::size_t i = 0; i < t->rows(); ++i) {
    auto v = numbers(*t, i, *c);
    if (!v) return std::move(v).err();
    auto k = instance_of(*t, i, *inst, ids);
    if (!k) return std::move(k).err();
    r.memory.push_back({.time_s = (*v)[0], .instance = *k, .primary = (*v)[1], .replica = (*v)[2]});
  }
  return {};
}

status read_roles(const fs::path& path, run_data& r,
                  const std::map<std::string, std::size_t>& ids) {
  auto t = read_csv(path);
  if (!t) return std::move(t).err();
  auto c = columns(*t, {"instance", "start_s", "end_s", "role", "pool"});
  if (!c) return std::move(c).err();
  for (std::size_t i = 0; i < t->rows(); ++i) {
    auto k = instance_of(*t, i, (*c)[0], ids);
    if (!k) return std::move(k).err();
    auto v = numbers(*t, i, {(*c)[1], (*c)[2]});
    if (!v) return std::move(v).err();
    r.instances[*k].roles.push_back({.start_s = (*v)[0],
                                     .end_s = (*v)[1],
                                     .role = t->text(i, (*c)[3]),
                                     .pool = t->text(i, (*c)[4])});
  }
  r.has_roles = true;
  return {};
}

status read_utilisation(const fs::path& path, run_data& r,
                        const std::map<std::string, std::size_t>& ids) {
  auto t = read_csv(path);
  if (!t) return std::move(t).err();
  auto c = columns(*t, {"instance", "start_s", "end_s", "busy_fraction"});
  if (!c) return std::move(c).err();
  for (std::size_t i = 0; i < t->rows(); ++i) {
    auto k = instance_of(*t, i, (*c)[0], ids);
    if (!k) return std::move(k).err();
    auto v = numbers(*t, i, {(*c)[1], (*c)[2], (*c)[3]});
    if (!v) return std::move(v).err();
    r.instances[*k].busy.push_back({.start_s = (*v)[0], .end_s = (*v)[1], .fraction = (*v)[2]});
  }
  r.has_utilisation = true;
  return {};
}

status read_tbt_histogram(const fs::path& path, run_data& r) {
  auto t = read_csv(path);
  if (!t) return std::move(t).err();
  auto c = columns(*t, {"lo_ms", "hi_ms", "count"});
  if (!c) return std::move(c).err();
  for (std::size_t i = 0; i < t->rows(); ++i) {
    auto v = numbers(*t, i, *c);
    if (!v) return std::move(v).err();
    if ((*v)[2] < 0) return fail(errc::malformed, path.string() + ": negative count");
    r.tbt_histogram.push_back(
        {.lo = (*v)[0], .hi = (*v)[1], .count = static_cast<std::uint64_t>((*v)[2])});
  }
  r.has_tbt_histogram = true;
  return {};
}

// The optional files of issue 7: absent is fine, malformed is not.
status read_optional(const fs::path& dir, run_data& r,
                     const std::map<std::string, std::size_t>& ids) {
  std::error_code ec;
  const std::string p = r.policy;
  if (fs::exists(dir / (p + "-roles.csv"), ec)) {
    if (auto s = read_roles(dir / (p + "-roles.csv"), r, ids); !s) return s;
  }
  if (fs::exists(dir / (p + "-utilisation.csv"), ec)) {
    if (auto s = read_utilisation(dir / (p + "-utilisation.csv"), r, ids); !s) return s;
  }
  if (fs::exists(dir / (p + "-tbt-histogram.csv"), ec)) {
    if (auto s = read_tbt_histogram(dir / (p + "-tbt-histogram.csv"), r); !s) return s;
  }
  return {};
}

result<run_data> read_run(const fs::path& dir, const json& j, const json_fields& f) {
  run_data r;
  if (auto s = read_summary(j, f, r); !s) return std::move(s).err();
  const std::string p = r.policy;
  std::map<std::string, std::size_t> ids;
  if (auto s = read_requests(dir / (p + "-requests.csv"), r); !s) return std::move(s).err();
  if (auto s = read_instances(dir / (p + "-instances.csv"), r, ids); !s) return std::move(s).err();
  if (auto s = read_memory(dir / (p + "-memory.csv"), r, ids); !s) return std::move(s).err();
  if (auto s = read_optional(dir, r, ids); !s) return std::move(s).err();
  return r;
}

result<std::vector<goodput_data>> read_goodput(const fs::path& path) {
  std::vector<goodput_data> out;
  std::error_code ec;
  if (!fs::exists(path, ec)) return out;
  auto j = read_json(path);
  if (!j) return std::move(j).err();
  if (!j->is_object() || !(*j)["goodput"].is_array()) {
    return fail(errc::malformed, path.string() + ": goodput: missing or not an array");
  }
  const json& list = (*j)["goodput"];
  for (std::size_t i = 0; i < list.size(); ++i) {
    const json_fields f{path, "goodput[" + std::to_string(i) + "]"};
    goodput_data g;
    ACCELLM_TRY_ASSIGN(g.policy, f.text(list[i], "policy"));
    ACCELLM_TRY_ASSIGN(g.rate, f.number(list[i], "rate"));
    ACCELLM_TRY_ASSIGN(g.per_dollar_hour, f.number(list[i], "per_dollar_hour"));
    ACCELLM_TRY_ASSIGN(g.per_kw, f.number(list[i], "per_kw"));
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace

result<rate_data> read_rate(const fs::path& dir) {
  const fs::path path = dir / "summary.json";
  auto j = read_json(path);
  if (!j) return std::move(j).err();
  if (!j->is_object() || !j->contains("runs") || !(*j)["runs"].is_array() || (*j)["runs"].empty()) {
    return fail(errc::malformed, path.string() + ": runs: missing, not an array or empty");
  }
  rate_data out;
  out.dir = dir;
  const json& runs = (*j)["runs"];
  for (std::size_t i = 0; i < runs.size(); ++i) {
    auto r = read_run(dir, runs[i], json_fields{path, "runs[" + std::to_string(i) + "]"});
    if (!r) return std::move(r).err();
    out.runs.push_back(std::move(*r));
  }
  out.rate = out.runs.front().offered_rate;
  return out;
}

result<results> read_results(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return fail(errc::not_found, dir.string() + ": no such directory");
  results out;
  out.dir = dir;
  if (fs::exists(dir / "summary.json", ec)) {
    auto r = read_rate(dir);
    if (!r) return std::move(r).err();
    out.rates.push_back(std::move(*r));
  } else {
    std::vector<fs::path> subdirs;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.starts_with("rate-") && fs::is_regular_file(e.path() / "summary.json", ec)) {
        subdirs.push_back(e.path());
      }
    }
    std::sort(subdirs.begin(), subdirs.end());  // directory order is not deterministic
    for (const fs::path& d : subdirs) {
      auto r = read_rate(d);
      if (!r) return std::move(r).err();
      out.rates.push_back(std::move(*r));
    }
    std::stable_sort(out.rates.begin(), out.rates.end(),
                     [](const rate_data& a, const rate_data& b) { return a.rate < b.rate; });
    out.sweep = true;
  }
  if (out.rates.empty()) {
    return fail(errc::not_found, dir.string() +
                                     ": no simulate outputs (neither summary.json nor "
                                     "rate-*/summary.json)");
  }
  auto g = read_goodput(dir / "goodput.json");
  if (!g) return std::move(g).err();
  out.goodput = std::move(*g);
  return out;
}

}  // namespace accellm::report
