// http_server end to end: a real caf::actor_system with a fake coordinator
// actor, the server on an ephemeral loopback port, httplib::Client as the
// user. Every wait is bounded (client timeouts, `after` on the probe).
#include "coordinator/http/http_server.hpp"

#include "actors/atoms.hpp"
#include "actors/clock.hpp"
#include "actors/system_config.hpp"
#include "coordinator/http/live_metrics.hpp"
#include "coordinator/http/tokenizer.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <vector>

namespace accellm::coordinator::http {
namespace {

using namespace std::chrono_literals;
using actors::msg_atom;
using json = nlohmann::json;
using messages::capnp_blob;

template <class T>
void reply(caf::event_based_actor* self, const caf::actor& to, T m, actors::duration after = {}) {
  if (after == actors::duration::zero()) {
    self->send(to, msg_atom::value, messages::pack(std::move(m)));
  } else {
    self->delayed_send(to, after, msg_atom::value, messages::pack(std::move(m)));
  }
}

messages::token_batch tokens_of(request_id id, std::uint32_t first, std::string_view text) {
  return {.epoch = 0,
          .request = id,
          .first_index = first,
          .tokens = encode_bytes(text),
          .instance = 0,
          .time_ns = 1};
}

messages::request_done done_of(request_id id, messages::request_status status, std::uint32_t output,
                               std::string error = {}) {
  return {.epoch = 0,
          .request = id,
          .status = status,
          .finish = status == messages::request_status::ok ? messages::finish_reason::length
                                                           : messages::finish_reason::none,
          .output_tokens = output,
          .error = std::move(error),
          .instance = 0};
}

// The fake coordinator: assigns ids from 100 and answers by prompt text:
//   "fail"   RequestDone failed
//   "silent" nothing at all
//   "slow"   a TokenBatch every 50 ms for 5 s, never done
//   else     "Hel" and "lo" as two TokenBatches, then RequestDone ok/length
// Forwards every SubmitRequest and Cancel blob to `probe`.
caf::behavior fake_coordinator(caf::event_based_actor* self, caf::actor probe) {
  auto next_id = std::make_shared<request_id>(100);
  return {[self, probe, next_id](msg_atom, const capnp_blob& b) {
    self->send(probe, msg_atom::value, b);
    auto m = messages::decode<messages::submit_request>(b);
    if (!m) return;
    const request_id id = (*next_id)++;
    const auto client = caf::actor_cast<caf::actor>(self->current_sender());
    const std::string prompt = decode_bytes(m->prompt);
    if (prompt == "fail") {
      reply(self, client, done_of(id, messages::request_status::failed, 0, "no instance left"));
    } else if (prompt == "slow") {
      for (std::uint32_t i = 0; i < 100; ++i) {
        reply(self, client, tokens_of(id, i, "x"), 50ms * (i + 1));
      }
    } else if (prompt != "silent") {
      reply(self, client, tokens_of(id, 0, "Hel"));
      reply(self, client, tokens_of(id, 3, "lo"));
      reply(self, client, done_of(id, messages::request_status::ok, 5));
    }
  }};
}

class HttpServer : public ::testing::Test {
 protected:
  HttpServer() {
    options_.request_timeout = 3s;
    options_.poll_interval = 10ms;
    options_.max_body_bytes = 4096;
    options_.keep_alive = 1s;
    options_.threads = 4;
  }

  ~HttpServer() override {
    if (server_) server_->stop();
    probe_->send_exit(coordinator_, caf::exit_reason::user_shutdown);
  }

  void start() {
    server_ = std::make_unique<http_server>(
        sys_, coordinator_, options_,
        [this] { return health_status{.ready = ready_.load(), .instances = ready_ ? 2u : 0u}; },
        &metrics_);
    auto port = server_->start();
    ASSERT_TRUE(port.ok()) << port.err().what();
    port_ = *port;
  }

  httplib::Client client() const {
    httplib::Client c{"127.0.0.1", port_};
    c.set_connection_timeout(2);
    c.set_read_timeout(10);
    c.set_write_timeout(2);
    return c;
  }

  httplib::Result post(const std::string& body, const httplib::Headers& headers = {}) const {
    return client().Post("/v1/requests", headers, body, "application/json");
  }

  // The next message the fake forwarded, decoded as T; none after 5 s.
  template <class T>
  std::optional<T> probed() {
    std::optional<T> got;
    bool waiting = true;
    while (waiting) {
      probe_->receive(
          [&got, &waiting](msg_atom, const capnp_blob& b) {
            if (auto m = messages::decode<T>(b)) {
              got = *m;
              waiting = false;
            }
          },
          caf::after(5s) >> [&waiting] { waiting = false; });
    }
    return got;
  }

