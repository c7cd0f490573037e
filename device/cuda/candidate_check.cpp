#include "device/cuda/candidate_check.hpp"

#include "device/cuda/check.hpp"

#include <cuda_bf16.h>

#include <cmath>
#include <cstdio>

namespace accellm::device::cuda {

result<std::vector<float>> download_floats(const void* p, std::size_t n, gemm_out type,
                                           cudaStream_t s) {
  std::vector<float> out(n);
  if (type == gemm_out::fp32) {
    ACCELLM_CUDA_TRY(cudaMemcpyAsync(out.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost, s));
    ACCELLM_CUDA_TRY(cudaStreamSynchronize(s));
    return out;
  }
  std::vector<__nv_bfloat16> b(n);
  ACCELLM_CUDA_TRY(
      cudaMemcpyAsync(b.data(), p, n * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost, s));
  ACCELLM_CUDA_TRY(cudaStreamSynchronize(s));
  for (std::size_t i = 0; i < n; ++i) out[i] = __bfloat162float(b[i]);
  return out;
}

deviation deviation_of(const std::vector<float>& got, const std::vector<float>& ref) {
  deviation d;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(ref[i]) || !std::isfinite(got[i])) {
      d.finite = false;
      return d;
    }
    d.max_ref = std::max(d.max_ref, std::fabs(static_cast<double>(ref[i])));
    d.max_diff = std::max(d.max_diff, std::fabs(static_cast<double>(got[i]) - ref[i]));
  }
  return d;
}

std::string describe_choice(const char* chosen, const std::string& note,
                            const std::vector<trial_summary>& trials, const std::string& versus) {
  std::string times, failed;
  char buf[96];
  for (const trial_summary& t : trials) {
    if (t.ms > 0.0f) {
      std::snprintf(buf, sizeof buf, "%s %.3f ms, ", t.name, t.ms);
      times += buf;
    }
    if (!t.verified) failed += std::string{"; "} + t.name + " " + t.note;
  }
  if (!times.empty() && !versus.empty())
    times = " (" + times.substr(0, times.size() - 2) + " " + versus + ")";
  else
    times.clear();
  return std::string{chosen} + ": " + note + times + failed;
}

double relative_deviation(const std::vector<float>& got, const std::vector<float>& ref) {
  const deviation d = deviation_of(got, ref);
  return d.finite ? d.max_diff / std::max(d.max_ref, 1e-30) : INFINITY;
}

}  // namespace accellm::device::cuda
