// lt_search: the cuBLASLt algorithms worth timing for one product.
//
// cuBLASLt's heuristic proposes a few algorithms per shape. For decode
// products (a few rows against a large weight matrix) the best of them
// still leaves bandwidth unused where the output is narrow: on an H100 it
// streams Llama-2-7B's Wo (4096 x 4096) at 1.66-1.92 TB/s against 2.38-2.50
// for gate/up (22016 x 4096), a 3.02 TB/s copy (docs/cuda-runs.md). Such a
// product has few output tiles, so few blocks; splitting k gives it more.
// So besides the proposals, lt_candidates offers split-K variants of the
// first few distinct proposals: the same algorithm, tile, stages and
// cluster, with k split `splits` ways where the algorithm supports it,
// reduced as the proposal does, or else by the first scheme the algorithm
// offers of compute type, in place and output type. cublasLtMatmulAlgoCheck
// must accept each within the workspace; no two candidates are alike.
// Callers time them all and keep the fastest (gemm_planner verifies a
// variant's result first).
//
// lt_product holds the cuBLASLt descriptors of one product shape, as gemm()
// computes it, and runs it with a given algorithm.
//
// Thread contract: lt_candidates is a pure function of its arguments and
// the GPU; lt_product is a move-only resource; the handle's contract
// applies to both.
#pragma once

#include "common/result.hpp"
#include "device/cuda/gemm.hpp"

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace accellm::device::cuda {

struct lt_candidate {
  cublasLtMatmulAlgo_t algo{};
  std::int32_t split_k = 1;  ///< k splits (CUBLASLT_ALGO_CONFIG_SPLITK_NUM)
  bool proposed = true;      ///< by the heuristic; false: a split-K variant of a proposal
};

struct lt_search {
  int proposals = 8;  ///< heuristic results asked for, 1..32
  /// Distinct proposals given variants (0: none). Each variant costs the
  /// planner a check and about 30 runs of the product, at the first decode
  /// step of every new batch size; two proposals of four splits each keep
  /// that under twice what the proposals alone cost.
  int varied = 2;
  /// The splits tried on each; a proposal's own is skipped.
  std::vector<std::int32_t> splits = {1, 2, 4, 8};
};

/// gemm()'s y[rows x out] = x[rows x in] w[out x in]^T + beta y (bf16 x and
/// w, fp32 accumulation, fp32 or bf16 y) as cuBLASLt sees it: column-major
/// y^T = w x^T, w transposed.
class lt_product {
 public:
  static result<lt_product> create(std::uint32_t rows, std::uint32_t in, std::uint32_t out,
                                   gemm_out type);
  lt_product() = default;
  lt_product(lt_product&& o) noexcept;
  lt_product& operator=(lt_product&& o) noexcept;
  lt_product(const lt_product&) = delete;
  lt_product& operator=(const lt_product&) = delete;
  ~lt_product();

  /// Queues the product with `algo` on `s`; cuBLASLt's status.
  cublasStatus_t run(cublasLtHandle_t lt, const cublasLtMatmulAlgo_t& algo, const __nv_bfloat16* x,
                     const __nv_bfloat16* w, void* y, float beta, void* workspace,
                     std::size_t workspace_bytes, cudaStream_t s) const;

  cublasLtMatmulDesc_t op() const noexcept { return op_; }
  cublasLtMatrixLayout_t w_layout() const noexcept { return a_; }
  cublasLtMatrixLayout_t x_layout() const noexcept { return b_; }
  cublasLtMatrixLayout_t y_layout() const noexcept { return c_; }

 private:
  void reset() noexcept;

  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
};

/// Whether cuBLASLt accepts `algo` for `product` within `workspace_bytes`
/// (cublasLtMatmulAlgoCheck): an algorithm chosen for one row count may
/// not run at another.
bool lt_algo_fits(cublasLtHandle_t lt, const lt_product& product, const cublasLtMatmulAlgo_t& algo,
                  std::size_t workspace_bytes);

/// The proposals, in the heuristic's order, then the variants. Empty when
/// the heuristic fails (the caller falls back on cuBLAS's default).
std::vector<lt_candidate> lt_candidates(cublasLtHandle_t lt, const lt_product& product,
                                        std::size_t workspace_bytes, const lt_search& s = {});

}  // namespace accellm::device::cuda
