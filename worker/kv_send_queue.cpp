#include "worker/kv_send_queue.hpp"

#include "messages/codec.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <utility>

namespace accellm::worker {
namespace {

using messages::capnp_blob;
using messages::kv_delta_batch;

/// How many abandoned copies a lane remembers: an older one forgotten lets
/// its later rows through, which the receiver, having dropped the copy,
/// ignores (instance_manager keeps as many dropped ids).
constexpr std::size_t abandoned_memory = 4096;

constexpr std::uint64_t overhead = 64;  // per row and per message: what encoding adds

std::uint64_t size_of(const kv_delta_batch& m) {
  std::uint64_t n = overhead + 8 * m.abandoned.size();
  for (const messages::kv_rows& r : m.rows) n += r.data.size() + overhead;
  return n;
}

std::uint64_t row_bytes(const kv_delta_batch& m) {
  std::uint64_t n = 0;
  for (const messages::kv_rows& r : m.rows) n += r.data.size();
  return n;
}

// Bytes per token of `r` when its tokens can be cut apart: its data is whole
// tokens of 2 x `layers` equal parts (per layer K then V). 0: it cannot (no
// data, or a size that does not divide).
std::uint64_t token_bytes(const messages::kv_rows& r, std::uint32_t layers) {
  const std::uint32_t tokens = r.token_end - r.token_begin;
  if (r.data.empty() || tokens == 0 || layers == 0 || r.data.size() % tokens != 0) return 0;
  const std::uint64_t per = r.data.size() / tokens;
  return per % (2ull * layers) == 0 ? per : 0;
}

// Tokens [from, from + n) of `r` (offsets in its token range): each layer's
// K and V parts of them, in kv_chunk::data's layout.
messages::kv_rows cut(const messages::kv_rows& r, std::uint32_t layers, std::uint32_t from,
                      std::uint32_t n, std::uint64_t per_token) {
  const std::uint32_t tokens = r.token_end - r.token_begin;
  const std::uint64_t part = per_token / (2ull * layers);  // one token's K (or V) of one layer
  std::vector<std::byte> data(per_token * n);
  std::byte* to = data.data();
  for (std::uint64_t p = 0; p < 2ull * layers; ++p, to += n * part)
    std::copy_n(r.data.data() + (p * tokens + from) * part, n * part, to);
  return {.request = r.request,
          .token_begin = r.token_begin + from,
          .token_end = r.token_begin + from + n,
          .size_bytes = per_token * n,
          .data = std::move(data),
          .ring_pos = 0};
}

// What the window counts for `m`'s rows from row `row`, of whose tokens
// `token` went already.
std::uint64_t rest_size(const kv_delta_batch& m, std::size_t row, std::uint32_t token) {
  std::uint64_t n = overhead;
  const std::uint32_t layers = m.layer_end - m.layer_begin;
  for (std::size_t i = row; i < m.rows.size(); ++i) {
    const messages::kv_rows& r = m.rows[i];
    n += overhead + r.data.size() - (i == row ? token * token_bytes(r, layers) : 0);
  }
  return n;
}

// `m` without its rows and its abandoned list.
kv_delta_batch header_of(const kv_delta_batch& m) {
  return {.epoch = m.epoch,
          .from_instance = m.from_instance,
          .layer_begin = m.layer_begin,
          .layer_end = m.layer_end,
          .rows = {},
          .phase = m.phase,
          .ring = m.ring,
          .abandoned = {}};
}

// `m` without the rows `drop` picks; only the rows that stay are copied.
template <class Drop>
kv_delta_batch without(const kv_delta_batch& m, Drop drop) {
  kv_delta_batch out = header_of(m);
  out.abandoned = m.abandoned;
  for (const messages::kv_rows& r : m.rows)
    if (!drop(r)) out.rows.push_back(r);
  return out;
}

// Whether part of a queued message went already (or is cut, waiting).
template <class Entry>
bool started(const Entry& e) {
  return e.row != 0 || e.token != 0 || e.ready || e.done;
}

}  // namespace

kv_send_queue::kv_send_queue(kv_flow_limits limits) : limits_(limits) {}

std::uint64_t kv_send_queue::size_of(const capnp_blob& blob) {
  if (const kv_delta_batch* m = messages::packed_as<kv_delta_batch>(blob))
    return worker::size_of(*m);
  auto m = messages::decode<kv_delta_batch>(blob);
  return m ? worker::size_of(*m) : blob.bytes.size();
}

bool kv_send_queue::push(instance_id target, const capnp_blob& blob) {
  std::optional<capnp_blob> repacked;
  const kv_delta_batch* m = messages::packed_as<kv_delta_batch>(blob);
  if (m == nullptr) {  // encoded bytes (a test, a tool): kept packed from here
    auto d = messages::decode<kv_delta_batch>(blob);
    if (!d) return false;
    repacked = messages::pack(std::move(*d));
    m = messages::packed_as<kv_delta_batch>(*repacked);
  }
  lane& l = lanes_[target];
  // Copies the sender gave up itself (a device without room for their rows,
  // kv_chunk::dropped): given up here as the queue gives them up, their
  // queued rows and later ones dropped, a notice after what went.
  if (!m->abandoned.empty()) {
    std::vector<request_id> ids;
    for (const request_id id : m->abandoned)
      if (l.abandoned.count(id) == 0) ids.push_back(id);
    abandon(l, ids, *m);
    if (m->rows.empty()) return true;
    kv_delta_batch rest = header_of(*m);  // its rows, without the list just handled
    rest.rows = m->rows;
    repacked = messages::pack(std::move(rest));
    m = messages::packed_as<kv_delta_batch>(*repacked);
  }
  const auto gone = [&l](const messages::kv_rows& r) { return l.abandoned.count(r.request) != 0; };
  // Takes the rows of abandoned copies out of `m`; false when nothing is left.
  const auto drop_gone = [&] {
    if (std::none_of(m->rows.begin(), m->rows.end(), gone)) return true;
    kv_delta_batch kept = without(*m, gone);
    if (kept.rows.empty() && kept.abandoned.empty()) return false;
    repacked = messages::pack(std::move(kept));
    m = messages::packed_as<kv_delta_batch>(*repacked);
    return true;
  };
  if (!drop_gone()) return true;
  if (!l.queued.empty() && l.queued_bytes + worker::size_of(*m) > limits_.queue_bytes) {
    abandon(l, victims(l, *m), *m);
    if (!drop_gone()) return true;
  }
  l.queued.push_back(
      entry{.blob = repacked ? std::move(*repacked) : blob, .bytes = worker::size_of(*m)});
  l.queued_bytes += l.queued.back().bytes;
  return true;
}

std::vector<request_id> kv_send_queue::victims(const lane& l,
                                               const kv_delta_batch& incoming) const {
  std::map<request_id, std::uint64_t> room;  // bytes per request, queued (not started) and incoming
  const auto count = [&room](const kv_delta_batch& b) {
    for (const messages::kv_rows& r : b.rows) room[r.request] += r.data.size() + overhead;
  };
  for (const entry& q : l.queued)
    if (!started(q)) count(*messages::packed_as<kv_delta_batch>(q.blob));
  count(incoming);
  std::vector<std::pair<std::uint64_t, request_id>> order;  // most room first; then the newest
  for (const auto& [id, bytes] : room) order.emplace_back(bytes, id);
  std::sort(order.begin(), order.end(), std::greater<>{});
  const std::uint64_t need = l.queued_bytes + worker::size_of(incoming) - limits_.queue_bytes;
  std::vector<request_id> out;
  std::uint64_t freed = 0;
  for (const auto& [bytes, id] : order) {
    if (freed >= need) break;
    out.push_back(id);
    freed += bytes;
  }
  return out;
}

void kv_send_queue::abandon(lane& l, const std::vector<request_id>& ids,
                            const kv_delta_batch& like) {
  if (ids.empty()) return;
  for (const request_id id : ids) {
    if (!l.abandoned.insert(id).second) continue;
    ++abandoned_;
    l.abandoned_order.push_back(id);
    if (l.abandoned_order.size() > abandoned_memory) {
      l.abandoned.erase(l.abandoned_order.front());
      l.abandoned_order.pop_front();
    }
  }
  // Their rows need not go (a message that started to go goes on: the
  // notice follows it).
  const auto gone = [&](const messages::kv_rows& r) { return l.abandoned.count(r.request) != 0; };
  std::erase_if(l.queued, [&](entry& q) {
    const kv_delta_batch& b = *messages::packed_as<kv_delta_batch>(q.blob);
    if (started(q) || !b.abandoned.empty() || std::none_of(b.rows.begin(), b.rows.end(), gone))
      return false;
    kv_delta_batch kept = without(b, gone);
    if (kept.rows.empty()) return true;
    q.bytes = worker::size_of(kept);
    q.blob = messages::pack(std::move(kept));
    return false;
  });
  kv_delta_batch notice = header_of(like);
  notice.ring = 0;
  notice.abandoned = ids;
  const std::uint64_t bytes = worker::size_of(notice);
  l.queued.push_back(entry{.blob = messages::pack(std::move(notice)), .bytes = bytes});
  l.queued_bytes = 0;
  for (const entry& q : l.queued) l.queued_bytes += q.bytes + (q.ready ? q.ready_bytes : 0);
}

capnp_blob kv_send_queue::next_piece(entry& e) const {
  const kv_delta_batch& m = *messages::packed_as<kv_delta_batch>(e.blob);
  const std::uint64_t piece = limits_.piece_bytes;
  if (e.row == 0 && e.token == 0 && row_bytes(m) <= piece) {  // as it is, no copy
    e.done = true;
    e.bytes = 0;
    return e.blob;
  }
  const std::uint32_t layers = m.layer_end - m.layer_begin;
  kv_delta_batch out = header_of(m);
  std::uint64_t used = 0;
  while (e.row < m.rows.size()) {
    const messages::kv_rows& r = m.rows[e.row];
    const bool listed = std::any_of(out.rows.begin(), out.rows.end(),
                                    [&](const auto& o) { return o.request == r.request; });
    if (listed) break;  // a request once per message
    const std::uint32_t left = (r.token_end - r.token_begin) - e.token;
    const std::uint64_t per = token_bytes(r, layers);
    const std::uint64_t rest = per == 0 ? r.data.size() : per * left;
    if (used + rest <= piece || (out.rows.empty() && per == 0)) {  // the rest of the row
      out.rows.push_back(e.token == 0 ? r : cut(r, layers, e.token, left, per));
      used += rest;
      ++e.row;
      e.token = 0;
      continue;
    }
    if (per == 0) break;  // not cut: it opens the next message
    const auto fit =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(left, (piece - used) / per));
    if (fit == 0 && !out.rows.empty()) break;
    const std::uint32_t n = std::max<std::uint32_t>(fit, 1);  // a token over a piece goes alone
    out.rows.push_back(cut(r, layers, e.token, n, per));
    e.token += n;
    break;  // the piece is full
  }
  e.done = e.row >= m.rows.size();
  e.bytes = e.done ? 0 : rest_size(m, e.row, e.token);
  return messages::pack(std::move(out));
}

