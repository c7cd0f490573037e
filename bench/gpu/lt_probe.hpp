// bench_gpu_ceilings helper: how fast cuBLASLt's best algorithms run a
// product of the model's shape, against cublasGemmEx's default choice.
// Times every candidate device/cuda/lt_search.hpp offers: up to 16 of the
// heuristic's proposals, and split-K variants of the first two (what
// gemm_planner times, with more proposals; none with split_k false), and
// returns the fastest of each kind. y is fp32 or bf16 (`type`); beta != 0 accumulates into it, as
// the model's residual products do.
#pragma once

#include "device/cuda/gemm.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace accellm::bench {

struct lt_best {
  float proposed_ms = 0.0f;        ///< the fastest proposal's median; 0 when none ran
  int proposed = 0;                ///< proposals that ran
  float variant_ms = 0.0f;         ///< the fastest split-K variant's median; 0 when none ran
  int variants = 0;                ///< variants that ran
  std::int32_t variant_split = 0;  ///< the fastest variant's k splits
};

lt_best best_lt(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                const __nv_bfloat16* w, std::uint32_t out, void* y, void* workspace,
                std::size_t workspace_bytes, cudaStream_t s,
                device::cuda::gemm_out type = device::cuda::gemm_out::fp32, float beta = 0.0f,
                bool split_k = true);

}  // namespace accellm::bench
