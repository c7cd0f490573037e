#include "coordinator/http/submit_handler.hpp"

#include "coordinator/http/live_metrics.hpp"
#include "coordinator/http/request_session.hpp"

#include <spdlog/spdlog.h>

#include <memory>

namespace accellm::coordinator::http {
namespace {

constexpr const char* json_type = "application/json";
// Exactly this string: httplib compresses any other text/* type, which would
// hold events back until the stream ends.
constexpr const char* event_stream_type = "text/event-stream";

double millis(actors::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

int http_status(messages::request_status s) {
  switch (s) {
    case messages::request_status::ok:
      return 200;
    case messages::request_status::cancelled:
      return 503;
    case messages::request_status::failed:
      return 500;
  }
  return 500;
}

int http_status(session_failure f) {
  switch (f) {
    case session_failure::timeout:
      return 504;
    case session_failure::stopped:
    case session_failure::coordinator_down:
      return 503;
    case session_failure::bad_reply:
      return 502;
  }
  return 500;
}

bool wants_event_stream(const httplib::Request& req) {
  return req.get_header_value("Accept").find(event_stream_type) != std::string::npos;
}

messages::submit_request to_submit(api_request r, bool stream) {
  const auto len = static_cast<std::uint32_t>(r.prompt.size());
  return {.request = 0,
          .prompt = std::move(r.prompt),
          .prompt_len = len,
          .max_tokens = r.max_tokens,
          .arrival_ns = 0,
          .stream = stream,
          .ttft_ms = 0,
          .tbt_ms = 0,
          .stop_tokens = std::move(r.stop_tokens)};
}

void log_failure(const submit_context& ctx, request_id id, const session_error& e) {
  if (ctx.options->logger) ctx.options->logger->warn("http: request {}: {}", id, e.message);
}

// Records a batch in the answer; returns what is new in it.
token_delta note_batch(api_answer& a, const messages::token_batch& b, actors::duration since) {
  a.id = b.request;
  const token_delta delta = merge_tokens(a.tokens, b);
  if (!a.ttft_ms && !delta.tokens.empty()) a.ttft_ms = millis(since);
  return delta;
}

void note_done(api_answer& a, const messages::request_done& d, actors::duration since) {
  a.id = d.request;
  a.status = d.status;
  a.finish = d.finish;
  a.output_tokens = d.output_tokens;
  a.error = d.error;
  a.latency_ms = millis(since);
}

void answer_whole(const submit_context& ctx, request_session& session, httplib::Response& res) {
  const actors::time_point start = session.now();
  const actors::time_point deadline = start + ctx.options->request_timeout;
  api_answer a;
  for (;;) {
    session_event ev = session.next(deadline, *ctx.stopping, ctx.options->poll_interval);
    if (const auto* b = std::get_if<messages::token_batch>(&ev)) {
      note_batch(a, *b, session.now() - start);
    } else if (const auto* d = std::get_if<messages::request_done>(&ev)) {
      note_done(a, *d, session.now() - start);
      res.status = http_status(d->status);
      res.set_content(render_answer(a, with_tokens::yes), json_type);
      return;
    } else {
      const auto& e = std::get<session_error>(ev);
      log_failure(ctx, session.id(), e);
      return reply_error(res, http_status(e.why), e.message);
    }
  }
}

// One streaming request between httplib's calls of its content provider.
struct stream_state {
  submit_context ctx;
  std::unique_ptr<request_session> session;
  actors::time_point start;
  actors::time_point deadline;
  api_answer answer;
  bool over = false;
};

std::string event(std::string_view json) {
  std::string e = "data: ";
  e += json;
  e += "\n\n";
  return e;
}

// The text of the events `ev` makes (empty: none); sets `over` at the end.
std::string events_of(stream_state& st, const session_event& ev) {
  const actors::duration since = st.session->now() - st.start;
  if (const auto* b = std::get_if<messages::token_batch>(&ev)) {
    const token_delta delta = note_batch(st.answer, *b, since);
    if (delta.tokens.empty()) return {};
    return event(render_chunk(st.answer.id, delta.index, delta.tokens));
  }
  st.over = true;
  if (const auto* d = std::get_if<messages::request_done>(&ev)) {
    note_done(st.answer, *d, since);
    return event(render_answer(st.answer, with_tokens::no)) + event("[DONE]");
  }
  const auto& e = std::get<session_error>(ev);
  log_failure(st.ctx, st.session->id(), e);
  return event(render_error(e.message)) + event("[DONE]");
}

// httplib's content provider: one wait, then what it brought. Returning
// false (the client is gone) ends the response; the session's destructor
// then cancels the request.
bool pump(stream_state& st, httplib::DataSink& sink) {
  if (!st.over) {
    const session_event ev =
        st.session->next(st.deadline, *st.ctx.stopping, st.ctx.options->poll_interval);
    // httplib ends the stream at an empty write: never write one.
    const std::string text = events_of(st, ev);
    if (!text.empty() && !sink.write(text.data(), text.size())) return false;
  }
  if (st.over) sink.done();
  return true;
}

void answer_stream(const submit_context& ctx, std::unique_ptr<request_session> session,
                   httplib::Response& res) {
  auto st = std::make_shared<stream_state>();
  st->ctx = ctx;
  st->start = session->now();
  st->deadline = st->start + ctx.options->request_timeout;
  st->session = std::move(session);
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // nginx and the like: pass events on at once
  res.set_chunked_content_provider(
      event_stream_type,
      [st](std::size_t /*offset*/, httplib::DataSink& sink) { return pump(*st, sink); });
}

}  // namespace

void handle_submit(const submit_context& ctx, const httplib::Request& req, const std::string& body,
                   httplib::Response& res) {
  auto parsed = parse_api_request(body, ctx.options->limits);
  if (!parsed) return reply_error(res, 400, parsed.err().message());
  const bool stream = parsed->stream || wants_event_stream(req);
  auto session = std::make_unique<request_session>(*ctx.sys, ctx.coordinator);
  session->submit(to_submit(std::move(*parsed), stream));
  if (stream) return answer_stream(ctx, std::move(session), res);
  answer_whole(ctx, *session, res);
}

void reply_error(httplib::Response& res, int status, std::string_view message) {
  res.status = status;
  res.set_content(render_error(message), json_type);
}

}  // namespace accellm::coordinator::http
