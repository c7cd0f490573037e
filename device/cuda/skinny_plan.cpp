// The skinny GEMM's plans (skinny_gemm.cuh): which shapes it takes, how
// many blocks split a tile, the stream partition's workspace. Host code
// only, so that the host emulator's tests (tests/device/cuda/emu) link it
// without nvcc.
#include "device/cuda/skinny_gemm.cuh"

#include <vector>

namespace accellm::device::cuda {
namespace {

// Blocks skinny_gemm_split aims at: two per SM on an H100.
constexpr std::uint32_t target_blocks = 256;

// The 64-wide k tiles of `in` (the last one partial).
constexpr std::uint32_t k_tiles_of(std::uint32_t in) {
  return (in + skinny_tile_k - 1) / skinny_tile_k;
}

}  // namespace

bool skinny_gemm_supports(std::uint32_t rows, std::uint32_t in, std::uint32_t out) noexcept {
  return rows >= 1 && rows <= skinny_max_rows && in > 0 && in % 8 == 0 && out > 0;
}

std::uint32_t skinny_gemm_split(std::uint32_t in, std::uint32_t out) noexcept {
  const std::uint32_t tiles = (out + skinny_tile_out - 1) / skinny_tile_out;
  const std::uint32_t k_tiles = k_tiles_of(in);
  std::uint32_t split = 1;
  // Enough blocks for two per SM on an H100, each with at least 2 k tiles.
  while (split < skinny_max_split && std::uint64_t{tiles} * split < target_blocks &&
         4 * split <= k_tiles)
    split *= 2;
  return split;
}

bool skinny_split_fits(std::uint32_t in, std::uint32_t split) noexcept {
  const std::uint32_t k_tiles = k_tiles_of(in);
  return split >= 1 && split <= skinny_max_split && 2 * split <= k_tiles;
}

std::vector<std::uint32_t> skinny_split_candidates(std::uint32_t in, std::uint32_t out) {
  const std::uint32_t rule = skinny_gemm_split(in, out);
  std::vector<std::uint32_t> counts;
  for (std::uint32_t n = 1; n <= skinny_max_split; ++n)
    if (n != rule && skinny_split_fits(in, n)) counts.push_back(n);
  return counts;
}

std::size_t skinny_stream_partial_bytes(std::uint32_t blocks, std::uint32_t rows,
                                        std::uint32_t width) noexcept {
  // A partial is every thread's accumulators: 64 floats a row block, 128
  // threads per 128 outputs.
  const std::size_t per = std::size_t{rows <= 64 ? 64u : 128u} * width;
  return 2 * std::size_t{blocks} * per * sizeof(float);
}

std::uint32_t skinny_stream_counters(std::uint32_t out, std::uint32_t width) noexcept {
  return (out + width - 1) / width;
}

std::uint64_t skinny_stream_units(std::uint32_t in, std::uint32_t out,
                                  std::uint32_t width) noexcept {
  return std::uint64_t{skinny_stream_counters(out, width)} * k_tiles_of(in);
}

}  // namespace accellm::device::cuda
