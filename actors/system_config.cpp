#include "actors/system_config.hpp"

#include "actors/caf_error.hpp"
#include "actors/type_registry.hpp"

#include <caf/atom.hpp>
#include <caf/message.hpp>

#include <algorithm>
#include <string>
#include <thread>

namespace accellm::actors {

namespace {

std::string render_errc(std::uint8_t code, caf::atom_value, const caf::message& context) {
  std::string out = "accellm: ";
  out += to_string(static_cast<errc>(code));
  if (context.match_elements<std::string>()) {
    out += " (";
    out += context.get_as<std::string>(0);
    out += ")";
  }
  return out;
}

}  // namespace

system_config::system_config(clock_mode mode) : mode_(mode) {
  register_types(*this);
  add_error_category(errc_category, render_errc);
  if (mode == clock_mode::virtual_time) {
    set("scheduler.policy", caf::atom("testing"));
    // The testing scheduler runs everything on the caller's thread; CAF's own
    // logger thread would be the only other one.
    set("logger.inline-output", true);
  } else {
    // CAF's default work-stealing scheduler keeps each idle thread polling,
    // waking every 50 us for about 25 ms after each job; with several
    // processes on one host those wake-ups compete with everything else. In
    // the work-sharing scheduler idle threads sleep on one queue's condition
    // variable and a new job wakes one at once. accellm's actors do little
    // work per message, so a few threads serve a daemon (bench/README.md,
    // coordination overhead).
    set("scheduler.policy", caf::atom("sharing"));
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    set("scheduler.max-threads", std::clamp<std::size_t>(cores, 2, 4));
  }
}

}  // namespace accellm::actors
