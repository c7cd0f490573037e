// transport: how accellm daemons reach each other over the network.
//
// Daemons talk CAF remoting (BASP over TCP, optionally inside TLS). Every
// process builds its config, calls apply() with the same transport_options as
// every other node of the cluster, then publishes or connects:
//
//   actors::system_config cfg;
//   if (auto st = actors::apply(opts, cfg); !st) return st;
//   caf::actor_system sys{cfg};
//   auto port = actors::publish(sys, coordinator, "0.0.0.0", 7600, opts);   // coordinator
//   auto coord = actors::connect(sys, "10.0.0.1", 7600, opts);              // worker
//
// Failure detection: CAF closes a connection that received no bytes for
// connection_timeout and reports every actor behind it down
// (exit_reason::remote_link_unreachable). The check runs on each heartbeat
// tick, so a hung peer (stopped process, partition) is seen after about
// connection_timeout + heartbeat_interval (600 ms with the defaults); a crashed
// one within milliseconds (TCP close). Heartbeats must be on at BOTH ends:
// the timeout counts from the last bytes received, so a node without
// heartbeats looks dead to an idle peer that has them (stack notes, sec. 3).
//
// TLS (caf::openssl): with tls on, both ends present a certificate and both
// verify the peer's chain against ca_file (CAF sets SSL_VERIFY_PEER |
// SSL_VERIFY_FAIL_IF_NO_PEER_CERT on clients and servers alike). CAF checks no
// host name: any certificate signed by the CA is accepted from any address,
// so the CA is the cluster's trust boundary. A plain node cannot talk to a TLS
// port or the reverse; such a connect fails (bounded by connect_timeout).
//
// Message size: a BASP header announces up to 4 GiB - 1 of payload, and CAF
// 0.17 allocates that much before reading it, with no setting to refuse it.
// basp_frame_limit.cpp bounds it: a frame over handshake_frame_limit from a
// peer that has not completed CAF's handshake, or over
// transport_options::max_message_bytes after it, closes the connection
// before any payload buffer exists (counted by oversized_frames(), reported
// to on_oversized_frame()). Inside a frame, what a message may contain is
// bounded by messages::decode_limits when it is decoded.
//
// Thread contract: transport_options is a value type; apply() runs before the
// actor_system exists; publish() and connect() block the calling thread (not
// an actor's) for at most connect_timeout and may be called from any
// non-actor thread.
#pragma once

#include "common/result.hpp"

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_control_block.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>

namespace accellm::actors {

/// The largest BASP frame accepted from a peer before CAF's handshake with it
/// is done (the handshake itself is a few hundred bytes).
inline constexpr std::uint64_t handshake_frame_limit = 64 * 1024;

/// The actor_system_config key apply() stores max_message_bytes under.
inline constexpr const char* max_message_bytes_key = "accellm.max-message-bytes";

/// Network settings of a daemon; every node of a cluster uses the same values.
struct transport_options {
  /// Interval of the BASP heartbeats sent on every connection
  /// ("middleman.heartbeat-interval"). Must be positive: without heartbeats a
  /// hung peer is never detected. Must also exceed the time a connect waits
  /// for the peer's first bytes (TCP and TLS round trips): CAF closes a new
  /// client connection that has received nothing by its next heartbeat tick.
  std::chrono::milliseconds heartbeat_interval{100};
  /// A connection that received nothing for this long is closed and its
  /// actors are reported down ("middleman.connection-timeout"). Must exceed
  /// heartbeat_interval; at least twice it leaves room for scheduling jitter.
  std::chrono::milliseconds connection_timeout{500};
  /// The largest BASP frame (one message and CAF's envelope) accepted from a
  /// peer; a larger one closes its connection. The default leaves room for
  /// the largest message accellm sends, a KvLayer of up to
  /// messages::decode_limits::kv_bytes (1 GiB). At least
  /// handshake_frame_limit, at most 4 GiB - 1 (what a header can announce).
  std::uint64_t max_message_bytes = (std::uint64_t{1} << 30) + (std::uint64_t{1} << 20);
  /// Upper bound of one publish() or connect() call, handshakes included.
  std::chrono::milliseconds connect_timeout{5000};
  /// SO_REUSEADDR on listening sockets, so a restarted daemon can bind its
  /// port while connections of its predecessor linger in TIME_WAIT.
  bool reuse_address = true;
  /// Whether connections run inside TLS with mutual certificate checks.
  bool tls = false;
  /// PEM certificate chain of this node ("openssl.certificate"); with tls.
  std::string certificate;
  /// PEM private key of `certificate` ("openssl.key"); with tls.
  std::string key;
  /// PEM file of the CA certificates that sign peers ("openssl.cafile").
  std::string ca_file;
  /// Passphrase of an encrypted `key` ("openssl.passphrase"); may be empty.
  std::string passphrase;

