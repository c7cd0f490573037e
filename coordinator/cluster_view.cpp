#include "coordinator/cluster_view.hpp"

namespace accellm::coordinator {

std::uint64_t instance_view::available_blocks(std::uint32_t block_tokens) const noexcept {
  const std::uint64_t reserved = (pending_prefill_tokens + block_tokens - 1) / block_tokens;
  const std::uint64_t usable = free_blocks + replica_blocks;
  return usable > reserved ? usable - reserved : 0;
}

}  // namespace accellm::coordinator
