// Envelope checks of decode: type, size, alignment, framing, size limits,
// traversal limit.
#include "messages/codec.hpp"
#include "tests/messages/helpers.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace accellm::messages {
namespace {

using testing::describe;
using testing::example;

std::uint64_t word_at(const capnp_blob& b, std::size_t i) {
  std::uint64_t w = 0;
  std::memcpy(&w, b.bytes.data() + 8 * i, 8);
  return w;
}

void set_word(capnp_blob& b, std::size_t i, std::uint64_t w) {
  std::memcpy(b.bytes.data() + 8 * i, &w, 8);
}

TEST(Envelope, WrongTypeNamesBoth) {
  const auto blobs = example_blobs();
  for (const auto& m : example_messages()) {
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          for (const auto& blob : blobs) {
            if (blob.type == static_cast<std::uint16_t>(T::type)) continue;
            const auto r = decode<T>(blob);
            ASSERT_FALSE(r.ok());
            EXPECT_EQ(r.err().code(), errc::wrong_type);
            EXPECT_NE(r.err().message().find(std::string{to_string(T::type)}), std::string::npos);
            const auto other = to_string(*to_msg_type(blob.type));
            EXPECT_NE(r.err().message().find(std::string{other}), std::string::npos)
                << r.err().message();
          }
        },
        m);
  }
  const auto r = decode<execute>(encode(example<kv_layer>()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message(), "expected Execute (8), got KvLayer (10)");
}

TEST(Envelope, UnknownTypeIsRejected) {
  capnp_blob blob = encode(example<heartbeat>());
  for (const std::uint16_t t : {0, 21, 999, 65535}) {
    blob.type = t;
    const auto s = validate(blob);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.err().code(), errc::wrong_type) << describe(s);
    EXPECT_FALSE(decode_any(blob).ok());
  }
}

TEST(Envelope, EmptyAndEveryPrefixFail) {
  for (const auto& full : example_blobs()) {
    for (std::size_t n = 0; n < full.bytes.size(); ++n) {
      capnp_blob cut{full.type, {full.bytes.begin(), full.bytes.begin() + n}, {}};
      const auto s = validate(cut);
      ASSERT_FALSE(s.ok()) << "type " << full.type << " prefix " << n;
      const errc want = n % 8 != 0 ? errc::misaligned : errc::truncated;
      EXPECT_EQ(s.err().code(), want) << "prefix " << n << ": " << describe(s);
    }
  }
}

TEST(Envelope, SizeNotAMultipleOfEight) {
  for (std::size_t extra = 1; extra < 8; ++extra) {
    capnp_blob blob = encode(example<execute>());
    blob.bytes.resize(blob.bytes.size() + extra, 0);
    const auto r = decode<execute>(blob);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code(), errc::misaligned) << describe(r);
  }
}

TEST(Envelope, TrailingWordsAreMalformed) {
  capnp_blob blob = encode(example<set_role>());
  blob.bytes.resize(blob.bytes.size() + 8, 0);
  const auto r = decode<set_role>(blob);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code(), errc::malformed) << describe(r);
}

TEST(Envelope, UnalignedDataPointerStillDecodes) {
  for (const auto& m : example_messages()) {
    const capnp_blob blob = encode(m);
    std::vector<std::uint8_t> buffer(blob.bytes.size() + 8);
    for (std::size_t offset = 1; offset < 8; ++offset) {
      std::memcpy(buffer.data() + offset, blob.bytes.data(), blob.bytes.size());
      const blob_view v{blob.type, {buffer.data() + offset, blob.bytes.size()}};
      const auto r = decode_any(v);
      ASSERT_TRUE(r.ok()) << "offset " << offset << ": " << describe(r);
      EXPECT_TRUE(*r == m);
    }
  }
}

TEST(Envelope, BrokenPointerIsMalformed) {
  capnp_blob blob = encode(example<heartbeat>());
  set_word(blob, 1, std::uint64_t{1000} << 2 | (word_at(blob, 1) & ~std::uint64_t{0xffffffff}));
  const auto r = decode<heartbeat>(blob);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code(), errc::malformed) << describe(r);
}

