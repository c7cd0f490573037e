#include "coordinator/http/api_request.hpp"

#include "coordinator/http/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <limits>

namespace accellm::coordinator::http {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr std::array<std::string_view, 5> known_fields = {"prompt", "prompt_tokens", "max_tokens",
                                                          "stream", "stop_tokens"};

// Decoded text can hold any bytes; dump() would throw on invalid UTF-8.
template <class Json>
std::string dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// A value as it appears in an error message, cut short when long.
std::string describe(const json& v) {
  constexpr std::size_t longest = 40;
  std::string s = dump(v);
  if (s.size() > longest) s = s.substr(0, longest) + "...";
  return s;
}

std::string field_error(std::string_view field, std::string_view expected, const json& got) {
  return std::string{field} + ": expected " + std::string{expected} + ", got " + describe(got);
}

// An integer in [lo, hi], hi >= 0.
result<std::int64_t> integer_in(const json& v, std::string_view field, std::int64_t lo,
                                std::int64_t hi) {
  const std::string expected = "an integer in " + std::to_string(lo) + ".." + std::to_string(hi);
  if (!v.is_number_integer()) return fail(errc::invalid_argument, field_error(field, expected, v));
  // nlohmann stores every non-negative integer as unsigned: compare it as
  // such, so that values over INT64_MAX do not wrap.
  bool fits = false;
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    fits = (lo <= 0 || u >= static_cast<std::uint64_t>(lo)) && u <= static_cast<std::uint64_t>(hi);
  } else {
    const auto n = v.get<std::int64_t>();
    fits = n >= lo && n <= hi;
  }
  if (!fits) return fail(errc::out_of_range, field_error(field, expected, v));
  return v.get<std::int64_t>();
}

result<std::vector<token_id>> token_list(const json& v, std::string_view field, std::size_t max_len,
                                         token_id vocab) {
  if (!v.is_array()) {
    return fail(errc::invalid_argument, field_error(field, "a list of token ids", v));
  }
  if (v.size() > max_len) {
    return fail(errc::too_large, std::string{field} + ": " + std::to_string(v.size()) +
                                     " tokens, over the limit of " + std::to_string(max_len));
  }
  const std::int64_t hi = vocab > 0 ? vocab - 1 : std::numeric_limits<token_id>::max();
  std::vector<token_id> ids;
  ids.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::string name = std::string{field} + "[" + std::to_string(i) + "]";
    auto id = integer_in(v[i], name, 0, hi);
    if (!id) return std::move(id).err();
    ids.push_back(static_cast<token_id>(*id));
  }
  return ids;
}

status check_fields(const json& body) {
  for (const auto& item : body.items()) {
    const std::string& key = item.key();
    if (key == "request_id") {
      return fail(errc::invalid_argument,
                  "request_id: not accepted from clients (the coordinator assigns ids)");
    }
    bool known = false;
    for (const std::string_view f : known_fields) known = known || key == f;
    if (!known) {
      return fail(errc::invalid_argument,
                  key +
                      ": unknown field (known: prompt, prompt_tokens, max_tokens, stream, "
                      "stop_tokens)");
    }
  }
  return {};
}

result<std::vector<token_id>> prompt_of(const json& body, const api_limits& limits) {
  const bool text = body.contains("prompt");
  const bool ids = body.contains("prompt_tokens");
  if (text == ids) {
    return fail(errc::invalid_argument, text ? "prompt, prompt_tokens: give one of them, not both"
                                             : "prompt: missing (give prompt or prompt_tokens)");
  }
  std::vector<token_id> prompt;
  if (text) {
    const json& v = body["prompt"];
    if (!v.is_string()) {
      return fail(errc::invalid_argument, field_error("prompt", "a string", v));
    }
    prompt = encode_bytes(v.get_ref<const std::string&>());
  } else {
    ACCELLM_TRY_ASSIGN(prompt, token_list(body["prompt_tokens"], "prompt_tokens",
                                          limits.max_prompt_tokens, limits.vocab_size));
  }
  const std::string_view field = text ? "prompt" : "prompt_tokens";
  if (prompt.empty()) return fail(errc::out_of_range, std::string{field} + ": must not be empty");
  if (prompt.size() > limits.max_prompt_tokens) {
    return fail(errc::too_large, std::string{field} + ": " + std::to_string(prompt.size()) +
                                     " tokens, over the limit of " +
                                     std::to_string(limits.max_prompt_tokens));
  }
  return prompt;
}

ordered_json token_array(std::span<const token_id> tokens) {
  ordered_json a = ordered_json::array();
  for (const token_id t : tokens) a.push_back(t);
  return a;
}

}  // namespace

result<api_request> parse_api_request(std::string_view body, const api_limits& limits) {
  json j;
  try {
    j = json::parse(body.begin(), body.end());
  } catch (const json::parse_error& e) {
    return fail(errc::malformed, std::string{"body: not valid JSON: "} + e.what());
  }
  if (!j.is_object()) {
    return fail(errc::invalid_argument, field_error("body", "a JSON object", j));
  }
  ACCELLM_TRY(check_fields(j));
  api_request r;
  ACCELLM_TRY_ASSIGN(r.prompt, prompt_of(j, limits));
  r.max_tokens = limits.default_max_tokens;
  if (j.contains("max_tokens")) {
    std::int64_t n = 0;
    ACCELLM_TRY_ASSIGN(n, integer_in(j["max_tokens"], "max_tokens", 1, limits.max_tokens));
    r.max_tokens = static_cast<std::uint32_t>(n);
  }
  if (j.contains("stream")) {
    const json& v = j["stream"];
    if (!v.is_boolean()) {
      return fail(errc::invalid_argument, field_error("stream", "true or false", v));
    }
    r.stream = v.get<bool>();
  }
  if (j.contains("stop_tokens")) {
    ACCELLM_TRY_ASSIGN(r.stop_tokens, token_list(j["stop_tokens"], "stop_tokens",
                                                 limits.max_stop_tokens, limits.vocab_size));
  }
  return r;
}

std::string render_answer(const api_answer& answer, with_tokens tokens) {
  ordered_json j;
  j["request_id"] = answer.id;
  j["status"] = messages::to_string(answer.status);
  j["finish_reason"] = messages::to_string(answer.finish);
  j["output_tokens"] = answer.output_tokens;
  if (tokens == with_tokens::yes) {
    j["tokens"] = token_array(answer.tokens);
    j["text"] = decode_bytes(answer.tokens);
  }
  j["ttft_ms"] = answer.ttft_ms ? ordered_json(*answer.ttft_ms) : ordered_json(nullptr);
  j["latency_ms"] = answer.latency_ms;
  if (!answer.error.empty()) j["error"] = answer.error;
  return dump(j);
}

std::string render_chunk(request_id id, std::uint32_t index, std::span<const token_id> tokens) {
  ordered_json j;
  j["request_id"] = id;
  j["index"] = index;
  j["tokens"] = token_array(tokens);
  j["text"] = decode_bytes(tokens);
  return dump(j);
}

std::string render_error(std::string_view message) {
  ordered_json j;
  j["error"] = message;
  return dump(j);
}

}  // namespace accellm::coordinator::http
