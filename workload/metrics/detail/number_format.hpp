// Locale-independent number formatting for the metrics writers.
//
// Output files and tables must be byte-for-byte reproducible, so numbers go
// through std::to_chars (never a stream or printf, whose decimal point
// follows the C locale).
//
// Thread contract: pure functions; safe from any thread.
#pragma once

#include <string>

namespace accellm::metrics::detail {

/// `value` with exactly `precision` decimals ("12.345"); "inf", "-inf" and
/// "nan" for non-finite values; negative zero prints as zero.
std::string fixed(double value, int precision);

/// The shortest text that reads back as `value` ("7.3", "1e+20").
std::string shortest(double value);

/// `field` as one CSV field: quoted (with doubled quotes) when it holds a
/// comma, a quote or a line break; unchanged otherwise.
std::string csv_field(const std::string& field);

}  // namespace accellm::metrics::detail
