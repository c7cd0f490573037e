// thread_sched: the settings land on the calling thread only, and threads it
// starts afterwards inherit them. Each test runs in a thread of its own so the
// test process keeps its defaults.
#include "actors/thread_sched.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

namespace accellm::actors {
namespace {

using namespace std::chrono_literals;

int own_nice() {
  return getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
}

// Linux 6.12 and later keep a normal thread's requested slice.
bool honours_slices() {
  utsname u{};
  int major = 0, minor = 0;
  if (uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
  return major > 6 || (major == 6 && minor >= 12);
}

TEST(ThreadSched, ASliceIsKeptAndInherited) {
  std::optional<std::chrono::nanoseconds> before, set, child;
  bool ok = false;
  std::thread t{[&] {
    before = requested_time_slice();
    ok = request_time_slice(daemon_time_slice);
    set = requested_time_slice();
    std::thread inner{[&] { child = requested_time_slice(); }};
    inner.join();
  }};
  t.join();
  ASSERT_TRUE(before.has_value()) << "sched_getattr failed";
  ASSERT_TRUE(ok) << "sched_setattr failed";
  if (!honours_slices()) GTEST_SKIP() << "kernels before 6.12 ignore the slice of normal threads";
  EXPECT_EQ(*set, daemon_time_slice);
  EXPECT_EQ(child, set) << "a thread started afterwards inherits it";
  EXPECT_EQ(requested_time_slice(), before) << "the test's own thread is untouched";
  std::optional<std::chrono::nanoseconds> reset;
  std::thread back{[&] {
    EXPECT_TRUE(request_time_slice(daemon_time_slice));
    EXPECT_TRUE(request_time_slice(0ns));
    reset = requested_time_slice();
  }};
  back.join();
  EXPECT_EQ(reset, before) << "0 asks for the default again";
}

TEST(ThreadSched, NiceLandsOnTheCallingThreadOnly) {
  int inside = -100;
  bool ok = false;
  std::thread t{[&] {
    ok = set_thread_nice(7);
    inside = own_nice();
  }};
  t.join();
  EXPECT_TRUE(ok);
  EXPECT_EQ(inside, 7);
  EXPECT_EQ(own_nice(), 0);
}

}  // namespace
}  // namespace accellm::actors
