// fill_uniform: seeded pseudo-random weights drawn on the device, so that
// real-size models need no download (issue 8 builds on it).
//
// Element i gets scale * (2u - 1) with u = top 24 bits of splitmix64(seed + i)
// / 2^24: a pure function of (seed, i), identical on host and device, so a
// CPU reference can check any element. fill_stream (below) reproduces
// device/cpu's sequential per-tensor streams instead, element by element.
#pragma once

#include "common/result.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace accellm::device::cuda {

/// Host reference of element i.
float uniform_value(std::uint64_t seed, std::size_t i, float scale) noexcept;

/// Fills dst[0, n) on stream `s`. Fails on a null dst with n > 0, or when the
/// launch fails.
status fill_uniform(float* dst, std::size_t n, std::uint64_t seed, float scale, cudaStream_t s);
status fill_uniform(__nv_bfloat16* dst, std::size_t n, std::uint64_t seed, float scale,
                    cudaStream_t s);

/// device/cpu's weight draw (device/cpu/weights.cpp): element i of the tensor
/// whose generator is seeded with `stream` (seed ^ golden * (tensor + 1)) is
/// offset + scale * u_i, u_i the (i + 2)-th uniform of that splitmix64 stream.
/// stream_value is the fp32 value; fill_stream writes it rounded to bf16, so a
/// CUDA model holds exactly the bf16 rounding of the cpu model's weights.
float stream_value(std::uint64_t stream, std::size_t i, float scale, float offset) noexcept;
status fill_stream(__nv_bfloat16* dst, std::size_t n, std::uint64_t stream, float scale,
                   float offset, cudaStream_t s);

}  // namespace accellm::device::cuda
