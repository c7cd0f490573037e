#include "device/cuda/check.hpp"
#include "device/cuda/kv_copy.cuh"

namespace accellm::device::cuda {
namespace {

// One block per (token, kind, layer); 16-byte vectors along kv_width.
__global__ void kv_copy_kernel(kv_pool_view kv, std::uint32_t layer0, std::uint32_t tok0,
                               std::uint32_t tokens, __nv_bfloat16* packed, kv_direction dir) {
  const std::uint32_t t = blockIdx.x, kind = blockIdx.y, l = blockIdx.z;
  auto* pool = reinterpret_cast<uint4*>(kv.pool + kv.row_offset(0, layer0 + l, kind, tok0 + t));
  auto* flat = reinterpret_cast<uint4*>(
      packed + ((static_cast<std::uint64_t>(l) * 2 + kind) * tokens + t) * kv.kv_width);
  for (std::uint32_t i = threadIdx.x; i < kv.kv_width / 8; i += blockDim.x) {
    if (dir == kv_direction::pack) {
      flat[i] = pool[i];
    } else {
      pool[i] = flat[i];
    }
  }
}

}  // namespace

status kv_copy(const kv_pool_view& kv, const std::int32_t* table, std::uint32_t layer0,
               std::uint32_t layers, std::uint32_t tok0, std::uint32_t tokens,
               __nv_bfloat16* packed, kv_direction dir, cudaStream_t s) {
  if (layers == 0 || tokens == 0) return {};
  if (!kv.pool || !table || !packed) return fail(errc::invalid_argument, "kv_copy: null pointer");
  if (kv.kv_width % 8 != 0 || layer0 + layers > kv.layers)
    return fail(errc::invalid_argument, "kv_copy: bad layer range or kv_width");
  kv_pool_view one = kv;
  one.tables = table;  // slot 0 is the request's table
  kv_copy_kernel<<<dim3(tokens, 2, layers), 128, 0, s>>>(one, layer0, tok0, tokens, packed, dir);
  ACCELLM_CUDA_TRY(cudaGetLastError());
  return {};
}

}  // namespace accellm::device::cuda