TEST(Limits, WholeMessageSizePerClass) {
  const capnp_blob control = encode(example<set_role>());
  decode_limits l;
  l.control_bytes = control.bytes.size();
  EXPECT_TRUE(decode<set_role>(control, l).ok());
  l.control_bytes = control.bytes.size() - 8;
  auto r = decode<set_role>(control, l);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code(), errc::too_large) << describe(r);

  const capnp_blob kv = encode(example<kv_layer>());
  l = {};
  l.kv_bytes = kv.bytes.size() - 8;
  l.control_bytes = 1 << 30;  // KV messages are limited by kv_bytes, not control_bytes
  EXPECT_EQ(validate(kv, l).err().code(), errc::too_large);

  const capnp_blob ex = encode(example<execute>());
  l = {};
  l.token_bytes = ex.bytes.size() - 8;
  EXPECT_EQ(validate(ex, l).err().code(), errc::too_large);
  EXPECT_EQ(l.max_bytes(msg_type::execute), l.token_bytes);
  EXPECT_EQ(l.max_bytes(msg_type::kv_delta), l.kv_bytes);
  EXPECT_EQ(l.max_bytes(msg_type::heartbeat), l.control_bytes);
}

// Each list and text limit rejects with too_large and names the field.
TEST(Limits, ListAndTextLimitsNameTheField) {
  struct row {
    capnp_blob blob;
    decode_limits limits;
    std::string path;
  };
  std::vector<row> rows;
  auto add = [&](capnp_blob b, auto set, std::string path) {
    decode_limits l;
    set(l);
    rows.push_back({std::move(b), l, std::move(path)});
  };
  add(
      encode(example<submit_request>()), [](auto& l) { l.max_tokens = 4; },
      "submit_request.prompt:");
  add(
      encode(example<submit_request>()), [](auto& l) { l.max_stop_tokens = 0; },
      "submit_request.stop_tokens:");
  add(
      encode(example<execute>()), [](auto& l) { l.max_execute_items = 1; }, "execute.items:");
  add(
      encode(example<execute>()), [](auto& l) { l.max_tokens = 2; }, "execute.items[0].tokens:");
  add(
      encode(example<evict_replica>()), [](auto& l) { l.max_request_ids = 1; },
      "evict_replica.requests:");
  add(
      encode(example<cancel>()), [](auto& l) { l.max_text_bytes = 3; }, "cancel.reason:");
  add(
      encode(example<register_worker>()), [](auto& l) { l.max_text_bytes = 5; },
      "register_worker.cluster_token:");
  add(
      encode(example<iteration_done>()),
      [](auto& l) {
        l.max_execute_items = 1;
        l.max_decode_steps = 2;
      },
      "iteration_done.next_tokens:");
  add(
      encode(example<iteration_done>()),
      [](auto& l) { l.max_text_bytes = 40; },  // the error fits, the reason not
      "iteration_done.refused.reason:");
  add(
      encode(example<iteration_report>()), [](auto& l) { l.max_decode_steps = 1; },
      "iteration_report.step_ends_ns:");
  for (const auto& r : rows) {
    const auto s = validate(r.blob, r.limits);
    ASSERT_FALSE(s.ok()) << r.path;
    EXPECT_EQ(s.err().code(), errc::too_large) << describe(s);
    EXPECT_EQ(s.err().message().rfind(r.path, 0), 0u) << s.err().message();
  }
}

// Two pointers to one list: reading both exceeds a traversal limit that
// matches the size limit, so an amplified message cannot cost more than its
// size allows.
TEST(Limits, AliasedListsHitTheTraversalLimit) {
  submit_request m = example<submit_request>();
  m.prompt.assign(10'000, 5);
  m.prompt_len = 10'000;
  m.stop_tokens = {2};
  capnp_blob blob = encode(m);
  ASSERT_EQ(word_at(blob, 0) & 0xffffffff, 0u) << "expected one segment";
  const std::uint64_t root = word_at(blob, 1);
  const auto root_offset = static_cast<std::int32_t>(root & 0xffffffff) >> 2;
  const std::uint64_t data_words = (root >> 32) & 0xffff;
  const std::size_t prompt_ptr = 2 + static_cast<std::size_t>(root_offset) + data_words;
  const std::uint64_t p = word_at(blob, prompt_ptr);
  const auto offset = static_cast<std::int32_t>(p & 0xffffffff) >> 2;
  const auto aliased = static_cast<std::uint32_t>((offset - 1) * 4) | 1u;
  set_word(blob, prompt_ptr + 1, (p & ~std::uint64_t{0xffffffff}) | aliased);

  decode_limits l;
  l.max_stop_tokens = 1 << 20;
  l.token_bytes = 1 << 20;  // generous: the aliased list decodes
  auto wide = decode<submit_request>(blob, l);
  ASSERT_TRUE(wide.ok()) << describe(wide);
  EXPECT_EQ(wide->stop_tokens.size(), 10'000u);

  l.token_bytes = blob.bytes.size();  // traversal limit = message size
  auto tight = decode<submit_request>(blob, l);
  ASSERT_FALSE(tight.ok());
  EXPECT_EQ(tight.err().code(), errc::malformed) << describe(tight);
}

}  // namespace
}  // namespace accellm::messages
