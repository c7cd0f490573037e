// What CUDA sees on this host: runtime and driver versions and the GPUs.
//
// "No GPU" is a normal answer, not an error: on a build machine without a
// driver, cudaGetDeviceCount fails with cudaErrorInsufficientDriver, and
// cuda_status says so in `reason`. Tests use it to skip cleanly.
//
// Thread contract: free functions, callable from any thread.
#pragma once

#include "common/result.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace accellm::device::cuda {

struct gpu_info {
  int index = 0;
  std::string name;       ///< e.g. "NVIDIA H100 80GB HBM3"
  int compute_major = 0;  ///< 9 on H100
  int compute_minor = 0;
  int sm_count = 0;                ///< 132 on H100 SXM
  std::uint64_t total_memory = 0;  ///< bytes of device memory
  std::uint64_t free_memory = 0;   ///< bytes free when queried
  int memory_bus_bits = 0;         ///< 5120 on H100
  int memory_clock_khz = 0;        ///< peak memory clock
  std::uint64_t l2_bytes = 0;

  /// Theoretical HBM bandwidth in bytes/s: 2 (DDR) * clock * bus width / 8.
  double peak_memory_bandwidth() const noexcept {
    return 2.0 * memory_clock_khz * 1e3 * memory_bus_bits / 8.0;
  }
};

struct cuda_status {
  int runtime_version = 0;  ///< e.g. 13000
  int driver_version = 0;   ///< 0 when no driver is installed
  int device_count = 0;
  std::string reason;  ///< why device_count is 0, when it is
  bool usable() const noexcept { return device_count > 0; }
};

/// Never fails: problems are described in cuda_status::reason.
cuda_status probe() noexcept;

/// Details of every visible GPU; an error when CUDA is unusable.
result<std::vector<gpu_info>> query_devices();

}  // namespace accellm::device::cuda
