// graph.hpp: a CUDA graph captured from what a function queues on a stream,
// for forward_pass's decode steps and the programmatic-launch check. C++17,
// for .cu files too.
#pragma once

#include "common/result.hpp"
#include "device/cuda/check.hpp"

#include <cuda_runtime_api.h>

#include <utility>

namespace accellm::device::cuda {

/// Captures what `queue()` (returning status) queues on `s` and instantiates
/// it; the caller owns the result (cudaGraphExecDestroy). The capture is
/// ended whatever happens, and the first error is returned.
template <class F>
result<cudaGraphExec_t> capture_graph(cudaStream_t s, F&& queue) {
  ACCELLM_CUDA_TRY(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  status queued = queue();
  cudaGraph_t graph = nullptr;
  const cudaError_t end = cudaStreamEndCapture(s, &graph);
  if (!queued) {
    if (graph != nullptr) cudaGraphDestroy(graph);
    return std::move(queued).err();
  }
  ACCELLM_CUDA_TRY(end);
  cudaGraphExec_t exec = nullptr;
  const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  ACCELLM_CUDA_TRY(inst);
  return exec;
}

}  // namespace accellm::device::cuda
