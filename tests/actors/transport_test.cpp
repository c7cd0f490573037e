#include "actors/transport.hpp"

#include "actors/atoms.hpp"
#include "actors/system_config.hpp"
#include "tests/support/raw_basp.hpp"

#include <arpa/inet.h>
#include <caf/all.hpp>
#include <caf/io/basp/header.hpp>
#include <caf/io/basp/message_type.hpp>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

extern char** environ;

namespace accellm::actors {
namespace {

using namespace std::chrono_literals;
// Detection latency is a property of real time, so these tests read the
// steady clock themselves.
using steady = std::chrono::steady_clock;
// Also defined in transport_test_peer.cpp: the peer's greeting.
using hello_atom = caf::atom_constant<caf::atom("hello")>;

// Answers ping with (pong, name). Spawned with an argument: CAF 0.17 binds a
// null reference (UBSan reports it) for functions without one.
caf::behavior ponger(std::string name) {
  return {[name](ping_atom) { return caf::make_message(pong_atom::value, name); }};
}

using pong_actor = caf::typed_actor<caf::replies_to<ping_atom>::with<pong_atom, std::string>>;

pong_actor::behavior_type typed_ponger(std::string name) {
  return {[name](ping_atom) { return std::make_tuple(pong_atom::value, name); }};
}

caf::behavior relay(caf::actor to) {
  return {[to](hello_atom, caf::actor peer) { caf::anon_send(to, hello_atom::value, peer); }};
}

// One daemon: a config set up by apply() and its actor system. Exits the
// actors it spawned first, since ~actor_system waits for every live actor.
class node {
 public:
  explicit node(const transport_options& opts) : applied_(apply(opts, cfg_)) {}
  ~node() {
    for (const auto& a : spawned_) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
  system_config& cfg() { return cfg_; }
  const status& applied() const { return applied_; }
  caf::actor_system& sys() {
    if (!sys_) sys_ = std::make_unique<caf::actor_system>(cfg_);
    return *sys_;
  }
  template <class... Ts>
  auto spawn(Ts&&... xs) {
    auto handle = sys().spawn(std::forward<Ts>(xs)...);
    spawned_.push_back(caf::actor_cast<caf::actor>(handle));
    return handle;
  }

 private:
  system_config cfg_;
  status applied_;
  std::unique_ptr<caf::actor_system> sys_;
  std::vector<caf::actor> spawned_;
};

// Publishes a ponger of `n` on 127.0.0.1 at any free port; 0 on failure.
std::uint16_t serve(node& n, const transport_options& opts) {
  EXPECT_TRUE(n.applied()) << n.applied().err().what();
  auto port = publish(n.sys(), n.spawn(ponger, "server"), "127.0.0.1", 0, opts);
  EXPECT_TRUE(port) << port.err().what();
  return port ? *port : 0;
}

// Asks `to` (a blob_sizer) for the size of `bytes` bytes: the size, or -1.
// A dropped connection loses the request: it ends by its timeout.
long long blob_size(caf::actor_system& sys, const caf::actor& to, std::size_t bytes) {
  long long out = -1;
  caf::scoped_actor self{sys};
  self->request(to, 2s, std::vector<char>(bytes, 'x'))
      .receive([&](std::uint64_t n) { out = static_cast<long long>(n); },
               [&](const caf::error&) {});
  return out;
}

caf::behavior blob_sizer() {
  return {[](const std::vector<char>& b) { return static_cast<std::uint64_t>(b.size()); }};
}

// Pings `to` and expects the answer from the ponger called `name`.
::testing::AssertionResult pings(caf::actor_system& sys, const caf::actor& to,
                                 const std::string& name = "server") {
  auto out = ::testing::AssertionFailure() << "no answer";
  caf::scoped_actor self{sys};
  self->request(to, 5s, ping_atom::value)
      .receive(
          [&](pong_atom, const std::string& from) {
            out = from == name ? ::testing::AssertionSuccess()
                               : ::testing::AssertionFailure() << "answered by " << from;
          },
          [&](const caf::error& e) { out = ::testing::AssertionFailure() << sys.render(e); });
  return out;
}

// A TCP port on 127.0.0.1 whose connections the kernel accepts and nobody
// ever answers: a hung node. Destroyed, it leaves a port nobody listens on.
class silent_listener {
 public:
  silent_listener() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 || listen(fd_, 8) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      ADD_FAILURE() << "cannot open a listening socket";
    port_ = ntohs(a.sin_port);
  }
  ~silent_listener() { close(fd_); }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = socket(AF_INET, SOCK_STREAM, 0);
  std::uint16_t port_ = 0;
};

// transport_test_peer in a child process, killed with the object.
class peer_process {
 public:
  explicit peer_process(std::uint16_t port) {
    std::string exe = ACCELLM_TRANSPORT_PEER;
    std::string arg = std::to_string(port);
    char* argv[] = {exe.data(), arg.data(), nullptr};
    if (posix_spawn(&pid_, exe.c_str(), nullptr, nullptr, argv, environ) != 0) pid_ = -1;
  }
  ~peer_process() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

void expect_bad(const transport_options& o, std::string_view field, std::string_view detail = "") {
  auto st = o.validate();
  ASSERT_FALSE(st) << "expected an error naming " << field;
  EXPECT_EQ(st.err().code(), errc::config);
  EXPECT_NE(st.err().message().find("transport." + std::string{field}), std::string::npos)
      << st.err().message();
  EXPECT_NE(st.err().message().find(detail), std::string::npos) << st.err().message();
}

TEST(transport_options, defaults_are_valid_and_detect_a_hung_node_within_a_second) {
  transport_options o;
  EXPECT_TRUE(o.validate());
  EXPECT_LT(o.connection_timeout + o.heartbeat_interval, 1s);
}

TEST(transport_options, each_bad_duration_is_named) {
  transport_options o;
  o.heartbeat_interval = 0ms;
  expect_bad(o, "heartbeat_interval", "must be positive");
  o = {};
  o.connection_timeout = o.heartbeat_interval;
  expect_bad(o, "connection_timeout", "must exceed transport.heartbeat_interval (100ms)");
  o = {};
  o.connect_timeout = -1ms;
  expect_bad(o, "connect_timeout");
}

TEST(transport_options, tls_needs_its_files) {
  transport_options o;
  o.tls = true;
  expect_bad(o, "certificate", "required when transport.tls is on");
  o.certificate = "/nonexistent/node.pem";
  expect_bad(o, "certificate", "/nonexistent/node.pem does not exist");
  o.tls = false;  // TLS fields do not matter with TLS off
  EXPECT_TRUE(o.validate());
}

TEST(transport_options, apply_refuses_bad_options_and_leaves_the_config_alone) {
  transport_options o;
  o.connection_timeout = 50ms;
  system_config cfg;
  auto st = apply(o, cfg);
  ASSERT_FALSE(st);
  EXPECT_NE(st.err().message().find("transport.connection_timeout"), std::string::npos);
  EXPECT_TRUE(cfg.module_factories.empty());
}

TEST(transport_options, the_message_bound_is_checked) {
  transport_options o;
  o.max_message_bytes = handshake_frame_limit - 1;
  expect_bad(o, "max_message_bytes", "must be in 65536..4294967295");
  o.max_message_bytes = std::uint64_t{1} << 32;
  expect_bad(o, "max_message_bytes", "must be in");
  o.max_message_bytes = handshake_frame_limit;
  EXPECT_TRUE(o.validate());
}

TEST(endpoint, parses_host_and_port) {
  EXPECT_EQ(*parse_endpoint("10.0.0.1:7600"), (endpoint{"10.0.0.1", 7600}));
  EXPECT_EQ(*parse_endpoint("node-3.example:1"), (endpoint{"node-3.example", 1}));
  EXPECT_EQ(*parse_endpoint("[::1]:65535"), (endpoint{"::1", 65535}));
  EXPECT_EQ(*parse_endpoint("localhost:0"), (endpoint{"localhost", 0}));
  EXPECT_EQ(to_string(endpoint{"::1", 7600}), "[::1]:7600");
  EXPECT_EQ(to_string(*parse_endpoint("h:7")), "h:7");
}

TEST(endpoint, names_what_is_wrong) {
  const std::pair<const char*, const char*> bad[] = {
      {"10.0.0.1", "missing ':'"},      {":7600", "empty host"},
      {"h:", "port '' is not"},         {"h:65536", "port '65536' is not"},
      {"h:76a", "port '76a' is not"},   {"h:-1", "port '-1' is not"},
      {"[::1:7600", "'[' without ']'"}, {"[::1]7600", "missing ':' after ']'"},
      {"::1:7600", "needs brackets"},   {"my host:1", "white space"},
      {"[]:7600", "empty host"},        {"", "missing ':'"},
  };
  for (const auto& [text, why] : bad) {
    auto r = parse_endpoint(text);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.err().code(), errc::invalid_argument);
    EXPECT_NE(r.err().message().find(why), std::string::npos) << r.err().message();
    EXPECT_NE(r.err().message().find("'" + std::string{text} + "'"), std::string::npos);
  }
}

TEST(transport, plain_publish_connect_and_ping) {
  transport_options opts;
  node a{opts};
  node b{opts};
  auto port = serve(a, opts);
  auto remote = connect(b.sys(), "127.0.0.1", port, opts);
  ASSERT_TRUE(remote) << remote.err().what();
  EXPECT_TRUE(pings(b.sys(), *remote));
}

// Without the bound, CAF allocates what a header announces (here 3 GiB) and
// then waits for it forever: the connection stays open.
TEST(transport, a_huge_frame_before_the_handshake_closes_the_connection) {
  transport_options opts;
  node a{opts};
  auto port = serve(a, opts);
  ASSERT_NE(port, 0);
  std::vector<std::string> lines;
  std::mutex m;
  on_oversized_frame([&](const std::string& line) {
    std::lock_guard lock{m};
    lines.push_back(line);
  });
  const auto before = oversized_frames();
  EXPECT_TRUE(
      testing::closes_after_header(port, caf::io::basp::message_type::direct_message, 3u << 30));
  EXPECT_EQ(oversized_frames(), before + 1);
  // Just over the handshake bound is refused too; the server goes on serving.
  EXPECT_TRUE(testing::closes_after_header(port, caf::io::basp::message_type::client_handshake,
                                           handshake_frame_limit + 1));
  EXPECT_EQ(oversized_frames(), before + 2);
  on_oversized_frame(nullptr);
  {
    std::lock_guard lock{m};
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_NE(lines[0].find("announces 3221225472 bytes, over the limit of 65536 before the "
                            "handshake"),
              std::string::npos)
        << lines[0];
  }
  node b{opts};
  auto remote = connect(b.sys(), "127.0.0.1", port, opts);
  ASSERT_TRUE(remote) << remote.err().what();
  EXPECT_TRUE(pings(b.sys(), *remote));
}

TEST(transport, a_message_over_max_message_bytes_closes_the_connection) {
  transport_options opts;
  opts.max_message_bytes = 128 * 1024;
  node a{opts};
  node b{opts};
  ASSERT_TRUE(a.applied()) << a.applied().err().what();
  auto port = publish(a.sys(), a.spawn(blob_sizer), "127.0.0.1", 0, opts);
  ASSERT_TRUE(port) << port.err().what();
  auto remote = connect(b.sys(), "127.0.0.1", *port, opts);
  ASSERT_TRUE(remote) << remote.err().what();
  const auto before = oversized_frames();
  EXPECT_EQ(blob_size(b.sys(), *remote, 100 * 1024), 100 * 1024);  // under the bound
  EXPECT_EQ(oversized_frames(), before);
  EXPECT_EQ(blob_size(b.sys(), *remote, 200 * 1024), -1);
  EXPECT_EQ(oversized_frames(), before + 1);
  // A new connection works again.
  auto again = connect(b.sys(), "127.0.0.1", *port, opts);
  ASSERT_TRUE(again) << again.err().what();
  EXPECT_EQ(blob_size(b.sys(), *again, 1000), 1000);
}

TEST(transport, typed_handles_must_match_the_published_interface) {
  transport_options opts;
  node a{opts};
  node b{opts};
  auto port = publish(a.sys(), a.spawn(typed_ponger, "typed"), "127.0.0.1", 0, opts);
  ASSERT_TRUE(port) << port.err().what();
  auto typed = connect<pong_actor>(b.sys(), "127.0.0.1", *port, opts);
  ASSERT_TRUE(typed) << typed.err().what();
  EXPECT_TRUE(pings(b.sys(), caf::actor_cast<caf::actor>(*typed), "typed"));
  auto untyped = connect(b.sys(), "127.0.0.1", *port, opts);
  ASSERT_FALSE(untyped);
  EXPECT_NE(untyped.err().message().find("another interface"), std::string::npos);
}

TEST(transport, a_busy_port_is_an_error_naming_the_address) {
  transport_options opts;
  node a{opts};
  auto port = serve(a, opts);
  auto again = publish(a.sys(), a.spawn(ponger, "again"), "127.0.0.1", port, opts);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.err().code(), errc::io_failure);
  EXPECT_NE(again.err().message().find("cannot listen on 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << again.err().message();
}

TEST(transport, connecting_to_nobody_or_to_a_hung_node_fails_quickly) {
  transport_options opts;
  node b{opts};
  std::uint16_t closed = silent_listener{}.port();
  auto t0 = steady::now();
  auto refused = connect(b.sys(), "127.0.0.1", closed, opts);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.err().message().find("cannot connect to 127.0.0.1:" + std::to_string(closed)),
            std::string::npos)
      << refused.err().message();
  silent_listener hung;
  auto t1 = steady::now();
  auto silent = connect(b.sys(), "127.0.0.1", hung.port(), opts);
  auto t2 = steady::now();
  ASSERT_FALSE(silent);
  EXPECT_NE(silent.err().message().find("connection_timeout"), std::string::npos)
      << silent.err().message();
  EXPECT_LT(t1 - t0, 1s);
  EXPECT_LT(t2 - t1, 1s) << "3 tries of at most one heartbeat interval each";
}

TEST(transport, a_system_not_set_up_by_apply_is_an_error) {
  transport_options opts;
  system_config bare_cfg;
  caf::actor_system bare{bare_cfg};
  auto r = connect(bare, "127.0.0.1", 1, opts);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code(), errc::config);
  auto why = [](const result<caf::actor>& x) { return x ? std::string{} : x.err().message(); };
  node plain{opts};
  auto other = opts;
  other.heartbeat_interval = 200ms;
  other.connection_timeout = 1s;
  EXPECT_NE(why(connect(plain.sys(), "127.0.0.1", 1, other)).find("heartbeat"), std::string::npos);
  other = opts;
  other.tls = true;  // the system was set up without TLS
  EXPECT_NE(why(connect(plain.sys(), "127.0.0.1", 1, other)).find("transport.tls"),
            std::string::npos);
}

TEST(transport, an_idle_healthy_peer_stays_up) {
  transport_options opts;
  node a{opts};
  node b{opts};
  auto remote = connect(b.sys(), "127.0.0.1", serve(a, opts), opts);
  ASSERT_TRUE(remote) << remote.err().what();
  caf::scoped_actor self{b.sys()};
  self->monitor(*remote);
  bool down = false;
  self->receive([&down](const caf::down_msg&) { down = true; }, caf::after(1500ms) >> [] {});
  EXPECT_FALSE(down) << "an idle peer was dropped: heartbeats not on at both ends?";
  EXPECT_TRUE(pings(b.sys(), *remote));
}

TEST(transport, a_hung_peer_process_is_reported_down_within_a_second) {
  transport_options opts;
  node a{opts};
  caf::scoped_actor self{a.sys()};
  auto port = publish(a.sys(), a.spawn(relay, caf::actor{self}), "127.0.0.1", 0, opts);
  ASSERT_TRUE(port) << port.err().what();
  peer_process child{*port};
  ASSERT_GT(child.pid(), 0) << "cannot start " << ACCELLM_TRANSPORT_PEER;
  caf::actor remote;
  self->receive([&remote](hello_atom, caf::actor p) { remote = std::move(p); },
                caf::after(10s) >> [] {});
  ASSERT_TRUE(remote) << "the peer process did not say hello within 10 s";
  ASSERT_TRUE(pings(a.sys(), remote, "peer"));
  self->monitor(remote);
  ASSERT_EQ(kill(child.pid(), SIGSTOP), 0);
  const auto stopped = steady::now();
  std::optional<caf::error> reason;
  self->receive([&reason](caf::down_msg& dm) { reason = dm.reason; }, caf::after(3s) >> [] {});
  const auto took = steady::now() - stopped;
  ASSERT_TRUE(reason) << "no down message within 3 s of SIGSTOP";
  EXPECT_LT(took, 1s) << std::chrono::duration<double, std::milli>(took).count() << " ms";
  EXPECT_EQ(*reason, caf::exit_reason::remote_link_unreachable) << a.sys().render(*reason);
}

// Throwaway PKI made with the openssl CLI: CA "ca1" signs n1 and n2, CA "ca2"
// signs x; n1.enc.key is n1.key under the passphrase "s3cret".
class transport_tls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::system("command -v openssl >/dev/null 2>&1") != 0) {
      skip_ = "no openssl command-line tool to make test certificates";
      return;
    }
    char tmpl[] = "/tmp/accellm-tls-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      error_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
    std::string script = "cd " + dir_.string() + " && for ca in ca1 ca2; do openssl req -x509" +
                         ec + "-keyout $ca.key -out $ca.pem -days 2 -subj /CN=$ca || exit 1; done";
    for (auto [leaf, ca] : {std::pair{"n1", "ca1"}, {"n2", "ca1"}, {"x", "ca2"}})
      script += " && openssl req" + ec + "-keyout " + leaf + ".key -out " + leaf +
                ".csr -subj /CN=" + leaf + " && openssl x509 -req -in " + leaf + ".csr -CA " + ca +
                ".pem -CAkey " + ca + ".key -CAcreateserial -days 2 -out " + leaf + ".pem";
    script += " && openssl pkey -in n1.key -aes256 -passout pass:s3cret -out n1.enc.key";
    const std::string log_path = (dir_ / "openssl.log").string();
    if (std::system(("(" + script + ") >" + log_path + " 2>&1").c_str()) != 0) {
      std::ifstream log{dir_ / "openssl.log"};
      error_ =
          "making certificates failed: " + std::string{std::istreambuf_iterator<char>{log}, {}};
    }
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(error_.empty()) << error_;
  }
  // TLS options with files of the test PKI, e.g. tls("n1", "ca1").
  static transport_options tls(const std::string& leaf, const std::string& ca) {
    transport_options o;
    o.tls = true;
    o.certificate = (dir_ / (leaf + ".pem")).string();
    o.key = (dir_ / (leaf + ".key")).string();
    o.ca_file = (dir_ / (ca + ".pem")).string();
    return o;
  }
  static std::string file(const std::string& name) { return (dir_ / name).string(); }

  // Connects a node built from `opts` (then its config edited by `edit`) to
  // `port`; the error, or "" on success. Fails the test after 3 s.
  template <class Edit>
  static std::string try_connect(std::uint16_t port, transport_options opts, Edit edit) {
    opts.connect_timeout = 5s;
    node b{opts};
    EXPECT_TRUE(b.applied()) << b.applied().err().what();
    edit(b.cfg());
    const auto t0 = steady::now();
    auto r = connect(b.sys(), "127.0.0.1", port, opts);
    EXPECT_LT(steady::now() - t0, 3s);
    return r ? std::string{} : r.err().what();
  }

  static inline std::filesystem::path dir_;
  static inline std::string skip_;
  static inline std::string error_;
};

