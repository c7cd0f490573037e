#include "device/cuda/check.hpp"
#include "device/cuda/prefill_attention.cuh"
#include "device/cuda/prefill_attention_wgmma.cuh"
#include "device/cuda/prefill_mma.cuh"
#include "device/cuda/prefill_rows.cuh"
#include "device/cuda/ptx.cuh"
#include "device/cuda/tma_map.hpp"

#include <cmath>
#include <cstdint>
#include <string>

namespace accellm::device::cuda {
namespace {

using prefill_mma::prefill_rows128_kernel;
using prefill_mma::prefill_rows64_kernel;
using prefill_mma::smem_bytes;
using prefill_mma::warps;
namespace r128 = prefill_mma::r128;

// ---- launch ------------------------------------------------------------------

template <int HD>
status launch_rows64(const prefill_attention_args& a, cudaStream_t s) {
  ACCELLM_CUDA_TRY(cudaFuncSetAttribute(prefill_rows64_kernel<HD>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(smem_bytes<HD>())));
  prefill_rows64_kernel<HD><<<dim3(a.shape.heads, a.n_tiles), warps * 32, smem_bytes<HD>(), s>>>(
      a, prefill_rows::scale_log2_of<HD>());
  ACCELLM_CUDA_TRY(cudaGetLastError());
  return {};
}

template <int HD>
status launch_rows128(const prefill_attention_args& a, cudaStream_t s) {
  constexpr std::size_t bytes = r128::config<HD>::smem_bytes;
  ACCELLM_CUDA_TRY(cudaFuncSetAttribute(prefill_rows128_kernel<HD>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
  // All of the unified L1 as shared memory: two blocks need 2 x 105 KB.
  ACCELLM_CUDA_TRY(cudaFuncSetAttribute(prefill_rows128_kernel<HD>,
                                        cudaFuncAttributePreferredSharedMemoryCarveout,
                                        cudaSharedmemCarveoutMaxShared));
  prefill_rows128_kernel<HD><<<dim3(a.shape.heads, a.n_tiles), r128::threads, bytes, s>>>(
      a, prefill_rows::scale_log2_of<HD>());
  ACCELLM_CUDA_TRY(cudaGetLastError());
  return {};
}

template <int HD>
status launch(const prefill_attention_args& a, cudaStream_t s) {
  return a.kernel == prefill_kernel::rows128 ? launch_rows128<HD>(a, s) : launch_rows64<HD>(a, s);
}

}  // namespace

status prefill_attention(const prefill_attention_args& a, cudaStream_t s) {
  const bool wgmma = prefill_kernel_uses_wgmma(a.kernel);
  if (a.kernel != prefill_kernel::rows64 && a.kernel != prefill_kernel::rows128 && !wgmma)
    return fail(errc::invalid_argument, "prefill_attention: unknown kernel");
  // The message is built only on a refusal: this runs once per layer.
  auto refuse = [&a](const char* why) {
    return fail(errc::invalid_argument,
                std::string{"prefill_attention ("} + prefill_kernel_name(a.kernel) + "): " + why);
  };
  if (a.n_tiles == 0) return {};
  if (a.n_tiles > 65535) return refuse("more than 65535 tiles");
  if (a.shape.kv_heads == 0 || a.shape.heads % a.shape.kv_heads != 0)
    return refuse("kv_heads must divide heads");
  if (!a.q || !a.out || !a.tiles || !a.kv.pool || !a.kv.tables) return refuse("null pointer");
  if (a.shape.kv_width() != a.kv.kv_width || a.layer >= a.kv.layers)
    return refuse("shape does not match the KV pool");
  if ((a.kernel == prefill_kernel::rows128 || a.kernel == prefill_kernel::tma128n) &&
      reinterpret_cast<std::uintptr_t>(a.q) % 16 != 0)
    return refuse("q must be 16-byte aligned");
  if (wgmma) {
    if (!prefill_wgmma_built())
      return refuse("built without sm_90a code (CMAKE_CUDA_ARCHITECTURES 90a)");
    if (a.shape.head_dim != 64 && a.shape.head_dim != 128)
      return refuse("head_dim must be 64 or 128");
    if (prefill_kernel_uses_tma(a.kernel) && !tma_maps_pool(a.kv))
      return refuse(
          "the pool's blocks must be 16 tokens and counted (kv.blocks), and no more than 2^31 "
          "rows of K or V");
    return launch_prefill_wgmma(a, s);
  }
  switch (a.shape.head_dim) {
    case 16:
      return launch<16>(a, s);
    case 32:
      return launch<32>(a, s);
    case 64:
      return launch<64>(a, s);
    case 128:
      return launch<128>(a, s);
    default:
      return refuse("head_dim must be 16, 32, 64 or 128");
  }
}

}  // namespace accellm::device::cuda
