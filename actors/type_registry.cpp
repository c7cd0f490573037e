#include "actors/type_registry.hpp"

#include "actors/atoms.hpp"
#include "messages/capnp_blob.hpp"
#include "messages/codec.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/message.hpp>
#include <caf/uniform_type_info_map.hpp>

#include <array>
#include <string>
#include <variant>
#include <vector>

namespace accellm::actors {

namespace {

constexpr std::array<std::string_view, 1> type_names = {
    "accellm::capnp_blob",
};

// One example message through CAF's binary serializer and back, wrapped in a
// caf::message exactly as the middleman does on the wire: message::load
// rebuilds every element by its registered name, so an unregistered type
// fails here instead of being dropped silently in production.
status round_trip(caf::actor_system& sys, const messages::capnp_blob& blob) {
  auto what = std::string{messages::to_string(static_cast<messages::msg_type>(blob.type))};
  auto msg = caf::make_message(msg_atom::value, blob);
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  if (auto err = msg.save(sink))
    return fail(errc::internal, what + ": CAF cannot serialize it: " + sys.render(err));
  caf::message copy;
  caf::binary_deserializer source{sys, buf};
  if (auto err = copy.load(source))
    return fail(errc::internal, what + ": CAF cannot deserialize it: " + sys.render(err));
  if (!copy.match_elements<msg_atom, messages::capnp_blob>())
    return fail(errc::internal, what + ": arrived as " + caf::to_string(copy));
  const auto& got = copy.get_as<messages::capnp_blob>(1);
  if (got != blob) return fail(errc::internal, what + ": bytes changed in CAF serialization");
  if (auto st = messages::validate(got); !st)
    return fail(errc::internal,
                what + ": does not decode after CAF serialization: " + st.err().what());
  return {};
}

}  // namespace

void register_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<messages::capnp_blob>(std::string{type_names[0]});
}

std::span<const std::string_view> registered_type_names() noexcept {
  return type_names;
}

status self_test(caf::actor_system& sys) {
  for (auto name : type_names)
    if (!sys.types().make_value(std::string{name}))
      return fail(errc::internal, "type '" + std::string{name} +
                                      "' is not registered with CAF; call "
                                      "actors::register_types() on the config");
  auto examples = messages::example_blobs();
  if (examples.size() != messages::all_msg_types.size())
    return fail(errc::internal, "messages::example_blobs() covers " +
                                    std::to_string(examples.size()) + " of " +
                                    std::to_string(messages::all_msg_types.size()) + " types");
  for (const auto& blob : examples)
    if (auto st = round_trip(sys, blob); !st) return st;
  // Packed (unencoded) messages become the same bytes when they leave.
  for (const auto& m : messages::example_messages()) {
    const auto packed = std::visit([](const auto& x) { return messages::pack(x); }, m);
    if (auto st = round_trip(sys, packed); !st) return st;
  }
  return {};
}

}  // namespace accellm::actors
