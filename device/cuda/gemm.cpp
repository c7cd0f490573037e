#include "device/cuda/gemm.hpp"

#include "device/cuda/check.hpp"

namespace accellm::device::cuda {

status gemm(cublasHandle_t h, const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
            const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type, float beta) {
  if (rows == 0) return {};
  if (in == 0 || out == 0 || x == nullptr || w == nullptr || y == nullptr)
    return fail(errc::invalid_argument, "gemm: zero size or null pointer");
  const float alpha = 1.0f;
  const cudaDataType_t ct = type == gemm_out::fp32 ? CUDA_R_32F : CUDA_R_16BF;
  // Column-major: C[out x rows] = W^T' ... W is [in x out] col-major (ld in),
  // op T gives [out x in]; x is [in x rows] col-major (ld in).
  ACCELLM_CUBLAS_TRY(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out),
                                  static_cast<int>(rows), static_cast<int>(in), &alpha, w,
                                  CUDA_R_16BF, static_cast<int>(in), x, CUDA_R_16BF,
                                  static_cast<int>(in), &beta, y, ct, static_cast<int>(out),
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  return {};
}

}  // namespace accellm::device::cuda
