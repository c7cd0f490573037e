#include "bench/gpu/lt_probe.hpp"

#include "device/cuda/lt_search.hpp"

#include <cublasLt.h>

#include <algorithm>
#include <vector>

namespace accellm::bench {

lt_best best_lt(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                const __nv_bfloat16* w, std::uint32_t out, void* y, void* workspace,
                std::size_t workspace_bytes, cudaStream_t s, device::cuda::gemm_out type,
                float beta, bool split_k) {
  lt_best best;
  cublasLtHandle_t lt = nullptr;
  if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) return best;
  auto product = device::cuda::lt_product::create(rows, in, out, type);
  if (!product) {
    cublasLtDestroy(lt);
    return best;
  }
  device::cuda::lt_search search;
  search.proposals = 16;
  if (!split_k) search.varied = 0;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  for (const device::cuda::lt_candidate& cand :
       device::cuda::lt_candidates(lt, *product, workspace_bytes, search)) {
    std::vector<float> ms;
    bool ok = true;
    for (int rep = 0; rep < 12 && ok; ++rep) {
      cudaEventRecord(e0, s);
      ok = product->run(lt, cand.algo, x, w, y, beta, workspace, workspace_bytes, s) ==
           CUBLAS_STATUS_SUCCESS;
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
  cublasLtDestroy(lt);
  return best;
}

}  // namespace accellm::bench
