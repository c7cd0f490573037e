#include "workload/trace_reader.hpp"

#include "workload/trace_fields.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <system_error>

namespace accellm::workload {
namespace {

using std::chrono::nanoseconds;

constexpr std::string_view unrecognised =
    "unrecognised trace format (expected an Azure CSV header "
    "\"TIMESTAMP,ContextTokens,GeneratedTokens\", a Splitwise CSV header "
    "\"request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,token_"
    "size\", or Mooncake JSON lines)";

// Walks the lines of a text, numbering them from 1, dropping a final '\r'
// and a leading UTF-8 byte order mark. Every next() advances by at least one
// character, so loops over it end.
class line_reader {
 public:
  explicit line_reader(std::string_view text) : text_(text) {
    if (text_.starts_with("\xEF\xBB\xBF")) text_.remove_prefix(3);
  }

  bool next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    const auto newline = text_.find('\n', pos_);
    const auto end = newline == std::string_view::npos ? text_.size() : newline;
    line = text_.substr(pos_, end - pos_);
    if (line.ends_with('\r')) line.remove_suffix(1);
    pos_ = end + 1;
    ++number_;
    return true;
  }

  std::size_t number() const noexcept { return number_; }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t number_ = 0;
};

bool blank(std::string_view line) {
  return fields::trim(line).empty();
}

// Collects rows into a trace, enforcing the order of timestamps, and words
// errors as "<source>:<line>: <reason>".
class trace_builder {
 public:
  explicit trace_builder(std::string_view source) : source_(source) {}

  error at(std::size_t line, error e) const {
    e.context(std::string{source_} + ":" + std::to_string(line));
    return e;
  }
  error at(std::size_t line, std::string reason) const {
    return at(line, fail(errc::malformed, std::move(reason)));
  }

  status add(std::size_t line, std::int64_t at_ns, std::uint32_t prompt, std::uint32_t output) {
    if (out_.empty()) first_ = at_ns;
    if (at_ns < previous_) return at(line, "timestamp goes backwards");
    previous_ = at_ns;
    out_.push_back({out_.size() + 1, nanoseconds{at_ns - first_}, prompt, output});
    return {};
  }

  result<trace> finish() && {
    if (out_.empty()) return fail(errc::malformed, std::string{source_} + ": no requests");
    return std::move(out_);
  }

 private:
  std::string_view source_;
  trace out_;
  std::int64_t first_ = 0;
  std::int64_t previous_ = INT64_MIN;
};

error in_field(error e, std::string_view field) {
  e.context(field);
  return e;
}

// A prompt or output length: a count of at least 1.
result<std::uint32_t> parse_tokens(std::string_view text, std::string_view field,
                                   std::string_view kind) {
  auto n = fields::parse_count(text);
  if (!n) return in_field(std::move(n).err(), field);
  if (*n == 0) {
    return fail(errc::malformed, std::string{field} + ": 0, a request needs at least 1 " +
                                     std::string{kind} + " token");
  }
  return *n;
}

// Where a CSV format keeps its columns, found by name in the header.
struct csv_layout {
  trace_format format;
  std::size_t columns = 0;
  std::size_t time = 0, prompt = 0, output = 0;
  std::string_view time_name, prompt_name, output_name;
};

std::optional<std::size_t> column(std::span<const std::string_view> header, std::string_view name) {
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return i;
  }
  return std::nullopt;
}

std::optional<csv_layout> match_header(std::span<const std::string_view> header,
                                       trace_format format, std::string_view time,
                                       std::string_view prompt, std::string_view output) {
  const auto t = column(header, time), p = column(header, prompt), o = column(header, output);
  if (!t || !p || !o) return std::nullopt;
  return csv_layout{format, header.size(), *t, *p, *o, time, prompt, output};
}

std::optional<csv_layout> match_header(std::string_view line) {
  const auto header = fields::split_csv(line);
  if (auto azure = match_header(header, trace_format::azure, "TIMESTAMP", "ContextTokens",
                                "GeneratedTokens")) {
    return azure;
  }
  if (header.front() != "request_id") return std::nullopt;
  return match_header(header, trace_format::splitwise, "arrival_timestamp", "prompt_size",
                      "token_size");
}

result<trace> parse_csv(std::string_view text, std::string_view source, const csv_layout& layout) {
  line_reader lines{text};
  trace_builder rows{source};
  bool header_seen = false;
  std::string_view line;
  while (lines.next(line)) {
    if (blank(line)) continue;
    if (!header_seen) {
      header_seen = true;
      continue;
    }
    const auto n = lines.number();
    const auto cols = fields::split_csv(line);
    if (cols.size() != layout.columns) {
      return rows.at(n, "expected " + std::to_string(layout.columns) + " columns, found " +
                            std::to_string(cols.size()));
    }
    auto at = layout.format == trace_format::azure ? fields::parse_date_time(cols[layout.time])
                                                   : fields::parse_seconds(cols[layout.time]);
    if (!at) return rows.at(n, in_field(std::move(at).err(), layout.time_name));
    auto prompt = parse_tokens(cols[layout.prompt], layout.prompt_name, "prompt");
    if (!prompt) return rows.at(n, std::move(prompt).err());
    auto output = parse_tokens(cols[layout.output], layout.output_name, "output");
    if (!output) return rows.at(n, std::move(output).err());
    if (auto ok = rows.add(n, *at, *prompt, *output); !ok) return std::move(ok).err();
  }
  return std::move(rows).finish();
}

