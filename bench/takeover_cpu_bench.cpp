// Time to resume a request after the instance decoding it is lost, on the
// real `cpu` device (issue 6, "cpu at small sizes"): from the copy its
// partner holds (accellm) against recomputing its context (vllm).
//
//   bench_takeover_cpu [model = cpu-small] [repeats = 5]
//
// In one process, on the real clock: a coordinator and two instances whose
// workers run the model on this host's cores (the actors of a worker daemon,
// daemon/instance_host.hpp, without the network). One request alone (prompt
// P, 64 output tokens); when it has 16 tokens, the instance decoding it is
// killed and the coordinator told at once (as a closed connection tells
// it). Resume is the takeover to the request's next token. The figure is the
// median of `repeats` runs; the decode step is the median gap between the
// request's tokens before the kill.
//
// Expectation (DESIGN.md "Takeover"): from the replica about one decode step
// (plus the few tokens the copy lags) whatever the prompt; recomputing costs
// a prefill of the whole context, growing with the prompt.
#include "daemon/coordinator_process.hpp"
#include "daemon/instance_host.hpp"

#include "actors/atoms.hpp"
#include "actors/system_config.hpp"
#include "config/cluster_config.hpp"
#include "coordinator/coordinator.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace accellm;
using namespace std::chrono_literals;

constexpr std::uint32_t output_tokens = 64;
constexpr std::uint32_t kill_at_token = 16;

// Watches request 1: kills the instance that produced its kill_at_token-th
// token, records the takeover and the gaps between tokens before it. Armed
// (arm()) before the request is submitted; called from the coordinator.
class killer final : public coordinator::observer {
 public:
  void arm(caf::actor coord, std::vector<daemon::instance_actors> inst) {
    coord_ = std::move(coord);
    inst_ = std::move(inst);
  }

  void on_iteration(const messages::iteration_report& r) override {
    const std::uint64_t end = r.start_ns + r.duration_ns;
    for (const messages::token_run& run : r.runs) {
      if (run.request != 1 || killed_) continue;
      tokens_ += run.count;
      if (last_ns_ != 0) gaps_.push_back(static_cast<double>(end - last_ns_) * 1e-6);
      last_ns_ = end;
      if (tokens_ >= kill_at_token && r.instance < inst_.size()) {
        killed_ = true;
        for (const auto& a : inst_[r.instance].all())
          caf::anon_send_exit(a, caf::exit_reason::kill);
        caf::anon_send(coord_, actors::lost_atom::value, r.instance);
      }
    }
  }
  void on_role(instance_id, messages::role, std::string_view, std::uint64_t) override {}
  void on_finished(const coordinator::request_timeline&) override {}
  void on_takeover(const coordinator::takeover_event& e) override {
    from_replica_ = e.from_replica;
  }
  void on_resumed(request_id, std::uint64_t ns) override {
    resume_ms_ = static_cast<double>(ns) * 1e-6;
  }

  struct result {
    double resume_ms = 0;
    bool from_replica = false;
    double step_ms = 0;  ///< median gap between tokens before the kill
  };
  /// After the request ended (its RequestDone orders this after the calls).
  std::optional<result> get() const {
    if (!resume_ms_) return std::nullopt;
    std::vector<double> g = gaps_;
    std::sort(g.begin(), g.end());
    return result{*resume_ms_, from_replica_, g.empty() ? 0.0 : g[g.size() / 2]};
  }

 private:
  caf::actor coord_;
  std::vector<daemon::instance_actors> inst_;
  std::uint32_t tokens_ = 0;
  std::uint64_t last_ns_ = 0;
  bool killed_ = false;
  std::vector<double> gaps_;
  std::optional<double> resume_ms_;
  bool from_replica_ = false;
};

// `c` with its [coordinator] policy set to `name`.
config::cluster_config with_policy(config::cluster_config c, const std::string& name) {
  c.daemon.policy = name;
  return c;
}

