#include "bench/gpu/lt_probe.hpp"

#include <algorithm>
#include <vector>

namespace accellm::bench {

float best_lt_ms(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                 const __nv_bfloat16* w, std::uint32_t out, void* y, void* workspace,
                 std::size_t workspace_bytes, cudaStream_t s, int* algos_tried,
                 device::cuda::gemm_out type, float beta) {
  *algos_tried = 0;
  cublasLtHandle_t lt = nullptr;
  if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) return 0.0f;
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
  cublasLtMatmulPreference_t pref = nullptr;
  cublasLtMatmulPreferenceCreate(&pref);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                       &workspace_bytes, sizeof workspace_bytes);
  cublasLtMatmulHeuristicResult_t found[16];
  int n = 0;
  cublasLtMatmulAlgoGetHeuristic(lt, op, a, b, c, c, pref, 16, found, &n);
  const float alpha = 1.0f;
  float best = 0.0f;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  for (int i = 0; i < n; ++i) {
    std::vector<float> ms;
    bool ok = true;
    for (int rep = 0; rep < 12 && ok; ++rep) {
      cudaEventRecord(e0, s);
      ok = cublasLtMatmul(lt, op, &alpha, w, a, x, b, &beta, y, c, y, c, &found[i].algo, workspace,
                          workspace_bytes, s) == CUBLAS_STATUS_SUCCESS;
      cudaEventRecord(e1, s);
      cudaEventSynchronize(e1);
      float t = 0;
      cudaEventElapsedTime(&t, e0, e1);
      if (rep >= 2) ms.push_back(t);
    }
    if (!ok) continue;
    ++*algos_tried;
    std::sort(ms.begin(), ms.end());
    if (best == 0.0f || ms[ms.size() / 2] < best) best = ms[ms.size() / 2];
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(a);
  cublasLtMatrixLayoutDestroy(b);
  cublasLtMatrixLayoutDestroy(c);
  cublasLtMatmulDescDestroy(op);
  cublasLtDestroy(lt);
  return best;
}

}  // namespace accellm::bench
