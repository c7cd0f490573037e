// device::host_pool: host buffers lent out as shared_bytes, carved from a few
// large arenas (page-locked memory on a GPU backend), each taken back when
// the last share of it goes.
//
// Why: the layer-wise copy to a partner on another node leaves the GPU
// through pinned memory. Copying each chunk from there into a vector of its
// own (device::copy_out) ran at 1.3-9 GB/s in the GPU VMs, against 41-55
// GB/s for the device-to-pinned copy before it, and held the device thread
// between layers: a 2048-token Llama-2-7B prefill took 378 ms instead of 46
// (H100, docs/cuda.md). With a pool the chunk handed to the worker *is* the
// pinned memory: the GPU copies into a lease, the sink gets shares of it,
// and the bytes are next copied only when the message is encoded, on the
// actor side, paced by the KV flow control.
//
// Allocation: first fit over each arena's free ranges, which are kept sorted
// and merged on release; every lease is a multiple of `alignment` bytes at an
// aligned offset (the wire encoder references 8-byte aligned data in place).
// Arenas of at least `arena_bytes` are allocated when nothing fits, up to
// `cap_bytes` in all, and kept until the pool and its last lease are gone.
// When nothing fits and the cap is reached, take() answers nullopt and the
// caller copies the old way: memory is bounded, and nothing ever waits for
// a lease to come back. A take() that may grow the pool but finds the cap
// reached only by arenas other takes are still allocating waits for those
// (as long as allocating its own would have taken) and looks again.
//
// Thread contract: take() and the release of leases (the last share of one
// dropped) may run on any threads; one mutex, in the state the pool and its
// leases share, guards the arenas and their free ranges. The allocator runs
// outside it (a take() that allocates holds nobody up but itself); its
// release function runs when the pool and the last lease are gone, on the
// thread that drops the last of them.
#pragma once

#include "common/shared_bytes.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

namespace accellm::device {

/// Where a host_pool's arenas come from: `allocate` answers nullptr when it
/// cannot; `release` gets back what `allocate` gave.
struct host_allocator {
  std::function<void*(std::size_t)> allocate;
  std::function<void(void*)> release;
};

/// Writable bytes lent by a host_pool, to fill once and then share.
class host_lease {
 public:
  host_lease() = default;
  host_lease(std::shared_ptr<const void> keeper, std::byte* data, std::size_t size) noexcept
      : keeper_(std::move(keeper)), data_(data), size_(size) {}

  /// Where to write (the device's copy lands here).
  std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  /// Bytes [offset, offset + n) as read-only shares of this lease; the lease
  /// goes back to its pool when this object and every share are gone.
  shared_bytes share(std::size_t offset, std::size_t n) const noexcept {
    return shared_bytes{keeper_, data_, size_}.sub(offset, n);
  }

 private:
  std::shared_ptr<const void> keeper_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

class host_pool {
 public:
  static constexpr std::size_t alignment = 256;
  /// What a lease of `bytes` takes of the pool: `bytes` rounded up to the
  /// alignment (where the next lease from the same range starts).
  static constexpr std::uint64_t rounded(std::uint64_t bytes) noexcept {
    return (bytes + alignment - 1) / alignment * alignment;
  }

  /// No arenas yet. `cap_bytes` 0: take() always answers nullopt.
  host_pool(std::uint64_t cap_bytes, std::uint64_t arena_bytes, host_allocator allocator);
  host_pool(const host_pool&) = delete;
  host_pool& operator=(const host_pool&) = delete;
  host_pool(host_pool&&) noexcept = default;
  host_pool& operator=(host_pool&&) noexcept = default;
  /// The arenas go once the last lease does too.
  ~host_pool() = default;

  /// Whether take() may allocate a new arena (the allocator may take
  /// milliseconds: a thread that must not wait asks for `no`).
  enum class may_grow : bool { no, yes };

  /// `bytes` bytes (0: an empty lease), or nullopt when they fit no arena
  /// and a new one may not be allocated (`grow`), would pass the cap (once
  /// the arenas other takes were allocating are in) or was refused by the
  /// allocator, or when the pool would then lend more than `max_lent` bytes
  /// in all (a share of the pool for one kind of use).
  std::optional<host_lease> take(std::uint64_t bytes, std::uint64_t max_lent = ~std::uint64_t{0},
                                 may_grow grow = may_grow::yes);

  std::uint64_t cap_bytes() const noexcept;
  /// Bytes of the arenas allocated so far.
  std::uint64_t arena_bytes() const;
  /// Bytes lent out now (rounded up to `alignment` each).
  std::uint64_t lent_bytes() const;
  /// take() calls answered nullopt so far.
  std::uint64_t refusals() const;
  /// Whether [p, p + bytes) lies in one of this pool's arenas (a share of a
  /// lease of this pool: the memory a device may copy from directly).
  bool owns(const std::byte* p, std::uint64_t bytes) const;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace accellm::device
