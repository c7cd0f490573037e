// The check that programmatic dependent launch works here (programmatic.hpp).
#include "device/cuda/graph.hpp"
#include "device/cuda/launch.cuh"
#include "device/cuda/ptx.cuh"

#include <cstdint>
#include <string>

namespace accellm::device::cuda {
namespace {

// Two kernels, the second launched programmatically behind the first (and a
// memset): the first writes `v`, the second reads it only after its wait.
__global__ void probe_writer(std::int32_t* v, std::int32_t value) {
  ptx::follow_previous_grid();
  v[threadIdx.x] = value + static_cast<std::int32_t>(threadIdx.x);
}

__global__ void probe_reader(const std::int32_t* v, std::int32_t* sum) {
  ptx::follow_previous_grid();
  if (threadIdx.x == 0) {
    std::int32_t s = 0;
    for (int i = 0; i < 32; ++i) s += v[i];
    *sum = s;
  }
}

// writer, a memset, reader, as run() makes them: programmatic launches on
// `s`, one of them behind an operation that is not a kernel (as cuBLAS's
// workspace clears can be in a step).
status probe_pair(std::int32_t* v, std::int32_t value, cudaStream_t s) {
  ACCELLM_TRY(launch_kernel(probe_writer, dim3(1), dim3(32), 0, s, v, value));
  ACCELLM_CUDA_TRY(cudaMemsetAsync(v + 32, 0, sizeof(std::int32_t), s));
  return launch_kernel(probe_reader, dim3(1), dim3(1), 0, s, static_cast<const std::int32_t*>(v),
                       v + 32);
}

// Runs the pair on `s`, plainly queued and then as a replayed graph, and
// checks the reader saw the writer's values each time.
status probe(std::int32_t* v, cudaStream_t s) {
  const programmatic_launch_scope programmatic(true);
  std::int32_t sum = 0;
  const auto expect = [&](std::int32_t value) -> status {
    ACCELLM_CUDA_TRY(cudaMemcpyAsync(&sum, v + 32, sizeof sum, cudaMemcpyDeviceToHost, s));
    ACCELLM_CUDA_TRY(cudaStreamSynchronize(s));
    const std::int32_t want = 32 * value + 31 * 32 / 2;
    if (sum != want)
      return fail(errc::device_failure, "the second kernel read " + std::to_string(sum) +
                                            " where the first wrote " + std::to_string(want));
    return {};
  };
  ACCELLM_TRY(probe_pair(v, 1, s));
  ACCELLM_TRY(expect(1));
  cudaGraphExec_t exec = nullptr;
  ACCELLM_TRY_ASSIGN(exec, capture_graph(s, [&] { return probe_pair(v, 2, s); }));
  const cudaError_t launched = cudaGraphLaunch(exec, s);
  cudaGraphExecDestroy(exec);
  ACCELLM_CUDA_TRY(launched);
  return expect(2);
}

}  // namespace

status programmatic_launch_works(cudaStream_t s) {
  int device = 0, major = 0;
  ACCELLM_CUDA_TRY(cudaGetDevice(&device));
  ACCELLM_CUDA_TRY(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  if (major < 9)
    return fail(errc::invalid_argument,
                "programmatic dependent launch needs compute capability 9.0");
  std::int32_t* v = nullptr;
  ACCELLM_CUDA_TRY(cudaMalloc(&v, 33 * sizeof(std::int32_t)));
  const status st = probe(v, s);
  cudaStreamSynchronize(s);
  cudaFree(v);
  if (!st) {
    cudaGetLastError();  // a refused launch leaves no sticky error; clear it
    return fail(errc::device_failure,
                "programmatic dependent launch does not work here: " + st.err().message());
  }
  return {};
}

}  // namespace accellm::device::cuda
