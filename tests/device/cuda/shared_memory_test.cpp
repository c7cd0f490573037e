// cuda_region: two mappings of one VMM allocation see the same bytes, the
// importer's mapping outlives the creator, and bad input is refused. The
// refusals that need no GPU run everywhere: without a driver every call is an
// error value, never a crash (the driver is looked up at run time, nothing
// links libcuda).
#include "device/cuda/shared_memory.hpp"

#include "device/shared_region.hpp"
#include "tests/device/cuda/cuda_test_util.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <iostream>
#include <vector>

namespace accellm::device::cuda {
namespace {

bool refused_cleanly(errc code) {
  return code == errc::unsupported || code == errc::device_failure ||
         code == errc::invalid_argument;
}

// A descriptor that is not a VMM handle: a memfd.
unique_fd memfd() {
  auto h = host_region::create(1 << 16, "not-a-vmm-handle");
  EXPECT_TRUE(h.ok());
  auto fd = (*h)->share();
  EXPECT_TRUE(fd.ok());
  return std::move(*fd);
}

TEST(cuda_region, bad_arguments_are_refused_before_the_driver) {
  auto zero = cuda_region::create(0, 0);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.err().code(), errc::invalid_argument);
  auto no_fd = cuda_region::open(0, unique_fd{}, 4096);
  ASSERT_FALSE(no_fd.ok());
  EXPECT_EQ(no_fd.err().code(), errc::invalid_argument);
  auto no_bytes = cuda_region::open(0, memfd(), 0);
  ASSERT_FALSE(no_bytes.ok());
  EXPECT_EQ(no_bytes.err().code(), errc::invalid_argument);
}

TEST(cuda_region, without_a_gpu_every_call_is_an_error) {
  if (probe().usable()) GTEST_SKIP() << "a CUDA device is present";
  // Looked up twice: the cached answer is the same.
  for (int i = 0; i < 2; ++i) {
    auto vmm = vmm_available();
    if (vmm.ok()) continue;  // a driver without a device: the calls below still fail
    EXPECT_EQ(vmm.err().code(), errc::unsupported);
    EXPECT_NE(vmm.err().message().find("driver"), std::string::npos) << vmm.err().what();
  }
  auto made = cuda_region::create(0, 4096);
  ASSERT_FALSE(made.ok());
  EXPECT_TRUE(refused_cleanly(made.err().code())) << made.err().what();
  std::cout << "without a GPU: " << made.err().what() << "\n";
  auto opened = cuda_region::open(0, memfd(), 4096);
  ASSERT_FALSE(opened.ok());
  EXPECT_TRUE(refused_cleanly(opened.err().code())) << opened.err().what();
}

TEST(cuda_region, two_mappings_share_the_bytes_and_outlive_the_creator) {
  ACCELLM_REQUIRE_GPU();
  ASSERT_TRUE(vmm_available().ok()) << vmm_available().err().what();
  const std::uint64_t bytes = 5000;
  auto a = cuda_region::create(0, bytes);
  ASSERT_TRUE(a.ok()) << a.err().what();
  EXPECT_EQ((*a)->kind(), region_kind::cuda);
  EXPECT_EQ((*a)->bytes(), bytes);
  EXPECT_GE((*a)->mapped_bytes(), bytes);
  auto fd = (*a)->share();
  ASSERT_TRUE(fd.ok()) << fd.err().what();
  auto fd2 = (*a)->share();
  ASSERT_TRUE(fd2.ok());
  EXPECT_NE(fd->get(), fd2->get());
  auto b = cuda_region::open(0, std::move(*fd), bytes);
  ASSERT_TRUE(b.ok()) << b.err().what();
  EXPECT_NE((*a)->data(), nullptr);

  std::vector<std::uint8_t> pattern(bytes);
  for (std::size_t i = 0; i < bytes; ++i) pattern[i] = static_cast<std::uint8_t>(i * 7 + 3);
  ASSERT_EQ(cudaMemcpy((*a)->data(), pattern.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
  std::vector<std::uint8_t> seen(bytes);
  ASSERT_EQ(cudaMemcpy(seen.data(), (*b)->data(), bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(seen, pattern);

  // The creator goes (a sender that dies): the importer still reads the bytes.
  a->reset();
  std::fill(seen.begin(), seen.end(), 0);
  ASSERT_EQ(cudaMemcpy(seen.data(), (*b)->data(), bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(seen, pattern);
  // A second descriptor taken before still imports the same memory.
  auto c = cuda_region::open(0, std::move(*fd2), bytes);
  ASSERT_TRUE(c.ok()) << c.err().what();
  std::fill(seen.begin(), seen.end(), 0);
  ASSERT_EQ(cudaMemcpy(seen.data(), (*c)->data(), bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(seen, pattern);
}

TEST(cuda_region, what_is_not_a_vmm_handle_or_too_small_is_refused) {
  ACCELLM_REQUIRE_GPU();
  auto not_vmm = cuda_region::open(0, memfd(), 4096);
  ASSERT_FALSE(not_vmm.ok());
  EXPECT_TRUE(refused_cleanly(not_vmm.err().code())) << not_vmm.err().what();
  auto bad_fd = cuda_region::open(0, unique_fd{-1}, 4096);
  ASSERT_FALSE(bad_fd.ok());
  EXPECT_EQ(bad_fd.err().code(), errc::invalid_argument);
  // A peer that claims more than it allocated: cuMemMap refuses the size.
  auto a = cuda_region::create(0, 4096);
  ASSERT_TRUE(a.ok()) << a.err().what();
  auto fd = (*a)->share();
  ASSERT_TRUE(fd.ok());
  auto big = cuda_region::open(0, std::move(*fd), (*a)->mapped_bytes() + 1);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.err().code(), errc::invalid_argument) << big.err().what();
}

}  // namespace
}  // namespace accellm::device::cuda
