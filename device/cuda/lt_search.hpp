// lt_search: the cuBLASLt algorithms worth timing for one product.
//
// cuBLASLt's heuristic proposes a few algorithms per shape. For decode
// products (a few rows against a large weight matrix) the best of them
// still leaves bandwidth unused where the output is narrow: on an H100 it
// streams Llama-2-7B's Wo (4096 x 4096) at 1.66-1.92 TB/s against 2.38-2.50
// for gate/up (22016 x 4096), a 3.02 TB/s copy (docs/cuda.md). Such a
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
// Thread contract: a pure function of its arguments and the GPU; the
// handle's contract applies.
#pragma once

#include <cublasLt.h>

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
  int varied = 3;     ///< distinct proposals given variants (0: none)
  /// The splits tried on each; a proposal's own is skipped.
  std::vector<std::int32_t> splits = {1, 2, 4, 8, 16};
};

/// The proposals, in the heuristic's order, then the variants. Empty when
/// the heuristic fails (the caller falls back on cuBLAS's default).
std::vector<lt_candidate> lt_candidates(cublasLtHandle_t lt, cublasLtMatmulDesc_t op,
                                        cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                        cublasLtMatrixLayout_t c, std::size_t workspace_bytes,
                                        const lt_search& s = {});

}  // namespace accellm::device::cuda
