// cuda_region: GPU memory that two processes on one node both map, the data
// region of a same-node KV ring (device/kv_ring.hpp) between two cuda_backends.
//
// The memory comes from the CUDA driver's virtual memory API (VMM): cuMemCreate
// with a POSIX file descriptor as its shareable handle, mapped with
// cuMemAddressReserve + cuMemMap + cuMemSetAccess (read/write for one device).
// share() exports that handle as a new fd, which the other process passes to
// open(): cuMemImportFromShareableHandle, then its own mapping. The physical
// memory lives until every process has released its handle, so the sender's
// death leaves the receiver's mapping valid (cudaIpc handles give no such
// promise once the exporter frees the memory).
//
// libcuda is not linked: a build or test machine without a GPU driver has no
// libcuda.so.1, and every binary linking it would fail to load. The driver
// calls are looked up once per process through the runtime's
// cudaGetDriverEntryPointByVersion; without a driver (or with one lacking an
// entry point) every call here fails with errc::unsupported. A failing driver
// call is errc::device_failure naming the call and the CUresult.
//
// Thread contract: a region is used by one thread at a time (shared_region's
// contract). The table of driver entry points is written once, under the
// C++ static initialisation lock, and only read afterwards.
#pragma once

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "device/shared_region.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>

namespace accellm::device::cuda {

/// Whether this process can use the driver's VMM calls: ok, or unsupported
/// saying what is missing (no driver, an entry point the driver lacks).
status vmm_available();

class cuda_region final : public shared_region {
  struct key {
    explicit key() = default;
  };

 public:
  /// A new region of `bytes` (> 0, else invalid_argument) on GPU `device`
  /// (a runtime device index), its allocation rounded up to the driver's
  /// granularity (2 MiB on H100). Its contents are undefined.
  static result<std::unique_ptr<cuda_region>> create(int device, std::uint64_t bytes);
  /// Maps another process's region (the fd its share() gave) on `device`.
  /// invalid_argument for a closed fd, 0 bytes, or an fd that the driver
  /// does not take as a VMM handle; the mapping of `bytes` (rounded up to
  /// the granularity) is refused by cuMemMap when the allocation is smaller,
  /// so a peer that overstates the size cannot make this process read past
  /// it (invalid_argument as well). The fd is closed after the import: the
  /// handle keeps the memory alive.
  static result<std::unique_ptr<cuda_region>> open(int device, unique_fd fd, std::uint64_t bytes);

  cuda_region(key, int device, std::uint64_t bytes) noexcept;
  cuda_region(const cuda_region&) = delete;
  cuda_region& operator=(const cuda_region&) = delete;
  /// Unmaps, frees the address range and releases this process's handle.
  /// The caller must have waited for every copy that touches the region.
  ~cuda_region() override;

  region_kind kind() const noexcept override { return region_kind::cuda; }
  /// The bytes asked for (what offsets are checked against).
  std::uint64_t bytes() const noexcept override { return bytes_; }
  /// The allocation's handle exported as a new fd (cuMemExportToShareableHandle).
  result<unique_fd> share() const override;

  /// The region's first byte in this process's device address space.
  std::byte* data() const noexcept { return reinterpret_cast<std::byte*>(address_); }
  /// The GPU the mapping is readable and writable from.
  int device() const noexcept { return device_; }
  /// Bytes mapped: bytes() rounded up to the allocation granularity.
  std::uint64_t mapped_bytes() const noexcept { return size_; }

 private:
  /// Reserves an address range of size_ bytes, maps handle_ there and makes
  /// it readable and writable from device_.
  status map();

  int device_;
  std::uint64_t bytes_;
  std::uint64_t size_ = 0;
  std::uint64_t handle_ = 0;  // CUmemGenericAllocationHandle
  bool has_handle_ = false;
  std::uint64_t address_ = 0;  // CUdeviceptr of the reserved range; 0: none
  bool mapped_ = false;
};

}  // namespace accellm::device::cuda
