// virtual_time: drives an actor system on CAF's testing scheduler as a
// discrete-event simulation (DESIGN.md "Two clocks, one code").
//
//   run ready messages (FIFO) -> nothing ready? jump the clock to the next
//   due timer, fire every timer due at that instant -> repeat
//
// until nothing is left (quiescence) or the next timer lies past a deadline.
// The same seed gives the same order of events, so a run is reproducible and
// its trace hash is stable. Wall time plays no part: a simulated hour takes as
// long as its messages take to process.
//
// Thread contract: the testing scheduler is single-threaded; call everything
// from the thread that owns the actor_system.
//
// Shutdown: CAF 0.17 hangs in ~actor_system while any actor is alive, and a
// live actor with a periodic timer keeps the scheduler busy forever. Call
// shutdown() with the root actors (whose exit handlers stop their children)
// before the system goes out of scope; it reports actors that survived.
#pragma once

#include "actors/clock.hpp"
#include "common/result.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/detail/test_actor_clock.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <cstddef>
#include <span>

namespace accellm::actors {

class virtual_time {
 public:
  /// Attaches to `sys`, which must run on the testing scheduler
  /// (system_config{clock_mode::virtual_time}); errc::invalid_argument otherwise.
  static result<virtual_time> attach(caf::actor_system& sys);

  /// The simulated time.
  time_point now() const { return clock_->now(); }

  /// Runs until nothing is ready and no timer is pending. Returns the number
  /// of messages and timers processed.
  std::size_t run();

  /// Runs every event due at or before `deadline`, then sets the clock to
  /// `deadline` (if it is later than now). Timers due later stay pending.
  std::size_t run_until(time_point deadline);

  /// run_until(now() + d).
  std::size_t run_for(duration d) { return run_until(now() + d); }

  /// Timers (delayed messages, request timeouts) not yet fired.
  std::size_t pending_timers() const { return clock_->schedule().size(); }

  /// Sends exit(user_shutdown) to every actor in `roots`, then processes
  /// messages and fires timers until nothing is left. Fails naming the number
  /// of actors still running (which would hang ~actor_system).
  status shutdown(std::span<const caf::actor> roots);

 private:
  virtual_time(caf::actor_system& sys, caf::scheduler::test_coordinator& sched);

  caf::actor_system* sys_;
  caf::scheduler::test_coordinator* sched_;
  caf::detail::test_actor_clock* clock_;
};

}  // namespace accellm::actors
