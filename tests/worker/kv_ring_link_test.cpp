// kv_ring_link: a ring offer crosses a real abstract Unix socket with its two
// descriptors, a refusal comes back with its reason, and every malformed
// offer is refused naming its problem without stopping the listener.
#include "worker/kv_ring_link.hpp"

#include "device/shared_region.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace accellm::worker {
namespace {

using namespace std::chrono_literals;
using device::host_region;
using device::region_kind;

constexpr auto patience = 5s;  // every wait below is bounded

// A name no other test (or process) uses.
std::string unique_name(const char* what) {
  static std::atomic<int> n{0};
  return std::string{"accellm-test/"} + std::to_string(::getpid()) + "/" + what + "/" +
         std::to_string(n++);
}

std::unique_ptr<host_region> region(std::uint64_t bytes) {
  auto r = host_region::create(bytes, "test");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().what());
  return r.ok() ? std::move(*r) : nullptr;
}

TEST(KvRingLink, AnAcceptedOfferHandsOverBothRegions) {
  auto data = region(1 << 16), control = region(4096);
  ASSERT_TRUE(data && control);
  std::mutex m;
  ring_offer seen;
  std::unique_ptr<host_region> mapped;
  const std::string name = unique_name("accept");
  auto listener = ring_listener::start(name, [&](const ring_offer& o, ring_descriptors fds) {
    auto r = host_region::open(std::move(fds.data), o.capacity);
    if (!r) return status{std::move(r).err()};
    std::lock_guard lock{m};
    seen = o;
    mapped = std::move(*r);
    return status{};
  });
  ASSERT_TRUE(listener.ok()) << listener.err().what();
  const ring_offer offer{
      .from_instance = 3, .ring = 0x1234, .kind = region_kind::host, .capacity = 1 << 16};
  auto d = data->share();
  auto c = control->share();
  ASSERT_TRUE(d.ok() && c.ok());
  const status st = offer_ring(name, offer, d->get(), c->get(), patience);
  ASSERT_TRUE(st.ok()) << st.err().what();
  std::lock_guard lock{m};
  EXPECT_EQ(seen.from_instance, 3u);
  EXPECT_EQ(seen.ring, 0x1234u);
  EXPECT_EQ(seen.kind, region_kind::host);
  ASSERT_NE(mapped, nullptr);
  std::memcpy(data->data() + 100, "kv!", 3);  // the same memory, seen from both mappings
  EXPECT_EQ(std::memcmp(mapped->data() + 100, "kv!", 3), 0);
  EXPECT_EQ((*listener)->offers(), 1u);
  EXPECT_EQ((*listener)->accepted(), 1u);
}

TEST(KvRingLink, ARefusalComesBackWithItsReason) {
  auto data = region(4096), control = region(4096);
  ASSERT_TRUE(data && control);
  const std::string name = unique_name("refuse");
  auto listener = ring_listener::start(name, [](const ring_offer&, ring_descriptors) {
    return status{fail(errc::unsupported, "this worker's device cannot map GPU memory")};
  });
  ASSERT_TRUE(listener.ok());
  const status st =
      offer_ring(name, {.from_instance = 1, .ring = 1, .kind = region_kind::cuda, .capacity = 4096},
                 data->share()->get(), control->share()->get(), patience);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code(), errc::unsupported);
  EXPECT_NE(st.err().what().find("cannot map GPU memory"), std::string::npos) << st.err().what();
  EXPECT_EQ((*listener)->accepted(), 0u);
}
TEST(KvRingLink, NobodyListeningIsNotFound) {
  auto data = region(4096);
  ASSERT_TRUE(data);
  const status st =
      offer_ring(unique_name("nobody"),
                 {.from_instance = 1, .ring = 1, .kind = region_kind::host, .capacity = 4096},
                 data->share()->get(), data->share()->get(), patience);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code(), errc::not_found) << st.err().what();
}

TEST(KvRingLink, BadNamesAreRefused) {
  const std::string name = unique_name("twice");
  auto accept = [](const ring_offer&, ring_descriptors) { return status{}; };
  auto first = ring_listener::start(name, accept);
  ASSERT_TRUE(first.ok());
  auto second = ring_listener::start(name, accept);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.err().code(), errc::in_use) << second.err().what();
  auto too_long = ring_listener::start(std::string(200, 'x'), accept);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.err().code(), errc::invalid_argument);
  EXPECT_NE(too_long.err().what().find("longer"), std::string::npos);
}

// One raw message, with `fds` as SCM_RIGHTS, into one end of a socket pair;
// what receive_offer makes of it at the other.
result<std::pair<ring_offer, ring_descriptors>> receive_raw(const void* bytes, std::size_t n,
                                                            const std::vector<int>& fds) {
  std::array<int, 2> pair{};
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair.data()), 0);
  unique_fd a{pair[0]}, b{pair[1]};
  const status sent = send_with_fds(a.get(), bytes, n, fds);
  EXPECT_TRUE(sent.ok()) << sent.err().what();
  return receive_offer(b.get(), patience);
}

// The wire form of an offer (kv_ring_link.cpp's offer_wire).
struct wire {
  std::array<char, 8> magic{'A', 'C', 'C', 'K', 'V', 'R', 'N', 'G'};
  std::uint32_t version = 1;
  std::uint32_t from_instance = 2;
  std::uint64_t ring = 9;
  std::uint32_t kind = 1;
  std::uint32_t reserved = 0;
  std::uint64_t capacity = 4096;
};

