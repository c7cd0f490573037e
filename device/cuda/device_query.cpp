#include "device/cuda/device_query.hpp"

#include "device/cuda/check.hpp"

#include <cuda_runtime_api.h>

namespace accellm::device::cuda {

cuda_status probe() noexcept {
  cuda_status s;
  cudaRuntimeGetVersion(&s.runtime_version);
  if (cudaDriverGetVersion(&s.driver_version) != cudaSuccess) s.driver_version = 0;
  auto rc = cudaGetDeviceCount(&s.device_count);
  if (rc != cudaSuccess) {
    s.device_count = 0;
    s.reason = std::string{cudaGetErrorName(rc)} + ": " + cudaGetErrorString(rc);
    cudaGetLastError();  // clear the sticky error for later calls
  } else if (s.device_count == 0) {
    s.reason = "the CUDA driver reports no device";
  }
  return s;
}

namespace {

result<gpu_info> query_one(int index) {
  cudaDeviceProp prop{};
  ACCELLM_CUDA_TRY(cudaGetDeviceProperties(&prop, index));
  gpu_info g;
  g.index = index;
  g.name = prop.name;
  g.compute_major = prop.major;
  g.compute_minor = prop.minor;
  g.sm_count = prop.multiProcessorCount;
  g.total_memory = prop.totalGlobalMem;
  g.memory_bus_bits = prop.memoryBusWidth;
  g.l2_bytes = static_cast<std::uint64_t>(prop.l2CacheSize);
  ACCELLM_CUDA_TRY(cudaDeviceGetAttribute(&g.memory_clock_khz, cudaDevAttrMemoryClockRate, index));
  ACCELLM_CUDA_TRY(cudaSetDevice(index));
  std::size_t free_bytes = 0, total_bytes = 0;
  ACCELLM_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
  g.free_memory = free_bytes;
  return g;
}

}  // namespace

result<std::vector<gpu_info>> query_devices() {
  auto s = probe();
  if (!s.usable()) return fail(errc::device_failure, "no usable CUDA device: " + s.reason);
  std::vector<gpu_info> out;
  for (int i = 0; i < s.device_count; ++i) {
    auto g = query_one(i);
    if (!g) return std::move(g).err();
    out.push_back(std::move(*g));
  }
  return out;
}

}  // namespace accellm::device::cuda
