#include "actors/system_config.hpp"

#include "actors/caf_error.hpp"
#include "actors/type_registry.hpp"

#include <caf/atom.hpp>
#include <caf/message.hpp>

#include <string>

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
  }
}

}  // namespace accellm::actors
