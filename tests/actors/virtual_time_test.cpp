// Two actors play ping-pong with seeded random delays on the virtual clock.
// The same seed must give the same events at the same virtual times and the
// same trace hash, run after run; another seed must not.
#include "actors/virtual_time.hpp"

#include "actors/atoms.hpp"
#include "actors/clock.hpp"
#include "actors/system_config.hpp"
#include "actors/trace_hash.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace accellm::actors {
namespace {

using namespace std::chrono_literals;

struct event {
  std::int64_t at_ns;
  std::string who;
  std::uint64_t ball;
  friend bool operator==(const event&, const event&) = default;
};

struct run_log {
  time_point origin;
  std::vector<event> events;
  trace_hash hash;
  void record(const caf::local_actor* self, const std::string& who, std::uint64_t ball) {
    auto at = nanos_since(origin, now(self));
    events.push_back({at, who, ball});
    hash.add(static_cast<std::uint64_t>(at)).add(who).add(ball).event();
  }
};

struct player_state {
  std::mt19937_64 rng;
  caf::actor peer;
};

// Receives a ball, records it, and sends ball+1 to its peer after a random
// delay of 1..50 ms, until the ball reaches `last`.
caf::behavior player(caf::stateful_actor<player_state>* self, std::string name, std::uint64_t seed,
                     run_log* log, std::uint64_t last) {
  self->state.rng.seed(seed);
  return {
      [self](caf::actor peer) { self->state.peer = std::move(peer); },
      [self, name, log, last](ping_atom, std::uint64_t ball) {
        log->record(self, name, ball);
        if (ball >= last) return;
        std::uniform_int_distribution<int> ms{1, 50};
        auto delay = std::chrono::milliseconds{ms(self->state.rng)};
        self->delayed_send(self->state.peer, delay, ping_atom::value, ball + 1);
      },
  };
}

run_log play(std::uint64_t seed, std::uint64_t last = 200) {
  system_config cfg{clock_mode::virtual_time};
  caf::actor_system sys{cfg};
  auto vt = virtual_time::attach(sys);
  EXPECT_TRUE(vt.ok());
  run_log log;
  log.origin = vt->now();
  auto a = sys.spawn(player, "a", seed, &log, last);
  auto b = sys.spawn(player, "b", seed ^ 0x9e3779b97f4a7c15ull, &log, last);
  caf::anon_send(a, b);
  caf::anon_send(b, a);
  caf::anon_send(a, ping_atom::value, std::uint64_t{0});
  vt->run();
  std::vector<caf::actor> roots{a, b};
  EXPECT_TRUE(vt->shutdown(roots).ok());
  return log;
}

TEST(virtual_time, same_seed_gives_same_events_and_hash) {
  auto first = play(42);
  auto second = play(42);
  ASSERT_EQ(first.events.size(), 201u);
  EXPECT_EQ(first.events, second.events);
  EXPECT_EQ(first.hash.value(), second.hash.value());
  // The players alternate and virtual time only moves forward.
  for (std::size_t i = 1; i < first.events.size(); ++i) {
    EXPECT_NE(first.events[i].who, first.events[i - 1].who);
    EXPECT_GT(first.events[i].at_ns, first.events[i - 1].at_ns);
  }
}

TEST(virtual_time, another_seed_gives_another_hash) {
  EXPECT_NE(play(42).hash.value(), play(43).hash.value());
}

TEST(virtual_time, delays_add_up_exactly_in_virtual_time) {
  auto log = play(7, 20);
  ASSERT_EQ(log.events.size(), 21u);
  // Every gap is a whole number of milliseconds between 1 and 50: no wall
  // time leaks into the virtual clock.
  for (std::size_t i = 1; i < log.events.size(); ++i) {
    auto gap = log.events[i].at_ns - log.events[i - 1].at_ns;
    EXPECT_EQ(gap % 1'000'000, 0) << "gap " << gap << " ns";
    EXPECT_GE(gap, 1'000'000);
    EXPECT_LE(gap, 50'000'000);
  }
}

TEST(virtual_time, run_until_stops_at_the_deadline) {
  system_config cfg{clock_mode::virtual_time};
  caf::actor_system sys{cfg};
  auto vt = virtual_time::attach(sys);
  ASSERT_TRUE(vt.ok());
  auto start = vt->now();
  std::vector<std::int64_t> fired;
  auto sink = sys.spawn([&fired, start](caf::event_based_actor* self) -> caf::behavior {
    return {[self, &fired, start](tick_atom) { fired.push_back(nanos_since(start, now(self))); }};
  });
  for (auto delay : {5s, 10s, 30s}) caf::delayed_anon_send(sink, delay, tick_atom::value);
  vt->run_until(start + 12s);
  EXPECT_EQ(fired, (std::vector<std::int64_t>{5'000'000'000, 10'000'000'000}));
  EXPECT_EQ(vt->now(), start + 12s);
  EXPECT_EQ(vt->pending_timers(), 1u);
  vt->run_for(100s);
  EXPECT_EQ(fired.size(), 3u);
  EXPECT_EQ(fired.back(), 30'000'000'000);
  EXPECT_EQ(vt->now(), start + 112s);
  std::vector<caf::actor> roots{sink};
  EXPECT_TRUE(vt->shutdown(roots).ok());
}

TEST(virtual_time, request_timeouts_fire_in_virtual_time) {
  system_config cfg{clock_mode::virtual_time};
  caf::actor_system sys{cfg};
  auto vt = virtual_time::attach(sys);
  ASSERT_TRUE(vt.ok());
  auto start = vt->now();
  // A server that never answers, and a client whose request times out.
  auto silent = sys.spawn([](caf::event_based_actor*) -> caf::behavior {
    return {[](ping_atom) -> caf::result<pong_atom> { return caf::delegated<pong_atom>{}; }};
  });
  std::int64_t timed_out_at = -1;
  auto client = sys.spawn([&timed_out_at, start, silent](caf::event_based_actor* self) {
    self->request(silent, 30s, ping_atom::value)
        .then([](pong_atom) {},
              [self, &timed_out_at, start](caf::error& err) {
                if (err == caf::sec::request_timeout) timed_out_at = nanos_since(start, now(self));
              });
  });
  vt->run();
  EXPECT_EQ(timed_out_at, 30'000'000'000);
  std::vector<caf::actor> roots{silent, client};
  EXPECT_TRUE(vt->shutdown(roots).ok());
}

TEST(virtual_time, shutdown_reports_actors_that_survive) {
  system_config cfg{clock_mode::virtual_time};
  caf::actor_system sys{cfg};
  auto vt = virtual_time::attach(sys);
  ASSERT_TRUE(vt.ok());
  auto survivor = sys.spawn([](caf::event_based_actor* self) -> caf::behavior {
    self->set_exit_handler([](caf::exit_msg&) {});  // ignores exit requests
    return {[](ping_atom) {}};
  });
  auto other =
      sys.spawn([](caf::event_based_actor*) -> caf::behavior { return {[](ping_atom) {}}; });
  std::vector<caf::actor> roots{survivor, other};
  auto st = vt->shutdown(roots);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.err().message().find("1 actor(s) still running"), std::string::npos)
      << st.err().message();
  // Let the test end cleanly.
  caf::anon_send_exit(survivor, caf::exit_reason::kill);
  vt->run();
}

TEST(virtual_time, attach_refuses_a_real_time_system) {
  system_config cfg{clock_mode::real};
  caf::actor_system sys{cfg};
  auto vt = virtual_time::attach(sys);
  ASSERT_FALSE(vt.ok());
  EXPECT_EQ(vt.err().code(), errc::invalid_argument);
}

}  // namespace
}  // namespace accellm::actors
