// The same-node KV path between two real processes on one GPU, in the order
// the workers use it: the sender makes a cuda_region and hands its fd over a
// Unix socket, the receiver maps it, the sender packs a prefill's KV there and
// exits (its CUDA context and its handle gone), and only then does the
// receiver import from its mapping and decode. Its tokens must be the
// sender's own. The sender is this binary run again as a child with one test
// selected (cuda_kv_shared_child.sender, which skips when run on its own).
#include "device/cuda/cuda_backend.hpp"
#include "tests/device/cuda/cuda_test_util.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace accellm::device::cuda {
namespace {

using namespace test;

constexpr std::uint32_t prompt_tokens = 41, steps = 16;
constexpr request_id request = 5;
constexpr const char* child_fd_env = "ACCELLM_TEST_KV_CHILD_FD";

// What the sender tells the receiver, in order: "region" (with its fd),
// then "packed" (with its own greedy tokens), each one message.
struct note {
  std::uint32_t what = 0;  // 1 region, 2 packed
  std::uint64_t bytes = 0;
  std::array<token_id, steps + 1> tokens{};  // the prefill's token, then each decode's
};

cuda_options options() {
  cuda_options o;
  o.seed = 11;
  o.kv_blocks = 64;
  o.max_rows = 256;
  o.max_batch = 8;
  o.prefill = prefill_rule::rows64;  // the same kernels in both processes
  return o;
}

std::vector<token_id> prompt() {
  std::vector<token_id> p(prompt_tokens);
  for (std::uint32_t i = 0; i < prompt_tokens; ++i)
    p[i] = static_cast<token_id>((i * 53 + 7) % 500);
  return p;
}

bool send_note(int sock, const note& n, int fd) {
  iovec iov{.iov_base = const_cast<note*>(&n), .iov_len = sizeof n};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  return ::sendmsg(sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof n);
}

// The next note (waiting at most 60 s), and its descriptor if it has one.
bool receive_note(int sock, note& n, unique_fd* fd) {
  pollfd p{.fd = sock, .events = POLLIN, .revents = 0};
  if (::poll(&p, 1, 60000) != 1) return false;
  iovec iov{.iov_base = &n, .iov_len = sizeof n};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  if (::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != static_cast<ssize_t>(sizeof n)) return false;
  if (cmsghdr* c = CMSG_FIRSTHDR(&msg); c && fd && c->cmsg_type == SCM_RIGHTS) {
    int got = -1;
    std::memcpy(&got, CMSG_DATA(c), sizeof got);
    fd->reset(got);
  }
  return true;
}

// The child: prefill, offer the region, pack into it once the parent has
// mapped it, decode on its own, report, exit.
TEST(cuda_kv_shared_child, sender) {
  const char* at = std::getenv(child_fd_env);
  if (at == nullptr) GTEST_SKIP() << "runs only as the child of a_region_from_a_dead_process";
  const int sock = std::atoi(at);
  auto a = make_cuda_backend("cuda:0", "cpu-small", options());
  ASSERT_TRUE(a.ok()) << a.err().what();
  const std::uint32_t layers = (*a)->model().layers;
  auto first =
      (*a)->run(batch{{batch_item{request, phase::prefill, 0, prompt_tokens, prompt(), true}}});
  ASSERT_TRUE(first.ok()) << first.err().what();
  const std::uint64_t bytes = (*a)->slice_bytes({0, layers}, {0, prompt_tokens});
  auto region = (*a)->create_shared(bytes);
  ASSERT_TRUE(region.ok()) << region.err().what();
  auto fd = (*region)->share();
  ASSERT_TRUE(fd.ok()) << fd.err().what();
  note n;
  n.what = 1;
  n.bytes = bytes;
  ASSERT_TRUE(send_note(sock, n, fd->get()));
  note mapped;
  ASSERT_TRUE(receive_note(sock, mapped, nullptr)) << "the parent did not map the region";
  auto c = (*a)->export_kv_to(**region, 0, request, {0, layers}, {0, prompt_tokens});
  ASSERT_TRUE(c.ok()) << c.err().what();
  n.what = 2;
  n.tokens[0] = first->next_tokens[0];
  for (std::uint32_t s = 0; s < steps; ++s) {
    auto r = (*a)->run(
        batch{{batch_item{request, phase::decode, prompt_tokens + s, 1, {n.tokens[s]}, true}}});
    ASSERT_TRUE(r.ok()) << r.err().what();
    n.tokens[s + 1] = r->next_tokens[0];
  }
  ASSERT_TRUE(send_note(sock, n, -1));
}

TEST(cuda_kv_shared, a_region_from_a_dead_process_decodes_like_it) {
  ACCELLM_REQUIRE_GPU();
  std::array<int, 2> pair{};
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair.data()), 0);
  unique_fd mine{pair[0]}, theirs{pair[1]};
  ASSERT_EQ(::fcntl(mine.get(), F_SETFD, FD_CLOEXEC), 0);  // only `theirs` is inherited
  const std::string env = std::string{child_fd_env} + "=" + std::to_string(theirs.get());
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e) envp.push_back(*e);
  envp.push_back(const_cast<char*>(env.c_str()));
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe", filter = "--gtest_filter=cuda_kv_shared_child.sender";
  std::array<char*, 3> argv{exe.data(), filter.data(), nullptr};
  pid_t child = -1;
  ASSERT_EQ(::posix_spawn(&child, exe.c_str(), nullptr, nullptr, argv.data(), envp.data()), 0);
  theirs.reset();

  auto b = make_cuda_backend("cuda:0", "cpu-small", options());
  ASSERT_TRUE(b.ok()) << b.err().what();
  note offered;
  unique_fd fd;
  ASSERT_TRUE(receive_note(mine.get(), offered, &fd)) << "no region from the child";
  ASSERT_EQ(offered.what, 1u);
  ASSERT_TRUE(fd) << "the region's descriptor did not arrive";
  auto mapped = (*b)->open_shared(region_kind::cuda, std::move(fd), offered.bytes);
  ASSERT_TRUE(mapped.ok()) << mapped.err().what();
  ASSERT_TRUE(send_note(mine.get(), note{}, -1));
  note packed;
  ASSERT_TRUE(receive_note(mine.get(), packed, nullptr)) << "the child did not pack";
  ASSERT_EQ(packed.what, 2u);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << "the child's test failed";

  // The sender is gone; its KV is read from this process's mapping.
  const std::uint32_t layers = (*b)->model().layers;
  const kv_chunk header{.request = request,
                        .layers = {0, layers},
                        .tokens = {0, prompt_tokens},
                        .bytes = offered.bytes,
                        .data = {}};
  const status st = (*b)->import_kv_from(**mapped, 0, header);
  ASSERT_TRUE(st.ok()) << st.err().what();
  ASSERT_EQ((*b)->cached_tokens(request), prompt_tokens);
  token_id last = packed.tokens[0];
  for (std::uint32_t s = 0; s < steps; ++s) {
    auto r =
        (*b)->run(batch{{batch_item{request, phase::decode, prompt_tokens + s, 1, {last}, true}}});
    ASSERT_TRUE(r.ok()) << r.err().what();
    last = r->next_tokens[0];
    ASSERT_EQ(last, packed.tokens[s + 1]) << "step " << s;
  }
}

}  // namespace
}  // namespace accellm::device::cuda
