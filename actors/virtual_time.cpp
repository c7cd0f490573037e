#include "actors/virtual_time.hpp"

#include <caf/actor_registry.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include <limits>
#include <string>

namespace accellm::actors {

result<virtual_time> virtual_time::attach(caf::actor_system& sys) {
  auto* sched = dynamic_cast<caf::scheduler::test_coordinator*>(&sys.scheduler());
  if (sched == nullptr)
    return fail(errc::invalid_argument,
                "virtual_time needs an actor system on the testing scheduler "
                "(system_config{clock_mode::virtual_time})");
  return virtual_time{sys, *sched};
}

virtual_time::virtual_time(caf::actor_system& sys, caf::scheduler::test_coordinator& sched)
    : sys_(&sys), sched_(&sched), clock_(&sched.clock()) {}

std::size_t virtual_time::run() {
  return run_until(time_point::max());
}

std::size_t virtual_time::run_until(time_point deadline) {
  std::size_t processed = 0;
  for (;;) {
    processed += sched_->run();
    if (!clock_->has_pending_timeout()) break;
    auto next = clock_->schedule().begin()->first;
    if (next > deadline) break;
    // advance_time fires every timer due at the new instant, in the order
    // they were scheduled, and enqueues their messages; the next pass of the
    // loop runs them.
    auto step = next > clock_->now() ? next - clock_->now() : duration::zero();
    processed += sched_->advance_time(step);
  }
  if (deadline != time_point::max() && deadline > clock_->now()) clock_->current_time = deadline;
  return processed;
}

status virtual_time::shutdown(std::span<const caf::actor> roots) {
  for (const auto& root : roots)
    if (root) caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
  // Timers addressed to dead actors are dropped when they fire, so draining
  // them terminates once every actor is gone. A live actor with a periodic
  // timer would keep this busy: the bound turns that hang into an error.
  constexpr int max_rounds = 1'000'000;
  for (int round = 0; round < max_rounds; ++round) {
    sched_->run();
    if (!clock_->has_pending_timeout()) break;
    sched_->trigger_timeouts();
  }
  auto alive = sys_->registry().running();
  if (alive != 0 || clock_->has_pending_timeout())
    return fail(errc::internal, std::to_string(alive) +
                                    " actor(s) still running after shutdown; their exit "
                                    "handlers must stop every child");
  return {};
}

}  // namespace accellm::actors
