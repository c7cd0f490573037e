// The host emulator's stand-in for <cooperative_groups.h> (emu.hpp): the
// thread-block cluster calls the skinny GEMM makes, on the emulator's
// clusters (emu::launch with cluster > 1).
#pragma once

#include "emu.hpp"

#include <cstddef>

namespace cooperative_groups {

struct cluster_group {
  unsigned num_blocks() const { return emu::cluster_size(); }
  unsigned block_rank() const { return emu::current->cluster_rank; }
  /// The address of `p` (in this block's shared memory) in block `rank`'s.
  template <class T>
  T* map_shared_rank(T* p, unsigned rank) const {
    const std::size_t at = __cvta_generic_to_shared(p);
    return reinterpret_cast<T*>(emu::cluster_block(rank).smem + at);
  }
  void sync() const { emu::cluster_sync(); }
};

inline cluster_group this_cluster() {
  return {};
}

}  // namespace cooperative_groups