  actors::system_config cfg_{actors::clock_mode::real};
  caf::actor_system sys_{cfg_};
  caf::scoped_actor probe_{sys_};
  caf::actor coordinator_ = sys_.spawn(fake_coordinator, caf::actor{probe_});
  live_metrics metrics_;
  std::atomic<bool> ready_{true};
  http_options options_;
  std::unique_ptr<http_server> server_;
  std::uint16_t port_ = 0;
};

// SSE events of a body, without their "data: " prefix.
std::vector<std::string> events(const std::string& body) {
  std::vector<std::string> out;
  std::size_t at = 0;
  for (auto end = body.find("\n\n"); end != std::string::npos; end = body.find("\n\n", at)) {
    std::string e = body.substr(at, end - at);
    out.push_back(e.rfind("data: ", 0) == 0 ? e.substr(6) : "NOT AN EVENT: " + e);
    at = end + 2;
  }
  if (at != body.size()) out.push_back("TRAILING: " + body.substr(at));
  return out;
}

TEST_F(HttpServer, AnswersWithTheTokensAndTheirText) {
  start();
  auto res = post(R"({"prompt": "hi", "max_tokens": 5})");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  const json j = json::parse(res->body);
  EXPECT_EQ(j["request_id"], 100);
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["finish_reason"], "length");
  EXPECT_EQ(j["tokens"], json::parse("[72, 101, 108, 108, 111]"));
  EXPECT_EQ(j["text"], "Hello");
  EXPECT_TRUE(j["ttft_ms"].is_number()) << res->body;
  EXPECT_GE(j["latency_ms"].get<double>(), j["ttft_ms"].get<double>());

  const auto submitted = probed<messages::submit_request>();
  ASSERT_TRUE(submitted);
  EXPECT_EQ(submitted->request, 0u) << "the coordinator assigns ids";
  EXPECT_EQ(submitted->prompt, (std::vector<token_id>{104, 105}));
  EXPECT_EQ(submitted->prompt_len, 2u);
  EXPECT_EQ(submitted->max_tokens, 5u);
  EXPECT_FALSE(submitted->stream);
}

TEST_F(HttpServer, StreamsEventsInOrderEndingWithDone) {
  start();
  auto res = post(R"({"prompt_tokens": [1, 2], "stream": true, "stop_tokens": [0]})");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  const std::vector<std::string> ev = events(res->body);
  ASSERT_EQ(ev.size(), 4u) << res->body;
  EXPECT_EQ(ev[0], R"({"request_id":100,"index":0,"tokens":[72,101,108],"text":"Hel"})");
  EXPECT_EQ(ev[1], R"({"request_id":100,"index":3,"tokens":[108,111],"text":"lo"})");
  const json last = json::parse(ev[2]);
  EXPECT_EQ(last["status"], "ok");
  EXPECT_EQ(last["finish_reason"], "length");
  EXPECT_EQ(last["output_tokens"], 5);
  EXPECT_FALSE(last.contains("tokens"));
  EXPECT_EQ(ev[3], "[DONE]");
  const auto submitted = probed<messages::submit_request>();
  ASSERT_TRUE(submitted);
  EXPECT_TRUE(submitted->stream);
  EXPECT_EQ(submitted->stop_tokens, (std::vector<token_id>{0}));
}

TEST_F(HttpServer, AnAcceptHeaderAsksForAStreamToo) {
  start();
  auto res = post(R"({"prompt": "hi"})", {{"Accept", "text/event-stream"}});
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  const std::vector<std::string> ev = events(res->body);
  ASSERT_EQ(ev.size(), 4u) << res->body;
  EXPECT_EQ(ev[3], "[DONE]");
}

TEST_F(HttpServer, BadRequestsAreRefusedNamingTheProblem) {
  start();
  auto res = post(R"({"prompt": "hi",)");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(json::parse(res->body)["error"].get<std::string>().rfind("body: not valid JSON", 0), 0u)
      << res->body;
  res = post("");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(res->body.find("body: not valid JSON"), std::string::npos) << res->body;
  res = post(R"({"prompt": "hi", "max_tokens": "ten"})");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(json::parse(res->body)["error"],
            R"(max_tokens: expected an integer in 1..4096, got "ten")");
}

TEST_F(HttpServer, OversizedBodiesGet413) {
  start();
  const std::string big = R"({"prompt": ")" + std::string(5000, 'a') + R"("})";
  auto res = post(big);
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 413);
  EXPECT_TRUE(json::parse(res->body).contains("error")) << res->body;
  // Chunked, without a Content-Length: httplib's own limit would not apply.
  std::size_t sent = 0;
  res = client().Post(
      "/v1/requests",
      [&sent, &big](std::size_t, httplib::DataSink& sink) {
        const std::size_t n = std::min<std::size_t>(1000, big.size() - sent);
        sink.write(big.data() + sent, n);
        sent += n;
        if (sent == big.size()) sink.done();
        return true;
      },
      "application/json");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 413) << res->body;
}