TEST_F(transport_tls, validate_reads_the_files_like_caf_will) {
  EXPECT_TRUE(tls("n1", "ca1").validate());
  auto o = tls("n1", "ca1");
  o.key = file("n1.enc.key");
  expect_bad(o, "key", "is encrypted and transport.passphrase is empty");
  o.passphrase = "wrong";
  expect_bad(o, "passphrase", "does not decrypt");
  o.passphrase = "s3cret";
  EXPECT_TRUE(o.validate());
  o = tls("n1", "ca1");
  o.key = file("n2.key");
  expect_bad(o, "key", "does not belong to transport.certificate");
  expect_bad(tls("x", "ca1"), "certificate", "does not verify against transport.ca_file");
  o = tls("n1", "ca1");
  o.ca_file = file("n1.csr");
  expect_bad(o, "ca_file", "holds no PEM CA certificate");
  o = tls("n1", "ca1");
  o.certificate = file("n1.key");
  expect_bad(o, "certificate", "is not a PEM certificate chain");
  o = tls("n1", "ca1");
  o.ca_file = dir_.string();
  expect_bad(o, "ca_file", "not a regular file");
}

TEST_F(transport_tls, publish_and_connect_with_tls_and_an_encrypted_key) {
  auto server_opts = tls("n1", "ca1");
  server_opts.key = file("n1.enc.key");
  server_opts.passphrase = "s3cret";
  node a{server_opts};
  auto port = serve(a, server_opts);
  auto opts = tls("n2", "ca1");
  node b{opts};
  auto remote = connect(b.sys(), "127.0.0.1", port, opts);
  ASSERT_TRUE(remote) << remote.err().what();
  EXPECT_TRUE(pings(b.sys(), *remote));
}

