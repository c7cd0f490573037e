// Prompts cut into prefill attention tiles, and the kernels' names
// (prefill_attention.cuh). Host code only, so that the host emulator's tests
// (tests/device/cuda/emu) link it without nvcc.
#include "device/cuda/prefill_attention.cuh"

#include <algorithm>

namespace accellm::device::cuda {

void append_prefill_tiles(std::vector<prefill_tile>& out, prefill_kernel k, std::int32_t row,
                          std::uint32_t count, std::uint32_t pos, std::int32_t slot) {
  const std::uint32_t h = prefill_tile_rows_of(k);
  for (std::uint32_t j = 0; j < count; j += h)
    out.push_back(prefill_tile{row + static_cast<std::int32_t>(j),
                               static_cast<std::int32_t>(std::min(h, count - j)),
                               static_cast<std::int32_t>(pos + j), slot});
}

void sort_longest_first(std::vector<prefill_tile>& tiles) {
  std::stable_sort(tiles.begin(), tiles.end(), [](const prefill_tile& x, const prefill_tile& y) {
    return x.pos + x.count > y.pos + y.count;
  });
}

const char* prefill_kernel_name(prefill_kernel k) noexcept {
  switch (k) {
    case prefill_kernel::rows64:
      return "rows64";
    case prefill_kernel::rows128:
      return "rows128";
    case prefill_kernel::wgmma64:
      return "wgmma64";
    case prefill_kernel::wgmma128:
      return "wgmma128";
    case prefill_kernel::tma128:
      return "tma128";
    case prefill_kernel::tma128pp:
      return "tma128pp";
    case prefill_kernel::tma128n:
      return "tma128n";
  }
  return "?";
}

}  // namespace accellm::device::cuda
