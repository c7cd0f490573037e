// Readers for recorded request traces: the Azure LLM inference CSVs (2023),
// the request CSVs of the Splitwise simulator, and Mooncake's JSON lines.
//
// Each reader turns a file into a workload::trace: arrivals relative to the
// first row (which arrives at t = 0), 1-based ids in file order, and the
// prompt and output token counts. Other columns (request_type, hash_ids, ...)
// are ignored. The format is recognised from the content, not the file name:
//
//   azure      header TIMESTAMP,ContextTokens,GeneratedTokens;
//              TIMESTAMP like 2023-11-16 18:15:46.6805900 (no time zone)
//   splitwise  header request_id,request_type,application_id,
//              arrival_timestamp,batch_size,prompt_size,token_size;
//              arrival_timestamp in seconds, lengths prompt_size, token_size
//   mooncake   one JSON object a line: {"timestamp": <ms>, "input_length": N,
//              "output_length": M, "hash_ids": [...]}
//
// CSV columns are found by name, so reordered or extra columns are accepted.
// Blank lines, CRLF line endings, a UTF-8 byte order mark and a missing or
// present final newline are all accepted. Rows are never reordered: a row
// earlier than the one before it is an error, as is a length of 0 (a request
// needs at least one prompt and one output token). Every error is
// errc::malformed with a message "<source>:<line>: <reason>", lines counted
// from 1 including the header, e.g.
//   trace.csv:17: GeneratedTokens: "abc" is not a non-negative integer
//
// Thread contract: pure functions (read_trace reads the file system);
// safe from any thread.
#pragma once

#include "common/result.hpp"
#include "workload/request_spec.hpp"

#include <cstdint>
#include <filesystem>
#include <string_view>

namespace accellm::workload {

/// The trace formats parse_trace() recognises.
enum class trace_format : std::uint8_t { azure, splitwise, mooncake };

/// "azure", "splitwise" or "mooncake".
std::string_view to_string(trace_format f) noexcept;

/// Detects the format from the content (first non-blank line: a CSV header
/// or a JSON object) and parses every row. `source_name` prefixes error
/// messages. On success, stores the format in *detected when it is not null.
/// Errors (all malformed): unrecognised format, a row that does not parse,
/// a timestamp that goes backwards, a trace without requests.
result<trace> parse_trace(std::string_view text, std::string_view source_name,
                          trace_format* detected = nullptr);

/// Reads the whole file and parses it with parse_trace(), naming it by its
/// path in messages. io_failure when the file cannot be opened or read.
result<trace> read_trace(const std::filesystem::path& path, trace_format* detected = nullptr);

/// Mean arrival rate of a trace in requests per second: (n - 1) gaps over
/// the time from the first arrival to the last, i.e. 1 / mean gap. 0 when
/// the trace has fewer than two requests or they all arrive at once.
double mean_rate(const trace& t) noexcept;

/// Rescales arrival times so that mean_rate() becomes `rate`, keeping the
/// first arrival and the relative gaps (times are rounded to nanoseconds).
/// invalid_argument when rate is not finite and > 0, or when the trace has
/// fewer than two requests with distinct arrival times.
result<trace> rescale_to_rate(trace t, double rate);

}  // namespace accellm::workload
