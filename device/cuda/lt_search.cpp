#include "device/cuda/lt_search.hpp"

#include <algorithm>
#include <cstring>

namespace accellm::device::cuda {
namespace {

bool same(const cublasLtMatmulAlgo_t& x, const cublasLtMatmulAlgo_t& y) {
  return std::memcmp(&x, &y, sizeof x) == 0;
}

template <class T>
bool config_of(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attr,
               T& value) {
  std::size_t written = 0;
  return cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &value, sizeof value, &written) ==
             CUBLAS_STATUS_SUCCESS &&
         written == sizeof value;
}

template <class T>
bool capability_of(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoCapAttributes_t attr,
                   T& value) {
  std::size_t written = 0;
  return cublasLtMatmulAlgoCapGetAttribute(&algo, attr, &value, sizeof value, &written) ==
             CUBLAS_STATUS_SUCCESS &&
         written == sizeof value;
}

// How a variant of `algo` split `splits` ways reduces: as `algo` does if it
// splits, else the first scheme the algorithm offers; NONE for one split.
// False when it offers none.
bool reduction_for(const cublasLtMatmulAlgo_t& algo, std::int32_t splits, std::uint32_t& scheme) {
  scheme = CUBLASLT_REDUCTION_SCHEME_NONE;
  if (splits == 1) return true;
  if (config_of(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, scheme) &&
      scheme != CUBLASLT_REDUCTION_SCHEME_NONE)
    return true;
  std::uint32_t mask = 0;
  if (!capability_of(algo, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK, mask)) return false;
  for (std::uint32_t s : {CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE, CUBLASLT_REDUCTION_SCHEME_INPLACE,
                          CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE}) {
    if ((mask & s) != 0) {
      scheme = s;
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<lt_candidate> lt_candidates(cublasLtHandle_t lt, cublasLtMatmulDesc_t op,
                                        cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                        cublasLtMatrixLayout_t c, std::size_t workspace_bytes,
                                        const lt_search& s) {
  std::vector<lt_candidate> out;
  cublasLtMatmulPreference_t pref = nullptr;
  if (cublasLtMatmulPreferenceCreate(&pref) != CUBLAS_STATUS_SUCCESS) return out;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                       &workspace_bytes, sizeof workspace_bytes);
  std::vector<cublasLtMatmulHeuristicResult_t> found(
      static_cast<std::size_t>(std::clamp(s.proposals, 1, 32)));
  int n = 0;
  const cublasStatus_t heur = cublasLtMatmulAlgoGetHeuristic(
      lt, op, a, b, c, c, pref, static_cast<int>(found.size()), found.data(), &n);
  cublasLtMatmulPreferenceDestroy(pref);
  if (heur != CUBLAS_STATUS_SUCCESS) return out;
  const auto known = [&out](const cublasLtMatmulAlgo_t& x) {
    return std::any_of(out.begin(), out.end(),
                       [&x](const lt_candidate& k) { return same(k.algo, x); });
  };
  for (int i = 0; i < n; ++i) {
    if (found[i].state != CUBLAS_STATUS_SUCCESS || known(found[i].algo)) continue;
    std::int32_t split = 1;
    (void)config_of(found[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, split);
    out.push_back({found[i].algo, split, true});
  }
  const std::size_t proposals = out.size();
  for (std::size_t p = 0; p < proposals && static_cast<int>(p) < s.varied; ++p) {
    const lt_candidate base = out[p];
    std::int32_t supported = 0;
    if (!capability_of(base.algo, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT, supported) || supported == 0)
      continue;
    for (std::int32_t split : s.splits) {
      std::uint32_t scheme = 0;
      if (split < 1 || split == base.split_k || !reduction_for(base.algo, split, scheme)) continue;
      lt_candidate v{base.algo, split, false};
      if (cublasLtMatmulAlgoConfigSetAttribute(&v.algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split,
                                               sizeof split) != CUBLAS_STATUS_SUCCESS ||
          cublasLtMatmulAlgoConfigSetAttribute(&v.algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME,
                                               &scheme, sizeof scheme) != CUBLAS_STATUS_SUCCESS)
        continue;
      cublasLtMatmulHeuristicResult_t check{};
      if (cublasLtMatmulAlgoCheck(lt, op, a, b, c, c, &v.algo, &check) != CUBLAS_STATUS_SUCCESS ||
          check.workspaceSize > workspace_bytes || known(v.algo))
        continue;
      out.push_back(v);
    }
  }
  return out;
}

}  // namespace accellm::device::cuda
