#include "cli/selftest_command.hpp"

#include "actors/system_config.hpp"
#include "actors/type_registry.hpp"
#include "messages/capnp_blob.hpp"
#include "messages/codec.hpp"

#include <caf/actor_system.hpp>

#include <iostream>

#ifdef ACCELLM_HAVE_CUDA
#include "device/cuda/device_query.hpp"
#endif

namespace accellm::cli {

namespace {

int run_selftest() {
  int failures = 0;
  {
    actors::system_config cfg{actors::clock_mode::virtual_time};
    caf::actor_system sys{cfg};
    auto st = actors::self_test(sys);
    std::cout << "caf types: " << actors::registered_type_names().size() << " registered, "
              << messages::all_msg_types.size()
              << " message types round-tripped: " << (st ? std::string{"ok"} : st.err().what())
              << '\n';
    failures += st ? 0 : 1;
  }
#ifdef ACCELLM_HAVE_CUDA
  auto cuda = device::cuda::probe();
  std::cout << "cuda: runtime " << cuda.runtime_version << ", driver " << cuda.driver_version
            << ", " << cuda.device_count << " device(s)";
  if (!cuda.usable()) std::cout << " (" << cuda.reason << ")";
  std::cout << '\n';
  if (auto devices = device::cuda::query_devices())
    for (const auto& g : *devices)
      std::cout << "  cuda:" << g.index << " " << g.name << ", sm_" << g.compute_major
                << g.compute_minor << ", " << g.sm_count << " SMs, "
                << g.total_memory / (1ull << 20) << " MiB, " << g.peak_memory_bandwidth() / 1e9
                << " GB/s peak\n";
#else
  std::cout << "cuda: not built (no nvcc at configure time)\n";
#endif
  return failures == 0 ? 0 : 1;
}

}  // namespace

void add_selftest_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand("selftest", "Check CAF type registration and list CUDA devices");
  cmd->callback([&run] { run = run_selftest; });
}

}  // namespace accellm::cli
