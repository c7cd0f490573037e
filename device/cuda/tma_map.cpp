#include "device/cuda/tma_map.hpp"

#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <string>

namespace accellm::device::cuda {
namespace {

// The driver's cuTensorMapEncodeTiled, looked up once; null when the driver
// has none.
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault,
                                         &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      return static_cast<PFN_cuTensorMapEncodeTiled_v12000>(nullptr);
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

}  // namespace

status encode_bf16_sw128(CUtensorMap& map, const void* base, std::uint64_t rows, std::uint64_t cols,
                         std::uint64_t row_bytes, std::uint32_t box_rows, const char* who) {
  const PFN_cuTensorMapEncodeTiled_v12000 fn = tensor_map_encoder();
  if (fn == nullptr)
    return fail(errc::device_failure,
                std::string{who} + ": the driver has no cuTensorMapEncodeTiled");
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {row_bytes};
  const cuuint32_t box[2] = {64, box_rows};
  const cuuint32_t element_strides[2] = {1, 1};
  const CUresult r =
      fn(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(base), dims, strides, box,
         element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
         CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    return fail(errc::device_failure, std::string{who} +
                                          ": cuTensorMapEncodeTiled failed (CUresult " +
                                          std::to_string(static_cast<int>(r)) + ")");
  return {};
}

bool tma_maps_pool(const kv_pool_view& kv) noexcept {
  return kv.block_tokens == 16 && kv.blocks != 0 && kv.matrix_rows() <= 0x7fffffffu;
}

status encode_pool_map(CUtensorMap& map, const kv_pool_view& kv, const char* who) {
  return encode_bf16_sw128(map, kv.pool, kv.matrix_rows(), kv.kv_width,
                           std::uint64_t{kv.kv_width} * sizeof(__nv_bfloat16), kv.block_tokens,
                           who);
}

}  // namespace accellm::device::cuda
