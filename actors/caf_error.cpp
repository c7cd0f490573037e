#include "actors/caf_error.hpp"

#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace accellm {

caf::error make_error(errc code, std::string message) {
  return caf::error{static_cast<std::uint8_t>(code), errc_category,
                    caf::make_message(std::move(message))};
}

caf::error to_caf(const error& e) {
  return make_error(e.code(), e.message());
}

error from_caf(const caf::error& e) {
  if (e.category() == errc_category) {
    std::string text;
    if (e.context().match_elements<std::string>()) text = e.context().get_as<std::string>(0);
    return error{static_cast<errc>(e.code()), std::move(text)};
  }
  // caf::to_string renders the category atom, the code and the context.
  return error{errc::internal, caf::to_string(e)};
}

}  // namespace accellm
