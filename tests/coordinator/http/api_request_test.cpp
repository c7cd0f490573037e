// The POST /v1/requests body: what is accepted, how every kind of bad input
// is refused (each error names its field), and the JSON answers.
#include "coordinator/http/api_request.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace accellm::coordinator::http {
namespace {

using json = nlohmann::json;

api_limits small_limits() {
  api_limits l;
  l.max_prompt_tokens = 8;
  l.max_tokens = 100;
  l.default_max_tokens = 16;
  l.max_stop_tokens = 2;
  l.vocab_size = 512;
  return l;
}

TEST(ApiRequest, AcceptsATextPromptWithDefaults) {
  auto r = parse_api_request(R"({"prompt": "Hi"})", small_limits());
  ASSERT_TRUE(r.ok()) << r.err().what();
  EXPECT_EQ(r->prompt, (std::vector<token_id>{72, 105}));
  EXPECT_EQ(r->max_tokens, 16u);
  EXPECT_FALSE(r->stream);
  EXPECT_TRUE(r->stop_tokens.empty());
}

TEST(ApiRequest, AcceptsTokenIdsAndEveryOption) {
  auto r = parse_api_request(
      R"({"prompt_tokens": [0, 7, 511], "max_tokens": 100, "stream": true, "stop_tokens": [2, 3]})",
      small_limits());
  ASSERT_TRUE(r.ok()) << r.err().what();
  EXPECT_EQ(r->prompt, (std::vector<token_id>{0, 7, 511}));
  EXPECT_EQ(r->max_tokens, 100u);
  EXPECT_TRUE(r->stream);
  EXPECT_EQ(r->stop_tokens, (std::vector<token_id>{2, 3}));
}

TEST(ApiRequest, TheDocumentedMessageForAWrongMaxTokens) {
  auto r = parse_api_request(R"({"prompt": "x", "max_tokens": "ten"})", api_limits{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message(), R"(max_tokens: expected an integer in 1..4096, got "ten")");
  EXPECT_EQ(r.err().code(), errc::invalid_argument);
}

struct bad_case {
  const char* body;
  const char* field;  // the error message starts with "<field>:"
  errc code;
};

TEST(ApiRequest, RefusesEveryKindOfBadInputNamingTheField) {
  const std::vector<bad_case> cases = {
      {R"({"prompt": "x",})", "body", errc::malformed},
      {R"(not json)", "body", errc::malformed},
      {R"([1, 2])", "body", errc::invalid_argument},
      {R"("prompt")", "body", errc::invalid_argument},
      {R"({})", "prompt", errc::invalid_argument},
      {R"({"max_tokens": 3})", "prompt", errc::invalid_argument},
      {R"({"prompt": "x", "prompt_tokens": [1]})", "prompt, prompt_tokens", errc::invalid_argument},
      {R"({"prompt": 5})", "prompt", errc::invalid_argument},
      {R"({"prompt": ""})", "prompt", errc::out_of_range},
      {R"({"prompt": "123456789"})", "prompt", errc::too_large},
      {R"({"prompt_tokens": "abc"})", "prompt_tokens", errc::invalid_argument},
      {R"({"prompt_tokens": []})", "prompt_tokens", errc::out_of_range},
      {R"({"prompt_tokens": [1, -1]})", "prompt_tokens[1]", errc::out_of_range},
      {R"({"prompt_tokens": [512]})", "prompt_tokens[0]", errc::out_of_range},
      {R"({"prompt_tokens": [1.5]})", "prompt_tokens[0]", errc::invalid_argument},
      {R"({"prompt_tokens": [1, 2, 3, 4, 5, 6, 7, 8, 9]})", "prompt_tokens", errc::too_large},
      {R"({"prompt": "x", "max_tokens": 0})", "max_tokens", errc::out_of_range},
      {R"({"prompt": "x", "max_tokens": 101})", "max_tokens", errc::out_of_range},
      {R"({"prompt": "x", "max_tokens": -3})", "max_tokens", errc::out_of_range},
      {R"({"prompt": "x", "max_tokens": 18446744073709551615})", "max_tokens", errc::out_of_range},
      {R"({"prompt": "x", "max_tokens": 2.0})", "max_tokens", errc::invalid_argument},
      {R"({"prompt": "x", "max_tokens": null})", "max_tokens", errc::invalid_argument},
      {R"({"prompt": "x", "stream": 1})", "stream", errc::invalid_argument},
      {R"({"prompt": "x", "stream": "yes"})", "stream", errc::invalid_argument},
      {R"({"prompt": "x", "stop_tokens": 3})", "stop_tokens", errc::invalid_argument},
      {R"({"prompt": "x", "stop_tokens": [1, 2, 3]})", "stop_tokens", errc::too_large},
      {R"({"prompt": "x", "stop_tokens": [true]})", "stop_tokens[0]", errc::invalid_argument},
      {R"({"prompt": "x", "request_id": 7})", "request_id", errc::invalid_argument},
      {R"({"prompt": "x", "temperature": 0.5})", "temperature", errc::invalid_argument},
  };
  for (const bad_case& c : cases) {
    SCOPED_TRACE(c.body);
    auto r = parse_api_request(c.body, small_limits());
    ASSERT_FALSE(r.ok());
    const std::string& m = r.err().message();
    EXPECT_EQ(m.rfind(std::string{c.field} + ": ", 0), 0u) << m;
    EXPECT_EQ(r.err().code(), c.code) << m;
  }
}

TEST(ApiRequest, LongValuesAreCutShortInMessages) {
  const std::string body = R"({"prompt": "x", "stream": ")" + std::string(500, 'a') + R"("})";
  auto r = parse_api_request(body, api_limits{});
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.err().message().size(), 120u) << r.err().message();
  EXPECT_NE(r.err().message().find("..."), std::string::npos);
}

TEST(ApiRender, AnAnswerCarriesTokensTextAndTimes) {
  api_answer a{.id = 42,
               .status = messages::request_status::ok,
               .finish = messages::finish_reason::length,
               .output_tokens = 2,
               .tokens = {72, 105},
               .error = {},
               .ttft_ms = 1.5,
               .latency_ms = 3.25};
  const std::string text = render_answer(a, with_tokens::yes);
  EXPECT_EQ(text, R"({"request_id":42,"status":"ok","finish_reason":"length","output_tokens":2,)"
                  R"("tokens":[72,105],"text":"Hi","ttft_ms":1.5,"latency_ms":3.25})");
  const json j = json::parse(render_answer(a, with_tokens::no));
  EXPECT_FALSE(j.contains("tokens"));
  EXPECT_FALSE(j.contains("text"));
  EXPECT_EQ(j["finish_reason"], "length");
}

TEST(ApiRender, AFailureCarriesItsErrorAndNoTtft) {
  api_answer a;
  a.id = 3;
  a.status = messages::request_status::failed;
  a.error = "instance \"w1\" died";
  const json j = json::parse(render_answer(a, with_tokens::yes));
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["finish_reason"], "none");
  EXPECT_EQ(j["error"], "instance \"w1\" died");
  EXPECT_TRUE(j["ttft_ms"].is_null());
}

TEST(ApiRender, InvalidUtf8BecomesTheReplacementCharacter) {
  const std::vector<token_id> half_of_e_acute{0xC3};
  const std::string chunk = render_chunk(9, 4, half_of_e_acute);
  const json j = json::parse(chunk);  // throws on invalid UTF-8
  EXPECT_EQ(j["request_id"], 9);
  EXPECT_EQ(j["index"], 4);
  EXPECT_EQ(j["tokens"], json::array({0xC3}));
  EXPECT_EQ(j["text"], "\xEF\xBF\xBD");
}

TEST(ApiRender, AnErrorIsEscapedJson) {
  EXPECT_EQ(render_error("prompt: \"x\"\n"), R"({"error":"prompt: \"x\"\n"})");
}

}  // namespace
}  // namespace accellm::coordinator::http
