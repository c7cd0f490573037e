// The skinny GEMM (skinny_gemm.cuh): launch and checks. The kernel and its
// design are in skinny_kernels.cuh.
#include "device/cuda/check.hpp"
#include "device/cuda/launch.cuh"
#include "device/cuda/skinny_gemm.cuh"
#include "device/cuda/skinny_kernels.cuh"
#include "device/cuda/tma_map.hpp"

#include <algorithm>
#include <string>

namespace accellm::device::cuda {
namespace {

using namespace skinny_kernels;

// The product's arguments, in either kernel parameter.
const args& product_of(const args& a) {
  return a;
}
const args& product_of(const tma_args& p) {
  return p.a;
}

// Launches `kernel` over split * (out / 128) blocks in clusters of `split`.
template <class Kernel, class Params>
status launch(Kernel kernel, int smem_bytes, const Params& params, std::uint32_t split,
              cudaStream_t s) {
  const args& a = product_of(params);
  ACCELLM_CUDA_TRY(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
  // All of L1 as shared memory, so that two blocks fit on an SM (cp.async.cg
  // and the partials do not use L1 anyway).
  ACCELLM_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                        cudaSharedmemCarveoutMaxShared));
  // Programmatic when the caller asked for it (launch.cuh): the kernels'
  // first weight tiles are in flight before they wait for the kernel before
  // them.
  ACCELLM_TRY(
      launch_kernel_in_clusters(split, kernel, dim3(split * ((a.out + block_n - 1) / block_n)),
                                dim3(threads), static_cast<std::size_t>(smem_bytes), s, params));
  ACCELLM_CUDA_TRY(cudaGetLastError());
  return {};
}

template <int NT>
status launch(const args& a, std::uint32_t split, cudaStream_t s) {
  return launch(skinny_kernel<NT>, config<NT>::smem_bytes, a, split, s);
}

// The checks both variants make before any CUDA call; the message names
// `who`.
status check(const char* who, const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
             const __nv_bfloat16* w, std::uint32_t out, const void* y) {
  if (!skinny_gemm_supports(rows, in, out))
    return fail(
        errc::invalid_argument,
        std::string{who} + ": rows must be 1..128, in a positive multiple of 8, out positive");
  if (x == nullptr || w == nullptr || y == nullptr)
    return fail(errc::invalid_argument, std::string{who} + ": null pointer");
  if ((reinterpret_cast<std::uintptr_t>(x) | reinterpret_cast<std::uintptr_t>(w)) % 16 != 0)
    return fail(errc::invalid_argument, std::string{who} + ": x and w must be 16-byte aligned");
  return {};
}

// check(), and the sm_90a code the wgmma kernels need.
status check_wgmma(const char* who, const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                   const __nv_bfloat16* w, std::uint32_t out, const void* y) {
  ACCELLM_TRY(check(who, x, rows, in, w, out, y));
#ifndef ACCELLM_CUDA_SM90A
  return fail(errc::invalid_argument,
              std::string{who} + ": built without sm_90a code (CMAKE_CUDA_ARCHITECTURES 90a)");
#else
  return {};
#endif
}

// The map of a row-major bf16 matrix [rows x in] read in boxes of 64
// columns x `box_rows` rows with the 128-byte swizzle (tma.cuh).
status encode(tma::tensor_map& map, const __nv_bfloat16* base, std::uint32_t rows, std::uint32_t in,
              std::uint32_t box_rows) {
  static_assert(block_k == 64, "the boxes are 64 columns wide");
  return encode_bf16_sw128(map, base, rows, in, std::uint64_t{in} * sizeof(__nv_bfloat16), box_rows,
                           "skinny_gemm_tma");
}

}  // namespace

status skinny_gemm(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                   const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type, float beta,
                   cudaStream_t s) {
  if (rows == 0) return {};
  ACCELLM_TRY(check("skinny_gemm", x, rows, in, w, out, y));
  const args a{x, w, y, rows, in, out, (in + block_k - 1) / block_k, beta, type};
  const std::uint32_t split = skinny_gemm_split(in, out);
  if (rows <= 8) return launch<1>(a, split, s);
  if (rows <= 16) return launch<2>(a, split, s);
  if (rows <= 32) return launch<4>(a, split, s);
  if (rows <= 64) return launch<8>(a, split, s);
  return launch<16>(a, split, s);
}

bool skinny_wgmma_built() noexcept {
#ifdef ACCELLM_CUDA_SM90A
  return true;
#else
  return false;
#endif
}

