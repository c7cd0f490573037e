#include "actors/transport.hpp"

#include "messages/codec.hpp"

#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>
#include <caf/settings.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

namespace accellm::actors {

namespace detail {
bool openssl_errors_cleared() noexcept;   // openssl_errors.cpp
bool basp_frame_limit_active() noexcept;  // basp_frame_limit.cpp
}  // namespace detail

namespace {

std::string ms(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + "ms";
}

error bad_field(std::string_view field, std::string why) {
  return fail(errc::config, "transport." + std::string{field} + ": " + std::move(why));
}

status check_durations(const transport_options& o) {
  if (o.heartbeat_interval.count() <= 0)
    return bad_field("heartbeat_interval",
                     ms(o.heartbeat_interval) +
                         " must be positive (without heartbeats a hung peer is never detected)");
  if (o.connection_timeout <= o.heartbeat_interval)
    return bad_field("connection_timeout", ms(o.connection_timeout) +
                                               " must exceed transport.heartbeat_interval (" +
                                               ms(o.heartbeat_interval) + ")");
  if (o.connect_timeout.count() <= 0)
    return bad_field("connect_timeout", ms(o.connect_timeout) + " must be positive");
  return {};
}

status check_message_bound(const transport_options& o) {
  static_assert(transport_options{}.max_message_bytes > messages::decode_limits{}.kv_bytes,
                "the default frame bound must admit the largest message accellm sends");
  constexpr std::uint64_t header_max = std::numeric_limits<std::uint32_t>::max();
  if (o.max_message_bytes < handshake_frame_limit || o.max_message_bytes > header_max) {
    return bad_field("max_message_bytes", std::to_string(o.max_message_bytes) + " must be in " +
                                              std::to_string(handshake_frame_limit) + ".." +
                                              std::to_string(header_max));
  }
  return {};
}

status check_readable(std::string_view field, const std::string& path) {
  if (path.empty()) return bad_field(field, "required when transport.tls is on");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return bad_field(field, path + " does not exist or is not a regular file");
  std::ifstream in{path};
  if (!in || in.peek() == std::ifstream::traits_type::eof())
    return bad_field(field, path + " cannot be read or is empty");
  return {};
}

// Drains OpenSSL's thread-local error queue into one line.
std::string ssl_errors() {
  std::string out;
  while (auto code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no OpenSSL error reported" : out;
}

struct key_password {
  const std::string* passphrase;
  bool asked = false;
};

// Without a passphrase OpenSSL's default callback would prompt on the terminal
// (CAF installs its callback only for a non-empty passphrase), so an encrypted
// key must fail here, not hang a daemon.
int password_callback(char* buf, int size, int, void* user) {
  auto* pw = static_cast<key_password*>(user);
  pw->asked = true;
  if (pw->passphrase->empty() || size <= 0) return -1;
  auto n = std::min(pw->passphrase->size(), static_cast<std::size_t>(size));
  std::copy_n(pw->passphrase->data(), n, buf);
  return static_cast<int>(n);
}

status check_chain(SSL_CTX* ctx, const transport_options& o) {
  X509* leaf = SSL_CTX_get0_certificate(ctx);
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx, &chain);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> check{X509_STORE_CTX_new(),
                                                                        &X509_STORE_CTX_free};
  if (!check || X509_STORE_CTX_init(check.get(), SSL_CTX_get_cert_store(ctx), leaf, chain) != 1)
    return fail(errc::internal,
                "transport: cannot set up certificate verification: " + ssl_errors());
  if (X509_verify_cert(check.get()) == 1) return {};
  return bad_field("certificate",
                   o.certificate + " does not verify against transport.ca_file " + o.ca_file +
                       ": " + X509_verify_cert_error_string(X509_STORE_CTX_get_error(check.get())));
}

// Loads the files with the calls CAF's openssl::session makes, plus a check
// that our own certificate chains to the CA: peers holding the same CA file
// would reject it anyway, only later and with a vaguer error.
status load_tls_files(const transport_options& o) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{SSL_CTX_new(TLS_method()), &SSL_CTX_free};
  if (!ctx) return fail(errc::internal, "transport: cannot create a TLS context: " + ssl_errors());
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), o.certificate.c_str()) != 1)
    return bad_field("certificate",
                     o.certificate + " is not a PEM certificate chain: " + ssl_errors());
  key_password pw{&o.passphrase};
  SSL_CTX_set_default_passwd_cb(ctx.get(), password_callback);
  SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), &pw);
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), o.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
      return bad_field("key", o.key + " does not belong to transport.certificate " + o.certificate);
    if (pw.asked && o.passphrase.empty())
      return bad_field("key", o.key + " is encrypted and transport.passphrase is empty");
    if (pw.asked) return bad_field("passphrase", "does not decrypt " + o.key + ": " + ssl_errors());
    return bad_field("key", o.key + " is not a PEM private key: " + ssl_errors());
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return bad_field("key", o.key + " does not belong to transport.certificate " + o.certificate);
  if (SSL_CTX_load_verify_locations(ctx.get(), o.ca_file.c_str(), nullptr) != 1)
    return bad_field("ca_file", o.ca_file + " holds no PEM CA certificate: " + ssl_errors());
  return check_chain(ctx.get(), o);
}