result<std::int64_t> json_timestamp(const nlohmann::json& row) {
  const auto it = row.find("timestamp");
  if (it == row.end()) return fail(errc::malformed, "timestamp: missing");
  if (!it->is_number()) {
    return fail(errc::malformed, "timestamp: " + it->dump() + " is not a number of milliseconds");
  }
  auto ns = fields::milliseconds_to_ns(it->get<double>());
  if (!ns) return in_field(std::move(ns).err(), "timestamp");
  return *ns;
}

result<std::uint32_t> json_tokens(const nlohmann::json& row, const char* field,
                                  std::string_view kind) {
  const auto it = row.find(field);
  if (it == row.end()) return fail(errc::malformed, std::string{field} + ": missing");
  if (!it->is_number_unsigned()) {
    return fail(errc::malformed,
                std::string{field} + ": " + it->dump() + " is not a non-negative integer");
  }
  return parse_tokens(it->dump(), field, kind);
}

// One Mooncake row, before the order check; errors name only the field.
struct json_row {
  std::int64_t at_ns = 0;
  std::uint32_t prompt = 0, output = 0;
};

result<json_row> parse_json_row(std::string_view line) {
  const auto row = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (row.is_discarded()) return fail(errc::malformed, "not valid JSON");
  if (!row.is_object()) return fail(errc::malformed, "expected a JSON object, found " + row.dump());
  auto at = json_timestamp(row);
  if (!at) return std::move(at).err();
  auto prompt = json_tokens(row, "input_length", "prompt");
  if (!prompt) return std::move(prompt).err();
  auto output = json_tokens(row, "output_length", "output");
  if (!output) return std::move(output).err();
  return json_row{*at, *prompt, *output};
}

result<trace> parse_jsonl(std::string_view text, std::string_view source) {
  line_reader lines{text};
  trace_builder rows{source};
  std::string_view line;
  while (lines.next(line)) {
    if (blank(line)) continue;
    const auto n = lines.number();
    std::optional<result<json_row>> row;
    try {
      row.emplace(parse_json_row(line));
    } catch (const nlohmann::json::exception& e) {
      // parse() is told not to throw; dump() and get() could, in theory.
      row.emplace(fail(errc::malformed, e.what()));
    }
    if (!row->ok()) return rows.at(n, std::move(*row).err());
    const json_row& r = row->value();
    if (auto ok = rows.add(n, r.at_ns, r.prompt, r.output); !ok) return std::move(ok).err();
  }
  return std::move(rows).finish();
}

}  // namespace

std::string_view to_string(trace_format f) noexcept {
  switch (f) {
    case trace_format::azure:
      return "azure";
    case trace_format::splitwise:
      return "splitwise";
    case trace_format::mooncake:
      return "mooncake";
  }
  return "unknown";
}

result<trace> parse_trace(std::string_view text, std::string_view source_name,
                          trace_format* detected) {
  line_reader lines{text};
  std::string_view first;
  while (lines.next(first) && blank(first)) {
  }
  if (blank(first)) return fail(errc::malformed, std::string{source_name} + ": no requests");
  std::optional<csv_layout> layout;
  if (!fields::trim(first).starts_with('{')) {
    layout = match_header(first);
    if (!layout) {
      return fail(errc::malformed, std::string{source_name} + ": " + std::string{unrecognised});
    }
  }
  const trace_format format = layout ? layout->format : trace_format::mooncake;
  auto out = layout ? parse_csv(text, source_name, *layout) : parse_jsonl(text, source_name);
  if (out && detected != nullptr) *detected = format;
  return out;
}

result<trace> read_trace(const std::filesystem::path& path, trace_format* detected) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return fail(errc::io_failure, path.string() + ": is a directory, not a trace file");
  }
  std::ifstream in{path, std::ios::binary};
  if (!in) return fail(errc::io_failure, path.string() + ": cannot open for reading");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return fail(errc::io_failure, path.string() + ": read failed");
  return parse_trace(text.view(), path.string(), detected);
}

double mean_rate(const trace& t) noexcept {
  if (t.size() < 2) return 0.0;
  const auto span = t.back().arrival - t.front().arrival;
  if (span.count() <= 0) return 0.0;
  return double(t.size() - 1) / std::chrono::duration<double>(span).count();
}

result<trace> rescale_to_rate(trace t, double rate) {
  if (!std::isfinite(rate) || rate <= 0.0) {
    return fail(errc::invalid_argument,
                "rescale_to_rate: rate must be a finite number > 0, got " + std::to_string(rate));
  }
  const double current = mean_rate(t);
  if (current <= 0.0) {
    return fail(errc::invalid_argument,
                "rescale_to_rate: needs at least two requests with distinct arrival times");
  }
  const double factor = current / rate;
  const auto first = t.front().arrival;
  if (double((t.back().arrival - first).count()) * factor > 9e18) {
    return fail(errc::invalid_argument, "rescale_to_rate: rate " + std::to_string(rate) +
                                            " stretches the trace past 292 years");
  }
  for (auto& r : t) {
    const double offset = double((r.arrival - first).count()) * factor;
    r.arrival = first + nanoseconds{std::llround(offset)};
  }
  return t;
}

}  // namespace accellm::workload