status skinny_gemm_wgmma(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                         const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type,
                         float beta, cudaStream_t s) {
  if (rows == 0) return {};
  ACCELLM_TRY(check_wgmma("skinny_gemm_wgmma", x, rows, in, w, out, y));
  const args a{x, w, y, rows, in, out, (in + block_k - 1) / block_k, beta, type};
  const std::uint32_t split = skinny_gemm_split(in, out);
  if (rows <= 64) return launch(skinny_wgmma_kernel<1>, wgmma_config<1>::smem_bytes, a, split, s);
  return launch(skinny_wgmma_kernel<2>, wgmma_config<2>::smem_bytes, a, split, s);
}

status skinny_gemm_tma(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                       const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type,
                       float beta, cudaStream_t s) {
  return skinny_gemm_tma_split(x, rows, in, w, out, y, type, beta, skinny_gemm_split(in, out), s);
}

status skinny_gemm_stream(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                          const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type,
                          float beta, std::uint32_t blocks, std::uint32_t width,
                          const skinny_stream_space& space, cudaStream_t s) {
  static_assert(stream_config<1, 1>::partial_floats == 64 * 128 &&
                    stream_config<2, 2>::partial_floats == 128 * 256,
                "skinny_stream_partial_bytes counts what the kernel writes");
  if (rows == 0) return {};
  ACCELLM_TRY(check_wgmma("skinny_gemm_stream", x, rows, in, w, out, y));
  if (width != 128 && width != 256)
    return fail(errc::invalid_argument,
                "skinny_gemm_stream: tiles of " + std::to_string(width) + " outputs (128 or 256)");
  const std::uint32_t k_tiles = (in + block_k - 1) / block_k;
  const std::uint64_t units = skinny_stream_units(in, out, width);
  if (blocks == 0 || blocks > units)
    return fail(errc::invalid_argument, "skinny_gemm_stream: " + std::to_string(blocks) +
                                            " blocks for " + std::to_string(units) +
                                            " units of work (1 to one a unit)");
  if (space.partials == nullptr || space.counters == nullptr ||
      space.partial_bytes < skinny_stream_partial_bytes(blocks, rows, width) ||
      space.counter_count < skinny_stream_counters(out, width))
    return fail(errc::invalid_argument,
                "skinny_gemm_stream: the workspace is too small for the shape (" +
                    std::to_string(skinny_stream_partial_bytes(blocks, rows, width)) +
                    " bytes of partials and " + std::to_string(skinny_stream_counters(out, width)) +
                    " counters needed)");
  stream_args p{};
  p.a = args{x, w, y, rows, in, out, k_tiles, beta, type};
  p.blocks = blocks;
  p.partials = space.partials;
  p.counters = space.counters;
  const std::uint32_t rb = rows <= 64 ? 1 : 2;
  ACCELLM_TRY(encode(p.w_map, w, out, in, width));
  ACCELLM_TRY(encode(p.x_map, x, rows, in, 64 * rb));
  const auto go = [&](auto kernel, auto config) -> status {
    using C = decltype(config);
    ACCELLM_CUDA_TRY(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::smem_bytes));
    ACCELLM_TRY(launch_kernel(kernel, dim3(blocks), dim3(C::threads),
                              static_cast<std::size_t>(C::smem_bytes), s, p));
    ACCELLM_CUDA_TRY(cudaGetLastError());
    return {};
  };
  if (width == 128) {
    if (rb == 1) return go(skinny_stream_kernel<1, 1>, stream_config<1, 1>{});
    return go(skinny_stream_kernel<2, 1>, stream_config<2, 1>{});
  }
  if (rb == 1) return go(skinny_stream_kernel<1, 2>, stream_config<1, 2>{});
  return go(skinny_stream_kernel<2, 2>, stream_config<2, 2>{});
}

status skinny_gemm_tma_split(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                             const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type,
                             float beta, std::uint32_t split, cudaStream_t s) {
  if (rows == 0) return {};
  ACCELLM_TRY(check_wgmma("skinny_gemm_tma", x, rows, in, w, out, y));
  // skinny_gemm_split's own count may leave a single k tile a block (in
  // below 256); any other count must fit.
  if (split != skinny_gemm_split(in, out) && !skinny_split_fits(in, split))
    return fail(errc::invalid_argument, "skinny_gemm_tma: a split of " + std::to_string(split) +
                                            " does not fit k = " + std::to_string(in) +
                                            " (1..8 blocks, two 64-wide k tiles each)");
  tma_args p{};
  p.a = args{x, w, y, rows, in, out, (in + block_k - 1) / block_k, beta, type};
  const std::uint32_t rb = rows <= 64 ? 1 : 2;
  ACCELLM_TRY(encode(p.w_map, w, out, in, block_n));
  ACCELLM_TRY(encode(p.x_map, x, rows, in, 64 * rb));
  if (rb == 1) return launch(skinny_tma_kernel<1>, tma_config<1>::smem_bytes, p, split, s);
  return launch(skinny_tma_kernel<2>, tma_config<2>::smem_bytes, p, split, s);
}

}  // namespace accellm::device::cuda
