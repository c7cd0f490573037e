// kv_ring: the same-node path of the KV copy between two worker processes.
//
// The sender of the copy owns a ring: a data region its backend packs chunks
// into (backend::create_shared: device memory on cuda) and a control block
// in host memory that both processes map. It hands both descriptors to the
// receiver once (worker/kv_ring_link.hpp); from then on a KvDeltaBatch names
// where its rows lie in the ring instead of carrying their bytes, and the
// receiver's backend copies them from there (import_kv_from), device to
// device on a GPU.
//
// Positions are byte counts since the ring was made, so they only grow; a
// chunk sits at offset pos % capacity, a multiple of 16, and never wraps
// (the writer skips to the next lap instead). The receiver imports chunks in the order they were
// written (one sender's messages arrive in order) and then publishes how far
// it has read in the control block; the writer reuses only bytes below that
// mark, and when a chunk does not fit the unread space the caller falls back
// to sending the bytes. A chunk the receiver never sees (a dropped message)
// is freed by the next one it reads.
//
// Thread contract: a writer belongs to the sender's device thread, a reader
// to the receiver's; the control block's one shared word is atomic.
#pragma once

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "device/backend.hpp"
#include "device/shared_region.hpp"

#include <cstdint>
#include <memory>
#include <optional>

namespace accellm::device {

/// Bytes of a ring's control block.
inline constexpr std::uint64_t ring_control_bytes = 4096;

class ring_writer {
 public:
  /// A ring of `capacity` bytes (> 0) in `dev`'s shareable memory, named `id`
  /// (nonzero; what KvDeltaBatch.ring says) to the receiver.
  static result<ring_writer> create(backend& dev, std::uint64_t capacity, std::uint64_t id);

  std::uint64_t id() const noexcept { return id_; }
  std::uint64_t capacity() const noexcept { return data_->bytes(); }
  region_kind kind() const noexcept { return data_->kind(); }
  shared_region& data() const noexcept { return *data_; }
  const host_region& control() const noexcept { return *control_; }

  /// Room for a chunk of `bytes`: its place, or nullopt while the receiver
  /// has not yet read enough (or `bytes` exceeds the capacity).
  std::optional<kv_place> reserve(std::uint64_t bytes);
  /// Bytes written that the receiver has not yet marked read.
  std::uint64_t unread() const noexcept;

 private:
  ring_writer(std::unique_ptr<shared_region> data, std::unique_ptr<host_region> control,
              std::uint64_t id) noexcept;
  std::uint64_t consumed() const noexcept;

  std::unique_ptr<shared_region> data_;
  std::unique_ptr<host_region> control_;
  std::uint64_t id_;
  std::uint64_t head_ = 0;  // the next free position
};

class ring_reader {
 public:
  /// Maps a peer's ring through `dev` (open_shared). Fails with
  /// invalid_argument when the control block is not a ring's or announces
  /// another capacity than `capacity`, unsupported when `dev` cannot map
  /// `kind`.
  static result<ring_reader> open(backend& dev, region_kind kind, unique_fd data, unique_fd control,
                                  std::uint64_t capacity);

  const shared_region& data() const noexcept { return *data_; }
  /// Where [pos, pos + bytes) lies in the data region; out_of_range when a
  /// writer could not have put it there (it would wrap or run past the end).
  result<std::uint64_t> offset(std::uint64_t pos, std::uint64_t bytes) const;
  /// Everything before `end` is read: the writer may reuse it. Never moves
  /// the mark back.
  void mark_read(std::uint64_t end) noexcept;

 private:
  ring_reader(std::unique_ptr<shared_region> data, std::unique_ptr<host_region> control) noexcept;

  std::unique_ptr<shared_region> data_;
  std::unique_ptr<host_region> control_;
};

}  // namespace accellm::device
