// Field parsers shared by the trace readers (workload/trace_reader.hpp):
// CSV splitting, token counts, Azure date-times and seconds, all without
// locales, std::get_time or exceptions.
//
// Errors carry errc::malformed and a message about the value alone
// ("\"abc\" is not a non-negative integer"); the reader prefixes the source,
// line and field with error::context().
//
// Thread contract: pure functions; safe from any thread.
#pragma once

#include "common/result.hpp"

#include <cstdint>
#include <string_view>
#include <vector>

namespace accellm::workload::fields {

/// `text` without leading and trailing spaces and tabs.
std::string_view trim(std::string_view text) noexcept;

/// Splits a CSV line at every comma and trims each field. No quoting: none of
/// the supported formats quotes its fields. "" gives one empty field.
std::vector<std::string_view> split_csv(std::string_view line);

/// Decimal digits only, at most 2^32 - 1. Zero is accepted here; whether it
/// is a valid length is the caller's decision.
result<std::uint32_t> parse_count(std::string_view text);

/// Days from 1970-01-01 to the proleptic Gregorian date y-m-d (negative
/// before 1970); H. Hinnant's days_from_civil. Requires 1 <= m <= 12.
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);                 // [0, 399]
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

/// "YYYY-MM-DD HH:MM:SS[.f]" (a 'T' may replace the space; 1 to 9 fractional
/// digits) as nanoseconds since 1970-01-01 00:00:00, no time zone applied.
/// Years 1970 to 2200; the date and time must exist (no leap seconds).
result<std::int64_t> parse_date_time(std::string_view text);

/// A non-negative decimal number of seconds ("12", "0.25", "1e3") as
/// nanoseconds, rounded to the nearest; at most 1e9 s.
result<std::int64_t> parse_seconds(std::string_view text);

/// A non-negative number of milliseconds as nanoseconds, rounded; at most 1e12 ms.
result<std::int64_t> milliseconds_to_ns(double ms);

}  // namespace accellm::workload::fields
