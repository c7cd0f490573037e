// device::copy_out (backend.hpp): the vector holds exactly the source's bytes,
// for small chunks and for chunks large enough to ask for huge pages, from a
// source at any alignment. keep_freed_host_buffers: a freed chunk's memory
// comes back without a page fault.
#include "device/backend.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstddef>
#include <vector>

namespace accellm::device {
namespace {

TEST(CopyOut, HoldsExactlyTheSourceBytesAtEverySize) {
  const std::size_t largest = (std::size_t{9} << 20) + 3;
  std::vector<std::byte> source(largest + 1);
  for (std::size_t i = 0; i < source.size(); ++i)
    source[i] = static_cast<std::byte>((i * 131 + 7) & 0xff);
  for (const std::size_t bytes : {std::size_t{0}, std::size_t{1}, std::size_t{4096},
                                  (std::size_t{4} << 20) - 1, std::size_t{4} << 20, largest}) {
    // From offset 1: no alignment of the source is assumed.
    const std::vector<std::byte> out = copy_out(source.data() + 1, bytes);
    ASSERT_EQ(out.size(), bytes);
    EXPECT_TRUE(std::equal(out.begin(), out.end(), source.begin() + 1)) << bytes << " bytes";
  }
}

// Minor page faults of this thread so far.
[[maybe_unused]] long faults() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_minflt;
}

TEST(KeepFreedHostBuffers, AFreedChunkComesBackWithoutPageFaults) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's allocator ignores mallopt";
#else
  ASSERT_TRUE(keep_freed_host_buffers());
  const std::size_t bytes = std::size_t{48} << 20;  // over glibc's largest mmap threshold
  const std::vector<std::byte> source(bytes, std::byte{9});
  { const auto first = copy_out(source.data(), bytes); }  // faulted in, then freed
  const long before = faults();
  const auto again = copy_out(source.data(), bytes);
  const long taken = faults() - before;
  ASSERT_EQ(again.size(), bytes);
  // Fresh memory costs a fault per page: 12288 of 4 KiB, or 24 of 2 MiB.
  EXPECT_LT(taken, 8) << "the second 48 MiB chunk was fresh memory";
#endif
}

}  // namespace
}  // namespace accellm::device