status check_tls_files(const transport_options& o) {
  ACCELLM_TRY(check_readable("certificate", o.certificate));
  ACCELLM_TRY(check_readable("key", o.key));
  ACCELLM_TRY(check_readable("ca_file", o.ca_file));
  // OpenSSL's error queue is per thread: leave nothing behind for whoever
  // calls OpenSSL on this thread next.
  ERR_clear_error();
  auto st = load_tls_files(o);
  ERR_clear_error();
  return st;
}

std::string where(const std::string& host, std::uint16_t port, const transport_options& o) {
  auto out = to_string(endpoint{host.empty() ? "*" : host, port});
  return o.tls ? out + " (TLS)" : out;
}

// The middleman actor that opens plain or TLS sockets; both share one BASP
// broker, so a TLS node can also publish or connect in plain.
result<caf::io::middleman_actor> middleman_for(caf::actor_system& sys, const transport_options& o) {
  if (!sys.has_middleman())
    return fail(errc::config,
                "transport: the actor system has no middleman; call actors::apply() on its config");
  auto interval = caf::get_or(sys.config(), "middleman.heartbeat-interval", caf::timespan{0});
  auto timeout = caf::get_or(sys.config(), "middleman.connection-timeout", caf::timespan{0});
  if (interval != o.heartbeat_interval || timeout != o.connection_timeout)
    return fail(errc::config,
                "transport: the actor system runs other heartbeat settings than these options; "
                "call actors::apply() with them on its config");
  if (!o.tls) return sys.middleman().actor_handle();
  if (!sys.has_openssl_manager())
    return bad_field("tls",
                     "on, but the actor system has no TLS; call actors::apply() with "
                     "these options on its config");
  return sys.openssl_manager().actor_handle();
}

std::string hint(const caf::error& e, const transport_options& o) {
  if (e == caf::sec::cannot_connect_to_node && o.tls)
    return " (nobody listens there, or the peer does not speak TLS)";
  if (e == caf::sec::disconnect_during_handshake)
    return " (the peer closed the connection in the handshake: TLS at one end only, or a "
           "certificate that the other end's CA did not sign?)";
  if (e == caf::sec::connection_timeout)
    return " (no handshake within the heartbeat interval: is the peer hung, not a CAF node, or "
           "further away than transport.heartbeat_interval?)";
  if (e == caf::sec::request_timeout) return " (no answer within transport.connect_timeout)";
  return {};
}

}  // namespace

status transport_options::validate() const {
  ACCELLM_TRY(check_durations(*this));
  ACCELLM_TRY(check_message_bound(*this));
  if (tls) ACCELLM_TRY(check_tls_files(*this));
  return {};
}

status apply(const transport_options& opts, caf::actor_system_config& cfg) {
  ACCELLM_TRY(opts.validate());
  if (!detail::basp_frame_limit_active()) {
    return fail(errc::internal,
                "transport: the bound on incoming BASP frames is not in effect (the binary does "
                "not export basp_frame_limit.cpp's definition over libcaf_io's)");
  }
  cfg.load<caf::io::middleman>();
  cfg.set("middleman.heartbeat-interval", caf::timespan{opts.heartbeat_interval});
  cfg.set("middleman.connection-timeout", caf::timespan{opts.connection_timeout});
  caf::put(cfg.content, max_message_bytes_key,
           static_cast<caf::config_value::integer>(opts.max_message_bytes));
  if (opts.tls) {
    // CAF 0.17 leaves OpenSSL's error queue dirty (openssl_errors.cpp).
    if (!detail::openssl_errors_cleared()) return fail(errc::internal, "OpenSSL shim missing");
    // The manager needs the middleman, which must therefore be loaded first.
    cfg.load<caf::openssl::manager>();
    cfg.set("openssl.certificate", opts.certificate);
    cfg.set("openssl.key", opts.key);
    cfg.set("openssl.cafile", opts.ca_file);
    cfg.set("openssl.passphrase", opts.passphrase);
  }
  return {};
}

