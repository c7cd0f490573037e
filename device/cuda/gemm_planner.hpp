// gemm_planner: per-shape algorithm choice for the products of a forward
// pass. cublasGemmEx's default choice streams decode-shaped weights at
// 2.2-2.4 TB/s on an H100, while the best of the algorithms cuBLASLt's
// heuristic proposes runs up to ~10% faster (bench_gpu_ceilings). The planner
// times those candidates once per shape, outside any graph capture, and then
// runs the shape with the winner; shapes it was not asked to prepare go
// through gemm() unchanged. A candidate's time is the median of 7 samples of
// 4 back-to-back runs (host launch overhead overlapped, as in a graph).
//
// Products of more than exact_rows rows (a prefill's, or a step that mixes
// one with decodes) are compute-bound, and there too the heuristic's best
// proposal beats cublasGemmEx's choice: by 3.5% and 4.0% on Llama-2-7B's
// QKV and gate/up at 2048 rows on an H100 (bench_gpu_ceilings, 2026-11-27:
// 761 / 752 against 735 / 723 TFLOP/s). Their row counts change from step to
// step, so such a shape is timed once per power-of-two bucket of rows
// (257-512, 513-1024, ...: bucket_of), at the first row count that falls in
// it, among the heuristic's proposals only: they need no verification, so
// no buffer of rows x out floats beside the pool. Another row count of the
// bucket gets descriptors of its own and runs the bucket's algorithm where
// cublasLtMatmulAlgoCheck accepts it there, else cuBLAS's default.
//
// The cuBLASLt candidates are lt_search's: the heuristic's proposals and
// split-K variants of the first few. Three more candidates are skinny_gemm,
// skinny_gemm_wgmma and skinny_gemm_tma (skinny_gemm.cuh), for the shapes
// they support, skinny_gemm_tma again at every other split count of k
// that fits the shape (skinny_gemm_tma_split, skinny_split_candidates: 1 to
// 8 blocks a tile), and skinny_gemm_stream (its stream-K partition, one
// block an SM). Each candidate that is not a heuristic's
// proposal (the variants and the skinny kernels) is verified before it is timed: its output must
// agree with gemm()'s on the same operands (seeded x, the caller's w; from y = 0 and, with beta !=
// 0, once more on top of that result, which checks beta * y), within 1e-3 (fp32 y) or 2e-2 (bf16 y:
// a rounding step or two apart) of the largest |y|. A candidate that disagrees, or fails to launch,
// is never used. Every candidate must be a clear win (under 0.97 of the best time so far) to be
// kept.
//
// Same contract as gemm(): y[rows x out] = x[rows x in] * w[out x in]^T +
// beta * y, bf16 operands, fp32 accumulation, fp32 or bf16 y.
//
// Resource type: owns a cuBLASLt handle, one descriptor set per shape and
// the skinny check's device buffer; move-only; one thread at a time, on one
// stream.
#pragma once

#include "common/result.hpp"
#include "device/cuda/gemm.hpp"
#include "device/cuda/lt_search.hpp"
#include "device/cuda/runtime.hpp"
#include "device/cuda/skinny_gemm.cuh"

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