// One run: the request, killed mid-decode; nullopt (and why, on stderr) when
// it did not go as planned.
std::optional<killer::result> measure(const config::cluster_config& c, const std::string& policy,
                                      std::uint32_t prompt, std::uint64_t seed) {
  const device::model_spec* model = device::find_model(c.model);
  std::vector<daemon::device_choice> devs;
  for (int i = 0; i < 2; ++i) {
    auto dev = daemon::make_device("cpu", c);
    if (!dev) {
      std::fprintf(stderr, "%s\n", dev.err().what().c_str());
      return std::nullopt;
    }
    devs.push_back(std::move(*dev));
  }
  killer obs;
  std::optional<killer::result> out;
  {
    actors::system_config cfg;
    caf::actor_system sys{cfg};
    auto coord = coordinator::spawn_coordinator(sys,
                                                {.instances = 2,
                                                 .blocks_per_instance = devs[0].kv.total_blocks,
                                                 .block_tokens = devs[0].kv.block_tokens,
                                                 .token_times = true,
                                                 .token_ids = true,
                                                 .cluster_token = {},
                                                 .model = c.model,
                                                 .vocab = model->vocab,
                                                 .max_context = model->max_context,
                                                 .log = nullptr,
                                                 .trace = {}},
                                                daemon::make_policy(with_policy(c, policy)), &obs);
    std::vector<daemon::instance_actors> inst;
    std::vector<caf::actor> managers, replicas;
    for (auto& d : devs) {
      inst.push_back(daemon::spawn_instance(sys, c, std::move(d), coord));
      managers.push_back(inst.back().manager);
      replicas.push_back(inst.back().replica);
    }
    for (const auto& i : inst) caf::anon_send(i.worker, actors::peers_atom::value, replicas);
    obs.arm(coord, inst);
    caf::anon_send(coord, actors::peers_atom::value, managers);

    std::mt19937_64 rng{seed};
    messages::submit_request s;
    s.request = 1;
    s.prompt_len = prompt;
    s.max_tokens = output_tokens;
    for (std::uint32_t k = 0; k < prompt; ++k) {
      s.prompt.push_back(static_cast<token_id>(rng() % model->vocab));
    }
    caf::scoped_actor client{sys};
    client->send(coord, actors::msg_atom::value, messages::pack(s));
    bool done = false;
    client->receive_while([&] { return !done; })(
        [&](actors::msg_atom, const messages::capnp_blob& b) {
          auto d = messages::decode<messages::request_done>(b);
          if (!d) return;
          done = true;
          if (d->status != messages::request_status::ok || d->output_tokens != output_tokens) {
            std::fprintf(stderr, "prompt %u, %s: the request ended %s after %u tokens: %s\n",
                         prompt, policy.c_str(),
                         d->status == messages::request_status::ok ? "ok" : "unfinished",
                         d->output_tokens, d->error.c_str());
          } else {
            out = obs.get();
          }
        },
        caf::after(std::chrono::seconds{120}) >>
            [&] {
              std::fprintf(stderr, "prompt %u, %s: no answer in 120 s\n", prompt, policy.c_str());
              done = true;
            });
    caf::anon_send_exit(coord, caf::exit_reason::user_shutdown);
    for (const auto& i : inst) {
      for (const auto& a : i.all()) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    }
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::string model = argc > 1 ? argv[1] : "cpu-small";
  const int repeats = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
  auto cluster = config::parse_cluster_config(
      "[cluster]\nmodel = \"" + model + "\"\ndevice = \"cpu\"\ninstances = 2\n", "bench");
  if (!cluster) {
    std::fprintf(stderr, "%s\n", cluster.err().what().c_str());
    return 2;
  }
  const device::model_spec* m = device::find_model(model);
  std::printf(
      "resume after the decoding instance is lost, real cpu device: %s (context %u), one "
      "request, %u output tokens, killed at its token %u; median of %d runs\n\n",
      model.c_str(), m->max_context, output_tokens, kill_at_token, repeats);
  std::printf("%8s  %22s  %22s  %16s\n", "prompt", "accellm (replica) ms", "vllm (recompute) ms",
              "decode step ms");
  int code = 0;
  for (const std::uint32_t share : {16u, 4u, 2u}) {  // 1/16, 1/4, 1/2 of the context
    const std::uint32_t prompt = m->max_context / share;
    std::vector<double> replica, recompute, step;
    bool planned = true;
    for (int r = 0; r < repeats && planned; ++r) {
      const auto a = measure(*cluster, "accellm", prompt, 1 + static_cast<std::uint64_t>(r));
      const auto v = measure(*cluster, "vllm", prompt, 1 + static_cast<std::uint64_t>(r));
      planned = a && v && a->from_replica && !v->from_replica;
      if (!planned) break;
      replica.push_back(a->resume_ms);
      recompute.push_back(v->resume_ms);
      step.push_back(a->step_ms);
    }
    if (!planned) {
      std::printf("%8u  a run did not go as planned (no takeover, or not of the expected kind)\n",
                  prompt);
      code = 1;
      continue;
    }
    std::printf("%8u  %22.2f  %22.2f  %16.2f\n", prompt, median(replica), median(recompute),
                median(step));
  }
  return code;
}
