// prefill_choice: which prefill attention kernel a forward pass runs, chosen
// once on the device at creation (outside any graph capture), by the same
// verify-then-time rule as gemm_planner's skinny candidate.
//
// The probe is a synthetic prompt in the model's attention shape (1024
// tokens by default, fewer when the limits allow fewer): seeded Q in
// [-2, 2), K and V in [-1, 1) in a temporary one-layer pool whose block
// table runs backwards, tiles longest first, cut at each kernel's own height.
// rows64 (the kernel that has run on H100 and H200) is the reference; each
// candidate (rows128, wgmma64, wgmma128, tma128, tma128pp, then tma128n) is *verified* when it
// launches,
// every output of both is finite, and every element is within 2e-2 of the largest |rows64 output|
// (both are bf16 outputs of fp32 softmax over the same bf16 operands; they differ in the order of
// fp32 sums and in bf16 rounding, an ulp or two, <= 0.8% each; a wrong row, key range or fragment
// is off by a sizeable fraction). Verified candidates are then timed against rows64 (median of 7
// samples of 2 back-to-back launches after 2 warm-ups); the fastest is kept if it is a clear win,
// under 0.97 of rows64's time. A kernel that fails to launch (a wgmma kernel off Hopper, or in a
// build without sm_90a code) or disagrees is never used; its (non-sticky) launch error is cleared.
//
// All probe memory (about 5 x 1024 x q_width bytes) is allocated and freed
// inside choose_prefill_kernel, before the KV pool takes what is left.
#pragma once

#include "common/result.hpp"
#include "device/cuda/paged_kv.hpp"
#include "device/cuda/prefill_attention.cuh"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace accellm::device::cuda {

/// How the kernel is chosen.
enum class prefill_rule : std::uint8_t {
  timed,                 ///< the fastest verified candidate, if a clear win (the default)
  rows64,                ///< always rows64; no probe runs
  rows128_if_verified,   ///< rows128 whenever it is verified (tests: exercises rows128)
  wgmma64_if_verified,   ///< wgmma64 whenever it is verified (tests: exercises wgmma64)
  wgmma128_if_verified,  ///< wgmma128 whenever it is verified (tests: exercises wgmma128)
  tma128_if_verified,    ///< tma128 whenever it is verified (tests: exercises tma128)
  tma128pp_if_verified,  ///< tma128pp whenever it is verified (tests: exercises tma128pp)
  tma128n_if_verified,   ///< tma128n whenever it is verified (tests: exercises tma128n)
};

/// The rule named "timed", "rows64", "rows128", "wgmma64", "wgmma128",
/// "tma128", "tma128pp" or "tma128n" (a kernel's name: that kernel whenever
/// it is verified); nullopt otherwise.
std::optional<prefill_rule> prefill_rule_named(std::string_view name) noexcept;

/// A kernel with prefill_attention's contract (tests substitute faulty ones).
using prefill_fn = status (*)(const prefill_attention_args& a, cudaStream_t s);

struct prefill_probe_options {
  prefill_rule rule = prefill_rule::timed;
  std::uint32_t tokens = 1024;                ///< probe prompt length (capped by the caller)
  prefill_fn candidate = &prefill_attention;  ///< runs the candidates' side of the probe
};

/// One candidate's outcome on the probe.
struct prefill_trial {
  prefill_kernel kernel = prefill_kernel::rows128;
  bool verified = false;  ///< launched, finite, and agreed with rows64
  double max_diff = 0.0;  ///< max |candidate - rows64| / max |rows64|
  float ms = 0.0f;        ///< median time on the probe; 0 when not timed
  std::string note;       ///< why it was not verified, in a few words
};

/// The outcome, for logs and benchmarks.
struct prefill_choice {
  prefill_kernel kernel = prefill_kernel::rows64;
  std::uint32_t tokens = 0;           ///< probe prompt length; 0 when no probe ran
  float rows64_ms = 0.0f;             ///< median time on the probe; 0 when not timed
  std::vector<prefill_trial> trials;  ///< the candidates probed, in order
  std::string note;                   ///< why, in a few words

  /// The trial of kernel `k`, or nullptr when it was not probed.
  const prefill_trial* trial(prefill_kernel k) const noexcept;
};

/// "wgmma64: a clear win (wgmma64 0.031 ms, rows128 0.063 ms vs rows64
/// 0.069 ms on 1024 tokens)" and the like, with each trial that failed and why.
std::string describe(const prefill_choice& c);

/// Runs the probe for `shape` (prompt of `o.tokens` tokens, pool blocks of
/// `block_tokens`) on stream `s` and chooses. Synchronises the stream; must
/// not run during graph capture. Errors only for the probe's own calls
/// (allocation, copies, the rows64 reference), never for the candidate.
result<prefill_choice> choose_prefill_kernel(const attn_shape& shape, std::uint32_t block_tokens,
                                             cudaStream_t s, const prefill_probe_options& o = {});

}  // namespace accellm::device::cuda
