// device::copy_out (backend.hpp): the vector holds exactly the source's bytes,
// for small chunks and for chunks large enough to ask for huge pages, from a
// source at any alignment.
#include "device/backend.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace accellm::device
