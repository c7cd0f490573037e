// Hostile input: random bytes, random framing, bit flips. decode must return
// a value or an error for every input, never crash or throw, and whatever
// it accepts must survive a re-encode unchanged. Randomised tests print
// their seed (SCOPED_TRACE); replay with ACCELLM_TEST_SEED=<seed>.
#include "messages/codec.hpp"
#include "tests/messages/helpers.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

namespace accellm::messages {
namespace {

using testing::describe;

// Accepted input re-encodes to an equal message; errors carry a message.
void expect_sane(const capnp_blob& blob) {
  const auto r = decode_any(blob);
  EXPECT_EQ(validate(blob).ok(), r.ok());
  if (!r) {
    EXPECT_FALSE(r.err().message().empty());
    return;
  }
  const auto again = decode_any(encode(*r));
  ASSERT_TRUE(again.ok()) << describe(again);
  EXPECT_TRUE(*again == *r);
}

std::uint16_t random_type(std::mt19937_64& rng) {
  return static_cast<std::uint16_t>(std::uniform_int_distribution<int>{0, 19}(rng));
}

TEST(Robustness, RandomBytes) {
  const std::uint64_t seed = testing::test_seed(20241125);
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng{seed};
  std::uniform_int_distribution<int> byte{0, 255};
  for (int i = 0; i < 5000; ++i) {
    capnp_blob blob{random_type(rng), std::vector<std::uint8_t>(rng() % 256), {}};
    for (auto& b : blob.bytes) b = static_cast<std::uint8_t>(byte(rng));
    expect_sane(blob);
  }
}

// Random words behind a correct one-segment table reach the Cap'n Proto
// parser instead of stopping at the framing checks.
TEST(Robustness, RandomWordsWithValidFraming) {
  const std::uint64_t seed = testing::test_seed(77);
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng{seed};
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::uint32_t words = 1 + static_cast<std::uint32_t>(rng() % 24);
    capnp_blob blob{static_cast<std::uint16_t>(1 + rng() % all_msg_types.size()),
                    std::vector<std::uint8_t>(8 * (1 + words)),
                    {}};
    const std::uint32_t table[2] = {0, words};
    std::memcpy(blob.bytes.data(), table, sizeof table);
    for (std::uint32_t w = 0; w < words; ++w) {
      // Small values make plausible pointers and lengths more likely.
      const std::uint64_t v = rng() % 4 == 0 ? rng() % 64 : rng();
      std::memcpy(blob.bytes.data() + 8 * (1 + w), &v, 8);
    }
    expect_sane(blob);
    accepted += decode_any(blob).ok() ? 1 : 0;
  }
  RecordProperty("accepted", accepted);
}

// Every single-bit flip of every example: deterministic and exhaustive.
TEST(Robustness, EverySingleBitFlip) {
  for (const auto& original : example_blobs()) {
    capnp_blob blob = original;
    for (std::size_t bit = 0; bit < 8 * blob.bytes.size(); ++bit) {
      blob.bytes[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      expect_sane(blob);
      blob.bytes[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    }
    EXPECT_EQ(blob, original);
  }
}

TEST(Robustness, RandomMultiBitFlipsAndTypeSwaps) {
  const std::uint64_t seed = testing::test_seed(4242);
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng{seed};
  const auto examples = example_blobs();
  for (int i = 0; i < 20000; ++i) {
    capnp_blob blob = examples[rng() % examples.size()];
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < flips; ++f) {
      const std::size_t bit = rng() % (8 * blob.bytes.size());
      blob.bytes[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    }
    if (rng() % 8 == 0) blob.type = random_type(rng);
    if (rng() % 8 == 0) blob.bytes.resize(rng() % (blob.bytes.size() + 16));
    expect_sane(blob);
  }
}

}  // namespace
}  // namespace accellm::messages