namespace accellm::device::cuda {

/// What runs a prepared shape.
enum class gemm_choice : std::uint8_t {
  cublas,
  lt,
  skinny,
  skinny_wgmma,
  skinny_tma,
  skinny_stream
};

/// A kernel with skinny_gemm's contract (tests substitute faulty ones).
using skinny_fn = status (*)(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                             const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type,
                             float beta, cudaStream_t s);

/// skinny_gemm_tma_split's signature (tests substitute faulty ones).
using skinny_split_fn = status (*)(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                                   const __nv_bfloat16* w, std::uint32_t out, void* y,
                                   gemm_out type, float beta, std::uint32_t split, cudaStream_t s);

/// skinny_gemm_stream's signature (tests substitute faulty ones).
using skinny_stream_fn = status (*)(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                                    const __nv_bfloat16* w, std::uint32_t out, void* y,
                                    gemm_out type, float beta, std::uint32_t blocks,
                                    std::uint32_t width, const skinny_stream_space& space,
                                    cudaStream_t s);

/// When a verified skinny candidate is kept: only as a clear win (the
/// default), or always (tests, so that run()'s skinny path is exercised
/// whatever the timings; of several verified candidates, the last of
/// skinny_gemm, skinny_gemm_wgmma, skinny_gemm_tma and its split counts).
enum class skinny_rule : std::uint8_t { clear_win, if_verified };

struct gemm_planner_options {
  skinny_fn skinny = &skinny_gemm;              ///< nullptr: no such candidate
  skinny_fn skinny_wgmma = &skinny_gemm_wgmma;  ///< nullptr: no such candidate
  skinny_fn skinny_tma = &skinny_gemm_tma;      ///< nullptr: no such candidate
  /// skinny_gemm_tma at the split counts other than skinny_gemm_split's;
  /// nullptr: none.
  skinny_split_fn skinny_tma_split = &skinny_gemm_tma_split;
  /// skinny_gemm_stream at one block an SM (fewer where the workspace holds
  /// fewer blocks' partials), at tiles of 128 and of 256 outputs; nullptr:
  /// no such candidate.
  skinny_stream_fn skinny_stream = &skinny_gemm_stream;
  skinny_rule keep = skinny_rule::clear_win;
  lt_search lt;  ///< the cuBLASLt candidates (varied = 0: the heuristic's proposals only)
};

class gemm_planner {
 public:
  /// `workspace` (`bytes` long, device memory) must outlive the planner and
  /// is used only on stream `s`; the cuBLAS handles later passed to prepare
  /// and run must be bound to `s` too.
  static result<gemm_planner> create(cudaStream_t s, void* workspace, std::size_t bytes,
                                     gemm_planner_options o = {});
  gemm_planner() = default;
  gemm_planner(gemm_planner&&) noexcept;
  gemm_planner& operator=(gemm_planner&&) noexcept;
  gemm_planner(const gemm_planner&) = delete;
  gemm_planner& operator=(const gemm_planner&) = delete;
  ~gemm_planner();

  /// Chooses the algorithm for (rows, in, out, type, beta != 0) unless done:
  /// takes the choice timed for its bucket if there is one (no device
  /// work), else times each candidate on x, w and `scratch` (rows x out
  /// elements of `type`, overwritten) and keeps the fastest if it beats
  /// gemm()'s choice. The skinny candidates and the split-K variants (up to
  /// exact_rows rows) are verified first (above), on a planner-owned device
  /// buffer (rows x in bf16 + rows x out fp32, kept for later shapes).
  /// Synchronises the stream when it times. Must not run during graph
  /// capture.
  status prepare(cublasHandle_t h, const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                 const __nv_bfloat16* w, std::uint32_t out, gemm_out type, float beta,
                 void* scratch);

  /// Runs the product with the prepared algorithm (a cuBLASLt algorithm or a
  /// skinny kernel), or through gemm() when the shape was not prepared (or
  /// cuBLAS's own choice was the fastest).
  status run(cublasHandle_t h, const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
             const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type, float beta) const;

  /// Products of more rows than this are planned by bucket (above).
  static constexpr std::uint32_t exact_rows = 256;
  /// The rows whose timed choice a product of `rows` rows runs with: `rows`
  /// itself up to exact_rows, else the power of two at or above it.
  static constexpr std::uint32_t bucket_of(std::uint32_t rows) noexcept {
    return rows <= exact_rows ? rows : std::bit_ceil(rows);
  }

  /// Shapes timed so far, and how many of them use a cuBLASLt algorithm
  /// or one of the skinny kernels.
  std::size_t prepared() const noexcept { return timed_.size(); }
  /// Of prepared(), the shapes of more than exact_rows rows (a bucket each).
  std::size_t prepared_by_bucket() const noexcept;
  /// Row counts prepared without timing: each runs its bucket's choice.
  std::size_t sharing() const noexcept { return plans_.size() - timed_.size(); }
  std::size_t using_lt() const noexcept { return count(gemm_choice::lt); }
  /// Of using_lt(), the shapes won by a split-K variant the heuristic did
  /// not propose.
  std::size_t using_lt_variant() const noexcept;
  std::size_t using_skinny() const noexcept { return count(gemm_choice::skinny); }
  std::size_t using_skinny_wgmma() const noexcept { return count(gemm_choice::skinny_wgmma); }
  std::size_t using_skinny_tma() const noexcept { return count(gemm_choice::skinny_tma); }
  std::size_t using_skinny_stream() const noexcept { return count(gemm_choice::skinny_stream); }
  /// Of using_skinny_stream(), the shapes won at 256 outputs a tile.
  std::size_t using_skinny_stream_wide() const noexcept;
  /// Of using_skinny_tma(), the shapes won at a split count other than
  /// skinny_gemm_split's.
  std::size_t using_skinny_tma_split() const noexcept;
  /// What run() uses for this shape (cublas when it was not prepared; for
  /// a row count that shares its bucket's choice, that choice unless
  /// cuBLASLt refused its algorithm at these rows).
  gemm_choice choice(std::uint32_t rows, std::uint32_t in, std::uint32_t out, gemm_out type,
                     float beta) const;

