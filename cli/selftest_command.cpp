#include "cli/selftest_command.hpp"

#include "daemon/instance_host.hpp"
#include "daemon/process.hpp"

#include "actors/system_config.hpp"
#include "actors/type_registry.hpp"
#include "config/cluster_config.hpp"
#include "device/model_spec.hpp"
#include "messages/capnp_blob.hpp"
#include "messages/codec.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#ifdef ACCELLM_HAVE_CUDA
#include "device/cuda/device_query.hpp"
#endif

namespace accellm::cli {

namespace {

struct selftest_flags {
  std::string device;  ///< empty: only the start-up checks
  std::string config;
  std::optional<std::string> model;
  std::uint32_t prompt = 32;
  std::uint32_t steps = 8;
};

// The checks every daemon runs at start-up; the number that failed.
int startup_checks() {
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
  return failures;
}

double ms_of(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// A short greedy generation on `b`: a prompt of f.prompt deterministic
// tokens, then f.steps decode steps; device times and the tokens. False
// (said why) when an iteration fails.
bool generate(device::backend& b, const selftest_flags& f) {
  const device::model_spec& m = b.model();
  std::vector<token_id> prompt(f.prompt);
  for (std::uint32_t i = 0; i < f.prompt; ++i)
    prompt[i] = static_cast<token_id>((i * 7919u + 13u) % m.vocab);
  constexpr request_id request = 1;
  auto first =
      b.run({{device::batch_item{request, device::phase::prefill, 0, f.prompt, prompt, true}}});
  if (!first) {
    std::cout << "  prefill of " << f.prompt << " tokens FAILED: " << first.err().what() << '\n';
    return false;
  }
  std::vector<token_id> out{first->next_tokens.at(0)};
  std::chrono::nanoseconds decode{0};
  for (std::uint32_t step = 0; step < f.steps; ++step) {
    const auto context = static_cast<std::uint32_t>(f.prompt + step);
    auto r = b.run(
        {{device::batch_item{request, device::phase::decode, context, 1, {out.back()}, true}}});
    if (!r) {
      std::cout << "  decode step " << step << " FAILED: " << r.err().what() << '\n';
      return false;
    }
    decode += r->duration;
    out.push_back(r->next_tokens.at(0));
  }
  b.release(request);
  char line[160];
  std::snprintf(line, sizeof line, "  prefill of %u tokens: %.3f ms; %u decode steps: %.3f ms each",
                f.prompt, ms_of(first->duration), f.steps, f.steps ? ms_of(decode) / f.steps : 0.0);
  std::cout << line << " (device time)\n  greedy tokens:";
  for (token_id t : out) std::cout << ' ' << t;
  std::cout << '\n';
  return true;
}

// The device a worker with these flags would build, described and run.
int device_check(const selftest_flags& f) {
  config::cluster_config c;
  if (!f.config.empty()) {
    auto loaded = config::load_cluster_config(f.config);
    if (!loaded) {
      std::cerr << "accellm selftest: " << loaded.err().what() << '\n';
      return daemon::exit_config;
    }
    c = std::move(*loaded);
  }
  if (f.model) c.model = *f.model;
  const device::model_spec* spec = device::find_model(c.model);
  if (spec != nullptr && config::is_real_device(f.device) &&
      f.prompt + f.steps > spec->max_context) {
    std::cerr << "accellm selftest: --prompt-tokens + --steps exceeds " << spec->name
              << "'s context of " << spec->max_context << '\n';
    return daemon::exit_config;
  }
  auto dev = daemon::make_device(f.device, c);
  if (!dev) {
    std::cerr << "accellm selftest: " << dev.err().what() << '\n';
    return dev.err().code() == errc::device_failure || dev.err().code() == errc::out_of_memory
               ? daemon::exit_failure
               : daemon::exit_config;
  }
  std::cout << "device " << dev->name << ": " << dev->model->name << ", KV pool "
            << dev->kv.total_blocks << " blocks of " << dev->kv.block_tokens << " tokens\n";
  for (const std::string& line : dev->setup) std::cout << "  " << line << '\n';
  if (dev->backend == nullptr) {
    std::cout << "  a cost model: nothing runs (its tables: accellm model --device " << dev->name
              << ")\n";
    return 0;
  }
  return generate(*dev->backend, f) ? 0 : daemon::exit_failure;
}

}  // namespace

void add_selftest_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand(
      "selftest",
      "Check CAF type registration and list CUDA devices; with --device, build that device as a "
      "worker would and run a short generation on it");
  auto f = std::make_shared<selftest_flags>();
  cmd->add_option("--device", f->device, "cpu, cuda:N or sim:* (as `accellm worker --device`)");
  cmd->add_option("--config", f->config,
                  "cluster file: model, batching and [cuda] as a worker reads them");
  cmd->add_option("--model", f->model, "model catalogue key (overrides [cluster] model)");
  cmd->add_option("--prompt-tokens", f->prompt, "prompt length of the generation (default 32)")
      ->check(CLI::Range(1u, 65536u));
  cmd->add_option("--steps", f->steps, "decode steps after the prompt (default 8)")
      ->check(CLI::Range(0u, 4096u));
  cmd->callback([&run, f] {
    run = [f] {
      const int failures = startup_checks();
      if (f->device.empty()) return failures == 0 ? 0 : daemon::exit_failure;
      const int device = device_check(*f);
      return device != 0 ? device : failures == 0 ? 0 : daemon::exit_failure;
    };
  });
}

}  // namespace accellm::cli
