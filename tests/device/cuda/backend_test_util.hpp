// Helpers of the tests that run whole cuda_backends (cuda_backend_test.cpp,
// kv_shared_test.cpp): seeded prompts, the small instance they use, and the
// token-for-token comparison of two instances decoding one request.
#pragma once

#include "device/cuda/cuda_backend.hpp"
#include "tests/device/cuda/cuda_test_util.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace accellm::device::cuda::test {

/// `n` token ids in [0, vocab) drawn from `seed`.
inline std::vector<token_id> prompt(std::uint32_t n, std::uint32_t vocab, std::uint64_t seed) {
  auto r = random_vector(n, seed, 1.0f);
  std::vector<token_id> out;
  for (float x : r) out.push_back(static_cast<token_id>((x + 1.0f) * 0.5f * (vocab - 1)));
  return out;
}

/// The small instances of the tests: 64 KV blocks, 256 rows, 8 requests.
/// Prefill attention runs rows128 once it is verified, not by timing: tests
/// compare two instances token for token, and two timed choices could differ.
inline cuda_options small_options(std::uint64_t seed = 1) {
  cuda_options o;
  o.seed = seed;
  o.kv_blocks = 64;
  o.max_rows = 256;
  o.max_batch = 8;
  o.prefill = prefill_rule::rows128_if_verified;
  o.pinned_kv_bytes = std::uint64_t{64} << 20;  // one arena's pinning per backend
  return o;
}

/// `a` and `b` both hold `request` at `context` tokens; each decodes `count`
/// steps from its own last token (`ta`, `tb`), and they must agree at every
/// one.
inline void expect_same_decodes(backend& a, backend& b, request_id request, std::uint32_t context,
                                token_id ta, token_id tb, std::uint32_t count) {
  for (std::uint32_t s = 0; s < count; ++s) {
    auto ra = a.run(batch{{batch_item{request, phase::decode, context + s, 1, {ta}, true}}});
    auto rb = b.run(batch{{batch_item{request, phase::decode, context + s, 1, {tb}, true}}});
    ASSERT_TRUE(ra.ok() && rb.ok());
    ta = ra->next_tokens[0];
    tb = rb->next_tokens[0];
    ASSERT_EQ(ta, tb) << "step " << s;
  }
}

}  // namespace accellm::device::cuda::test
