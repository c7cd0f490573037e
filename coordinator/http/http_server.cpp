#include "coordinator/http/http_server.hpp"

#include "coordinator/http/live_metrics.hpp"
#include "coordinator/http/submit_handler.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <system_error>
#include <thread>

namespace accellm::coordinator::http {
namespace {

constexpr const char* metrics_type = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* json_type = "application/json";

// Only SO_REUSEADDR: httplib's default adds SO_REUSEPORT, with which a second
// server on a port in use binds without error and steals half the requests.
void socket_options(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
}

// The error text of a status httplib set itself.
std::string default_error(const httplib::Request& req, int status) {
  switch (status) {
    case 404:
      return req.path + ": not found (endpoints: POST /v1/requests, GET /health, GET /metrics)";
    case 413:
      return "body: over the size limit";
    case 400:
      return "bad request: the HTTP message does not parse";
    default:
      return "HTTP status " + std::to_string(status);
  }
}

}  // namespace

struct http_server::impl {
  impl(caf::actor_system& sys, caf::actor coordinator, http_options opt,
       std::function<health_status()> health_fn, live_metrics* metrics_sink)
      : options(std::move(opt)), health(std::move(health_fn)), metrics(metrics_sink) {
    ctx = {.sys = &sys,
           .coordinator = std::move(coordinator),
           .options = &options,
           .metrics = metrics,
           .stopping = &stopping};
  }

  void configure();
  void add_routes();
  void add_method_errors();
  void on_health(httplib::Response& res) const;
  void on_metrics(httplib::Response& res) const;
  void on_post(const httplib::Request& req, httplib::Response& res,
               const httplib::ContentReader& reader) const;
  result<std::uint16_t> bind();
  void listen();

