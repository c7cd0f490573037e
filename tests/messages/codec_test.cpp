// Round trips and the example set of messages/codec.hpp.
#include "messages/codec.hpp"

#include "messages/capnp_blob.hpp"
#include "messages/msg_type.hpp"
#include "tests/messages/helpers.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace accellm::messages {
namespace {

using testing::describe;
using testing::example;

TEST(MsgType, NamesAreDistinctAndKnown) {
  std::set<std::string_view> names;
  for (const auto t : all_msg_types) {
    EXPECT_NE(to_string(t), "unknown");
    names.insert(to_string(t));
    EXPECT_EQ(to_msg_type(static_cast<std::uint16_t>(t)), t);
  }
  EXPECT_EQ(names.size(), all_msg_types.size());
  EXPECT_EQ(to_string(msg_type::submit_request), "SubmitRequest");
  EXPECT_EQ(to_string(msg_type::trace_event), "TraceEvent");
  EXPECT_FALSE(to_msg_type(0).has_value());
  EXPECT_FALSE(to_msg_type(all_msg_types.size() + 1).has_value());
  EXPECT_EQ(to_string(static_cast<msg_type>(999)), "unknown");
}

TEST(Examples, CoverEveryTypeInOrderAndValidate) {
  const auto blobs = example_blobs();
  ASSERT_EQ(blobs.size(), all_msg_types.size());
  for (std::size_t i = 0; i < blobs.size(); ++i) {
    EXPECT_EQ(blobs[i].type, static_cast<std::uint16_t>(all_msg_types[i]));
    EXPECT_FALSE(blobs[i].bytes.empty());
    const auto s = validate(blobs[i]);
    EXPECT_TRUE(s.ok()) << to_string(all_msg_types[i]) << ": " << describe(s);
  }
}

TEST(Examples, SetEverySchemaField) {
  // Fails when a schema field is not written by encode (or the example
  // leaves it at its default), so no field can be forgotten.
  for (const auto& blob : example_blobs()) {
    const auto defaults = default_fields(blob);
    ASSERT_TRUE(defaults.ok()) << describe(defaults);
    for (const auto& path : *defaults) ADD_FAILURE() << "default value in example: " << path;
  }
}

TEST(RoundTrip, EveryExampleDecodesEqual) {
  for (const auto& m : example_messages()) {
    const capnp_blob blob = encode(m);
    EXPECT_EQ(blob.type, static_cast<std::uint16_t>(type_of(m)));
    const auto back = decode_any(blob);
    ASSERT_TRUE(back.ok()) << to_string(type_of(m)) << ": " << describe(back);
    EXPECT_TRUE(*back == m) << to_string(type_of(m)) << " changed in a round trip";
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          const auto typed = decode<T>(encode(x));
          ASSERT_TRUE(typed.ok()) << describe(typed);
          EXPECT_EQ(*typed, x);
        },
        m);
  }
}

TEST(RoundTrip, TemplateFormAndEveryFieldOfExecute) {
  const execute m = example<execute>();
  const auto back = decode<messages::execute>(encode(m));
  ASSERT_TRUE(back.ok()) << describe(back);
  ASSERT_EQ(back->items.size(), 2u);
  EXPECT_EQ(back->items[0].phase, phase::prefill);
  EXPECT_EQ(back->items[0].tokens, (std::vector<token_id>{1, 450, 4996}));
  EXPECT_FALSE(back->items[0].wants_output);
  EXPECT_EQ(back->items[0].replica_to, 2u);
  EXPECT_EQ(back->items[1].replica_to, no_instance);
  EXPECT_EQ(back->iteration, 17u);
}

TEST(RoundTrip, SimulatedDevicesSendCountsAndSizesOnly) {
  assign_prefill a = example<assign_prefill>();
  a.prompt.clear();
  a.prompt_len = 100'000;
  a.already_generated.clear();
  a.already_generated_len = 40;
  a.max_tokens = 2000;
  auto back = decode<assign_prefill>(encode(a));
  ASSERT_TRUE(back.ok()) << describe(back);
  EXPECT_EQ(*back, a);

  kv_layer k = example<kv_layer>();
  k.data.clear();
  k.size_bytes = std::uint64_t{3} << 32;  // a modelled 12 GiB slice
  auto kb = decode<kv_layer>(encode(k));
  ASSERT_TRUE(kb.ok()) << describe(kb);
  EXPECT_EQ(*kb, k);
}

