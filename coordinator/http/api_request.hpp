// The JSON API of the coordinator's HTTP front end (POST /v1/requests):
// parsing and validating a request body into a plain struct, and rendering
// answers, stream events and errors as JSON text.
//
// A request body is one JSON object:
//   {"prompt": "text"}             the prompt as text (byte tokenizer), or
//   {"prompt_tokens": [1, 2, 3]}   the prompt as token ids (>= 0)
// exactly one of the two, non-empty, plus optional
//   "max_tokens": integer 1..api_limits::max_tokens (default default_max_tokens)
//   "stream": true/false (default false)
//   "stop_tokens": [ids]   generation ends after any of these
// Any other key is an error, "request_id" included: the coordinator assigns
// ids. Every error names the field it is about, e.g.
//   max_tokens: expected an integer in 1..4096, got "ten"
// with code errc::malformed (not JSON), errc::invalid_argument (wrong type,
// unknown or missing field), errc::out_of_range (a value outside its domain)
// or errc::too_large (a list over its limit).
//
// Rendered JSON is always valid UTF-8: invalid byte sequences in decoded text
// are replaced by U+FFFD.
//
// Thread contract: value types and free functions; safe from any thread.
#pragma once

#include "common/result.hpp"
#include "common/types.hpp"
#include "messages/enums.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace accellm::coordinator::http {

/// What a request may ask for.
struct api_limits {
  std::size_t max_prompt_tokens = 4096;   ///< longest prompt, in tokens (bytes of text)
  std::uint32_t max_tokens = 4096;        ///< largest max_tokens
  std::uint32_t default_max_tokens = 16;  ///< max_tokens when the body has none
  std::size_t max_stop_tokens = 256;      ///< longest stop_tokens list
  /// Token ids (prompt_tokens, stop_tokens) must be below this; 0 = no bound
  /// but the 32-bit one.
  token_id vocab_size = 0;
};

/// A validated request body.
struct api_request {
  std::vector<token_id> prompt;  ///< non-empty; ids >= 0
  std::uint32_t max_tokens = 16;
  bool stream = false;
  std::vector<token_id> stop_tokens;
  friend bool operator==(const api_request&, const api_request&) = default;
};

/// Parses and validates a POST /v1/requests body (see the top of this file).
result<api_request> parse_api_request(std::string_view body, const api_limits& limits);

/// The end of a request as the HTTP client sees it.
struct api_answer {
  request_id id = 0;
  messages::request_status status = messages::request_status::ok;
  messages::finish_reason finish = messages::finish_reason::none;
  std::uint32_t output_tokens = 0;  ///< as the coordinator counted them
  std::vector<token_id> tokens;     ///< the tokens received, in output order
  std::string error;                ///< empty unless status is not ok
  std::optional<double> ttft_ms;    ///< submit to first token; none without tokens
  double latency_ms = 0;            ///< submit to RequestDone
};

/// Whether render_answer lists the tokens and their text.
enum class with_tokens : bool { no, yes };

/// {"request_id":N,"status":"ok","finish_reason":"length","output_tokens":n,
///  "tokens":[...],"text":"...","ttft_ms":x,"latency_ms":y}, plus "error"
/// when status is not ok; ttft_ms is null without tokens. with_tokens::no
/// leaves out tokens and text (the final event of a stream).
std::string render_answer(const api_answer& answer, with_tokens tokens);

/// One stream event's JSON: {"request_id":N,"index":i,"tokens":[...],"text":"..."}
/// where `index` is the output-stream position of tokens[0].
std::string render_chunk(request_id id, std::uint32_t index, std::span<const token_id> tokens);

/// {"error":"message"}.
std::string render_error(std::string_view message);

}  // namespace accellm::coordinator::http
