// thread_sched: how a daemon's threads ask the OS scheduler for low latency.
//
// A daemon's actors and network threads sleep most of the time and must run
// as soon as a message wakes them. On a host where something else computes
// (the `cpu` device's forward passes), Linux lets the running thread finish
// its time slice (1-3 ms) before a woken thread gets the core, and that wait
// was the p99 of a coordination hop (bench/README.md). Two settings fix it
// together: the daemon's threads ask for short slices (Linux >= 6.12 then
// lets a waking thread with a shorter slice preempt), and the compute thread
// runs at a lower priority (nice), so the scheduler considers it behind.
// Neither starves the computation: a nice thread still gets its share, only a
// smaller one while other threads want the core.
//
// Thread contract: each function acts on the calling thread only. Threads
// inherit these settings from the thread that starts them.
#pragma once

#include <chrono>
#include <optional>

namespace accellm::actors {

/// The slice a daemon asks for, before it starts its threads.
inline constexpr std::chrono::microseconds daemon_time_slice{100};

/// Asks for time slices of `slice` for the calling thread (0: the kernel's
/// default). Linux >= 6.12 honours it for normal (SCHED_OTHER) threads;
/// older kernels accept it and ignore it. False when the call failed.
bool request_time_slice(std::chrono::nanoseconds slice) noexcept;

/// The calling thread's time slice as the kernel reports it (its default
/// slice unless one was requested); nullopt where the kernel cannot say.
std::optional<std::chrono::nanoseconds> requested_time_slice() noexcept;

/// Sets the calling thread's nice value (0..19: higher runs behind); false
/// when that failed.
bool set_thread_nice(int nice) noexcept;

}  // namespace accellm::actors
