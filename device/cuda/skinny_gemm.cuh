// skinny_gemm: the bandwidth-bound products of decode steps (a few rows
// against a large weight matrix) on tensor cores, written to stream the
// weights closer to the device-copy ceiling than cuBLAS's GEMM kernels do
// (docs/cuda-kernels.md, "The skinny GEMM"). Same contract as gemm() (gemm.hpp):
//
//   y[rows x out] = x[rows x in] * w[out x in]^T + beta * y,
//
// bf16 operands, fp32 accumulation, fp32 or bf16 y; with beta == 0, y is
// never read. Launched programmatically (launch.cuh, programmatic_launch()),
// a kernel reads its first weight tiles before it waits for the kernel
// before it: w must not be what that kernel writes (x and y may be). The result is bitwise
// deterministic: it depends only on the operands and the shape (never on the device's SM count or
// on timing), and no atomics are used; skinny_gemm_stream's also on its block count, and it
// counts blocks with atomics but sums in a fixed order.
//
// Three kernels with this contract (skinny_kernels.cuh): skinny_gemm on
// mma.sync, verified on H100 and H200, and skinny_gemm_wgmma on Hopper's
// wgmma, with cp.async copies or (skinny_gemm_tma) TMA ones, so far checked
// on the host emulator only. The tests in
// tests/device/cuda/skinny_gemm_test.cpp check each against a CPU
// reference, and gemm_planner uses one only after checking its output
// against gemm()'s and timing it.
#pragma once

#include "common/result.hpp"
#include "device/cuda/gemm.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace accellm::device::cuda {

/// Most rows skinny_gemm takes (x rows are padded to 8, 16, 32, 64 or 128).
inline constexpr std::uint32_t skinny_max_rows = 128;

/// The kernels' tiles (skinny_kernels.cuh): 128 outputs a block (a
/// warpgroup), k in steps of 64.
inline constexpr std::uint32_t skinny_tile_out = 128;
inline constexpr std::uint32_t skinny_tile_k = 64;

/// The most blocks a cluster splits one tile's k range over (the portable
/// cluster size).
inline constexpr std::uint32_t skinny_max_split = 8;

/// Whether skinny_gemm runs this shape: 1 <= rows <= skinny_max_rows, in a
/// positive multiple of 8 (rows start 16-byte aligned), out > 0. Pure; no
/// CUDA call.
bool skinny_gemm_supports(std::uint32_t rows, std::uint32_t in, std::uint32_t out) noexcept;

/// How many thread blocks (a thread-block cluster) split the k range of one
/// 128-output tile for this shape: 1, 2, 4 or 8, a pure function of the shape
/// (so results do not depend on the device). Exposed for tests and benches.
std::uint32_t skinny_gemm_split(std::uint32_t in, std::uint32_t out) noexcept;

/// Launches the product on stream `s` (capturable in a CUDA graph). rows == 0
/// is a no-op. Fails with invalid_argument, before any CUDA call, on a shape
/// skinny_gemm_supports refuses, null pointers, or x or w not 16-byte
/// aligned; with device_failure when the launch fails.
status skinny_gemm(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                   const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type, float beta,
                   cudaStream_t s);

/// Whether this build holds skinny_gemm_wgmma's sm_90a code.
bool skinny_wgmma_built() noexcept;

/// skinny_gemm on Hopper's wgmma (skinny_kernels.cuh): the same contract,
/// shapes, tiles and split; it also fails with invalid_argument, before any
/// CUDA call, in a build without sm_90a code, and fails to launch on a
/// device other than compute capability 9.0. gemm_planner verifies and times
/// it like skinny_gemm.
status skinny_gemm_wgmma(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                         const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type,
                         float beta, cudaStream_t s);

/// skinny_gemm_wgmma with its copies done by the TMA (skinny_kernels.cuh):
/// the same contract, shapes, tiles and split, and the same refusals; it
/// also fails (device_failure) when the driver offers no
/// cuTensorMapEncodeTiled or refuses the tensor maps.
status skinny_gemm_tma(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                       const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type,
                       float beta, cudaStream_t s);

/// Whether skinny_gemm_tma_split takes `split` for this k: 1..skinny_max_split,
/// and at least two 64-wide k tiles a block. Pure; no CUDA call.
bool skinny_split_fits(std::uint32_t in, std::uint32_t split) noexcept;

/// The split counts other than skinny_gemm_split's that gemm_planner times
/// for this shape: every one skinny_split_fits takes. Ascending; pure. (A
/// filter by the waves of blocks each count makes was tried: on the H100
/// it dropped the counts that won, 5-7 for Llama-2-7B's down product, where
/// it preferred the rule's 8.)
std::vector<std::uint32_t> skinny_split_candidates(std::uint32_t in, std::uint32_t out);

/// skinny_gemm_tma with the k range of each 128-output tile split over
/// `split` blocks (a cluster of any size the shape fits, 3, 5, 6 and 7
/// included) instead of skinny_gemm_split's count: how many waves of blocks
/// a product makes depends on it, and gemm_planner times each count. The
/// same contract and refusals, and invalid_argument, before any CUDA call,
/// for a split skinny_split_fits refuses.
status skinny_gemm_tma_split(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                             const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type,
                             float beta, std::uint32_t split, cudaStream_t s);

/// skinny_gemm_stream's device workspace, owned by the caller and used on
/// one stream at a time: `partials` of at least skinny_stream_partial_bytes
/// and `counters` of one unsigned per tile of the widest product, zero
/// before the first launch (every launch leaves them zero).
struct skinny_stream_space {
  float* partials = nullptr;
  std::size_t partial_bytes = 0;
  unsigned* counters = nullptr;
  std::uint32_t counter_count = 0;
};

/// The output widths of skinny_gemm_stream's tiles: 128 (one warpgroup a
/// block) or 256 (two, each x box serving twice the weights).
inline constexpr std::uint32_t skinny_stream_widths[] = {128, 256};

/// Bytes of partials skinny_gemm_stream needs at `blocks` blocks, `rows`
/// rows and tiles of `width` outputs: two [64 or 128 rows x width] fp32
/// partials a block. Pure.
std::size_t skinny_stream_partial_bytes(std::uint32_t blocks, std::uint32_t rows,
                                        std::uint32_t width) noexcept;

/// Counters skinny_gemm_stream needs for `out` outputs: one per tile of
/// `width`. Pure.
std::uint32_t skinny_stream_counters(std::uint32_t out, std::uint32_t width) noexcept;

/// Units of work (one tile's 64-wide k tile each) of a product: at most one
/// block each. Pure.
std::uint64_t skinny_stream_units(std::uint32_t in, std::uint32_t out,
                                  std::uint32_t width) noexcept;

/// skinny_gemm_tma's stages and products over a stream-K partition
/// (skinny_kernels.cuh) of tiles `width` outputs wide: `blocks` blocks (one
/// an SM is what it is built for; at most one a unit) each stream the same
/// share of the weights, whatever the shape, and the tiles they share are
/// summed through `space` in a fixed order. The same contract and refusals
/// as skinny_gemm_tma, and invalid_argument, before any CUDA call, for a
/// width not in skinny_stream_widths, `blocks` 0 or past the units, or
/// `space` too small for the shape.
status skinny_gemm_stream(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                          const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type,
                          float beta, std::uint32_t blocks, std::uint32_t width,
                          const skinny_stream_space& space, cudaStream_t s);

}  // namespace accellm::device::cuda
