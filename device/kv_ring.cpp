#include "device/kv_ring.hpp"

#include <algorithm>
#include <atomic>
#include <new>
#include <string>

namespace accellm::device {

namespace {

constexpr std::uint64_t ring_align = 16;
constexpr std::uint64_t ring_magic = 0x676e6972766b6361;  // "acckvring"'s first 8 bytes, LE

// The control block's layout, the same in both processes.
struct control_block {
  std::uint64_t magic;
  std::uint64_t capacity;
  std::atomic<std::uint64_t> read;  // positions below this are read
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the read mark is shared between processes: it must be lock-free");
static_assert(sizeof(control_block) <= ring_control_bytes);

control_block* block(const host_region& r) noexcept {
  return std::launder(reinterpret_cast<control_block*>(r.data()));
}

}  // namespace

ring_writer::ring_writer(std::unique_ptr<shared_region> data, std::unique_ptr<host_region> control,
                         std::uint64_t id) noexcept
    : data_(std::move(data)), control_(std::move(control)), id_(id) {}

result<ring_writer> ring_writer::create(backend& dev, std::uint64_t capacity, std::uint64_t id) {
  if (capacity == 0 || id == 0)
    return fail(errc::invalid_argument, "kv ring: capacity and id must be nonzero");
  auto data = dev.create_shared(capacity);
  if (!data) return std::move(data).err().context("kv ring");
  auto control = host_region::create(ring_control_bytes, "accellm-kv-ring-control");
  if (!control) return std::move(control).err().context("kv ring");
  new ((*control)->data()) control_block{ring_magic, (*data)->bytes(), {0}};
  return ring_writer{std::move(*data), std::move(*control), id};
}

std::uint64_t ring_writer::consumed() const noexcept {
  // A receiver that claims more than was written frees nothing unwritten.
  return std::min(head_, block(*control_)->read.load(std::memory_order_acquire));
}

std::uint64_t ring_writer::unread() const noexcept {
  return head_ - consumed();
}

std::optional<kv_place> ring_writer::reserve(std::uint64_t bytes) {
  const std::uint64_t cap = capacity();
  if (bytes > cap) return std::nullopt;
  // Chunks start at 16-byte offsets (the CUDA packing kernel's vectors).
  const std::uint64_t lap = head_ - head_ % cap;
  std::uint64_t start = lap + (head_ % cap + ring_align - 1) / ring_align * ring_align;
  if (start % cap + bytes > cap || start - lap >= cap) start = lap + cap;  // to the next lap
  // Bytes skipped at a lap's end are never read: only unread chunks, the
  // positions [consumed, head), must stay clear of the new one.
  const std::uint64_t read = consumed();
  if (read < head_ && start + bytes - read > cap) return std::nullopt;
  head_ = start + bytes;
  return kv_place{.region = data_.get(), .offset = start % cap, .ring = id_, .pos = start};
}

ring_reader::ring_reader(std::unique_ptr<shared_region> data,
                         std::unique_ptr<host_region> control) noexcept
    : data_(std::move(data)), control_(std::move(control)) {}

result<ring_reader> ring_reader::open(backend& dev, region_kind kind, unique_fd data,
                                      unique_fd control, std::uint64_t capacity) {
  if (capacity == 0) return fail(errc::invalid_argument, "kv ring: capacity 0");
  auto c = host_region::open(std::move(control), ring_control_bytes);
  if (!c) return std::move(c).err().context("kv ring control block");
  const control_block* b = block(**c);
  if (b->magic != ring_magic)
    return fail(errc::invalid_argument, "kv ring: the control block is not a ring's");
  if (b->capacity != capacity)
    return fail(errc::invalid_argument, "kv ring: the control block says " +
                                            std::to_string(b->capacity) + " bytes, the peer " +
                                            std::to_string(capacity));
  auto d = dev.open_shared(kind, std::move(data), capacity);
  if (!d) return std::move(d).err().context("kv ring");
  return ring_reader{std::move(*d), std::move(*c)};
}

result<std::uint64_t> ring_reader::offset(std::uint64_t pos, std::uint64_t bytes) const {
  const std::uint64_t cap = data_->bytes();
  const std::uint64_t at = pos % cap;
  if (bytes > cap - at)
    return fail(errc::out_of_range, "kv ring: " + std::to_string(bytes) + " bytes at position " +
                                        std::to_string(pos) + " run past the ring's " +
                                        std::to_string(cap));
  return at;
}

void ring_reader::mark_read(std::uint64_t end) noexcept {
  std::atomic<std::uint64_t>& read = block(*control_)->read;
  std::uint64_t seen = read.load(std::memory_order_relaxed);
  while (seen < end && !read.compare_exchange_weak(seen, end, std::memory_order_release,
                                                   std::memory_order_relaxed)) {
  }
}

}  // namespace accellm::device
