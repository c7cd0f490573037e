#include "actors/type_registry.hpp"

#include "actors/system_config.hpp"
#include "messages/capnp_blob.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>

namespace accellm::actors {
namespace {

TEST(type_registry, self_test_passes_on_a_registered_system) {
  system_config cfg{clock_mode::virtual_time};
  caf::actor_system sys{cfg};
  auto st = self_test(sys);
  EXPECT_TRUE(st.ok()) << st.err().what();
}

TEST(type_registry, self_test_names_a_missing_registration) {
  // A config that forgot register_types(): CAF itself would only print a
  // message and drop the data; the self-test must refuse loudly.
  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("testing"));
  caf::actor_system sys{cfg};
  auto st = self_test(sys);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code(), errc::internal);
  EXPECT_NE(st.err().message().find("accellm::capnp_blob"), std::string::npos)
      << st.err().message();
}

TEST(type_registry, every_name_is_constructible) {
  system_config cfg{clock_mode::virtual_time};
  caf::actor_system sys{cfg};
  ASSERT_FALSE(registered_type_names().empty());
  for (auto name : registered_type_names())
    EXPECT_TRUE(sys.types().make_value(std::string{name})) << name;
}

TEST(type_registry, a_blob_crosses_actors_intact) {
  system_config cfg{clock_mode::virtual_time};
  caf::actor_system sys{cfg};
  auto& sched = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  messages::capnp_blob seen;
  auto sink = sys.spawn([&seen](caf::event_based_actor*) -> caf::behavior {
    return {[&seen](const messages::capnp_blob& b) { seen = b; }};
  });
  messages::capnp_blob blob{7, {1, 2, 3, 4, 5, 6, 7, 8}, {}};
  caf::anon_send(sink, blob);
  sched.run();
  EXPECT_EQ(seen, blob);
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
  sched.run();
}

}  // namespace
}  // namespace accellm::actors
