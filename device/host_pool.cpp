#include "device/host_pool.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace accellm::device {

struct host_pool::state {
  struct arena {
    std::byte* base = nullptr;
    std::uint64_t size = 0;
    std::map<std::uint64_t, std::uint64_t> free;  ///< offset -> length, disjoint, not adjacent
  };

  state(std::uint64_t cap, std::uint64_t arena_min, host_allocator a)
      : cap_bytes(cap), min_arena(arena_min), allocator(std::move(a)) {}
  state(const state&) = delete;
  state& operator=(const state&) = delete;
  ~state() {
    for (arena& a : arenas)
      if (allocator.release) allocator.release(a.base);
  }

  // The first free range of `a` that holds `bytes`: its offset, taken out.
  static std::optional<std::uint64_t> fit(arena& a, std::uint64_t bytes) {
    for (auto it = a.free.begin(); it != a.free.end(); ++it) {
      if (it->second < bytes) continue;
      const std::uint64_t at = it->first, rest = it->second - bytes;
      a.free.erase(it);
      if (rest > 0) a.free.emplace(at + bytes, rest);
      return at;
    }
    return std::nullopt;
  }

  // A new arena that holds `bytes`, within the cap; nullptr when refused.
  arena* grow(std::uint64_t bytes) {
    std::uint64_t have = 0;
    for (const arena& a : arenas) have += a.size;
    if (have >= cap_bytes || bytes > cap_bytes - have) return nullptr;
    const std::uint64_t size = std::min(std::max(bytes, min_arena), cap_bytes - have);
    void* p = allocator.allocate ? allocator.allocate(size) : nullptr;
    if (p == nullptr) return nullptr;
    arena& a = arenas.emplace_back();
    a.base = static_cast<std::byte*>(p);
    a.size = size;
    a.free.emplace(0, size);
    return &a;
  }

  // Puts [at, at + bytes) of arena `i` back, merged with its neighbours.
  void give_back(std::size_t i, std::uint64_t at, std::uint64_t bytes) {
    std::lock_guard lock{mutex};
    lent -= bytes;
    auto& free = arenas[i].free;
    auto next = free.lower_bound(at);
    if (next != free.end() && next->first == at + bytes) {
      bytes += next->second;
      next = free.erase(next);
    }
    if (next != free.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second == at) {
        prev->second += bytes;
        return;
      }
    }
    free.emplace(at, bytes);
  }

  const std::uint64_t cap_bytes;
  const std::uint64_t min_arena;
  host_allocator allocator;
  mutable std::mutex mutex;  // guards everything below
  // A deque would do as well: arenas are only appended, and leases name
  // theirs by index, so the vector's moves never invalidate one.
  std::vector<arena> arenas;
  std::uint64_t lent = 0;
  std::uint64_t refused = 0;
};

host_pool::host_pool(std::uint64_t cap_bytes, std::uint64_t arena_bytes, host_allocator allocator)
    : state_(std::make_shared<state>(cap_bytes, arena_bytes, std::move(allocator))) {}

std::optional<host_lease> host_pool::take(std::uint64_t bytes, std::uint64_t max_lent) {
  if (bytes == 0) return host_lease{};
  const std::uint64_t need = (bytes + alignment - 1) / alignment * alignment;
  std::lock_guard lock{state_->mutex};
  std::size_t i = 0;
  std::optional<std::uint64_t> at;
  if (need > max_lent || state_->lent > max_lent - need) {
    ++state_->refused;
    return std::nullopt;
  }
  for (; i < state_->arenas.size() && !at; ++i) at = state::fit(state_->arenas[i], need);
  if (at) {
    --i;
  } else if (state::arena* fresh = state_->grow(need)) {
    i = state_->arenas.size() - 1;
    at = state::fit(*fresh, need);
  }
  if (!at) {
    ++state_->refused;
    return std::nullopt;
  }
  state_->lent += need;
  std::byte* data = state_->arenas[i].base + *at;
  std::shared_ptr<const void> keeper{
      data, [st = state_, i, off = *at, need](const void*) { st->give_back(i, off, need); }};
  return host_lease{std::move(keeper), data, bytes};
}

std::uint64_t host_pool::cap_bytes() const noexcept {
  return state_->cap_bytes;
}

std::uint64_t host_pool::arena_bytes() const {
  std::lock_guard lock{state_->mutex};
  std::uint64_t n = 0;
  for (const state::arena& a : state_->arenas) n += a.size;
  return n;
}

std::uint64_t host_pool::lent_bytes() const {
  std::lock_guard lock{state_->mutex};
  return state_->lent;
}

bool host_pool::owns(const std::byte* p, std::uint64_t bytes) const {
  if (p == nullptr) return false;
  std::lock_guard lock{state_->mutex};
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  return std::any_of(state_->arenas.begin(), state_->arenas.end(), [&](const state::arena& a) {
    const auto base = reinterpret_cast<std::uintptr_t>(a.base);
    return at >= base && at - base <= a.size && bytes <= a.size - (at - base);
  });
}

std::uint64_t host_pool::refusals() const {
  std::lock_guard lock{state_->mutex};
  return state_->refused;
}

}  // namespace accellm::device
