// system_config: the caf::actor_system_config every accellm binary builds.
//
// Its constructor registers every message type accellm sends (one place for
// all of them: CAF 0.17 silently drops a message whose type a node has not
// registered) and the renderer for accellm error codes. Each process then runs
// type_registry's self_test() on its actor_system before doing anything else.
//
// clock_mode::virtual_time selects CAF's testing scheduler, on which
// actors/virtual_time drives a deterministic simulation; clock_mode::real
// selects CAF's work-sharing scheduler with 2-4 threads, whose idle threads
// sleep instead of polling (system_config.cpp says why).
#pragma once

#include <caf/actor_system_config.hpp>

namespace accellm::actors {

enum class clock_mode : bool { real, virtual_time };

class system_config : public caf::actor_system_config {
 public:
  explicit system_config(clock_mode mode = clock_mode::real);

  clock_mode mode() const noexcept { return mode_; }

 private:
  clock_mode mode_;
};

}  // namespace accellm::actors
