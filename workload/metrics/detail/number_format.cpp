#include "workload/metrics/detail/number_format.hpp"

#include <array>
#include <charconv>
#include <cmath>

namespace accellm::metrics::detail {
namespace {

std::string non_finite(double value) {
  if (std::isnan(value)) return "nan";
  return value < 0 ? "-inf" : "inf";
}

}  // namespace

std::string fixed(double value, int precision) {
  if (!std::isfinite(value)) return non_finite(value);
  // 1e308 in fixed notation needs 309 digits plus the decimals.
  std::array<char, 400> buf{};
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value,
                                       std::chars_format::fixed, precision);
  if (ec != std::errc{}) return non_finite(value);
  std::string out(buf.data(), end);
  // "-0.000" reads as a sign that is not there.
  if (out.front() == '-' && out.find_first_not_of("-0.") == std::string::npos) out.erase(0, 1);
  return out;
}

std::string shortest(double value) {
  if (!std::isfinite(value)) return non_finite(value);
  std::array<char, 64> buf{};
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  if (ec != std::errc{}) return non_finite(value);
  return std::string(buf.data(), end);
}

std::string csv_field(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (const char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace accellm::metrics::detail