  http_options options;
  std::function<health_status()> health;
  live_metrics* metrics;
  std::atomic<bool> stopping{false};
  std::atomic<bool> listen_ended{false};  // the accept loop returned
  submit_context ctx;
  httplib::Server server;
  std::thread listener;
};

void http_server::impl::configure() {
  const std::size_t threads = std::max<std::size_t>(options.threads, 1);
  // httplib owns the queue it gets (a unique_ptr inside listen): its API
  // takes a raw pointer, hence the `new`.
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_socket_options(socket_options);
  server.set_payload_max_length(options.max_body_bytes);
  server.set_read_timeout(options.io_timeout);
  server.set_write_timeout(options.io_timeout);
  server.set_keep_alive_timeout(options.keep_alive.count());
  // Called for every status >= 400, ours included: fills only empty bodies.
  server.set_error_handler(
      httplib::Server::HandlerWithResponse{[](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        reply_error(res, res.status, default_error(req, res.status));
        return httplib::Server::HandlerResponse::Handled;
      }});
  server.set_exception_handler(
      [this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        if (options.logger) options.logger->error("http: {} {}: {}", req.method, req.path, what);
        reply_error(res, 500, "internal error: " + what);
      });
  if (options.logger) {
    server.set_logger(
        [log = options.logger](const httplib::Request& req, const httplib::Response& res) {
          log->debug("http: {} {} -> {}", req.method, req.path, res.status);
        });
  }
  add_routes();
  add_method_errors();
}

void http_server::impl::add_routes() {
  server.Post("/v1/requests",
              [this](const httplib::Request& req, httplib::Response& res,
                     const httplib::ContentReader& reader) { on_post(req, res, reader); });
  server.Get("/health",
             [this](const httplib::Request&, httplib::Response& res) { on_health(res); });
  server.Get("/metrics",
             [this](const httplib::Request&, httplib::Response& res) { on_metrics(res); });
}

// httplib answers 404 to a known path with another method; these routes
// make it a 405 with the Allow header.
void http_server::impl::add_method_errors() {
  struct route {
    const char* path;
    const char* allowed;
  };
  for (const route r : {route{"/v1/requests", "POST"}, route{"/health", "GET, HEAD"},
                        route{"/metrics", "GET, HEAD"}}) {
    const std::string allowed = r.allowed;
    auto refuse = [allowed](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Allow", allowed);
      reply_error(res, 405,
                  req.method + " " + req.path + ": method not allowed (allowed: " + allowed + ")");
    };
    if (allowed != "POST") server.Post(r.path, refuse);
    if (allowed == "POST") server.Get(r.path, refuse);
    server.Put(r.path, refuse);
    server.Patch(r.path, refuse);
    server.Delete(r.path, refuse);
    server.Options(r.path, refuse);
  }
}

void http_server::impl::on_health(httplib::Response& res) const {
  const health_status h = health ? health() : health_status{.ready = true, .instances = 0};
  nlohmann::ordered_json j;
  j["status"] = h.ready ? "ok" : "unavailable";
  j["instances"] = h.instances;
  res.status = h.ready ? 200 : 503;
  res.set_content(j.dump(), json_type);
}

void http_server::impl::on_metrics(httplib::Response& res) const {
  if (metrics == nullptr) return reply_error(res, 404, "/metrics: metrics are not enabled");
  res.set_content(metrics->render(), metrics_type);
}

void http_server::impl::on_post(const httplib::Request& req, httplib::Response& res,
                                const httplib::ContentReader& reader) const {
  // Read here, not by httplib: its limit does not apply to chunked bodies.
  // Past the limit the rest is read and dropped, up to one more limit's
  // worth, so that the client, still sending, gets the 413 instead of a
  // reset connection; a longer body is cut off.
  std::string body;
  std::size_t dropped = 0;
  const std::size_t limit = options.max_body_bytes;
  const bool read = reader([&body, &dropped, limit](const char* data, std::size_t n) {
    if (dropped == 0 && body.size() + n <= limit) {
      body.append(data, n);
      return true;
    }
    dropped += n;
    return dropped <= limit;
  });
  const bool too_large = dropped > 0;
  if (too_large || res.status == 413) {
    return reply_error(
        res, 413, "body: over the limit of " + std::to_string(options.max_body_bytes) + " bytes");
  }
  if (!read) return reply_error(res, 400, "body: could not be read");
  handle_submit(ctx, req, body, res);
}

result<std::uint16_t> http_server::impl::bind() {
  errno = 0;
  int port = options.port;
  if (options.port == 0) {
    port = server.bind_to_any_port(options.host);
  } else if (!server.bind_to_port(options.host, options.port)) {
    port = -1;
  }
  if (port > 0) return static_cast<std::uint16_t>(port);
  const std::string why = errno != 0 ? std::generic_category().message(errno)
                                     : std::string{"the address does not resolve"};
  return fail(errc::io_failure, "http: cannot listen on " + options.host + ":" +
                                    std::to_string(options.port) + ": " + why);
}

void http_server::impl::listen() {
  const bool ok = server.listen_after_bind();
  listen_ended = true;
  if (!ok && !stopping && options.logger) {
    options.logger->error("http: the accept loop failed; no longer serving");
  }
}

http_server::http_server(caf::actor_system& sys, caf::actor coordinator, http_options options,
                         std::function<health_status()> health, live_metrics* metrics)
    : impl_(std::make_unique<impl>(sys, std::move(coordinator), std::move(options),
                                   std::move(health), metrics)) {
  impl_->configure();
}

http_server::~http_server() {
  stop();
}

result<std::uint16_t> http_server::start() {
  if (impl_->listener.joinable() || impl_->stopping) {
    return fail(errc::invalid_argument, "http: start() called twice");
  }
  auto port = impl_->bind();
  if (!port) return port;
  impl_->listener = std::thread([this] { impl_->listen(); });
  // httplib's stop() does nothing until the accept loop has started: wait
  // for it, so that a stop() right after start() cannot be lost.
  while (!impl_->server.is_running() && !impl_->listen_ended) std::this_thread::yield();
  if (impl_->listen_ended && !impl_->server.is_running()) {
    impl_->listener.join();
    return fail(errc::io_failure,
                "http: the accept loop on port " + std::to_string(*port) + " ended at once");
  }
  if (impl_->options.logger) {
    impl_->options.logger->info("http: listening on {}:{}", impl_->options.host, *port);
  }
  return port;
}

void http_server::stop() {
  if (!impl_->listener.joinable()) return;
  impl_->stopping = true;
  impl_->server.stop();
  impl_->listener.join();
  if (impl_->options.logger) impl_->options.logger->info("http: stopped");
}

}  // namespace accellm::coordinator::http