TEST(RoundTrip, LargeKvPayloadAndLongPrompt) {
  kv_delta d = example<kv_delta>();
  d.data.resize(std::size_t{8} << 20);
  for (std::size_t i = 0; i < d.data.size(); i += 4093) d.data[i] = std::byte{0x5a};
  d.size_bytes = d.data.size();
  const auto blob = encode(d);
  EXPECT_LT(blob.bytes.size(), d.data.size() + 512);  // no per-field overhead to speak of
  auto back = decode<kv_delta>(blob);
  ASSERT_TRUE(back.ok()) << describe(back);
  EXPECT_EQ(*back, d);

  submit_request s = example<submit_request>();
  s.prompt.assign(std::size_t{1} << 20, 7);
  s.prompt_len = static_cast<std::uint32_t>(s.prompt.size());
  auto sb = decode<submit_request>(encode(s));
  ASSERT_TRUE(sb.ok()) << describe(sb);
  EXPECT_EQ(*sb, s);
}

// A row's bytes lent by their owner (a GPU worker's pinned pool) are copied
// into the blob when it is encoded: the owner may take them back at once.
TEST(RoundTrip, RowsLentByTheirOwnerAreCopiedIntoTheBlob) {
  auto store = std::make_unique<std::vector<std::byte>>(std::size_t{64} << 10);
  for (std::size_t i = 0; i < store->size(); ++i) (*store)[i] = static_cast<std::byte>(i * 13);
  const std::vector<std::byte> expected = *store;
  bool given_back = false;
  kv_delta_batch m = example<kv_delta_batch>();
  m.rows.resize(1);
  m.rows[0].data = shared_bytes{
      std::shared_ptr<const void>{store->data(), [&given_back](const void*) { given_back = true; }},
      store->data() + 8, store->size() - 8};  // word aligned: referenced, not built in
  m.rows[0].size_bytes = m.rows[0].data.size();
  const capnp_blob blob = encode(m);
  m.rows[0].data = {};
  ASSERT_TRUE(given_back);
  store.reset();
  const auto back = decode<kv_delta_batch>(blob);
  ASSERT_TRUE(back.ok()) << describe(back);
  ASSERT_EQ(back->rows.size(), 1u);
  EXPECT_TRUE(std::equal(back->rows[0].data.begin(), back->rows[0].data.end(), expected.begin() + 8,
                         expected.end()));
}

// decode_sharing: the rows' bytes are shares of the encoded message (no
// copy), which they keep alive; the message is decode's, and bad bytes get
// decode's errors.
TEST(RoundTrip, DecodeSharingLeavesTheRowsInTheMessageBytes) {
  kv_delta_batch m = example<kv_delta_batch>();
  std::vector<std::byte> payload(std::size_t{1} << 16);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::byte>(i * 7);
  m.rows[0].data = payload;
  m.rows[0].size_bytes = payload.size();
  auto bytes = std::make_shared<const std::vector<std::uint8_t>>(encode(m).bytes);
  const std::uint8_t* begin = bytes->data();
  const std::uint8_t* end = begin + bytes->size();
  auto shared = decode_sharing(bytes);
  ASSERT_TRUE(shared.ok()) << describe(shared);
  EXPECT_EQ(*shared, m);
  for (const kv_rows& r : shared->rows) {
    if (r.data.empty()) continue;
    const auto* p = reinterpret_cast<const std::uint8_t*>(r.data.data());
    EXPECT_TRUE(p >= begin && p + r.data.size() <= end) << "request " << r.request;
  }
  bytes.reset();  // the rows hold the message's bytes now
  EXPECT_TRUE(std::equal(shared->rows[0].data.begin(), shared->rows[0].data.end(), payload.begin(),
                         payload.end()));

  const capnp_blob whole = encode(m);
  auto truncated = std::make_shared<const std::vector<std::uint8_t>>(whole.bytes.begin(),
                                                                     whole.bytes.begin() + 40);
  const auto want = decode<kv_delta_batch>(capnp_blob{whole.type, *truncated, nullptr});
  const auto got = decode_sharing(truncated);
  ASSERT_FALSE(got.ok());
  ASSERT_FALSE(want.ok());
  EXPECT_EQ(got.err().code(), want.err().code());
  EXPECT_EQ(decode_sharing(nullptr).err().code(), errc::invalid_argument);
}

TEST(RoundTrip, RingRowsCarryPositionsNotBytes) {
  kv_delta_batch m = example<kv_delta_batch>();
  m.ring = 0x0123456789abcdefull;
  for (std::size_t i = 0; i < m.rows.size(); ++i) {
    m.rows[i].data = {};
    m.rows[i].ring_pos = (std::uint64_t{5} << 33) + i * 4096;
  }
  const auto back = decode<kv_delta_batch>(encode(m));
  ASSERT_TRUE(back.ok()) << describe(back);
  EXPECT_EQ(*back, m);
}

