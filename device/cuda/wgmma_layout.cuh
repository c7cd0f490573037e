// wgmma_layout: where a tile's elements lie in shared memory for wgmma's
// shared-memory operands (8 x 8 core matrices of 128 contiguous bytes, no
// swizzle; wgmma.cuh has the operand rules), and the matrix descriptors that
// name such a tile or one a TMA copy laid out with the 128-byte swizzle (K-major
// or MN-major). Device code, also compiled
// by the host emulator (tests/device/cuda/emu/), which decodes the descriptors this encodes.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace accellm::device::cuda::wg {

/// Shared-memory matrix descriptor, no swizzle: start address, leading and
/// stride byte offsets, each in 16-byte units (PTX ISA, "Matrix Descriptor").
__device__ inline std::uint64_t descriptor(const void* smem, std::uint32_t leading,
                                           std::uint32_t stride) {
  const auto a = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem));
  return static_cast<std::uint64_t>((a >> 4) & 0x3fff) |
         static_cast<std::uint64_t>((leading >> 4) & 0x3fff) << 16 |
         static_cast<std::uint64_t>((stride >> 4) & 0x3fff) << 32;
}

/// Shared-memory matrix descriptor for a K-major tile laid out by a TMA copy
/// with the 128-byte swizzle (tma.cuh): rows of 128 bytes (64 bf16 of k),
/// 8-row groups 1024 bytes apart (the stride byte offset), the tile
/// 1024-byte aligned; `smem` is row 0 at the k16 slice's first column, so
/// slice s of a 64-wide tile starts 32 s bytes into the row. The leading
/// offset is unused by this layout (1 by convention).
__device__ inline std::uint64_t descriptor_sw128(const void* smem) {
  constexpr std::uint64_t swizzle_128b = 1;  // bits 62-63
  return descriptor(smem, 16, 1024) | swizzle_128b << 62;
}

/// Shared-memory matrix descriptor for an MN-major tile (the transposed B
/// of a product, N contiguous) laid out by TMA copies with the 128-byte
/// swizzle: rows of 128 bytes, each 64 n of one k, 8-row (8 k) groups 1024
/// bytes apart (the stride byte offset), the next 64 n `next_n_bytes`
/// further (the leading byte offset); `smem` is the slice's first k row,
/// 1024-byte aligned. CUTLASS's canonical MN-major SW128 layout, ((T, 8,
/// m), (8, k)) : ((1, T, LBO), (8 T, SBO)) with T 8 elements.
__device__ inline std::uint64_t descriptor_sw128_mn(const void* smem, std::uint32_t next_n_bytes) {
  constexpr std::uint64_t swizzle_128b = 1;  // bits 62-63
  return descriptor(smem, next_n_bytes, 1024) | swizzle_128b << 62;
}

/// Where a tile's 16-byte copy `e` goes, for a tile whose rows are `vecs`
/// 16-byte chunks wide, stored row group (8 rows) major as core matrices:
/// element (row r, column c) at ((r / 8) * vecs + c / 8) * 64 + (r % 8) * 8
/// + c % 8. Copies are numbered so that consecutive ones take consecutive
/// rows of a core matrix: consecutive threads' 16-byte writes are contiguous.
struct core_slot {
  int row;    ///< the tile row the copy reads
  int chunk;  ///< its 16-byte chunk of that row (columns 8 chunk ..)
  int at;     ///< the element offset it is written to
};

__device__ inline core_slot slot_of(int e, int vecs) {
  const int group = e / (8 * vecs), chunk = (e / 8) % vecs, rr = e % 8;
  return {group * 8 + rr, chunk, (group * vecs + chunk) * 64 + rr * 8};
}

}  // namespace accellm::device::cuda::wg
