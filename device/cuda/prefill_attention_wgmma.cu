// prefill_attention_wgmma: launches the wgmma64, wgmma128 (prefill_wgmma.cuh)
// and tma128, tma128pp and tma128n (prefill_tma.cuh) prefill kernels for
// prefill_attention (prefill_attention.cu).
#include "device/cuda/check.hpp"
#include "device/cuda/prefill_attention.cuh"
#include "device/cuda/prefill_attention_wgmma.cuh"
#include "device/cuda/prefill_rows.cuh"
#include "device/cuda/prefill_tma.cuh"
#include "device/cuda/prefill_wgmma.cuh"
#include "device/cuda/tma_map.hpp"

namespace accellm::device::cuda {
namespace {

template <int HD, class Kernel, class Args>
status launch(Kernel kernel, const Args& args, const prefill_attention_args& a, int threads,
              std::size_t smem, cudaStream_t s) {
  const auto bytes = static_cast<int>(smem);
  ACCELLM_CUDA_TRY(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  ACCELLM_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                        cudaSharedmemCarveoutMaxShared));
  kernel<<<dim3(a.shape.heads, a.n_tiles), threads, smem, s>>>(args,
                                                               prefill_rows::scale_log2_of<HD>());
  ACCELLM_CUDA_TRY(cudaGetLastError());
  return {};
}

// tma128 (tma128pp with PINGPONG), through the pool's map (prefill_attention
// checked that it maps).
template <int HD, bool PINGPONG>
status launch_tma128(const prefill_attention_args& a, cudaStream_t s) {
  prefill_tma::args p{};
  p.a = a;
  ACCELLM_TRY(encode_pool_map(
      p.kv_map, a.kv, PINGPONG ? "prefill_attention (tma128pp)" : "prefill_attention (tma128)"));
  return launch<HD>(prefill_tma::tma128_kernel<HD, PINGPONG>, p, a, prefill_tma::shape::threads,
                    prefill_tma::smem_bytes<HD>(), s);
}

// tma128n, through the pool's map; Q is read from a.q with cp.async
// (prefill_attention checked that it is 16-byte aligned).
template <int HD>
status launch_tma128n(const prefill_attention_args& a, cudaStream_t s) {
  prefill_tma::args p{};
  p.a = a;
  ACCELLM_TRY(encode_pool_map(p.kv_map, a.kv, "prefill_attention (tma128n)"));
  return launch<HD>(prefill_tma::tma128n_kernel<HD>, p, a, prefill_tma::shape::threads,
                    prefill_tma::smem_bytes_n<HD>(), s);
}

template <int HD>
status launch(const prefill_attention_args& a, cudaStream_t s) {
  using namespace prefill_wgmma;
  if (a.kernel == prefill_kernel::tma128) return launch_tma128<HD, false>(a, s);
  if (a.kernel == prefill_kernel::tma128pp) return launch_tma128<HD, true>(a, s);
  if (a.kernel == prefill_kernel::tma128n) return launch_tma128n<HD>(a, s);
  if (a.kernel == prefill_kernel::wgmma128)
    return launch<HD>(wgmma128_kernel<HD>, a, a, wgmma128_shape::threads,
                      smem_bytes<HD, wgmma128_shape>(), s);
  return launch<HD>(wgmma64_kernel<HD>, a, a, wgmma64_shape::threads,
                    smem_bytes<HD, wgmma64_shape>(), s);
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
