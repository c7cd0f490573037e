// transport_test_peer: the second process of transport_test's hung-node test.
//
//   transport_test_peer PORT
//
// Connects to 127.0.0.1:PORT with the default transport_options, sends
// (hello_atom, its ponger) to the actor published there, then serves pings
// until the connection goes away (the test SIGSTOPs, then SIGKILLs it) or
// for at most 60 s, so a crashed test leaves no process behind for long.
#include "actors/atoms.hpp"
#include "actors/system_config.hpp"
#include "actors/transport.hpp"

#include <caf/all.hpp>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>

namespace {

// Also defined in transport_test.cpp: the peer's greeting.
using hello_atom = caf::atom_constant<caf::atom("hello")>;

// As in transport_test.cpp: answers ping with (pong, name).
caf::behavior ponger(std::string name) {
  return {[name](accellm::actors::ping_atom) {
    return caf::make_message(accellm::actors::pong_atom::value, name);
  }};
}

int run(std::uint16_t port) {
  using namespace accellm::actors;
  transport_options opts;
  system_config cfg;
  if (auto st = apply(opts, cfg); !st) {
    std::fprintf(stderr, "transport_test_peer: %s\n", st.err().what().c_str());
    return 2;
  }
  caf::actor_system sys{cfg};
  auto pong = sys.spawn(ponger, "peer");
  int rc = 0;
  if (auto dest = connect(sys, "127.0.0.1", port, opts); !dest) {
    std::fprintf(stderr, "transport_test_peer: %s\n", dest.err().what().c_str());
    rc = 3;
  } else {
    caf::scoped_actor self{sys};
    self->monitor(*dest);
    caf::anon_send(*dest, hello_atom::value, pong);
    self->receive([](const caf::down_msg&) {}, caf::after(std::chrono::seconds{60}) >> [] {});
  }
  caf::anon_send_exit(pong, caf::exit_reason::user_shutdown);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned port = 0;
  std::string_view arg = argc == 2 ? argv[1] : "";
  auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), port);
  if (arg.empty() || ec != std::errc{} || end != arg.data() + arg.size() || port == 0 ||
      port > 65535) {
    std::fprintf(stderr, "usage: transport_test_peer PORT\n");
    return 1;
  }
  return run(static_cast<std::uint16_t>(port));
}