bool kv_send_queue::acked(instance_id target, std::uint32_t batches) {
  const auto it = lanes_.find(target);
  if (it == lanes_.end()) return batches == 0;
  lane& l = it->second;
  const bool fits = batches <= l.in_flight.size();
  for (std::uint32_t i = 0; i < batches && !l.in_flight.empty(); ++i) {
    l.in_flight_bytes -= l.in_flight.front();
    l.in_flight.pop_front();
  }
  return fits;
}

std::vector<kv_send_queue::message> kv_send_queue::take_ready() {
  std::vector<message> out;
  for (auto& [target, l] : lanes_) {
    while (!l.queued.empty()) {
      entry& e = l.queued.front();
      if (!e.ready) {  // cut the next piece (or take the whole message)
        l.queued_bytes -= e.bytes;
        e.ready = next_piece(e);
        e.ready_bytes = worker::size_of(*messages::packed_as<kv_delta_batch>(*e.ready));
        l.queued_bytes += e.bytes + e.ready_bytes;
      }
      // One message always goes when nothing is on the way, however large.
      if (!l.in_flight.empty() && l.in_flight_bytes + e.ready_bytes > limits_.window_bytes) break;
      l.queued_bytes -= e.ready_bytes;
      l.in_flight_bytes += e.ready_bytes;
      l.in_flight.push_back(e.ready_bytes);
      out.push_back({.target = target, .blob = std::move(*e.ready), .bytes = e.ready_bytes});
      e.ready.reset();
      if (e.done) l.queued.pop_front();
    }
  }
  return out;
}

void kv_send_queue::reset(instance_id target) {
  lanes_.erase(target);
}

void kv_send_queue::forget(std::span<const request_id> ids) {
  for (auto& [target, l] : lanes_) {
    for (const request_id id : ids) {
      if (l.abandoned.erase(id) != 0) std::erase(l.abandoned_order, id);
    }
  }
}

std::uint64_t kv_send_queue::in_flight_bytes(instance_id target) const {
  const auto it = lanes_.find(target);
  return it == lanes_.end() ? 0 : it->second.in_flight_bytes;
}

std::uint64_t kv_send_queue::queued_bytes(instance_id target) const {
  const auto it = lanes_.find(target);
  return it == lanes_.end() ? 0 : it->second.queued_bytes;
}

std::uint64_t kv_send_queue::in_flight_bytes() const {
  std::uint64_t n = 0;
  for (const auto& [target, l] : lanes_) n += l.in_flight_bytes;
  return n;
}

std::uint64_t kv_send_queue::queued_bytes() const {
  std::uint64_t n = 0;
  for (const auto& [target, l] : lanes_) n += l.queued_bytes;
  return n;
}

}  // namespace accellm::worker
