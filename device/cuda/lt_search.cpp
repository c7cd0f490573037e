#include "device/cuda/lt_search.hpp"

#include "device/cuda/check.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace accellm::device::cuda {
namespace {

bool same(const cublasLtMatmulAlgo_t& x, const cublasLtMatmulAlgo_t& y) {
  return std::memcmp(&x, &y, sizeof x) == 0;
}

// An attribute of `algo` read through `get` (a config or a capability
// attribute); false unless exactly sizeof value bytes came back.
template <class Attr, class T>
bool read_attr(cublasStatus_t (*get)(const cublasLtMatmulAlgo_t*, Attr, void*, std::size_t,
                                     std::size_t*),
               const cublasLtMatmulAlgo_t& algo, Attr attr, T& value) {
  std::size_t written = 0;
  return get(&algo, attr, &value, sizeof value, &written) == CUBLAS_STATUS_SUCCESS &&
         written == sizeof value;
}

template <class T>
bool config_of(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attr,
               T& value) {
  return read_attr(&cublasLtMatmulAlgoConfigGetAttribute, algo, attr, value);
}

template <class T>
bool capability_of(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoCapAttributes_t attr,
                   T& value) {
  return read_attr(&cublasLtMatmulAlgoCapGetAttribute, algo, attr, value);
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

result<lt_product> lt_product::create(std::uint32_t rows, std::uint32_t in, std::uint32_t out,
                                      gemm_out type) {
  lt_product p;
  ACCELLM_CUBLAS_TRY(cublasLtMatmulDescCreate(&p.op_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  ACCELLM_CUBLAS_TRY(
      cublasLtMatmulDescSetAttribute(p.op_, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  ACCELLM_CUBLAS_TRY(
      cublasLtMatmulDescSetAttribute(p.op_, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  ACCELLM_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p.a_, CUDA_R_16BF, in, out, in));
  ACCELLM_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p.b_, CUDA_R_16BF, in, rows, in));
  ACCELLM_CUBLAS_TRY(cublasLtMatrixLayoutCreate(
      &p.c_, type == gemm_out::fp32 ? CUDA_R_32F : CUDA_R_16BF, out, rows, out));
  return p;
}

lt_product::lt_product(lt_product&& o) noexcept
    : op_(std::exchange(o.op_, nullptr)),
      a_(std::exchange(o.a_, nullptr)),
      b_(std::exchange(o.b_, nullptr)),
      c_(std::exchange(o.c_, nullptr)) {}

lt_product& lt_product::operator=(lt_product&& o) noexcept {
  if (this != &o) {
    reset();
    op_ = std::exchange(o.op_, nullptr);
    a_ = std::exchange(o.a_, nullptr);
    b_ = std::exchange(o.b_, nullptr);
    c_ = std::exchange(o.c_, nullptr);
  }
  return *this;
}

lt_product::~lt_product() {
  reset();
}

void lt_product::reset() noexcept {
  if (a_ != nullptr) cublasLtMatrixLayoutDestroy(a_);
  if (b_ != nullptr) cublasLtMatrixLayoutDestroy(b_);
  if (c_ != nullptr) cublasLtMatrixLayoutDestroy(c_);
  if (op_ != nullptr) cublasLtMatmulDescDestroy(op_);
  op_ = nullptr;
  a_ = b_ = c_ = nullptr;
}

cublasStatus_t lt_product::run(cublasLtHandle_t lt, const cublasLtMatmulAlgo_t& algo,
                               const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, float beta,
                               void* workspace, std::size_t workspace_bytes, cudaStream_t s) const {
  const float alpha = 1.0f;
  return cublasLtMatmul(lt, op_, &alpha, w, a_, x, b_, &beta, y, c_, y, c_, &algo, workspace,
                        workspace_bytes, s);
}

bool lt_algo_fits(cublasLtHandle_t lt, const lt_product& product, const cublasLtMatmulAlgo_t& algo,
                  std::size_t workspace_bytes) {
  cublasLtMatmulHeuristicResult_t check{};
  return cublasLtMatmulAlgoCheck(lt, product.op(), product.w_layout(), product.x_layout(),
                                 product.y_layout(), product.y_layout(), &algo,
                                 &check) == CUBLAS_STATUS_SUCCESS &&
         check.workspaceSize <= workspace_bytes;
}

std::vector<lt_candidate> lt_candidates(cublasLtHandle_t lt, const lt_product& product,
                                        std::size_t workspace_bytes, const lt_search& s) {
  cublasLtMatmulDesc_t op = product.op();
  cublasLtMatrixLayout_t a = product.w_layout(), b = product.x_layout(), c = product.y_layout();
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
      if (!lt_algo_fits(lt, product, v.algo, workspace_bytes) || known(v.algo)) continue;
      out.push_back(v);
    }
  }
  return out;
}

}  // namespace accellm::device::cuda
