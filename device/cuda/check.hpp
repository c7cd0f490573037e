// CUDA and cuBLAS status codes as accellm errors (STYLE.md rule 15): a failing
// call becomes an errc::device_failure error value that names the call, the
// CUDA error and the source line; the worker reports it to the coordinator.
// Nothing here calls exit() or throws.
//
//   ACCELLM_CUDA_TRY(cudaMalloc(&p, n));      // in a function returning status/result<T>
//   ACCELLM_CUBLAS_TRY(cublasCreate(&h));
#pragma once

#include "common/result.hpp"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string_view>

namespace accellm::device::cuda {

/// "cudaMalloc(&p, n) failed at gemm.cu:42: out of memory (cudaErrorMemoryAllocation)".
error cuda_error(cudaError_t code, std::string_view call, std::string_view file, int line);
error cublas_error(cublasStatus_t code, std::string_view call, std::string_view file, int line);

}  // namespace accellm::device::cuda

#define ACCELLM_CUDA_TRY(expr)                                                                     \
  do {                                                                                             \
    cudaError_t accellm_cuda_status_ = (expr);                                                     \
    if (accellm_cuda_status_ != cudaSuccess)                                                       \
      return ::accellm::device::cuda::cuda_error(accellm_cuda_status_, #expr, __FILE__, __LINE__); \
  } while (false)

#define ACCELLM_CUBLAS_TRY(expr)                                                            \
  do {                                                                                      \
    cublasStatus_t accellm_cublas_status_ = (expr);                                         \
    if (accellm_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                    \
      return ::accellm::device::cuda::cublas_error(accellm_cublas_status_, #expr, __FILE__, \
                                                   __LINE__);                               \
  } while (false)
