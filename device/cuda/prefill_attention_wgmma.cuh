// prefill_attention_wgmma: the launcher of the wgmma64, wgmma128 and tma128
// prefill kernels, for
// prefill_attention (prefill_attention.cu), which checks the arguments first.
// Internal to device/cuda.
#pragma once

#include "common/result.hpp"
#include "device/cuda/prefill_attention.cuh"

#include <cuda_runtime_api.h>

namespace accellm::device::cuda {

/// Whether this build holds the kernel's sm_90a code (CMAKE_CUDA_ARCHITECTURES
/// 90a); without it, the kernel would do nothing.
bool prefill_wgmma_built() noexcept;

/// Launches a.kernel (wgmma64, wgmma128 or tma128) on `s`. The caller (prefill_attention) has
/// checked the arguments, head_dim 64 or 128 among them.
status launch_prefill_wgmma(const prefill_attention_args& a, cudaStream_t s);

}  // namespace accellm::device::cuda
