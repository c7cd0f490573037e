#include "actors/caf_error.hpp"

#include "actors/system_config.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>

namespace accellm {
namespace {

TEST(caf_error, round_trip_keeps_code_and_message) {
  error original{errc::out_of_range, "execute.items[3].phase: 7 is out of range"};
  auto back = from_caf(to_caf(original));
  EXPECT_EQ(back, original);
}

TEST(caf_error, foreign_categories_become_internal_with_their_text) {
  auto back = from_caf(caf::make_error(caf::sec::request_timeout));
  EXPECT_EQ(back.code(), errc::internal);
  EXPECT_NE(back.message().find("request_timeout"), std::string::npos) << back.message();
}

TEST(caf_error, the_system_renders_accellm_codes) {
  actors::system_config cfg{actors::clock_mode::virtual_time};
  caf::actor_system sys{cfg};
  auto text = sys.render(make_error(errc::wrong_type, "expected Execute, got Heartbeat"));
  EXPECT_EQ(text, "accellm: wrong_type (expected Execute, got Heartbeat)");
}

}  // namespace
}  // namespace accellm
