#include "device/cuda/candidate_check.hpp"

#include "device/cuda/check.hpp"

#include <cuda_bf16.h>

#include <cmath>

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

double relative_deviation(const std::vector<float>& got, const std::vector<float>& ref) {
  const deviation d = deviation_of(got, ref);
  return d.finite ? d.max_diff / std::max(d.max_ref, 1e-30) : INFINITY;
}

}  // namespace accellm::device::cuda
