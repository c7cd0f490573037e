// Time to resume a request after the instance decoding it is lost (issue 6):
// from the copy its partner holds (accellm) against recomputing its context
// on another instance (vllm), by prompt length.
//
//   bench_takeover [device = sim:h100] [model = llama2-70b] [tp = 8]
//
// Two instances, one request (prompt P, 400 output tokens) alone, so that
// nothing else queues. A run without the failure gives the request's first
// token time and its decode instance; the same run then loses that instance
// (a kill, noticed at once) 100 ms after the first token, mid-decode. Resume
// is the takeover to the request's next token; the request always completes.
//
// Expectation (DESIGN.md "Takeover"): from a replica it costs about one
// decode step whatever the prompt; recomputing costs a prefill of the whole
// context, growing with the prompt.
#include "config/cluster_config.hpp"
#include "simulator/sim_cluster.hpp"

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

namespace {

using namespace accellm;
using ms = std::chrono::duration<double, std::milli>;

struct outcome {
  double resume_ms = 0;
  double token_gap_ms = 0;  ///< mean gap between tokens without the failure
  bool from_replica = false;
};

std::optional<outcome> measure(const config::cluster_config& cluster, const std::string& policy,
                               std::uint32_t prompt) {
  simulator::run_options o;
  o.cluster = cluster;
  o.policy.name = policy;
  o.trace = {{.id = 1,
              .arrival = std::chrono::milliseconds{1},
              .prompt_tokens = prompt,
              .output_tokens = 400}};
  auto clean = simulator::run_simulation(o);
  if (!clean || !clean->drained) return std::nullopt;
  const metrics::request_record& r = clean->record.requests.at(0);
  const auto at = r.first_token + std::chrono::milliseconds{100};
  o.faults = {{.what = simulator::fault::kind::kill, .instance = r.decode_instance, .at = at}};
  auto failed = simulator::run_simulation(o);
  if (!failed || !failed->drained || failed->record.takeovers.empty()) return std::nullopt;
  const metrics::takeover_record& t = failed->record.takeovers.front();
  if (t.resumed == metrics::never) return std::nullopt;
  return outcome{.resume_ms = ms(t.resumed - t.at).count(),
                 .token_gap_ms = ms(r.finish - r.first_token).count() / 399.0,
                 .from_replica = t.from_replica};
}

}  // namespace

int main(int argc, char** argv) {
  const std::string device = argc > 1 ? argv[1] : "sim:h100";
  const std::string model = argc > 2 ? argv[2] : "llama2-70b";
  const std::string tp = argc > 3 ? argv[3] : "8";
  auto cluster = config::parse_cluster_config("[cluster]\nmodel = \"" + model + "\"\ndevice = \"" +
                                                  device + "\"\ntp = " + tp + "\ninstances = 2\n",
                                              "bench_takeover");
  if (!cluster) {
    std::fprintf(stderr, "%s\n", cluster.err().what().c_str());
    return 2;
  }
  std::printf(
      "resume after the decoding instance is lost: %s x %s tp %s, one request, 400 "
      "output tokens, killed 100 ms after its first token\n\n",
      model.c_str(), device.c_str(), tp.c_str());
  std::printf("%8s  %22s  %22s  %16s\n", "prompt", "accellm (replica) ms", "vllm (recompute) ms",
              "decode step ms");
  int code = 0;
  for (const std::uint32_t prompt : {512u, 2048u, 8192u}) {
    const auto replica = measure(*cluster, "accellm", prompt);
    const auto recompute = measure(*cluster, "vllm", prompt);
    if (!replica || !recompute || !replica->from_replica || recompute->from_replica) {
      std::printf("%8u  a run did not go as planned (no takeover, or not of the expected kind)\n",
                  prompt);
      code = 1;
      continue;
    }
    std::printf("%8u  %22.1f  %22.1f  %16.1f\n", prompt, replica->resume_ms, recompute->resume_ms,
                replica->token_gap_ms);
  }
  return code;
}
