// Parser of the profile CSV format described in profile_model.hpp.
#include "device/sim/profile_model.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

namespace accellm::device::sim {
namespace {

constexpr std::string_view header_row = "kind,batch,tokens,time_ms";
constexpr std::uint32_t max_batch = 1u << 20;  // far above any real batch

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> fields;
  for (std::size_t start = 0;;) {
    const std::size_t comma = line.find(',', start);
    fields.push_back(trim(line.substr(start, comma - start)));
    if (comma == std::string_view::npos) return fields;
    start = comma + 1;
  }
}

bool parse_count(std::string_view s, std::uint32_t& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size() && out > 0;
}

bool parse_time(std::string_view s, double& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size() && std::isfinite(out) && out > 0.0;
}

// State of one parse: the table so far and where we are.
class parser {
 public:
  explicit parser(std::string_view origin) : origin_(origin) {}

  status line(std::size_t number, std::string_view text) {
    number_ = number;
    text = trim(text);
    if (text.empty() || text.front() == '#') return {};
    if (text.front() == '@') return metadata(split(text.substr(1)));
    if (!seen_header_) return header(text);
    return row(split(text));
  }

  result<profile_table> finish() {
    if (!seen_header_) return bad_file("no header row '" + std::string{header_row} + "'");
    if (table_.prefill.empty()) return bad_file("no prefill rows");
    if (table_.decode.empty()) return bad_file("no decode rows");
    return std::move(table_);
  }

 private:
  error bad(const std::string& why) const {
    return fail(errc::malformed, std::string{origin_} + ":" + std::to_string(number_) + ": " + why);
  }
  error bad_file(const std::string& why) const {
    return fail(errc::malformed, std::string{origin_} + ": " + why);
  }

  status header(std::string_view text) {
    std::string joined;
    for (std::string_view f : split(text)) joined += std::string{f} + ",";
    if (!joined.empty()) joined.pop_back();
    if (joined != header_row) {
      return bad("expected the header row '" + std::string{header_row} + "', got '" +
                 std::string{text} + "'");
    }
    seen_header_ = true;
    return {};
  }

  status metadata(const std::vector<std::string_view>& f) {
    if (f.size() != 2)
      return bad("a metadata row has 2 fields (@key,value), got " + std::to_string(f.size()));
    const std::string key{f[0]};
    if (!keys_.insert(key).second) return bad("metadata @" + key + " given twice");
    if (f[1].empty()) return bad("metadata @" + key + " has an empty value");
    if (key == "model")
      table_.model = f[1];
    else if (key == "hardware")
      table_.hardware = f[1];
    else if (key == "tp") {
      if (!parse_count(f[1], table_.tp))
        return bad("@tp '" + std::string{f[1]} + "' is not a positive integer");
    } else {
      return bad("unknown metadata @" + key + " (known: @model, @hardware, @tp)");
    }
    return {};
  }

  status row(const std::vector<std::string_view>& f) {
    if (f.size() != 4)
      return bad("expected 4 fields (" + std::string{header_row} + "), got " +
                 std::to_string(f.size()));
    if (f[0] != "prefill" && f[0] != "decode") {
      return bad("kind '" + std::string{f[0]} + "' is neither prefill nor decode");
    }
    profile_point p;
    if (!parse_count(f[1], p.batch) || p.batch > max_batch) {
      return bad("batch '" + std::string{f[1]} + "' is not an integer in [1, " +
                 std::to_string(max_batch) + "]");
    }
    if (!parse_count(f[2], p.tokens)) {
      return bad("tokens '" + std::string{f[2]} + "' is not a positive integer");
    }
    if (!parse_time(f[3], p.time_ms)) {
      return bad("time_ms '" + std::string{f[3]} + "' is not a positive finite number");
    }
    const bool prefill = f[0] == "prefill";
    if (!anchors_.insert({prefill, p.batch, p.tokens}).second) {
      return bad("duplicate " + std::string{f[0]} + " anchor for batch " + std::to_string(p.batch) +
                 ", tokens " + std::to_string(p.tokens));
    }
    (prefill ? table_.prefill : table_.decode).push_back(p);
    return {};
  }

  std::string_view origin_;
  std::size_t number_ = 0;
  bool seen_header_ = false;
  std::set<std::string> keys_;
  std::set<std::tuple<bool, std::uint32_t, std::uint32_t>> anchors_;
  profile_table table_;
};

}  // namespace

result<profile_table> parse_profile(std::string_view text, std::string_view origin) {
  parser p{origin};
  std::size_t number = 0;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    if (auto ok = p.line(++number, text.substr(start, end - start)); !ok) {
      return std::move(ok).err();
    }
    start = end + 1;
  }
  return p.finish();
}

result<profile_table> load_profile(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in) return fail(errc::io_failure, "cannot open profile '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return fail(errc::io_failure, "cannot read profile '" + path + "'");
  return parse_profile(text.str(), path);
}

}  // namespace accellm::device::sim