TEST_F(transport_tls, plain_and_tls_do_not_mix) {
  auto opts = tls("n1", "ca1");
  node a{opts};
  auto tls_port = serve(a, opts);
  auto err = try_connect(tls_port, transport_options{}, [](system_config&) {});
  EXPECT_NE(err, "") << "a plain node got through to a TLS port";
  std::cout << "plain -> TLS: " << err << "\n";
  node p{transport_options{}};
  auto plain_port = serve(p, transport_options{});
  err = try_connect(plain_port, tls("n2", "ca1"), [](system_config&) {});
  EXPECT_NE(err, "") << "a TLS node got through to a plain port";
  std::cout << "TLS -> plain: " << err << "\n";
}

// apply() refuses a certificate its own CA file does not cover, so these
// nodes are misconfigured afterwards, as a foreign node would be.
TEST_F(transport_tls, both_ends_check_the_peer_certificate) {
  auto opts = tls("n1", "ca1");
  node a{opts};
  auto port = serve(a, opts);
  auto foreign_client = try_connect(port, tls("n2", "ca1"), [](system_config& cfg) {
    cfg.set("openssl.certificate", file("x.pem"));
    cfg.set("openssl.key", file("x.key"));
  });
  EXPECT_NE(foreign_client, "") << "the server accepted a client certificate from another CA";
  std::cout << "client cert from another CA: " << foreign_client << "\n";
  auto distrusting_client = try_connect(port, tls("n2", "ca1"), [](system_config& cfg) {
    cfg.set("openssl.cafile", file("ca2.pem"));
  });
  EXPECT_NE(distrusting_client, "") << "the client accepted a server certificate from another CA";
  std::cout << "server cert from another CA: " << distrusting_client << "\n";
  EXPECT_EQ(try_connect(port, tls("n2", "ca1"), [](system_config&) {}), "");
}

}  // namespace
}  // namespace accellm::actors