TEST_F(HttpServer, UnknownPathsAndMethods) {
  start();
  auto res = client().Get("/v2/nothing");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 404);
  EXPECT_NE(json::parse(res->body)["error"].get<std::string>().find("/v2/nothing"),
            std::string::npos);
  res = client().Get("/v1/requests");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
  EXPECT_EQ(res->get_header_value("Allow"), "POST");
  EXPECT_TRUE(json::parse(res->body).contains("error"));
  res = client().Delete("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
}

TEST_F(HttpServer, HealthFollowsTheCallback) {
  ready_ = false;
  start();
  auto res = client().Get("/health");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->body, R"({"status":"unavailable","instances":0})");
  ready_ = true;
  res = client().Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, R"({"status":"ok","instances":2})");
}

TEST_F(HttpServer, MetricsAreThePrometheusText) {
  start();
  metrics_.set_instance(0, "w1", 4096);
  metrics_.on_role(0, messages::role::prefill, "prompt", 0);
  auto res = client().Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_NE(res->body.find("# TYPE accellm_requests_submitted_total counter\n"), std::string::npos);
  EXPECT_NE(res->body.find("accellm_instance_role{instance=\"w1\",role=\"prefill\"} 1\n"),
            std::string::npos)
      << res->body;
}

TEST_F(HttpServer, AFailedRequestIs500WithItsError) {
  start();
  auto res = post(R"({"prompt": "fail"})");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 500);
  const json j = json::parse(res->body);
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["error"], "no instance left");
}

TEST_F(HttpServer, NoAnswerInTimeIs504) {
  options_.request_timeout = 300ms;
  start();
  auto res = post(R"({"prompt": "silent"})");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 504);
  EXPECT_NE(res->body.find("in time"), std::string::npos) << res->body;
}

TEST_F(HttpServer, AGoneCoordinatorIs503) {
  start();
  probe_->send_exit(coordinator_, caf::exit_reason::user_shutdown);
  auto res = post(R"({"prompt": "hi"})");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 503);
  EXPECT_NE(res->body.find("coordinator stopped"), std::string::npos) << res->body;
}

TEST_F(HttpServer, AClientLeavingMidStreamCancelsItsRequest) {
  start();
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/requests";
  req.body = R"({"prompt": "slow", "stream": true})";
  req.set_header("Content-Type", "application/json");
  std::string first;
  req.content_receiver = [&first](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
    first.assign(data, n);
    return false;  // hang up after the first chunk
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  auto c = client();
  EXPECT_FALSE(c.send(req, res, err));
  c.stop();
  // Streamed, not buffered: the first event came long before the 5 s end.
  EXPECT_NE(first.find(R"("index":0)"), std::string::npos) << first;
  ASSERT_TRUE(probed<messages::submit_request>());
  const auto cancel = probed<messages::cancel>();
  ASSERT_TRUE(cancel) << "no Cancel after the client left";
  EXPECT_EQ(cancel->request, 100u);
  // Still serving.
  auto health = client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(HttpServer, StopEndsWaitingRequestsPromptly) {
  options_.request_timeout = 60s;
  start();
  auto pending = std::async(std::launch::async, [this] { return post(R"({"prompt": "silent"})"); });
  ASSERT_TRUE(probed<messages::submit_request>()) << "the request never reached the coordinator";
  const auto before = std::chrono::steady_clock::now();
  server_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 3s);
  ASSERT_EQ(pending.wait_for(5s), std::future_status::ready);
  auto res = pending.get();
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 503);
  EXPECT_NE(res->body.find("stopping"), std::string::npos) << res->body;
  server_->stop();  // idempotent
}

TEST_F(HttpServer, StartFailsOnAPortInUseOrABadAddress) {
  start();
  http_options same = options_;
  same.port = port_;
  http_server second{sys_, coordinator_, same, nullptr, nullptr};
  auto r = second.start();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code(), errc::io_failure);
  EXPECT_NE(r.err().message().find(":" + std::to_string(port_) + ":"), std::string::npos)
      << r.err().message();
  http_options foreign = options_;
  foreign.host = "192.0.2.1";  // TEST-NET-1: no local interface has it
  http_server third{sys_, coordinator_, foreign, nullptr, nullptr};
  r = third.start();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code(), errc::io_failure);
  EXPECT_NE(r.err().message().find("192.0.2.1"), std::string::npos) << r.err().message();
  auto again = server_->start();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.err().code(), errc::invalid_argument);
}

}  // namespace
}  // namespace accellm::coordinator::http
