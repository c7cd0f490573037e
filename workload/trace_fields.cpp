#include "workload/trace_fields.hpp"

#include <charconv>
#include <cmath>
#include <string>

namespace accellm::workload::fields {
namespace {

constexpr std::int64_t ns_per_second = 1'000'000'000;
constexpr std::string_view date_time_example = "2023-11-16 18:15:46.6805900";

error not_date_time(std::string_view text) {
  return fail(errc::malformed, "\"" + std::string{text} + "\" is not a date and time like " +
                                   std::string{date_time_example});
}

// Exactly `width` decimal digits at text[pos...]; false otherwise.
bool digits(std::string_view text, std::size_t pos, std::size_t width, unsigned& out) {
  if (pos + width > text.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + width; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    out = out * 10 + static_cast<unsigned>(text[i] - '0');
  }
  return true;
}

bool leap(unsigned y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(unsigned y, unsigned m) {
  constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : days[m - 1];
}

// ".fffffffff" at text[pos...] to the end, as nanoseconds; -1 if malformed.
std::int64_t fraction_ns(std::string_view text, std::size_t pos) {
  if (pos == text.size()) return 0;
  const std::size_t n = text.size() - pos - 1;
  if (text[pos] != '.' || n < 1 || n > 9) return -1;
  unsigned value = 0;
  if (!digits(text, pos + 1, n, value)) return -1;
  std::int64_t ns = value;
  for (std::size_t i = n; i < 9; ++i) ns *= 10;
  return ns;
}

}  // namespace

std::string_view trim(std::string_view text) noexcept {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

std::vector<std::string_view> split_csv(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  // At most line.size() + 1 fields: each iteration consumes one comma.
  for (std::size_t i = 0; i <= line.size(); ++i) {
    const auto comma = line.find(',', start);
    if (comma == std::string_view::npos) {
      out.push_back(trim(line.substr(start)));
      break;
    }
    out.push_back(trim(line.substr(start, comma - start)));
    start = comma + 1;
  }
  return out;
}

result<std::uint32_t> parse_count(std::string_view text) {
  std::uint64_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ptr != end || (ec != std::errc{} && ec != std::errc::result_out_of_range)) {
    return fail(errc::malformed, "\"" + std::string{text} + "\" is not a non-negative integer");
  }
  if (ec == std::errc::result_out_of_range || value > UINT32_MAX) {
    return fail(errc::malformed, "\"" + std::string{text} + "\" is over 4294967295");
  }
  return static_cast<std::uint32_t>(value);
}

result<std::int64_t> parse_date_time(std::string_view text) {
  unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  const bool shaped = text.size() >= 19 && digits(text, 0, 4, y) && text[4] == '-' &&
                      digits(text, 5, 2, mo) && text[7] == '-' && digits(text, 8, 2, d) &&
                      (text[10] == ' ' || text[10] == 'T') && digits(text, 11, 2, h) &&
                      text[13] == ':' && digits(text, 14, 2, mi) && text[16] == ':' &&
                      digits(text, 17, 2, s);
  const std::int64_t frac = shaped ? fraction_ns(text, 19) : -1;
  if (frac < 0) return not_date_time(text);
  if (y < 1970 || y > 2200) {
    return fail(errc::malformed, "\"" + std::string{text} + "\": year must be 1970 to 2200");
  }
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59) {
    return fail(errc::malformed, "\"" + std::string{text} + "\" is not a valid date and time");
  }
  const std::int64_t seconds = days_from_civil(y, mo, d) * 86'400 + h * 3'600 + mi * 60 + s;
  return seconds * ns_per_second + frac;
}

result<std::int64_t> parse_seconds(std::string_view text) {
  double value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ptr != end || ec != std::errc{} || !std::isfinite(value) || value < 0 ||
      value > 1e9) {
    return fail(errc::malformed,
                "\"" + std::string{text} + "\" is not a number of seconds between 0 and 1e9");
  }
  return static_cast<std::int64_t>(std::llround(value * 1e9));
}

result<std::int64_t> milliseconds_to_ns(double ms) {
  if (!std::isfinite(ms) || ms < 0 || ms > 1e12) {
    return fail(errc::malformed,
                std::to_string(ms) + " is not a number of milliseconds between 0 and 1e12");
  }
  return static_cast<std::int64_t>(std::llround(ms * 1e6));
}

}  // namespace accellm::workload::fields
