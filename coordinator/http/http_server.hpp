// http_server: the coordinator daemon's HTTP front end (cpp-httplib).
//
//   POST /v1/requests  body as in api_request.hpp; each request becomes a
//                      SubmitRequest to the coordinator actor (request_session)
//     non-streaming:   200 with render_answer() once RequestDone arrives;
//                      500 failed, 503 cancelled / coordinator gone / stopping,
//                      504 past options.request_timeout, 502 undecodable reply
//     streaming ("stream": true, or Accept: text/event-stream): 200
//                      text/event-stream, one `data: <render_chunk>` event per
//                      TokenBatch, then `data: <render_answer without tokens>`
//                      (or `data: {"error":...}`) and `data: [DONE]`
//   GET /health        200 {"status":"ok","instances":N}, or 503
//                      {"status":"unavailable",...} when `health` says not ready
//   GET /metrics       text/plain; version=0.0.4: live_metrics::render()
//   other paths 404, other methods on these paths 405, a body over
//   options.max_body_bytes 413, a bad body 400; every error body is
//   {"error":"..."} naming the problem.
//
// Threads: start() binds, then runs httplib's accept loop on one thread of
// its own, which hands connections to a pool of options.threads workers. A
// request in flight holds one worker until it ends, and so does an idle
// keep-alive connection for up to options.keep_alive, so `threads` bounds
// the concurrent requests (more wait in the accept queue). stop() raises a flag
// that every wait looks at each options.poll_interval, stops accepting, and
// joins everything; an idle keep-alive connection delays it by up to
// options.keep_alive. A client that goes away mid-stream ends its request's
// stream at the next write, and the coordinator gets a Cancel. httplib's
// Server constructor ignores SIGPIPE for the whole process.
//
// Thread contract: construct, start() and stop() from one thread (the
// daemon's main). `health` is called from worker threads, concurrently;
// `metrics` must be safe likewise (live_metrics is). The actor system,
// `metrics` and whatever `health` uses must outlive the server; stop() (or
// the destructor) must run before the actor system is destroyed.
#pragma once

#include "common/result.hpp"
#include "coordinator/http/api_request.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace accellm::coordinator::http {

class live_metrics;

/// Every setting of the front end, durations included (STYLE.md rule 6).
struct http_options {
  std::string host = "127.0.0.1";  ///< address to listen on ("0.0.0.0": all)
  std::uint16_t port = 0;          ///< 0 = an ephemeral port (start() says which)
  std::size_t max_body_bytes = std::size_t{1} << 20;   ///< larger request bodies get 413
  std::size_t threads = 8;                             ///< worker threads = concurrent requests
  std::chrono::milliseconds request_timeout{120'000};  ///< submit to RequestDone, at most
  std::chrono::milliseconds poll_interval{50};         ///< how often waits look at stop()
  std::chrono::seconds io_timeout{10};                 ///< socket read and write timeout
  std::chrono::seconds keep_alive{2};      ///< an idle keep-alive connection closes after
  api_limits limits;                       ///< what a request may ask for
  std::shared_ptr<spdlog::logger> logger;  ///< null = no logging
};

/// What GET /health reports.
struct health_status {
  bool ready = false;  ///< false: 503 (e.g. no instance registered yet)
  std::uint32_t instances = 0;
};

class http_server {
 public:
  /// Nothing listens until start(). `coordinator` receives the
  /// SubmitRequests. `health` null: always ready with 0 instances. `metrics`
  /// null: GET /metrics answers 404.
  http_server(caf::actor_system& sys, caf::actor coordinator, http_options options,
              std::function<health_status()> health, live_metrics* metrics);
  /// Calls stop().
  ~http_server();

  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds options.host:options.port and starts serving; returns the bound
  /// port. Fails with errc::io_failure when the address is bad or in use
  /// (the port is not shared: no SO_REUSEPORT), errc::invalid_argument when
  /// called twice. At most one successful start() per object.
  result<std::uint16_t> start();

  /// Stops serving and joins every thread (see the top of this file).
  /// Idempotent; a no-op before start().
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace accellm::coordinator::http
