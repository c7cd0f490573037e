#include "bench/gpu/read_probe.hpp"

namespace accellm::bench {
namespace {

// Rows one warp reads of its segment column: 64 KB of 256-byte segments, as
// a decode block reads 32 keys x (K + V) x 256 bytes per stage, 8 stages.
constexpr std::uint32_t rows_per_warp = 256;
constexpr int warps = 4;

// Warp w reads segment column w % columns of rows [(w / columns) *
// rows_per_warp, + rows_per_warp), 16 bytes per lane per load: the
// column's vectors in order (row by row), so each load of the warp covers
// 512 contiguous bytes or two 256-byte segments of consecutive rows. Eight
// independent loads in flight per lane, summed so that none is dropped.
__global__ void __launch_bounds__(warps * 32)
    read_kernel(const uint4* __restrict__ base, std::uint32_t row_vecs, std::uint32_t seg_vecs,
                std::uint32_t columns, std::uint64_t warps_total, std::uint32_t* sink) {
  const std::uint64_t w = static_cast<std::uint64_t>(blockIdx.x) * warps + threadIdx.x / 32;
  if (w >= warps_total) return;
  const std::uint32_t lane = threadIdx.x % 32, column = static_cast<std::uint32_t>(w % columns);
  const std::uint64_t row0 = (w / columns) * rows_per_warp;
  const std::uint32_t total = rows_per_warp * seg_vecs;  // a multiple of 256
  std::uint32_t acc = 0;
  for (std::uint32_t i0 = lane; i0 < total; i0 += 8 * 32) {
    uint4 v[8];
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const std::uint32_t i = i0 + 32 * u, row = i / seg_vecs, vec = i % seg_vecs;
      v[u] = base[(row0 + row) * row_vecs + column * seg_vecs + vec];
    }
#pragma unroll
    for (int u = 0; u < 8; ++u) acc += v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) sink[w] = acc;
}

}  // namespace

std::size_t read_pattern_sink_words(std::size_t bytes, std::uint32_t row_bytes,
                                    std::uint32_t segment_bytes) {
  const std::size_t rows = bytes / row_bytes;
  return rows / rows_per_warp * (row_bytes / segment_bytes);
}

cudaError_t read_pattern(const void* base, std::size_t bytes, std::uint32_t row_bytes,
                         std::uint32_t segment_bytes, std::uint32_t* sink, cudaStream_t s) {
  const std::uint64_t warps_total = read_pattern_sink_words(bytes, row_bytes, segment_bytes);
  const auto blocks = static_cast<unsigned>((warps_total + warps - 1) / warps);
  read_kernel<<<blocks, warps * 32, 0, s>>>(static_cast<const uint4*>(base), row_bytes / 16,
                                            segment_bytes / 16, row_bytes / segment_bytes,
                                            warps_total, sink);
  return cudaGetLastError();
}

}  // namespace accellm::bench
