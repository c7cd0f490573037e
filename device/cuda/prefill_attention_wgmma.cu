// prefill_attention_wgmma: launches the wgmma64 and wgmma128 prefill kernels
// (prefill_wgmma.cuh) for prefill_attention (prefill_attention.cu).
#include "device/cuda/check.hpp"
#include "device/cuda/prefill_attention.cuh"
#include "device/cuda/prefill_attention_wgmma.cuh"
#include "device/cuda/prefill_rows.cuh"
#include "device/cuda/prefill_wgmma.cuh"

namespace accellm::device::cuda {
namespace {

template <int HD, class Shape, class Kernel>
status launch(Kernel kernel, const prefill_attention_args& a, cudaStream_t s) {
  constexpr auto bytes = static_cast<int>(prefill_wgmma::smem_bytes<HD, Shape>());
  ACCELLM_CUDA_TRY(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  ACCELLM_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                        cudaSharedmemCarveoutMaxShared));
  kernel<<<dim3(a.shape.heads, a.n_tiles), Shape::threads, bytes, s>>>(
      a, prefill_rows::scale_log2_of<HD>());
  ACCELLM_CUDA_TRY(cudaGetLastError());
  return {};
}

template <int HD>
status launch(const prefill_attention_args& a, cudaStream_t s) {
  if (a.kernel == prefill_kernel::wgmma128)
    return launch<HD, prefill_wgmma::wgmma128_shape>(prefill_wgmma::wgmma128_kernel<HD>, a, s);
  return launch<HD, prefill_wgmma::wgmma64_shape>(prefill_wgmma::wgmma64_kernel<HD>, a, s);
}

}  // namespace

bool prefill_wgmma_built() noexcept {
#ifdef ACCELLM_CUDA_SM90A
  return true;
#else
  return false;
#endif
}

status launch_prefill_wgmma(const prefill_attention_args& a, cudaStream_t s) {
  return a.shape.head_dim == 64 ? launch<64>(a, s) : launch<128>(a, s);
}

}  // namespace accellm::device::cuda
