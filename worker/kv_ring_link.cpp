#include "worker/kv_ring_link.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <vector>

namespace accellm::worker {
namespace {

// Wire layout (host byte order: both ends are processes of one node).
constexpr std::array<char, 8> offer_magic{'A', 'C', 'C', 'K', 'V', 'R', 'N', 'G'};
constexpr std::array<char, 8> answer_magic{'A', 'C', 'C', 'K', 'V', 'A', 'N', 'S'};
constexpr std::uint32_t link_version = 1;

struct offer_wire {
  std::array<char, 8> magic;
  std::uint32_t version;
  std::uint32_t from_instance;
  std::uint64_t ring;
  std::uint32_t kind;
  std::uint32_t reserved;
  std::uint64_t capacity;
};
static_assert(sizeof(offer_wire) == 40);

constexpr std::size_t answer_text_max = 240;
struct answer_wire {
  std::array<char, 8> magic;
  std::uint32_t accepted;
  std::uint32_t text_bytes;
  std::array<char, answer_text_max> text;
};

error os_error(const std::string& what, errc code = errc::io_failure) {
  return fail(code, "kv ring link: " + what + ": " + std::strerror(errno));
}

result<sockaddr_un> abstract_address(const std::string& name, socklen_t& length) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (name.empty() || name.size() + 1 > sizeof(a.sun_path))
    return fail(errc::invalid_argument, "kv ring link: socket name '" + name +
                                            "' is empty or longer than " +
                                            std::to_string(sizeof(a.sun_path) - 1));
  std::memcpy(a.sun_path + 1, name.data(), name.size());  // sun_path[0] = 0: abstract
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return a;
}

// Waits until `fd` is readable; io_failure naming `what` on a timeout.
status wait_readable(int fd, std::chrono::milliseconds timeout, const char* what) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  int n;
  do n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  while (n < 0 && errno == EINTR);
  if (n < 0) return os_error(std::string{"poll for "} + what);
  if (n == 0)
    return fail(errc::io_failure, std::string{"kv ring link: no "} + what + " within " +
                                      std::to_string(timeout.count()) + " ms");
  return {};
}

// An abstract socket has no file permissions: only a process of this
// worker's own user may hand it memory to read KV from.
status check_peer(int conn) {
  ucred peer{};
  socklen_t n = sizeof peer;
  if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &peer, &n) != 0)
    return os_error("read the peer's credentials");
  if (peer.uid != ::geteuid())
    return fail(errc::invalid_argument,
                "kv ring link: an offer from uid " + std::to_string(peer.uid) +
                    "; this worker runs as uid " + std::to_string(::geteuid()));
  return {};
}

}  // namespace

status send_with_fds(int sock, const void* bytes, std::size_t n, std::span<const int> fds) {
  constexpr std::size_t max_fds = 8;
  if (fds.size() > max_fds)
    return fail(errc::invalid_argument, "kv ring link: more than 8 descriptors in one message");
  iovec iov{.iov_base = const_cast<void*>(bytes), .iov_len = n};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(max_fds * sizeof(int))> control{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  if (::sendmsg(sock, &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(n))
    return os_error("send " + std::to_string(n) + " bytes and " + std::to_string(fds.size()) +
                    " descriptors");
  return {};
}

std::string ring_socket_name(std::uint32_t pid, std::uint64_t actor_id) {
  return "accellm-kv/" + std::to_string(pid) + "/" + std::to_string(actor_id);
}

status offer_ring(const std::string& name, const ring_offer& offer, int data_fd, int control_fd,
                  std::chrono::milliseconds timeout) {
  socklen_t length = 0;
  auto addr = abstract_address(name, length);
  if (!addr) return std::move(addr).err();
  unique_fd sock{::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (!sock) return os_error("socket");
  if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&*addr), length) != 0) {
    if (errno == ECONNREFUSED || errno == ENOENT)
      return os_error("nobody listens on '" + name + "'", errc::not_found);
    return os_error("connect to '" + name + "'");
  }
  offer_wire w{.magic = offer_magic,
               .version = link_version,
               .from_instance = offer.from_instance,
               .ring = offer.ring,
               .kind = static_cast<std::uint32_t>(offer.kind),
               .reserved = 0,
               .capacity = offer.capacity};
  const std::array<int, 2> fds{data_fd, control_fd};
  ACCELLM_TRY(send_with_fds(sock.get(), &w, sizeof w, fds));

  ACCELLM_TRY(wait_readable(sock.get(), timeout, "answer to the ring offer"));
  answer_wire a{};
  const ssize_t got = ::recv(sock.get(), &a, sizeof a, 0);
  if (got < 0) return os_error("read the answer");
  constexpr auto head = static_cast<ssize_t>(offsetof(answer_wire, text));
  if (got < head || a.magic != answer_magic || a.text_bytes > answer_text_max ||
      got < head + static_cast<ssize_t>(a.text_bytes))
    return fail(errc::malformed, "kv ring link: '" + name + "' answered " + std::to_string(got) +
                                     " bytes that are not a ring answer");
  if (a.accepted != 1)
    return fail(errc::unsupported, "kv ring link: the receiver refused the ring: " +
                                       std::string(a.text.data(), a.text_bytes));
  return {};
}

