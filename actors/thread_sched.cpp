#include "actors/thread_sched.hpp"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace accellm::actors {
namespace {

// struct sched_attr of the sched_setattr(2) system call, which glibc does not
// wrap (linux/sched/types.h clashes with <sched.h>).
struct sched_attr {
  std::uint32_t size = sizeof(sched_attr);
  std::uint32_t sched_policy = 0;  // SCHED_OTHER
  std::uint64_t sched_flags = 0;
  std::int32_t sched_nice = 0;
  std::uint32_t sched_priority = 0;
  std::uint64_t sched_runtime = 0;  // for SCHED_OTHER: the requested slice
  std::uint64_t sched_deadline = 0;
  std::uint64_t sched_period = 0;
  std::uint32_t sched_util_min = 0;
  std::uint32_t sched_util_max = 0;
};

}  // namespace

bool request_time_slice(std::chrono::nanoseconds slice) noexcept {
  sched_attr a;
  if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) != 0) return false;
  // The same policy and nice value (SCHED_FLAG_KEEP_POLICY would skip the
  // slice too); only a fair policy (SCHED_OTHER, SCHED_BATCH) has slices.
  if (a.sched_policy != SCHED_OTHER && a.sched_policy != SCHED_BATCH) return false;
  a.size = sizeof(a);
  a.sched_flags = 0;
  a.sched_runtime = static_cast<std::uint64_t>(slice.count());
  return syscall(SYS_sched_setattr, 0, &a, 0) == 0;
}

std::optional<std::chrono::nanoseconds> requested_time_slice() noexcept {
  sched_attr a;
  if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) != 0) return std::nullopt;
  return std::chrono::nanoseconds{a.sched_runtime};
}

bool set_thread_nice(int nice) noexcept {
  // On Linux a thread id names the thread alone for PRIO_PROCESS.
  return setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice) == 0;
}

}  // namespace accellm::actors
