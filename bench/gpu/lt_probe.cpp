#include "bench/gpu/lt_probe.hpp"

#include "device/cuda/lt_search.hpp"

#include <cublasLt.h>

#include <algorithm>
#include <vector>

namespace accellm::bench {

lt_best best_lt(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                const __nv_bfloat16* w, std::uint32_t out, void* y, void* workspace,
                std::size_t workspace_bytes, cudaStream_t s, device::cuda::gemm_out type,
                float beta) {
  lt_best best;
  cublasLtHandle_t lt = nullptr;
  if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) return best;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatrixLayoutCreate(&a, CUDA_R_16BF, in, out, in);
  cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, in, rows, in);
  cublasLtMatrixLayoutCreate(&c, type == device::cuda::gemm_out::fp32 ? CUDA_R_32F : CUDA_R_16BF,
                             out, rows, out);
  device::cuda::lt_search search;
  search.proposals = 16;
  const float alpha = 1.0f;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  for (const device::cuda::lt_candidate& cand :
       device::cuda::lt_candidates(lt, op, a, b, c, workspace_bytes, search)) {
    std::vector<float> ms;
    bool ok = true;
    for (int rep = 0; rep < 12 && ok; ++rep) {
      cudaEventRecord(e0, s);
      ok = cublasLtMatmul(lt, op, &alpha, w, a, x, b, &beta, y, c, y, c, &cand.algo, workspace,
                          workspace_bytes, s) == CUBLAS_STATUS_SUCCESS;
      cudaEventRecord(e1, s);
      cudaEventSynchronize(e1);
      float t = 0;
      cudaEventElapsedTime(&t, e0, e1);
      if (rep >= 2) ms.push_back(t);
    }
    if (!ok) continue;
    std::sort(ms.begin(), ms.end());
    const float median = ms[ms.size() / 2];
    if (cand.proposed) {
      ++best.proposed;
      if (best.proposed_ms == 0.0f || median < best.proposed_ms) best.proposed_ms = median;
    } else {
      ++best.variants;
      if (best.variant_ms == 0.0f || median < best.variant_ms) {
        best.variant_ms = median;
        best.variant_split = cand.split_k;
      }
    }
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cublasLtMatrixLayoutDestroy(a);
  cublasLtMatrixLayoutDestroy(b);
  cublasLtMatrixLayoutDestroy(c);
  cublasLtMatmulDescDestroy(op);
  cublasLtDestroy(lt);
  return best;
}

}  // namespace accellm::bench
