// shared_bytes: immutable bytes held by reference.
//
// A KV slice on its way from a device to a partner is written once (by the
// device, into pinned host memory or a vector) and after that only read: by
// the worker's send queue, which may cut it into pieces, and by the encoder,
// which copies it into the wire message. So copies of a shared_bytes share
// one buffer, and the buffer goes back to its owner (a device's host_pool,
// or the heap for a vector) when the last copy goes. Handing a slice on is
// then a reference count, not a memcpy of tens of MiB on the device thread.
//
// Equality compares the bytes, not the buffers (a message compares equal to
// its decoded copy).
//
// Thread contract: a value. Copies may live and die on any threads (the
// count is std::shared_ptr's); nobody writes the bytes once they are shared.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace accellm {

class shared_bytes {
 public:
  shared_bytes() = default;
  /// Takes `v`'s buffer (no copy of its bytes). Implicit: a vector is a
  /// buffer of its own, and the callers that fill one hand it on as is.
  shared_bytes(std::vector<std::byte> v)  // NOLINT(google-explicit-constructor)
  {
    if (v.empty()) return;
    auto owned = std::make_shared<const std::vector<std::byte>>(std::move(v));
    data_ = owned->data();
    size_ = owned->size();
    keeper_ = std::move(owned);
  }
  /// `size` bytes at `data`, valid while `keeper` lives: its deleter gives
  /// the memory back once the last copy of these bytes is gone.
  shared_bytes(std::shared_ptr<const void> keeper, const std::byte* data, std::size_t size) noexcept
      : keeper_(size == 0 ? nullptr : std::move(keeper)),
        data_(size == 0 ? nullptr : data),
        size_(size) {}

  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::span<const std::byte> span() const noexcept { return {data_, size_}; }
  const std::byte* begin() const noexcept { return data_; }
  const std::byte* end() const noexcept { return data_ + size_; }
  const std::byte& operator[](std::size_t i) const noexcept { return data_[i]; }

  /// Bytes [offset, offset + n) of these, sharing the buffer; clamped to
  /// what there is.
  shared_bytes sub(std::size_t offset, std::size_t n) const noexcept {
    offset = std::min(offset, size_);
    return {keeper_, data_ + offset, std::min(n, size_ - offset)};
  }
  /// A copy of the bytes the caller owns.
  std::vector<std::byte> to_vector() const { return {begin(), end()}; }
  /// How many values share the buffer (0 for none).
  long use_count() const noexcept { return keeper_.use_count(); }

  friend bool operator==(const shared_bytes& a, const shared_bytes& b) noexcept {
    return std::ranges::equal(a.span(), b.span());
  }

 private:
  std::shared_ptr<const void> keeper_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace accellm