  /// Checks every field; the error (errc::config) names the first bad one,
  /// e.g. "transport.connection_timeout: 100ms must exceed
  /// transport.heartbeat_interval (100ms)". With tls on it also reads the
  /// three files through OpenSSL the way CAF will (certificate chain, key with
  /// the passphrase, key matches certificate, CA file), because CAF itself
  /// only notices a bad file at the first connection, by throwing on a
  /// network thread, which ends the process. TLS fields are ignored with tls
  /// off.
  status validate() const;
};

/// Validates `opts` and configures `cfg` with them: loads caf::io::middleman
/// (and caf::openssl::manager with tls), sets the heartbeat and timeout keys
/// and the openssl.* keys. Call once per config, before the actor_system is
/// built from it. Fails with validate()'s error and leaves `cfg` untouched.
status apply(const transport_options& opts, caf::actor_system_config& cfg);

/// Connections this process closed because a frame was over its bound.
std::uint64_t oversized_frames() noexcept;

/// `log` gets one line for each such connection, on a network thread; it
/// replaces the previous one (none: nothing is reported but the count).
void on_oversized_frame(std::function<void(const std::string&)> log);

/// A "HOST:PORT" address.
struct endpoint {
  std::string host;        ///< name or address; IPv6 without brackets
  std::uint16_t port = 0;  ///< 0 only makes sense to listen (any free port)

  friend bool operator==(const endpoint&, const endpoint&) = default;
};

/// Parses "HOST:PORT" or "[IPV6]:PORT"; errc::invalid_argument naming the
/// text and the problem (missing ':', empty host, port not a number in
/// 0..65535, unclosed '[').
result<endpoint> parse_endpoint(std::string_view text);

/// "host:port", with brackets around an IPv6 host.
std::string to_string(const endpoint& ep);

namespace detail {

/// Untyped cores of publish() and connect() below; `interface` is the
/// messaging interface of the handle type (empty for caf::actor).
result<std::uint16_t> publish(caf::actor_system& sys, caf::strong_actor_ptr whom,
                              std::set<std::string> interface, const std::string& host,
                              std::uint16_t port, const transport_options& opts);
result<caf::strong_actor_ptr> connect(caf::actor_system& sys, const std::string& host,
                                      std::uint16_t port, const transport_options& opts,
                                      const std::set<std::string>& interface);
status unpublish(caf::actor_system& sys, const caf::actor_addr& whom, std::uint16_t port,
                 const transport_options& opts);

}  // namespace detail

/// Listens on host:port (host "" or "0.0.0.0": every interface; port 0: any
/// free port) and serves `whom` to nodes that connect() there; TLS when
/// opts.tls. Returns the bound port, or errc::io_failure
/// ("cannot listen on 10.0.0.1:7600: ...") or errc::config when `sys` was not
/// configured by apply() for `opts`. Blocks for at most opts.connect_timeout.
template <class Handle>
result<std::uint16_t> publish(caf::actor_system& sys, const Handle& whom, const std::string& host,
                              std::uint16_t port, const transport_options& opts) {
  return detail::publish(sys, caf::actor_cast<caf::strong_actor_ptr>(whom), sys.message_types(whom),
                         host, port, opts);
}

/// Stops serving `whom` at `port` (what publish() returned) and closes that
/// listening socket, so the port can be published again: the middleman
/// handles it before any publish() this thread asks for afterwards.
/// errc::config when `sys` was not configured by apply() for `opts`.
template <class Handle>
status unpublish(caf::actor_system& sys, const Handle& whom, std::uint16_t port,
                 const transport_options& opts) {
  return detail::unpublish(sys, caf::actor_cast<caf::actor_addr>(whom), port, opts);
}

/// Connects to the actor published at host:port and returns its proxy, whose
/// handle type must match the published one (caf::actor for a dynamically
/// typed actor). TLS when opts.tls. Errors (errc::io_failure) name the address
/// and CAF's reason ("cannot connect to 10.0.0.1:7600: ..."); never blocks
/// for more than opts.connect_timeout.
template <class Handle = caf::actor>
result<Handle> connect(caf::actor_system& sys, const std::string& host, std::uint16_t port,
                       const transport_options& opts) {
  auto ptr =
      detail::connect(sys, host, port, opts, sys.message_types(caf::detail::type_list<Handle>{}));
  if (!ptr) return std::move(ptr).err();
  return caf::actor_cast<Handle>(std::move(*ptr));
}

}  // namespace accellm::actors
