// submit_handler: POST /v1/requests of http_server (http_server.hpp has the
// HTTP contract). Internal to coordinator/http.
//
// Thread contract: handle_submit runs on an httplib worker thread and blocks
// it until the request ends (non-streaming) or returns at once leaving a
// content provider that httplib calls on the same thread (streaming).
#pragma once

#include "coordinator/http/http_server.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <httplib.h>

#include <atomic>
#include <string>

namespace accellm::coordinator::http {

/// What a request needs of its server; the server outlives every request
/// (stop() joins the workers).
struct submit_context {
  caf::actor_system* sys = nullptr;
  caf::actor coordinator;
  const http_options* options = nullptr;
  live_metrics* metrics = nullptr;  ///< may be null
  const std::atomic<bool>* stopping = nullptr;
};

/// Answers one POST /v1/requests whose body is `body` (already read and
/// within the size limit).
void handle_submit(const submit_context& ctx, const httplib::Request& req, const std::string& body,
                   httplib::Response& res);

/// Sets `res` to `status` with {"error": message}.
void reply_error(httplib::Response& res, int status, std::string_view message);

}  // namespace accellm::coordinator::http
