#include "device/host_pool.hpp"

#include <algorithm>
#include <condition_variable>
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

  // Under the mutex: the size of a new arena that holds `bytes` within the
  // cap (counting arenas being allocated), reserved; 0 when there is no room.
  std::uint64_t reserve_arena(std::uint64_t bytes) {
    std::uint64_t have = growing;
    for (const arena& a : arenas) have += a.size;
    if (!allocator.allocate || have >= cap_bytes || bytes > cap_bytes - have) return 0;
    const std::uint64_t size = std::min(std::max(bytes, min_arena), cap_bytes - have);
    growing += size;
    return size;
  }

  // Under the mutex: `bytes` lent from arena `i` at `at`.
  host_lease lend(const std::shared_ptr<state>& self, std::size_t i, std::uint64_t at,
                  std::uint64_t need, std::uint64_t bytes) {
    lent += need;
    std::byte* data = arenas[i].base + at;
    std::shared_ptr<const void> keeper{
        data, [self, i, at, need](const void*) { self->give_back(i, at, need); }};
    return host_lease{std::move(keeper), data, bytes};
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
  std::uint64_t growing = 0;          ///< bytes of arenas being allocated (outside the mutex)
  std::uint64_t grown = 0;            ///< allocations finished (or failed) so far
  std::condition_variable allocated;  ///< notified when one finishes
};

host_pool::host_pool(std::uint64_t cap_bytes, std::uint64_t arena_bytes, host_allocator allocator)
    : state_(std::make_shared<state>(cap_bytes, arena_bytes, std::move(allocator))) {}

std::optional<host_lease> host_pool::take(std::uint64_t bytes, std::uint64_t max_lent,
                                          may_grow grow) {
  if (bytes == 0) return host_lease{};
  const std::uint64_t need = rounded(bytes);
  std::uint64_t size = 0;
  {
    std::unique_lock lock{state_->mutex};
    while (need <= max_lent && state_->lent <= max_lent - need) {
      for (std::size_t i = 0; i < state_->arenas.size(); ++i)
        if (auto at = state::fit(state_->arenas[i], need))
          return state_->lend(state_, i, *at, need, bytes);
      if (grow == may_grow::no) break;
      size = state_->reserve_arena(need);
      if (size != 0 || state_->growing == 0) break;
      // The cap is reached only with arenas still being allocated by other
      // takes: what they bring may hold this one. Wait for the next of them
      // (as long as allocating one would have taken), then look again.
      const std::uint64_t seen = state_->grown;
      state_->allocated.wait(lock, [&] { return state_->grown != seen; });
    }
    if (size == 0) {
      ++state_->refused;
      return std::nullopt;
    }
  }
  // Pinning memory takes milliseconds: not while holding the lock that every
  // other take and every release waits for.
  void* p = state_->allocator.allocate(size);
  std::lock_guard lock{state_->mutex};
  state_->growing -= size;
  ++state_->grown;
  state_->allocated.notify_all();
  if (p == nullptr) {
    ++state_->refused;
    return std::nullopt;
  }
  state::arena& a = state_->arenas.emplace_back();
  a.base = static_cast<std::byte*>(p);
  a.size = size;
  if (size > need) a.free.emplace(need, size - need);
  return state_->lend(state_, state_->arenas.size() - 1, 0, need, bytes);
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