// The flow control's notice: no rows, only the copies the sender gave up.
TEST(RoundTrip, AnAbandonNoticeNeedsNoRows) {
  kv_delta_batch m = example<kv_delta_batch>();
  m.rows.clear();
  m.ring = 0;
  m.abandoned = {42, 43, std::uint64_t{1} << 40};
  const auto back = decode<kv_delta_batch>(encode(m));
  ASSERT_TRUE(back.ok()) << describe(back);
  EXPECT_EQ(*back, m);
  const auto ack = decode<kv_ack>(encode(kv_ack{.epoch = 0, .batches = 0xffffffffu}));
  ASSERT_TRUE(ack.ok()) << describe(ack);
  EXPECT_EQ(ack->batches, 0xffffffffu);
}

TEST(RoundTrip, KvPayloadOfAnySize) {
  // Whole words are referenced, other sizes copied (kv_codec.cpp): both ways
  // must give the same bytes back.
  for (const std::size_t size : {1u, 7u, 8u, 13u, 16u, 4096u, 4099u}) {
    kv_layer k = example<kv_layer>();
    k.data.resize(size);
    for (std::size_t i = 0; i < size; ++i) k.data[i] = static_cast<std::byte>(i * 7 + 1);
    k.size_bytes = size;
    const auto back = decode<kv_layer>(encode(k));
    ASSERT_TRUE(back.ok()) << size << ": " << describe(back);
    EXPECT_EQ(*back, k) << size;
  }
}

TEST(RoundTrip, TextKeepsEmbeddedNulAndUtf8) {
  cancel c = example<cancel>();
  c.reason = std::string{"a\0b \xc3\xa9", 6};
  auto back = decode<cancel>(encode(c));
  ASSERT_TRUE(back.ok()) << describe(back);
  EXPECT_EQ(back->reason, c.reason);
}

// What CAF's serializer looks like to inspect().
struct recorder {
  using result_type = int;
  static constexpr bool reads_state = true;
  int operator()(std::uint16_t& t, std::vector<std::uint8_t>& b) {
    type = t;
    bytes = b;
    return 7;
  }
  std::uint16_t type = 0;
  std::vector<std::uint8_t> bytes;
};

TEST(CapnpBlob, InspectVisitsTypeAndBytes) {
  capnp_blob blob = encode(example<heartbeat>());
  recorder r;
  EXPECT_EQ(inspect(r, blob), 7);
  EXPECT_EQ(r.type, static_cast<std::uint16_t>(msg_type::heartbeat));
  EXPECT_EQ(r.bytes, blob.bytes);
  // A packed message is encoded when it is serialised: the same bytes.
  capnp_blob packed = pack(example<heartbeat>());
  EXPECT_TRUE(packed.bytes.empty());
  recorder p;
  EXPECT_EQ(inspect(p, packed), 7);
  EXPECT_EQ(p.type, r.type);
  EXPECT_EQ(p.bytes, blob.bytes);
}

// pack keeps the struct; decode validates it exactly as the bytes, and a
// type mismatch is the same error.
TEST(CapnpBlob, PackedMessagesDecodeAndValidateLikeEncodedOnes) {
  for (const any_message& m : example_messages()) {
    const capnp_blob packed = std::visit([](const auto& x) { return pack(x); }, m);
    const capnp_blob encoded = encode(m);
    EXPECT_EQ(packed, encoded);
    auto a = decode_any(packed);
    ASSERT_TRUE(a.ok()) << a.err().what();
    EXPECT_EQ(*a, m);
    EXPECT_TRUE(validate(packed).ok());
  }
  execute bad = example<execute>();
  bad.items[1].request = 0;
  const auto from_pack = decode<execute>(pack(bad));
  const auto from_bytes = decode<execute>(encode(bad));
  ASSERT_FALSE(from_pack.ok());
  ASSERT_FALSE(from_bytes.ok());
  EXPECT_EQ(from_pack.err(), from_bytes.err());
  int calls = 0;
  const auto count = [&](const execute& m) {
    ++calls;
    EXPECT_EQ(m, example<execute>());
  };
  EXPECT_TRUE(with_decoded<execute>(pack(example<execute>()), count).ok());
  EXPECT_TRUE(with_decoded<execute>(encode(example<execute>()), count).ok());
  EXPECT_EQ(calls, 2);
  const auto refused = with_decoded<execute>(pack(bad), count);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.err(), from_bytes.err());
  EXPECT_EQ(with_decoded<execute>(pack(example<heartbeat>()), count).err().code(),
            errc::wrong_type);
  EXPECT_EQ(calls, 2) << "fn is called only with a valid message";
  const auto wrong = decode<heartbeat>(pack(example<execute>()));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.err().code(), errc::wrong_type);
  EXPECT_EQ(wrong.err(), decode<heartbeat>(encode(example<execute>())).err());
}

}  // namespace
}  // namespace accellm::messages