 private:
  // One shape's descriptors and winner (`use`: cublas when cublasGemmEx won).
  struct plan {
    lt_product product;
    lt_candidate lt;  // the winner when use == lt
    gemm_choice use = gemm_choice::cublas;
    // use == skinny_tma: its split count (0: skinny_gemm_split's); use ==
    // skinny_stream: its tiles' width.
    std::uint32_t split = 0;
  };
  using key = std::tuple<std::uint32_t, std::uint32_t, std::uint32_t, gemm_out, bool>;
  gemm_planner(cudaStream_t s, void* workspace, std::size_t bytes, cublasLtHandle_t lt,
               gemm_planner_options o);
  /// Of the timed shapes, those that run `c`.
  std::size_t count(gemm_choice c) const noexcept;
  /// Prepares the row count of `k` with the choice of `timed`, a shape of
  /// its bucket, without timing (above).
  status share(const key& k, const plan& timed);
  /// The skinny kernel behind a skinny choice (null for cublas and lt, and
  /// for a candidate the options left out).
  skinny_fn skinny_of(gemm_choice c) const noexcept;
  /// Runs skinny choice `c` (skinny_gemm_tma at `split` blocks a tile when
  /// `split` is not 0; skinny_gemm_stream at tiles `split` wide) with
  /// gemm()'s contract.
  status run_skinny(gemm_choice c, std::uint32_t split, const __nv_bfloat16* x, std::uint32_t rows,
                    std::uint32_t in, const __nv_bfloat16* w, std::uint32_t out, void* y,
                    gemm_out type, float beta) const;
  /// skinny_gemm_stream's blocks for this shape at tiles `width` wide: one
  /// an SM, at most one a unit of work and as many as the workspace holds
  /// partials for (0: none).
  std::uint32_t stream_blocks(std::uint32_t rows, std::uint32_t in, std::uint32_t out,
                              std::uint32_t width) const;

  /// What the verified candidates of one shape must reproduce: gemm()'s y
  /// after each round (see above) on seeded x, which stays in `verify_` for
  /// the candidates. Computed once per shape, whatever the candidates.
  struct reference {
    std::vector<float> rounds[2];
    int count = 0;
  };
  result<reference> reference_of(cublasHandle_t h, std::uint32_t rows, std::uint32_t in,
                                 const __nv_bfloat16* w, std::uint32_t out, gemm_out type,
                                 float beta, void* scratch);
  /// A candidate's product y = x w^T + beta y on the shape being prepared;
  /// false when it fails to run.
  using product_fn = std::function<bool(const __nv_bfloat16* x, void* y)>;
  /// Whether `product` reproduces `ref` on this shape; false also when it
  /// fails. Errors only for the planner's own calls.
  result<bool> agrees(const product_fn& product, const reference& ref, std::uint32_t rows,
                      std::uint32_t in, std::uint32_t out, gemm_out type);

  cudaStream_t stream_ = nullptr;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
  cublasLtHandle_t lt_ = nullptr;
  gemm_planner_options options_;
  std::map<key, std::unique_ptr<plan>> plans_;  // every row count prepared
  std::map<key, const plan*> timed_;            // by bucket_of(rows): the one timed
  device_buffer<std::uint8_t> verify_;          // agrees()' x and y, grown on demand
  // skinny_gemm_stream's counters, one per 128 outputs of a product up to
  // 512 Ki outputs (Llama-3's vocabulary: 1002), allocated at creation and
  // never moved, since captured graphs hold their address (its partials go
  // to the cuBLAS workspace, which nothing else uses while the kernel runs
  // on the same stream).
  static constexpr std::uint32_t stream_counter_count = 4096;
  device_buffer<unsigned> stream_counters_;
  std::uint32_t sm_count_ = 0;
};

}  // namespace accellm::device::cuda