result<std::pair<ring_offer, ring_descriptors>> receive_offer(int sock,
                                                              std::chrono::milliseconds timeout) {
  ACCELLM_TRY(wait_readable(sock, timeout, "ring offer"));
  offer_wire w{};
  iovec iov{.iov_base = &w, .iov_len = sizeof w};
  // Room for more descriptors than an offer has, so that extra ones are
  // received (and closed) rather than left to truncation.
  alignas(cmsghdr) std::array<char, CMSG_SPACE(8 * sizeof(int))> control{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  const ssize_t got = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  if (got < 0) return os_error("read the offer");
  std::vector<unique_fd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds.emplace_back(fd);
    }
  }
  if (got != static_cast<ssize_t>(sizeof w) || (msg.msg_flags & MSG_TRUNC))
    return fail(errc::malformed, "kv ring link: an offer of " + std::to_string(got) +
                                     " bytes; a ring offer has " + std::to_string(sizeof w));
  if (w.magic != offer_magic)
    return fail(errc::malformed, "kv ring link: the message is not a ring offer (magic)");
  if (w.version != link_version)
    return fail(errc::unsupported, "kv ring link: offer version " + std::to_string(w.version) +
                                       ", this worker speaks " + std::to_string(link_version));
  if (msg.msg_flags & MSG_CTRUNC)
    return fail(errc::invalid_argument, "kv ring link: the offer's descriptors were cut off");
  if (fds.size() != 2)
    return fail(errc::invalid_argument, "kv ring link: an offer carries " +
                                            std::to_string(fds.size()) +
                                            " descriptors; it needs 2 (data, control)");
  const auto kind = static_cast<device::region_kind>(w.kind);
  if (kind != device::region_kind::host && kind != device::region_kind::cuda)
    return fail(errc::invalid_argument,
                "kv ring link: region kind " + std::to_string(w.kind) + " is not known");
  if (w.ring == 0 || w.capacity == 0)
    return fail(errc::invalid_argument, "kv ring link: ring id and capacity must be nonzero");
  ring_offer o{
      .from_instance = w.from_instance, .ring = w.ring, .kind = kind, .capacity = w.capacity};
  return std::pair{o, ring_descriptors{std::move(fds[0]), std::move(fds[1])}};
}

status send_answer(int sock, const status& outcome) {
  answer_wire a{};
  a.magic = answer_magic;
  a.accepted = outcome ? 1 : 0;
  if (!outcome) {
    const std::string why = outcome.err().what();
    a.text_bytes = static_cast<std::uint32_t>(std::min(why.size(), answer_text_max));
    std::memcpy(a.text.data(), why.data(), a.text_bytes);
  }
  const std::size_t n = offsetof(answer_wire, text) + a.text_bytes;
  if (::send(sock, &a, n, MSG_NOSIGNAL) != static_cast<ssize_t>(n))
    return os_error("send the answer");
  return {};
}

result<std::unique_ptr<ring_listener>> ring_listener::start(const std::string& name,
                                                            accept_fn accept) {
  socklen_t length = 0;
  auto addr = abstract_address(name, length);
  if (!addr) return std::move(addr).err();
  unique_fd sock{::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)};
  if (!sock) return os_error("socket");
  if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&*addr), length) != 0)
    return os_error("bind '" + name + "'", errno == EADDRINUSE ? errc::in_use : errc::io_failure);
  if (::listen(sock.get(), 8) != 0) return os_error("listen on '" + name + "'");
  unique_fd wake{::eventfd(0, EFD_CLOEXEC)};
  if (!wake) return os_error("eventfd");
  return std::make_unique<ring_listener>(key{}, std::move(sock), std::move(wake),
                                         std::move(accept));
}

ring_listener::ring_listener(key, unique_fd sock, unique_fd wake, accept_fn accept)
    : sock_(std::move(sock)), wake_(std::move(wake)), accept_(std::move(accept)) {
  thread_ = std::thread([this] { loop(); });
}

ring_listener::~ring_listener() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_.get(), &one, sizeof one);
  thread_.join();
}

void ring_listener::loop() {
  constexpr std::chrono::milliseconds offer_wait{2000};
  for (;;) {
    std::array<pollfd, 2> p{pollfd{.fd = sock_.get(), .events = POLLIN, .revents = 0},
                            pollfd{.fd = wake_.get(), .events = POLLIN, .revents = 0}};
    if (::poll(p.data(), p.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents != 0) return;
    unique_fd conn{::accept4(sock_.get(), nullptr, nullptr, SOCK_CLOEXEC)};
    if (!conn) continue;
    // Read before refusing: closing on an unread offer resets the connection
    // and the sender would never learn why.
    auto offer = receive_offer(conn.get(), offer_wait);
    status outcome = check_peer(conn.get());
    if (outcome) {
      outcome =
          offer ? accept_(offer->first, std::move(offer->second)) : status{std::move(offer).err()};
    }
    ++offers_;
    if (outcome) ++accepted_;
    (void)send_answer(conn.get(), outcome);
  }
}

}  // namespace accellm::worker
