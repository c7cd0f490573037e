// The greedy sampling kernel's source (sampling_kernels.cuh) on the host
// emulator (emu/emu.hpp), GPU or not, against device/cpu's argmax: the
// float4 and the scalar path, rows whose length is no multiple of the
// block's stride, the maximum in the last few entries and in each lane of a
// float4, ties (the lowest index wins, wherever the tied entries fall among
// the threads), rows of -inf, and blocks of 64 and 1024 threads.
#include "device/cpu/kernels.hpp"
#include "device/cuda/sampling_kernels.cuh"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace accellm::device::cuda {
namespace {

// Rows of `vocab` seeded logits with one planted feature per row.
std::vector<float> planted_rows(std::uint32_t rows, std::uint32_t vocab, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-8.0f, 8.0f);
  std::vector<float> x(std::size_t{rows} * vocab);
  for (float& v : x) v = u(gen);
  const auto at = [&](std::uint32_t r, std::uint32_t i) -> float& {
    return x[std::size_t{r} * vocab + i];
  };
  if (rows > 1) at(1, vocab - 1) = 100.0f;  // the last entry: past every full stride
  if (rows > 2) {                           // a tie far apart: the lower index wins
    at(2, vocab - 2) = 50.0f;
    at(2, 3) = 50.0f;
  }
  if (rows > 3)
    for (std::uint32_t i = 0; i < vocab; ++i) at(3, i) = -INFINITY;  // nothing better than -inf
  if (rows > 4) {  // a tie in adjacent entries (one float4) and another 1024 apart
    at(4, 1001) = at(4, 1000) = 60.0f;
    if (vocab > 2100) at(4, 2024) = 60.0f;
  }
  for (std::uint32_t r = 5; r < rows && r < 9; ++r)  // each lane of a float4
    at(r, 4 * 17 + (r - 5)) = 70.0f;
  return x;
}

void expect_argmax_matches_cpu(std::uint32_t vocab, unsigned threads, bool vec4) {
  constexpr std::uint32_t rows = 9;
  // 16-byte aligned storage for the float4 path; one float in for the scalar one.
  std::vector<float> storage(std::size_t{rows} * vocab + 4);
  const std::vector<float> x = planted_rows(rows, vocab, vocab + threads);
  float* logits = storage.data() + (vec4 ? 0 : 1);
  ASSERT_EQ(reinterpret_cast<std::uintptr_t>(storage.data()) % 16, 0u);
  std::copy(x.begin(), x.end(), logits);
  std::vector<std::int32_t> out(rows, -1);
  emu::launch({rows, 1, 1}, threads, 0, [&] {
    if (vec4)
      sampling_kernels::argmax_kernel<true>(logits, vocab, out.data());
    else
      sampling_kernels::argmax_kernel<false>(logits, vocab, out.data());
  });
  for (std::uint32_t r = 0; r < rows; ++r) {
    const std::span<const float> row{x.data() + std::size_t{r} * vocab, vocab};
    EXPECT_EQ(out[r], static_cast<std::int32_t>(cpu::argmax(row)))
        << "row " << r << ", vocab " << vocab << ", " << threads << " threads"
        << (vec4 ? ", float4" : ", scalar");
  }
}

TEST(sampling_emu, argmax_float4_matches_the_cpu_backend) {
  for (std::uint32_t vocab : {32000u, 4100u, 2052u})
    for (unsigned threads : {64u, sampling_kernels::argmax_threads})
      expect_argmax_matches_cpu(vocab, threads, true);
}

TEST(sampling_emu, argmax_scalar_matches_the_cpu_backend) {
  for (std::uint32_t vocab : {32000u, 4099u, 2051u})
    for (unsigned threads : {64u, sampling_kernels::argmax_threads})
      expect_argmax_matches_cpu(vocab, threads, false);
}

}  // namespace
}  // namespace accellm::device::cuda
