// The host emulator's memory as AddressSanitizer sees it (the unit tests'
// sanitizer build, deploy/test.sh). Dynamic shared memory: the bytes a launch
// asks for, 1024-byte aligned, bf16 NaN at the start of every block, and not
// a byte more, so that a kernel that reads past it fails where a GPU would
// hand it another block's bytes. A thread's local arrays: checked after a
// barrier too.
#include "device/cuda/ptx.cuh"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace accellm::device::cuda {
namespace {

constexpr std::size_t smem_bytes = 100;

TEST(emu, dynamic_shared_memory_is_aligned_and_poisoned_in_every_block) {
  std::vector<std::uintptr_t> bases;
  std::vector<std::uint16_t> first, last;
  emu::launch(emu_dim3{3, 1, 1}, 32, smem_bytes, [&] {
    auto* smem = ptx::dynamic_smem<unsigned char>();
    if (threadIdx.x != 0) return;
    bases.push_back(reinterpret_cast<std::uintptr_t>(smem));
    std::uint16_t bits;
    std::memcpy(&bits, smem, 2);
    first.push_back(bits);
    std::memcpy(&bits, smem + smem_bytes - 2, 2);
    last.push_back(bits);
    std::memset(smem, 0, smem_bytes);  // the next block must not see this
  });
  ASSERT_EQ(bases.size(), 3u);
  for (std::size_t b = 0; b < bases.size(); ++b) {
    EXPECT_EQ(bases[b] % 1024, 0u) << "block " << b;
    EXPECT_EQ(first[b], 0x7fc0u) << "block " << b;  // bf16 NaN
    EXPECT_EQ(last[b], 0x7fc0u) << "block " << b;
  }
}

TEST(emu, a_read_past_dynamic_shared_memory_is_an_address_sanitizer_error) {
#if !defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "only AddressSanitizer sees the read (the unit tests' sanitizer build)";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto read_past = [] {
    emu::launch(emu_dim3{1, 1, 1}, 32, smem_bytes, [] {
      const volatile unsigned char* smem = ptx::dynamic_smem<unsigned char>();
      if (threadIdx.x == 31) static_cast<void>(smem[smem_bytes]);
    });
  };
  EXPECT_DEATH(read_past(), "heap-buffer-overflow");
#endif
}

// A thread's local arrays keep their redzones across barriers (the fibers
// switch past ASan's swapcontext interceptor, which would clear them).
TEST(emu, a_local_array_overrun_after_a_barrier_is_an_address_sanitizer_error) {
#if !defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "only AddressSanitizer sees the read (the unit tests' sanitizer build)";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto read_past = [] {
    emu::launch(emu_dim3{1, 1, 1}, 64, 0, [] {
      float local[4] = {1.0f, 2.0f, 3.0f, 4.0f};
      volatile std::size_t at = 4;
      __syncthreads();  // every thread yields here
      // Through a pointer whose object UBSan cannot size, so that ASan
      // (not UBSan's object-size check) is what sees the read.
      const volatile float* volatile p = local;
      if (threadIdx.x == 0) static_cast<void>(p[at]);  // the first to wait at the barrier
    });
  };
  EXPECT_DEATH(read_past(), "stack-buffer-overflow");
#endif
}

}  // namespace
}  // namespace accellm::device::cuda
