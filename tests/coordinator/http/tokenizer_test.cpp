// The byte tokenizer: one token per byte, exact round trip, U+FFFD for ids
// outside a byte.
#include "coordinator/http/tokenizer.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace accellm::coordinator::http {
namespace {

TEST(ByteTokenizer, EachByteIsOneTokenOfItsValue) {
  EXPECT_EQ(encode_bytes("Hi!"), (std::vector<token_id>{72, 105, 33}));
  // "é" is two UTF-8 bytes, so two tokens.
  EXPECT_EQ(encode_bytes("\xC3\xA9"), (std::vector<token_id>{0xC3, 0xA9}));
  EXPECT_TRUE(encode_bytes("").empty());
}

TEST(ByteTokenizer, RoundTripsEveryByteValue) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::vector<token_id> ids = encode_bytes(all);
  ASSERT_EQ(ids.size(), 256u);
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(ids[static_cast<std::size_t>(b)], b);
    EXPECT_LT(ids[static_cast<std::size_t>(b)], byte_vocab);
  }
  EXPECT_EQ(decode_bytes(ids), all);
  EXPECT_EQ(decode_bytes(encode_bytes("caf\xC3\xA9 \xE2\x9C\x93")), "caf\xC3\xA9 \xE2\x9C\x93");
}

TEST(ByteTokenizer, IdsOutsideAByteBecomeTheReplacementCharacter) {
  const std::vector<token_id> ids{65, 256, 511, -1, 66};
  EXPECT_EQ(decode_bytes(ids),
            "A\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
            "B");
}

}  // namespace
}  // namespace accellm::coordinator::http