result<endpoint> parse_endpoint(std::string_view text) {
  auto bad = [text](std::string_view why) {
    return fail(errc::invalid_argument,
                "'" + std::string{text} + "' is not HOST:PORT: " + std::string{why});
  };
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return bad("'[' without ']'");
    host = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return bad("missing ':' after ']'");
    port = rest.substr(1);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("missing ':'");
    host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos)
      return bad("an IPv6 address needs brackets, as in [::1]:7600");
    port = text.substr(colon + 1);
  }
  if (host.empty()) return bad("empty host");
  if (std::any_of(host.begin(), host.end(), [](char c) { return std::isspace(c) != 0; }))
    return bad("white space in the host");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value > 65535)
    return bad("port '" + std::string{port} + "' is not a number in 0..65535");
  return endpoint{std::string{host}, static_cast<std::uint16_t>(value)};
}

std::string to_string(const endpoint& ep) {
  auto port = ":" + std::to_string(ep.port);
  if (ep.host.find(':') != std::string::npos) return "[" + ep.host + "]" + port;
  return ep.host + port;
}

namespace detail {

result<std::uint16_t> publish(caf::actor_system& sys, caf::strong_actor_ptr whom,
                              std::set<std::string> interface, const std::string& host,
                              std::uint16_t port, const transport_options& opts) {
  auto at = where(host, port, opts);
  if (!whom) return fail(errc::invalid_argument, "cannot listen on " + at + ": no actor to serve");
  caf::io::middleman_actor mm;
  ACCELLM_TRY_ASSIGN(mm, middleman_for(sys, opts));
  result<std::uint16_t> out = fail(errc::internal, "cannot listen on " + at + ": no answer");
  caf::scoped_actor self{sys};
  self->request(mm, caf::timespan{opts.connect_timeout}, caf::publish_atom_v, port, std::move(whom),
                std::move(interface), host, opts.reuse_address)
      .receive([&out](std::uint16_t actual) { out = actual; },
               [&](const caf::error& e) {
                 out = fail(errc::io_failure, "cannot listen on " + at + ": " + sys.render(e));
               });
  return out;
}

status unpublish(caf::actor_system& sys, const caf::actor_addr& whom, std::uint16_t port,
                 const transport_options& opts) {
  caf::io::middleman_actor mm;
  ACCELLM_TRY_ASSIGN(mm, middleman_for(sys, opts));
  caf::anon_send(mm, caf::unpublish_atom_v, whom, port);  // no answer: reacts_to
  return {};
}

result<caf::strong_actor_ptr> connect(caf::actor_system& sys, const std::string& host,
                                      std::uint16_t port, const transport_options& opts,
                                      const std::set<std::string>& interface) {
  auto at = where(host, port, opts);
  if (host.empty() || port == 0)
    return fail(errc::invalid_argument, "cannot connect to " + at + ": need a host and a port");
  caf::io::middleman_actor mm;
  ACCELLM_TRY_ASSIGN(mm, middleman_for(sys, opts));
  // CAF creates the client's connection state with last_seen = 0, so a
  // heartbeat tick between the TCP connect and the peer's first bytes closes
  // it with connection_timeout: about handshake time / heartbeat_interval of
  // all tries (TLS on a busy loopback at 100 ms: 31 of 500). A retry starts
  // right after a tick, a whole interval before the next, so it succeeds
  // (0 of 300 failed); a hung peer still fails after max_tries intervals.
  constexpr int max_tries = 3;
  caf::scoped_actor self{sys};
  const auto deadline = sys.clock().now() + caf::timespan{opts.connect_timeout};
  for (int tries = 1;; ++tries) {
    auto left = deadline - sys.clock().now();
    if (left <= caf::timespan{0})
      return fail(errc::io_failure,
                  "cannot connect to " + at + ": no handshake within " + ms(opts.connect_timeout));
    caf::error err;
    caf::strong_actor_ptr ptr;
    std::set<std::string> served;
    self->request(mm, left, caf::connect_atom_v, host, port)
        .receive(
            [&](const caf::node_id&, caf::strong_actor_ptr& p, std::set<std::string>& s) {
              ptr = std::move(p);
              served = std::move(s);
            },
            [&err](caf::error& e) { err = std::move(e); });
    if (err == caf::sec::connection_timeout && tries < max_tries) continue;
    if (err)
      return fail(errc::io_failure,
                  "cannot connect to " + at + ": " + sys.render(err) + hint(err, opts));
    if (!ptr)
      return fail(errc::io_failure, "cannot connect to " + at + ": no actor published there");
    if (!sys.assignable(served, interface))
      return fail(errc::io_failure, "cannot connect to " + at +
                                        ": the published actor has another interface than the "
                                        "handle type asked for");
    return ptr;
  }
}

}  // namespace detail

}  // namespace accellm::actors