TEST(KvRingLink, MalformedOffersAreRefusedNamingTheProblem) {
  auto r = region(4096);
  ASSERT_TRUE(r);
  auto shared = r->share();
  ASSERT_TRUE(shared.ok());
  const unique_fd keep = std::move(*shared);
  const int fd = keep.get();
  const std::vector<int> two{fd, fd};

  {
    const wire w;
    auto ok = receive_raw(&w, sizeof w, two);
    ASSERT_TRUE(ok.ok()) << ok.err().what();
    EXPECT_EQ(ok->first.ring, 9u);
    EXPECT_TRUE(ok->second.data && ok->second.control);
  }
  struct bad_case {
    const char* what;
    wire w;
    std::size_t bytes;
    std::vector<int> fds;
    errc code;
    const char* names;
  };
  wire magic, version, kind, zero;
  magic.magic[0] = 'X';
  version.version = 7;
  kind.kind = 9;
  zero.capacity = 0;
  const std::vector<bad_case> cases{
      {"short", wire{}, 12, two, errc::malformed, "12 bytes"},
      {"magic", magic, sizeof(wire), two, errc::malformed, "magic"},
      {"version", version, sizeof(wire), two, errc::unsupported, "version 7"},
      {"no descriptors", wire{}, sizeof(wire), {}, errc::invalid_argument, "0 descriptors"},
      {"three descriptors",
       wire{},
       sizeof(wire),
       {fd, fd, fd},
       errc::invalid_argument,
       "3 descriptors"},
      {"kind", kind, sizeof(wire), two, errc::invalid_argument, "kind 9"},
      {"capacity 0", zero, sizeof(wire), two, errc::invalid_argument, "nonzero"},
  };
  for (const bad_case& c : cases) {
    auto got = receive_raw(&c.w, c.bytes, c.fds);
    ASSERT_FALSE(got.ok()) << c.what;
    EXPECT_EQ(got.err().code(), c.code) << c.what << ": " << got.err().what();
    EXPECT_NE(got.err().what().find(c.names), std::string::npos)
        << c.what << ": " << got.err().what();
  }
}

// A listener answers a broken offer with its reason and then takes the next.
TEST(KvRingLink, AListenerSurvivesABrokenOffer) {
  const std::string name = unique_name("survive");
  auto listener =
      ring_listener::start(name, [](const ring_offer&, ring_descriptors) { return status{}; });
  ASSERT_TRUE(listener.ok());
  {
    unique_fd s{::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)};
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path + 1, name.data(), name.size());
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    ASSERT_EQ(::connect(s.get(), reinterpret_cast<const sockaddr*>(&a), len), 0);
    const char junk[5] = "junk";
    ASSERT_EQ(::send(s.get(), junk, sizeof junk, 0), static_cast<ssize_t>(sizeof junk));
    std::array<char, 512> answer{};
    pollfd p{.fd = s.get(), .events = POLLIN, .revents = 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    const ssize_t n = ::recv(s.get(), answer.data(), answer.size(), 0);
    ASSERT_GT(n, 16);
    const std::string text(answer.data() + 16, static_cast<std::size_t>(n - 16));
    EXPECT_NE(text.find("5 bytes"), std::string::npos) << text;
  }
  auto data = region(4096);
  ASSERT_TRUE(data);
  const status st =
      offer_ring(name, {.from_instance = 1, .ring = 1, .kind = region_kind::host, .capacity = 4096},
                 data->share()->get(), data->share()->get(), patience);
  EXPECT_TRUE(st.ok()) << st.err().what();
  EXPECT_EQ((*listener)->offers(), 2u);
  EXPECT_EQ((*listener)->accepted(), 1u);
}

// An abstract socket has no file permissions: an offer from another user's
// process is refused (it could otherwise make a worker read KV from memory of
// its choosing). Needs root, to run the offering child as nobody.
TEST(KvRingLink, AnOfferFromAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to offer as another user";
  const std::string name = unique_name("uid");
  std::array<int, 2> go{};
  ASSERT_EQ(::pipe2(go.data(), O_CLOEXEC), 0);
  // Forked before the listener's thread exists: the child is single-threaded.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char byte = 0;
    if (::read(go[0], &byte, 1) != 1 || ::setuid(65534) != 0) ::_exit(3);
    auto data = host_region::create(4096, "child");
    if (!data) ::_exit(4);
    const status st = offer_ring(
        name, {.from_instance = 1, .ring = 1, .kind = region_kind::host, .capacity = 4096},
        (*data)->share()->get(), (*data)->share()->get(), patience);
    const bool refused = !st && st.err().what().find("uid 65534") != std::string::npos;
    ::_exit(refused ? 0 : 5);
  }
  auto listener =
      ring_listener::start(name, [](const ring_offer&, ring_descriptors) { return status{}; });
  ASSERT_TRUE(listener.ok());
  ASSERT_EQ(::write(go[1], "g", 1), 1);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ::close(go[0]);
  ::close(go[1]);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "0: refused naming the uid; 5: accepted or another error";
  EXPECT_EQ((*listener)->accepted(), 0u);
}

}  // namespace
}  // namespace accellm::worker
