// shared_region: memory that two processes on one node both map, the bytes of
// a same-node KV ring (kv_ring.hpp). The process that creates a region hands
// a descriptor of it to the other (over a Unix socket, SCM_RIGHTS); the
// memory lives until both have let go of it, so the receiver's mapping stays
// valid when the sender dies. That is what a takeover needs: the survivor is
// the one that must still read the KV.
//
// Two kinds: host memory (a memfd, what the cpu backend and the control
// block use), and CUDA device memory (cuda_backend: a VMM allocation whose
// handle is a POSIX file descriptor; legacy cudaIpc handles leave the
// importer with undefined behaviour once the exporter frees the memory).
//
// Thread contract: a region is used by one thread at a time; the memory it
// maps is shared with the other process, so the ring protocol, not this
// class, says who may touch which bytes when.
#pragma once

#include "common/result.hpp"
#include "common/unique_fd.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace accellm::device {

/// Where a region's memory is; what a receiving backend must be able to map.
enum class region_kind : std::uint8_t {
  host = 1,  ///< host memory (memfd)
  cuda = 2,  ///< device memory of a GPU of the node (CUDA VMM, POSIX fd handle)
};

/// "host" or "cuda".
std::string_view to_string(region_kind kind) noexcept;

class shared_region {
 public:
  virtual ~shared_region() = default;
  virtual region_kind kind() const noexcept = 0;
  virtual std::uint64_t bytes() const noexcept = 0;
  /// A new descriptor of the region for another process; the caller owns it.
  virtual result<unique_fd> share() const = 0;
};

/// ok when `bytes` fit at `offset` of `region`; out_of_range naming `where`
/// otherwise. What every backend checks before it packs into or reads from a
/// region.
status check_span(const shared_region& region, std::uint64_t offset, std::uint64_t bytes,
                  std::string_view where);

/// Host memory in a memfd, mapped shared.
class host_region final : public shared_region {
  struct key {
    explicit key() = default;
  };

 public:
  /// A new zero-filled region of `bytes` (> 0); `name` shows in /proc/PID/fd.
  static result<std::unique_ptr<host_region>> create(std::uint64_t bytes, const char* name);
  /// Maps a region another process created. Fails with invalid_argument when
  /// `fd` is not a memfd-like file of at least `bytes` bytes, so a peer that
  /// lies about the size cannot make this process read past the mapping.
  static result<std::unique_ptr<host_region>> open(unique_fd fd, std::uint64_t bytes);

  host_region(key, unique_fd fd, std::byte* data, std::uint64_t bytes) noexcept;
  host_region(const host_region&) = delete;
  host_region& operator=(const host_region&) = delete;
  ~host_region() override;

  region_kind kind() const noexcept override { return region_kind::host; }
  std::uint64_t bytes() const noexcept override { return bytes_; }
  result<unique_fd> share() const override;
  std::byte* data() const noexcept { return data_; }

 private:
  unique_fd fd_;
  std::byte* data_;
  std::uint64_t bytes_;
};

}  // namespace accellm::device
