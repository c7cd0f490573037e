#include "device/cuda/shared_memory.hpp"

#include "device/cuda/check.hpp"

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>
#include <fcntl.h>

#include <limits>
#include <string>
#include <string_view>

namespace accellm::device::cuda {

namespace {

// The driver's VMM entry points, looked up through the runtime so that no
// binary links libcuda (see the header). `missing` says why the table is
// unusable; empty when every entry point was found.
struct driver_api {
  PFN_cuMemCreate_v10020 create = nullptr;
  PFN_cuMemRelease_v10020 release = nullptr;
  PFN_cuMemAddressReserve_v10020 reserve = nullptr;
  PFN_cuMemAddressFree_v10020 address_free = nullptr;
  PFN_cuMemMap_v10020 map = nullptr;
  PFN_cuMemUnmap_v10020 unmap = nullptr;
  PFN_cuMemSetAccess_v10020 set_access = nullptr;
  PFN_cuMemGetAllocationGranularity_v10020 granularity = nullptr;
  PFN_cuMemGetAllocationPropertiesFromHandle_v10020 properties = nullptr;
  PFN_cuMemExportToShareableHandle_v10020 export_handle = nullptr;
  PFN_cuMemImportFromShareableHandle_v10020 import_handle = nullptr;
  PFN_cuGetErrorName_v6000 error_name = nullptr;
  PFN_cuGetErrorString_v6000 error_string = nullptr;
  std::string missing;
};

// The ABI version the PFN_ typedefs above describe is the newest of each
// symbol as of CUDA 12.0 (none of them changed since 11.0).
constexpr unsigned int entry_point_abi = 12000;

template <class F>
void look_up(const char* symbol, F& fn, std::string& missing) {
  if (!missing.empty()) return;
  void* p = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  const cudaError_t e =
      cudaGetDriverEntryPointByVersion(symbol, &p, entry_point_abi, cudaEnableDefault, &found);
  if (e != cudaSuccess) {
    missing = std::string{"the CUDA driver is not usable ("} + cudaGetErrorName(e) + ": " +
              cudaGetErrorString(e) + ") looking up " + symbol;
  } else if (found != cudaDriverEntryPointSuccess || p == nullptr) {
    missing = std::string{"the CUDA driver has no "} + symbol +
              (found == cudaDriverEntryPointVersionNotSufficent ? " of the CUDA 12.0 ABI" : "");
  } else {
    fn = reinterpret_cast<F>(p);
  }
}

driver_api load_driver() {
  driver_api d;
  look_up("cuMemCreate", d.create, d.missing);
  look_up("cuMemRelease", d.release, d.missing);
  look_up("cuMemAddressReserve", d.reserve, d.missing);
  look_up("cuMemAddressFree", d.address_free, d.missing);
  look_up("cuMemMap", d.map, d.missing);
  look_up("cuMemUnmap", d.unmap, d.missing);
  look_up("cuMemSetAccess", d.set_access, d.missing);
  look_up("cuMemGetAllocationGranularity", d.granularity, d.missing);
  look_up("cuMemGetAllocationPropertiesFromHandle", d.properties, d.missing);
  look_up("cuMemExportToShareableHandle", d.export_handle, d.missing);
  look_up("cuMemImportFromShareableHandle", d.import_handle, d.missing);
  look_up("cuGetErrorName", d.error_name, d.missing);
  look_up("cuGetErrorString", d.error_string, d.missing);
  return d;
}

// Written once (a thread-safe function-local static) and read-only after: a
// cache of what the driver exports, like the dynamic linker's, not state
// anything changes (STYLE.md rule 9 is about mutable state).
const driver_api& driver() {
  static const driver_api api = load_driver();
  return api;
}

// "cuMemMap(...) failed at shared_memory.cpp:42: out of memory
// (CUDA_ERROR_OUT_OF_MEMORY)", like check.hpp's cuda_error.
error cu_error(CUresult code, std::string_view call, int line, errc kind = errc::device_failure) {
  const driver_api& d = driver();
  const char* name = nullptr;
  const char* text = nullptr;
  if (d.error_name == nullptr || d.error_name(code, &name) != CUDA_SUCCESS) name = nullptr;
  if (d.error_string == nullptr || d.error_string(code, &text) != CUDA_SUCCESS) text = nullptr;
  if (code == CUDA_ERROR_OUT_OF_MEMORY) kind = errc::out_of_memory;
  std::string out{call};
  out += " failed at shared_memory.cpp:" + std::to_string(line) + ": ";
  out += text != nullptr ? text : "CUresult " + std::to_string(static_cast<int>(code));
  if (name != nullptr) out += std::string{" ("} + name + ")";
  return error{kind, std::move(out)};
}

#define ACCELLM_CU_TRY(expr)                                                                      \
  do {                                                                                            \
    const CUresult accellm_cu_status_ = (expr);                                                   \
    if (accellm_cu_status_ != CUDA_SUCCESS) return cu_error(accellm_cu_status_, #expr, __LINE__); \
  } while (false)

CUmemAllocationProp device_memory(int device) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  return prop;
}

// `bytes` rounded up to the allocation granularity of `prop`.
result<std::uint64_t> granule_size(const CUmemAllocationProp& prop, std::uint64_t bytes) {
  std::size_t granule = 0;
  ACCELLM_CU_TRY(driver().granularity(&granule, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  if (granule == 0) granule = 1;
  if (bytes > std::numeric_limits<std::size_t>::max() - granule)
    return fail(errc::too_large, "cuda region: " + std::to_string(bytes) + " bytes");
  return (bytes + granule - 1) / granule * granule;
}

}  // namespace

status vmm_available() {
  const driver_api& d = driver();
  if (!d.missing.empty()) return fail(errc::unsupported, "cuda region (CUDA VMM): " + d.missing);
  return {};
}

cuda_region::cuda_region(key, int device, std::uint64_t bytes) noexcept
    : device_(device), bytes_(bytes) {}

cuda_region::~cuda_region() {
  if (!has_handle_ && address_ == 0) return;  // (and nothing was looked up)
  const driver_api& d = driver();
  // The VMM calls want a context; the device's primary one, as everywhere.
  int current = -1;
  const bool had_current = cudaGetDevice(&current) == cudaSuccess;
  cudaSetDevice(device_);
  if (mapped_) d.unmap(address_, size_);
  if (address_ != 0) d.address_free(address_, size_);
  if (has_handle_) d.release(handle_);
  if (had_current && current != device_) cudaSetDevice(current);
}

status cuda_region::map() {
  const driver_api& d = driver();
  CUdeviceptr p = 0;
  ACCELLM_CU_TRY(d.reserve(&p, size_, 0, 0, 0));
  address_ = p;
  const CUresult mapped = d.map(p, size_, 0, handle_, 0);
  // The documented answer to size > allocation is CUDA_ERROR_INVALID_VALUE;
  // driver 580.159 (H200, 2026-11-26) answers CUDA_ERROR_NOT_SUPPORTED. A
  // region this process created always fits, so either means an imported
  // handle that is smaller than its peer said.
  if (mapped == CUDA_ERROR_INVALID_VALUE || mapped == CUDA_ERROR_NOT_SUPPORTED)
    return cu_error(mapped,
                    "cuMemMap of " + std::to_string(size_) +
                        " bytes (is the allocation smaller than the peer said?)",
                    __LINE__, errc::invalid_argument);
  ACCELLM_CU_TRY(mapped);
  mapped_ = true;
  CUmemAccessDesc access{};
  access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  access.location.id = device_;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  ACCELLM_CU_TRY(d.set_access(p, size_, &access, 1));
  return {};
}

result<std::unique_ptr<cuda_region>> cuda_region::create(int device, std::uint64_t bytes) {
  if (bytes == 0) return fail(errc::invalid_argument, "cuda region: 0 bytes");
  ACCELLM_TRY(vmm_available());
  // Also makes the device's primary context current (CUDA 12+).
  ACCELLM_CUDA_TRY(cudaSetDevice(device));
  const CUmemAllocationProp prop = device_memory(device);
  auto size = granule_size(prop, bytes);
  if (!size) return std::move(size).err();
  // From here the region's destructor undoes whatever step failed last.
  auto r = std::make_unique<cuda_region>(key{}, device, bytes);
  r->size_ = *size;
  CUmemGenericAllocationHandle h = 0;
  ACCELLM_CU_TRY(driver().create(&h, r->size_, &prop, 0));
  r->handle_ = h;
  r->has_handle_ = true;
  ACCELLM_TRY(r->map());
  return r;
}

result<std::unique_ptr<cuda_region>> cuda_region::open(int device, unique_fd fd,
                                                       std::uint64_t bytes) {
  if (!fd) return fail(errc::invalid_argument, "cuda region: no descriptor");
  if (bytes == 0) return fail(errc::invalid_argument, "cuda region: 0 bytes");
  ACCELLM_TRY(vmm_available());
  ACCELLM_CUDA_TRY(cudaSetDevice(device));
  const driver_api& d = driver();
  auto r = std::make_unique<cuda_region>(key{}, device, bytes);
  CUmemGenericAllocationHandle h = 0;
  // The POSIX fd handle type takes the descriptor itself as the pointer.
  void* os_handle = reinterpret_cast<void*>(static_cast<std::uintptr_t>(fd.get()));
  const CUresult imported =
      d.import_handle(&h, os_handle, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
  if (imported == CUDA_ERROR_INVALID_VALUE || imported == CUDA_ERROR_INVALID_HANDLE)
    return cu_error(imported,
                    "cuMemImportFromShareableHandle (is the descriptor a CUDA VMM handle?)",
                    __LINE__, errc::invalid_argument);
  ACCELLM_CU_TRY(imported);
  r->handle_ = h;
  r->has_handle_ = true;
  fd.reset();  // the handle holds the memory now
  CUmemAllocationProp prop{};
  ACCELLM_CU_TRY(d.properties(&prop, h));
  auto size = granule_size(prop, bytes);
  if (!size) return std::move(size).err();
  r->size_ = *size;
  ACCELLM_TRY(r->map());
  return r;
}

result<unique_fd> cuda_region::share() const {
  ACCELLM_TRY(vmm_available());
  int fd = -1;
  ACCELLM_CU_TRY(driver().export_handle(&fd, handle_, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
  unique_fd out{fd};
  // Like host_region's memfd: not inherited by a child this process starts.
  ::fcntl(out.get(), F_SETFD, FD_CLOEXEC);
  return out;
}

}  // namespace accellm::device::cuda
