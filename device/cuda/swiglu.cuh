// swiglu: h = silu(gate) * up over the fused [gate | up] output of the
// gate/up projection (bf16, computed in fp32), written as bf16 for the down
// projection.
#pragma once

#include "common/result.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace accellm::device::cuda {

/// `gate_up` is [rows x 2f] (gate then up per row); `out` is [rows x f].
/// Fails on f == 0 or null pointers.
status swiglu(const __nv_bfloat16* gate_up, std::uint32_t rows, std::uint32_t f, __nv_bfloat16* out,
              cudaStream_t s);

}  // namespace accellm::device::cuda
