// launch.cuh: how the kernels of a decode step are launched. With
// programmatic dependent launch (sm_90), a kernel may be scheduled while the
// one before it on the stream is still finishing: its blocks take the SMs
// the other's last wave leaves free and wait there, in
// ptx::grid_dependency_wait, for it to complete. A decode step is a chain of
// some 300 short kernels (a graph); this overlaps each one's launch and
// ramp with the tail of the one before. Every kernel launched this way
// starts with ptx::follow_previous_grid() (or, for work that reads nothing
// an earlier kernel wrote, such as a product's weights, does that work
// first). Whether a launch uses it is programmatic_launch() (programmatic.hpp):
// off unless the backend turned it on for its iteration. Host code for .cu
// files.
#pragma once

#include "common/result.hpp"
#include "device/cuda/check.hpp"
#include "device/cuda/programmatic.hpp"

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

namespace accellm::device::cuda {

/// kernel<<<grid, block, smem, s>>>(args...) in thread-block clusters of
/// `cluster` blocks along x (no cluster attribute when 0), programmatic when
/// programmatic_launch(); launch errors are returned.
template <class... Params, class... Args>
status launch_kernel_in_clusters(unsigned cluster, void (*kernel)(Params...), dim3 grid, dim3 block,
                                 std::size_t smem, cudaStream_t s, Args&&... args) {
  cudaLaunchAttribute attrs[2]{};
  unsigned n = 0;
  if (cluster != 0) {
    attrs[n].id = cudaLaunchAttributeClusterDimension;
    attrs[n].val.clusterDim.x = cluster;
    attrs[n].val.clusterDim.y = 1;
    attrs[n].val.clusterDim.z = 1;
    ++n;
  }
  if (programmatic_launch()) {
    attrs[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[n].val.programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cfg.attrs = attrs;
  cfg.numAttrs = n;
  ACCELLM_CUDA_TRY(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
  return {};
}

/// kernel<<<grid, block, smem, s>>>(args...), programmatic when
/// programmatic_launch(); launch errors are returned.
template <class... Params, class... Args>
status launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem,
                     cudaStream_t s, Args&&... args) {
  return launch_kernel_in_clusters(0, kernel, grid, block, smem, s, std::forward<Args>(args)...);
}

}  // namespace accellm::device::cuda
