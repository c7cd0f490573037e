// candidate_check: what the run-time kernel choices share (gemm_planner's
// skinny and cuBLASLt candidates, prefill_choice's and decode_choice's
// kernels): timing a candidate on the device, reading its output back, and
// measuring how far it is from the reference's. Host code; each call
// synchronises the stream.
#pragma once

#include "common/result.hpp"
#include "device/cuda/gemm.hpp"
#include "device/cuda/runtime.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace accellm::device::cuda {

/// Median of 7 samples after 2 warm-ups, in ms per launch; a sample is
/// `runs` back-to-back launches, so that the host's launch overhead overlaps
/// the device's work as it does in a replayed graph. Negative when a launch
/// (`launch()` returns false) or an event call fails.
template <class F>
float median_launch_ms(cudaStream_t s, cudaEvent_t e0, cudaEvent_t e1, int runs, F&& launch) {
  std::vector<float> ms;
  for (int i = 0; i < 9; ++i) {
    if (cudaEventRecord(e0, s) != cudaSuccess) return -1.0f;
    for (int r = 0; r < runs; ++r)
      if (!launch()) return -1.0f;
    if (cudaEventRecord(e1, s) != cudaSuccess || cudaEventSynchronize(e1) != cudaSuccess)
      return -1.0f;
    float t = 0.0f;
    cudaEventElapsedTime(&t, e0, e1);
    if (i >= 2) ms.push_back(t / static_cast<float>(runs));
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

/// `n` elements of fp32 or bf16 (`type`) device memory as floats, after the
/// work queued on `s`.
result<std::vector<float>> download_floats(const void* p, std::size_t n, gemm_out type,
                                           cudaStream_t s);

/// How far `got` is from `ref` (same length): the largest |got - ref|, the
/// largest |ref|, and whether every value of both is finite.
struct deviation {
  double max_diff = 0.0;
  double max_ref = 0.0;
  bool finite = true;
};
deviation deviation_of(const std::vector<float>& got, const std::vector<float>& ref);

/// One candidate's outcome, as a run-time choice's description shows it.
struct trial_summary {
  const char* name;
  bool verified = false;
  float ms = 0.0f;  ///< 0: not timed
  std::string note;
};

/// How prefill_choice and decode_choice describe themselves: "<chosen>:
/// <note> (<name> <ms> ms, ... <versus>)", then "; <name> <note>" for each
/// candidate not verified. The times only when some were taken and `versus`
/// (the reference's, e.g. "vs rows64 0.070 ms on 1024 tokens") is not empty.
std::string describe_choice(const char* chosen, const std::string& note,
                            const std::vector<trial_summary>& trials, const std::string& versus);

/// max |got - ref| / max |ref|; infinity when any value is not finite.
double relative_deviation(const std::vector<float>& got, const std::vector<float>& ref);

/// median_launch_ms with events of its own; a refused launch's (non-sticky)
/// error is cleared. Errors only for the events and for a fault (sticky),
/// which the final synchronisation reports.
template <class F>
result<float> median_ms_on(cudaStream_t s, int runs, F&& launch) {
  event e0, e1;
  ACCELLM_TRY_ASSIGN(e0, event::create());
  ACCELLM_TRY_ASSIGN(e1, event::create());
  const float ms = median_launch_ms(s, e0.get(), e1.get(), runs, std::forward<F>(launch));
  cudaGetLastError();
  if (const cudaError_t e = cudaStreamSynchronize(s); e != cudaSuccess)
    return fail(errc::device_failure,
                std::string{"a timed candidate failed: "} + cudaGetErrorString(e));
  return ms;
}

/// The rule every run-time choice keeps a candidate by: a clear win, under
/// 0.97 of the reference's time (timing noise is not a win); never without
/// a reference time (`reference_ms` <= 0).
constexpr bool clear_win(float ms, float reference_ms) noexcept {
  return reference_ms > 0.0f && ms < 0.97f * reference_ms;
}

/// The verified, timed (`ms` > 0) trial with the shortest time; nullptr
/// when there is none. `Trial` has `verified` and `ms`.
template <class Trial>
const Trial* fastest_verified(const std::vector<Trial>& trials) {
  const Trial* best = nullptr;
  for (const Trial& t : trials)
    if (t.verified && t.ms > 0.0f && (best == nullptr || t.ms < best->ms)) best = &t;
  return best;
}

/// What check_candidate found.
struct candidate_verdict {
  bool verified = false;  ///< launched, finite, and within rtol of the reference
  double max_diff = 0.0;  ///< relative_deviation from the reference
  std::string note;       ///< "verified (...)", "disagrees with X (...)", "failed to launch (...)"
};

/// Launches a candidate (`launch()` returns its status) and compares the `n`
/// bf16 values it wrote at `out` with `ref`: verified when every value is
/// finite and within `rtol` of max |ref|. `reference` names what `ref` came
/// from, for the note. A refused launch is a verdict (its error cleared);
/// errors only for a fault (sticky) and the download.
template <class F>
result<candidate_verdict> check_candidate(F&& launch, const void* out, std::size_t n,
                                          const std::vector<float>& ref, double rtol,
                                          const char* reference, cudaStream_t s) {
  candidate_verdict v;
  if (status st = launch(); !st) {
    cudaGetLastError();  // a refused launch leaves no sticky error; clear it
    v.note = std::string{"failed to launch ("} + st.err().message() + ")";
    return v;
  }
  if (const cudaError_t e = cudaStreamSynchronize(s); e != cudaSuccess)
    return fail(errc::device_failure, std::string{"a candidate failed: "} + cudaGetErrorString(e));
  std::vector<float> got;
  ACCELLM_TRY_ASSIGN(got, download_floats(out, n, gemm_out::bf16, s));
  v.max_diff = relative_deviation(got, ref);
  char diff[64];
  std::snprintf(diff, sizeof diff, "max diff %.2e of max |out|", v.max_diff);
  v.verified = v.max_diff <= rtol;  // false for NaN too
  v.note = v.verified ? std::string{"verified ("} + diff + ")"
                      : std::string{"disagrees with "} + reference + " (" + diff + ")";
  return v;
}

}  // namespace accellm::device::cuda
