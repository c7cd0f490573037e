// kv_send_queue: each receiver's window holds messages back until KvAck
// frees it, receivers do not wait for each other, and a receiver too far
// behind has the copies taking the most room abandoned, with a notice after
// what was kept; large rows go in pieces.
#include "worker/kv_send_queue.hpp"

#include "messages/codec.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

namespace accellm::worker {
namespace {

using messages::capnp_blob;
using messages::kv_delta_batch;

constexpr std::uint64_t kib = 1024;

// A prefill layer of `bytes` for each of `requests`.
capnp_blob rows(std::vector<request_id> requests, std::uint64_t bytes, std::uint32_t layer = 0) {
  kv_delta_batch m{.epoch = 3,
                   .from_instance = 0,
                   .layer_begin = layer,
                   .layer_end = layer + 1,
                   .rows = {},
                   .phase = messages::phase::prefill,
                   .ring = 0,
                   .abandoned = {}};
  for (const request_id r : requests) {
    m.rows.push_back({.request = r,
                      .token_begin = 0,
                      .token_end = 8,
                      .size_bytes = bytes,
                      .data = std::vector<std::byte>(bytes, std::byte{1}),
                      .ring_pos = 0});
  }
  return messages::pack(std::move(m));
}

const kv_delta_batch& batch(const kv_send_queue::message& m) {
  const kv_delta_batch* b = messages::packed_as<kv_delta_batch>(m.blob);
  EXPECT_NE(b, nullptr);
  static const kv_delta_batch none{};
  return b ? *b : none;
}

std::vector<request_id> requests(const kv_send_queue::message& m) {
  std::vector<request_id> out;
  for (const auto& r : batch(m).rows) out.push_back(r.request);
  return out;
}

// Acknowledges receiver 1's messages one at a time, for a bounded number of
// rounds, and returns what the queue lets go meanwhile, in order.
std::vector<kv_send_queue::message> drain(kv_send_queue& q) {
  std::vector<kv_send_queue::message> sent;
  for (int round = 0; round < 10 && (q.in_flight_bytes(1) > 0 || q.queued_bytes(1) > 0); ++round) {
    if (!q.acked(1, 1)) {
      ADD_FAILURE() << "an acknowledgement of more than is on the way";
      break;
    }
    for (auto& m : q.take_ready()) sent.push_back(std::move(m));
  }
  return sent;
}

// Rows travel through the queue shared, not copied: a message that goes
// whole, and a row that a piece takes whole, carry the very buffer the
// device handed over (a GPU worker's chunks stay in its pinned pool until
// they are encoded). Only a row cut by tokens is copied.
TEST(KvSendQueue, WholeRowsGoOnInTheBuffersTheyCameIn) {
  kv_send_queue q{{.window_bytes = 1 << 30, .queue_bytes = 1 << 30, .piece_bytes = 64 * kib}};
  const capnp_blob small = rows({7, 8}, 16 * kib);
  const capnp_blob large = rows({9, 10}, 48 * kib, 1);
  const auto& in_small = messages::packed_as<kv_delta_batch>(small)->rows;
  const auto& in_large = messages::packed_as<kv_delta_batch>(large)->rows;
  ASSERT_TRUE(q.push(1, small));
  ASSERT_TRUE(q.push(1, large));
  const auto sent = q.take_ready();
  ASSERT_EQ(sent.size(), 3u);  // small whole; large as 9 + two tokens of 10, then the rest of 10
  EXPECT_EQ(batch(sent[0]).rows.at(0).data.data(), in_small[0].data.data());
  EXPECT_EQ(batch(sent[0]).rows.at(1).data.data(), in_small[1].data.data());
  const auto& piece = batch(sent[1]).rows;
  ASSERT_EQ(piece.size(), 2u);
  EXPECT_EQ(piece[0].data.data(), in_large[0].data.data()) << "request 9 whole: shared";
  EXPECT_EQ(piece[1].token_end, 2u);
  EXPECT_NE(piece[1].data.data(), in_large[1].data.data()) << "request 10 cut: copied";
  EXPECT_EQ(piece[1].data.size(), 2 * 6 * kib);
  EXPECT_EQ(batch(sent[2]).rows.at(0).token_begin, 2u);
}

TEST(KvSendQueue, TheWindowHoldsMessagesUntilTheyAreAcknowledged) {
  kv_send_queue q{{.window_bytes = 100 * kib, .queue_bytes = 1 << 30}};
  for (std::uint32_t layer = 0; layer < 5; ++layer)
    ASSERT_TRUE(q.push(1, rows({7}, 40 * kib, layer)));
  auto first = q.take_ready();
  ASSERT_EQ(first.size(), 2u) << "two 40 KiB layers fit a 100 KiB window, three do not";
  EXPECT_EQ(batch(first[0]).layer_begin, 0u);
  EXPECT_EQ(batch(first[1]).layer_begin, 1u);
  EXPECT_EQ(first[0].bytes, kv_send_queue::size_of(first[0].blob));
  EXPECT_EQ(q.in_flight_bytes(1), first[0].bytes + first[1].bytes);
  EXPECT_EQ(q.queued_bytes(1), 3 * first[0].bytes);
  EXPECT_TRUE(q.take_ready().empty()) << "nothing more until an ack";

  ASSERT_TRUE(q.acked(1, 1));
  auto next = q.take_ready();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(batch(next[0]).layer_begin, 2u) << "in order";
  ASSERT_TRUE(q.acked(1, 2));
  EXPECT_EQ(q.take_ready().size(), 2u);
  EXPECT_EQ(q.queued_bytes(1), 0u);
  EXPECT_FALSE(q.acked(1, 3)) << "two are on the way, not three";
  EXPECT_EQ(q.in_flight_bytes(1), 0u);
  EXPECT_EQ(q.abandoned(), 0u);
}

TEST(KvSendQueue, OneMessageGoesWhenNothingIsOnTheWayHoweverLarge) {
  kv_send_queue q{{.window_bytes = 1 * kib, .queue_bytes = 1 << 30}};
  ASSERT_TRUE(q.push(1, rows({7}, 64 * kib)));
  ASSERT_TRUE(q.push(1, rows({7}, 64 * kib, 1)));
  EXPECT_EQ(q.take_ready().size(), 1u);
  EXPECT_TRUE(q.take_ready().empty());
  ASSERT_TRUE(q.acked(1, 1));
  EXPECT_EQ(q.take_ready().size(), 1u);
}

TEST(KvSendQueue, ReceiversDoNotWaitForEachOther) {
  kv_send_queue q{{.window_bytes = 50 * kib, .queue_bytes = 1 << 30}};
  ASSERT_TRUE(q.push(1, rows({7}, 40 * kib)));
  ASSERT_TRUE(q.push(1, rows({7}, 40 * kib, 1)));
  ASSERT_EQ(q.take_ready().size(), 1u);
  ASSERT_TRUE(q.push(2, rows({8}, 40 * kib)));
  const auto out = q.take_ready();
  ASSERT_EQ(out.size(), 1u) << "receiver 2's window is its own";
  EXPECT_EQ(out[0].target, 2u);
  EXPECT_EQ(q.in_flight_bytes(), q.in_flight_bytes(1) + q.in_flight_bytes(2));
  EXPECT_EQ(q.queued_bytes(), q.queued_bytes(1));
}

TEST(KvSendQueue, AFullQueueGivesUpTheCopyTakingTheMostRoomAndSaysSo) {
  // Window: one layer. Queue: two layers.
  const std::uint64_t layer = kv_send_queue::size_of(rows({7}, 40 * kib));
  kv_send_queue q{{.window_bytes = layer, .queue_bytes = 2 * layer}};
  ASSERT_TRUE(q.push(1, rows({7}, 40 * kib, 0)));
  ASSERT_EQ(q.take_ready().size(), 1u);            // 7's layer 0 on the way
  ASSERT_TRUE(q.push(1, rows({7}, 40 * kib, 1)));  // queued
  ASSERT_TRUE(q.push(1, rows({8}, 40 * kib, 0)));  // queued: the queue is full
  ASSERT_TRUE(q.push(1, rows({8}, 40 * kib, 1)));  // does not fit: 8 holds the most room
  EXPECT_EQ(q.abandoned(), 1u);
  // 8's queued layer is dropped; its later rows are taken out, a message of
  // 7 and 8 keeps 7's row.
  ASSERT_TRUE(q.push(1, rows({8}, 40 * kib, 2)));
  ASSERT_TRUE(q.push(1, rows({7, 8}, 4 * kib, 2)));

  const std::vector<kv_send_queue::message> sent = drain(q);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(requests(sent[0]), std::vector<request_id>{7});
  EXPECT_EQ(batch(sent[0]).layer_begin, 1u);
  EXPECT_TRUE(batch(sent[1]).rows.empty()) << "the notice follows what was queued before it";
  EXPECT_EQ(batch(sent[1]).abandoned, std::vector<request_id>{8});
  EXPECT_EQ(batch(sent[1]).epoch, 3u);
  EXPECT_TRUE(messages::validate(sent[1].blob).ok());
  EXPECT_EQ(requests(sent[2]), std::vector<request_id>{7});
  EXPECT_EQ(batch(sent[2]).layer_begin, 2u);

  // Once 8 ends here (released), its rows go again: a new request may reuse
  // nothing, but the queue no longer needs to remember it.
  const request_id ended[] = {8};
  q.forget(ended);
  ASSERT_TRUE(q.push(1, rows({8}, 4 * kib, 3)));
  const auto again = q.take_ready();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(requests(again[0]), std::vector<request_id>{8});
}

// The copies given up are those taking the most room: a prompt being
// copied, not the decode rows of requests whose copy is complete.
TEST(KvSendQueue, AFullQueueGivesUpThePromptNotTheDecodeRows) {
  kv_send_queue q{{.window_bytes = 1, .queue_bytes = 100 * kib, .piece_bytes = 1 << 20}};
  ASSERT_TRUE(q.push(1, rows({7}, 40 * kib, 0)));
  ASSERT_EQ(q.take_ready().size(), 1u);  // layer 0 on the way
  ASSERT_TRUE(q.push(1, rows({7}, 40 * kib, 1)));
  EXPECT_TRUE(q.take_ready().empty());  // layer 1 next, waiting for the window
  ASSERT_TRUE(q.push(1, rows({7}, 40 * kib, 2)));
  ASSERT_TRUE(q.push(1, rows({1, 2, 3}, 10 * kib)));  // decode rows: 110 KiB would wait
  EXPECT_EQ(q.abandoned(), 1u);
  const std::vector<kv_send_queue::message> sent = drain(q);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(batch(sent[0]).layer_begin, 1u) << "what had started to go goes";
  EXPECT_EQ(batch(sent[1]).abandoned, std::vector<request_id>{7});
  EXPECT_EQ(requests(sent[2]), (std::vector<request_id>{1, 2, 3})) << "the decode rows go on";
}

// A batch from the device listing requests as abandoned (it had no room for
// their rows: kv_chunk::dropped) gives their copies up here as a full queue
// would: their queued rows are dropped, the batch's other rows go on, the
// notice follows what had started, later rows of them are dropped, and a
// copy given up twice counts once.
TEST(KvSendQueue, CopiesTheDeviceGaveUpAreGivenUpHere) {
  const std::uint64_t layer = kv_send_queue::size_of(rows({7}, 40 * kib));
  kv_send_queue q{{.window_bytes = layer, .queue_bytes = 100 * layer}};
  ASSERT_TRUE(q.push(1, rows({7}, 40 * kib, 0)));
  ASSERT_EQ(q.take_ready().size(), 1u);            // 7's layer 0 on the way
  ASSERT_TRUE(q.push(1, rows({7}, 40 * kib, 1)));  // queued
  kv_delta_batch given_up = *messages::packed_as<kv_delta_batch>(rows({8}, 4 * kib, 2));
  given_up.abandoned = {7};
  ASSERT_TRUE(q.push(1, messages::pack(given_up)));
  EXPECT_EQ(q.abandoned(), 1u);
  ASSERT_TRUE(q.push(1, rows({7, 8}, 4 * kib, 3)));  // 7's row is dropped
  kv_delta_batch again = *messages::packed_as<kv_delta_batch>(rows({8}, 4 * kib, 4));
  again.abandoned = {7};
  ASSERT_TRUE(q.push(1, messages::pack(again)));
  EXPECT_EQ(q.abandoned(), 1u) << "one copy, given up once";

  const std::vector<kv_send_queue::message> sent = drain(q);
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_TRUE(batch(sent[0]).rows.empty()) << "7's queued layer 1 is dropped";
  EXPECT_EQ(batch(sent[0]).abandoned, std::vector<request_id>{7});
  EXPECT_TRUE(messages::validate(sent[0].blob).ok());
  for (std::size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(requests(sent[i]), std::vector<request_id>{8}) << "message " << i;
    EXPECT_TRUE(batch(sent[i]).abandoned.empty()) << "message " << i;
    EXPECT_EQ(batch(sent[i]).layer_begin, i + 1) << "message " << i;
  }
}

// A row over piece_bytes goes as several messages, cut by token range; put
// back together, per layer K then V, they are the row. Small rows share a
// message; a request is in a message once.
TEST(KvSendQueue, LargeRowsGoInPiecesThatAddUpToTheRow) {
  constexpr std::uint32_t layers = 2, tokens = 10;
  constexpr std::uint64_t part = 512;  // one token's K (or V) of one layer
  kv_delta_batch m{.epoch = 3,
                   .from_instance = 0,
                   .layer_begin = 0,
                   .layer_end = layers,
                   .rows = {},
                   .phase = messages::phase::prefill,
                   .ring = 0,
                   .abandoned = {}};
  std::vector<std::byte> bytes(2 * layers * tokens * part);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(i * 7);
  const messages::kv_rows big{.request = 7,
                              .token_begin = 20,
                              .token_end = 20 + tokens,
                              .size_bytes = bytes.size(),
                              .data = std::move(bytes),
                              .ring_pos = 0};
  m.rows.push_back(big);
  m.rows.push_back({.request = 8,
                    .token_begin = 0,
                    .token_end = 1,
                    .size_bytes = 64,
                    .data = std::vector<std::byte>(64, std::byte{8}),
                    .ring_pos = 0});
  m.rows.push_back({.request = 9,
                    .token_begin = 0,
                    .token_end = 1,
                    .size_bytes = 64,
                    .data = std::vector<std::byte>(64, std::byte{9}),
                    .ring_pos = 0});
  // Three tokens (6 KiB) per piece.
  kv_send_queue q{{.window_bytes = 1 << 30, .queue_bytes = 1 << 30, .piece_bytes = 6 * kib + 100}};
  ASSERT_TRUE(q.push(1, messages::pack(m)));
  const auto sent = q.take_ready();
  ASSERT_EQ(sent.size(), 4u) << "10 tokens in pieces of 3, then 8 and 9 together";
  std::vector<std::byte> parts[2 * layers];  // per layer K then V, put back together
  std::uint32_t next = 20;
  for (std::size_t i = 0; i < 4; ++i) {
    const kv_delta_batch& b = batch(sent[i]);
    EXPECT_TRUE(messages::validate(sent[i].blob).ok());
    EXPECT_EQ(b.layer_end, layers);
    EXPECT_LE(sent[i].bytes, 6 * kib + 100 + 3 * 64) << "message " << i;
    const messages::kv_rows& r = b.rows.at(0);
    EXPECT_EQ(r.request, 7u);
    EXPECT_EQ(r.token_begin, next) << "each piece continues where the last ended";
    next = r.token_end;
    const std::uint32_t n = r.token_end - r.token_begin;
    ASSERT_EQ(r.data.size(), 2 * layers * n * part);
    EXPECT_EQ(r.size_bytes, r.data.size());
    for (std::uint32_t p = 0; p < 2 * layers; ++p)
      parts[p].insert(parts[p].end(), r.data.begin() + p * n * part,
                      r.data.begin() + (p + 1) * n * part);
  }
  EXPECT_EQ(next, 20 + tokens);
  std::vector<std::byte> whole;
  for (const auto& p : parts) whole.insert(whole.end(), p.begin(), p.end());
  EXPECT_EQ(whole, big.data) << "the pieces hold the row's bytes, in its layout";
  EXPECT_EQ(requests(sent[3]), (std::vector<request_id>{7, 8, 9}))
      << "the last piece of 7 and the small rows share a message";
  EXPECT_EQ(q.queued_bytes(1), 0u);
  EXPECT_EQ(q.in_flight_bytes(1), sent[0].bytes + sent[1].bytes + sent[2].bytes + sent[3].bytes);
}

TEST(KvSendQueue, AResetForgetsTheReceiversLane) {
  kv_send_queue q{{.window_bytes = 10 * kib, .queue_bytes = 1 << 30}};
  ASSERT_TRUE(q.push(1, rows({7}, 40 * kib)));
  ASSERT_TRUE(q.push(1, rows({7}, 40 * kib, 1)));
  ASSERT_EQ(q.take_ready().size(), 1u);
  q.reset(1);  // the receiver went: its ack will never come
  EXPECT_EQ(q.in_flight_bytes(1), 0u);
  EXPECT_EQ(q.queued_bytes(1), 0u);
  EXPECT_TRUE(q.take_ready().empty()) << "the queued layer went with it";
  ASSERT_TRUE(q.push(1, rows({9}, 40 * kib)));
  EXPECT_EQ(q.take_ready().size(), 1u) << "a new receiver starts with an open window";
  EXPECT_FALSE(q.acked(5, 1)) << "nothing was sent to 5";
}

TEST(KvSendQueue, EncodedBatchesAreTakenAndOtherBlobsRefused) {
  kv_send_queue q;
  const capnp_blob encoded = messages::encode(*messages::packed_as<kv_delta_batch>(rows({7}, 64)));
  ASSERT_TRUE(q.push(1, encoded));
  const auto out = q.take_ready();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(requests(out[0]), std::vector<request_id>{7});
  EXPECT_FALSE(q.push(1, messages::encode(messages::kv_ack{.epoch = 0, .batches = 1})));
  capnp_blob broken = encoded;
  broken.bytes.resize(broken.bytes.size() / 2);
  EXPECT_FALSE(q.push(1, broken));
  EXPECT_EQ(q.queued_bytes(1), 0u);
}

}  // namespace
}  // namespace accellm::worker
