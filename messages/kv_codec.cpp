// Codec of the KV-cache copies between partners: KvLayer (layer by layer
// during prefill), KvDelta (decoded tokens, all layers), KvDeltaBatch
// (several requests' rows in one message) and KvAck (the receiver's credit).
#include "messages/codec.hpp"
#include "messages/detail/checker.hpp"
#include "messages/detail/wire.hpp"

#include <capnp/orphan.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>

namespace accellm::messages {
namespace {

namespace w = accellm::wire;

// KV payloads are the bulk of all traffic: a payload that is a whole number
// of words becomes its own segment by reference (no copy into the builder),
// so encode copies it exactly once, into the blob. Other sizes are copied:
// referencing them would let the serializer read past the buffer's end.
bool by_reference(std::span<const std::byte> data) {
  return !data.empty() && data.size() % sizeof(capnp::word) == 0 &&
         reinterpret_cast<std::uintptr_t>(data.data()) % sizeof(capnp::word) == 0;
}

template <class Builder>
void fill_data(Builder& b, std::span<const std::byte> data) {
  if (data.empty()) return;
  if (by_reference(data)) {
    const auto orphanage = capnp::Orphanage::getForMessageContaining(b);
    b.adoptData(orphanage.referenceExternalData(capnp::Data::Reader{detail::bytes(data)}));
    return;
  }
  auto out = b.initData(static_cast<unsigned>(data.size()));
  std::memcpy(out.begin(), data.data(), data.size());
}

std::size_t hint(std::span<const std::byte> data) {
  return detail::hint_words(by_reference(data) ? 0 : data.size());
}

void fill(w::KvLayer::Builder b, const kv_layer& m) {
  b.setEpoch(m.epoch);
  b.setRequestId(m.request);
  b.setFromInstance(m.from_instance);
  b.setLayer(m.layer);
  b.setTokenBegin(m.token_begin);
  b.setTokenEnd(m.token_end);
  b.setSizeBytes(m.size_bytes);
  fill_data(b, m.data);
  b.setLastLayer(m.last_layer);
}

result<kv_layer> read(w::KvLayer::Reader r, const decode_limits& l) {
  detail::field_reader f{"kv_layer", l};
  kv_layer m;
  m.epoch = r.getEpoch();
  m.request = r.getRequestId();
  m.from_instance = r.getFromInstance();
  m.layer = r.getLayer();
  m.token_begin = r.getTokenBegin();
  m.token_end = r.getTokenEnd();
  m.size_bytes = r.getSizeBytes();
  f.data(r.getData(), m.data);
  m.last_layer = r.getLastLayer();
  return std::move(f).finish(std::move(m));
}

void fill(w::KvDelta::Builder b, const kv_delta& m) {
  b.setEpoch(m.epoch);
  b.setRequestId(m.request);
  b.setFromInstance(m.from_instance);
  b.setLayerBegin(m.layer_begin);
  b.setLayerEnd(m.layer_end);
  b.setTokenBegin(m.token_begin);
  b.setTokenEnd(m.token_end);
  b.setSizeBytes(m.size_bytes);
  fill_data(b, m.data);
}

result<kv_delta> read(w::KvDelta::Reader r, const decode_limits& l) {
  detail::field_reader f{"kv_delta", l};
  kv_delta m;
  m.epoch = r.getEpoch();
  m.request = r.getRequestId();
  m.from_instance = r.getFromInstance();
  m.layer_begin = r.getLayerBegin();
  m.layer_end = r.getLayerEnd();
  m.token_begin = r.getTokenBegin();
  m.token_end = r.getTokenEnd();
  m.size_bytes = r.getSizeBytes();
  f.data(r.getData(), m.data);
  return std::move(f).finish(std::move(m));
}

void fill(w::KvDeltaBatch::Builder b, const kv_delta_batch& m) {
  b.setEpoch(m.epoch);
  b.setFromInstance(m.from_instance);
  b.setLayerBegin(m.layer_begin);
  b.setLayerEnd(m.layer_end);
  b.setPhase(static_cast<w::Phase>(m.phase));
  b.setRing(m.ring);
  if (!m.abandoned.empty()) b.setAbandoned(kj::arrayPtr(m.abandoned.data(), m.abandoned.size()));
  if (m.rows.empty()) return;
  auto rows = b.initRows(static_cast<unsigned>(m.rows.size()));
  for (unsigned i = 0; i < rows.size(); ++i) {
    const kv_rows& in = m.rows[i];
    auto out = rows[i];
    out.setRequestId(in.request);
    out.setTokenBegin(in.token_begin);
    out.setTokenEnd(in.token_end);
    out.setSizeBytes(in.size_bytes);
    out.setRingPos(in.ring_pos);
    fill_data(out, in.data.span());
  }
}

// A KvDeltaBatch's fields; each row's bytes through `data(f, reader, out)`.
template <class Data>
result<kv_delta_batch> read_batch(w::KvDeltaBatch::Reader r, const decode_limits& l, Data&& data) {
  detail::field_reader f{"kv_delta_batch", l};
  kv_delta_batch m;
  m.epoch = r.getEpoch();
  m.from_instance = r.getFromInstance();
  m.layer_begin = r.getLayerBegin();
  m.layer_end = r.getLayerEnd();
  f.enumeration(r.getPhase(), phase::decode, "phase", m.phase);
  m.ring = r.getRing();
  f.ids(r.getAbandoned(), l.max_request_ids, "abandoned", m.abandoned);
  const auto rows = r.getRows();
  if (!f.within(rows.size(), l.max_execute_items, "rows")) return std::move(f).finish(std::move(m));
  m.rows.resize(rows.size());
  for (unsigned i = 0; i < rows.size(); ++i) {
    const auto row = rows[i];  // each rows[i] is a bounds-checked library call
    kv_rows& out = m.rows[i];
    out.request = row.getRequestId();
    out.token_begin = row.getTokenBegin();
    out.token_end = row.getTokenEnd();
    out.size_bytes = row.getSizeBytes();
    out.ring_pos = row.getRingPos();
    if (row.hasData()) data(f, row.getData(), out.data);
  }
  return std::move(f).finish(std::move(m));
}

result<kv_delta_batch> read(w::KvDeltaBatch::Reader r, const decode_limits& l) {
  return read_batch(r, l, [](detail::field_reader& f, capnp::Data::Reader in, shared_bytes& out) {
    f.data(in, out);
  });
}

void fill(w::KvAck::Builder b, const kv_ack& m) {
  b.setEpoch(m.epoch);
  b.setBatches(m.batches);
}

result<kv_ack> read(w::KvAck::Reader r, const decode_limits& l) {
  detail::field_reader f{"kv_ack", l};
  kv_ack m;
  m.epoch = r.getEpoch();
  m.batches = r.getBatches();
  return std::move(f).finish(std::move(m));
}

// Real devices send the bytes, simulated ones only their size.
void check_size(detail::checker& c, std::uint64_t size_bytes, std::span<const std::byte> data) {
  if (data.empty() || size_bytes == data.size()) return;
  c.check(false, "size_bytes", size_bytes,
          "must equal the " + std::to_string(data.size()) + " bytes of data");
}

}  // namespace

capnp_blob encode(const kv_layer& m) {
  return detail::encode_with<w::KvLayer>(m, hint(m.data), fill);
}

capnp_blob encode(const kv_delta& m) {
  return detail::encode_with<w::KvDelta>(m, hint(m.data), fill);
}

capnp_blob encode(const kv_delta_batch& m) {
  std::size_t payload = 40 * m.rows.size() + 8 * m.abandoned.size();
  for (const kv_rows& row : m.rows) payload += by_reference(row.data.span()) ? 0 : row.data.size();
  return detail::encode_with<w::KvDeltaBatch>(m, detail::hint_words(payload), fill);
}

result<kv_delta_batch> decode_as(std::type_identity<kv_delta_batch>, blob_view b,
                                 const decode_limits& l) {
  return detail::decode_with<w::KvDeltaBatch>(b, l, read);
}

result<kv_delta_batch> decode_sharing(std::shared_ptr<const std::vector<std::uint8_t>> bytes,
                                      const decode_limits& l) {
  if (!bytes) return fail(errc::invalid_argument, "kv_delta_batch: no bytes to decode");
  const auto* begin = reinterpret_cast<const std::byte*>(bytes->data());
  const auto* end = begin + bytes->size();
  // A row the reader found in place (the words were aligned where they lie)
  // becomes a share of the bytes; one in an aligned copy is copied out.
  const auto share = [&](detail::field_reader& f, capnp::Data::Reader in, shared_bytes& out) {
    const auto* p = reinterpret_cast<const std::byte*>(in.begin());
    if (f.failed() || p < begin || in.size() > static_cast<std::size_t>(end - p))
      return f.data(in, out);
    out = shared_bytes{bytes, p, in.size()};
  };
  const blob_view b{static_cast<std::uint16_t>(msg_type::kv_delta_batch), *bytes};
  return detail::decode_using<w::KvDeltaBatch, kv_delta_batch>(
      b, l, [&](w::KvDeltaBatch::Reader r, const decode_limits& lim) {
        return read_batch(r, lim, share);
      });
}

capnp_blob encode(const kv_ack& m) {
  return detail::encode_with<w::KvAck>(m, detail::hint_words(0), fill);
}

result<kv_ack> decode_as(std::type_identity<kv_ack>, blob_view b, const decode_limits& l) {
  return detail::decode_with<w::KvAck>(b, l, read);
}

result<kv_layer> decode_as(std::type_identity<kv_layer>, blob_view b, const decode_limits& l) {
  return detail::decode_with<w::KvLayer>(b, l, read);
}

result<kv_delta> decode_as(std::type_identity<kv_delta>, blob_view b, const decode_limits& l) {
  return detail::decode_with<w::KvDelta>(b, l, read);
}

status validate(const kv_layer& m, const decode_limits&) {
  detail::checker c{"kv_layer"};
  c.request(m.request, "request")
      .instance(m.from_instance, "from_instance")
      .check(m.token_end >= m.token_begin, "token_end", m.token_end, "must be >= token_begin");
  check_size(c, m.size_bytes, m.data);
  return std::move(c).done();
}

status validate(const kv_delta& m, const decode_limits&) {
  detail::checker c{"kv_delta"};
  c.request(m.request, "request")
      .instance(m.from_instance, "from_instance")
      .check(m.layer_end > m.layer_begin, "layer_end", m.layer_end, "must be > layer_begin")
      .check(m.token_end >= m.token_begin, "token_end", m.token_end, "must be >= token_begin");
  check_size(c, m.size_bytes, m.data);
  return std::move(c).done();
}

status validate(const kv_delta_batch& m, const decode_limits& l) {
  detail::checker c{"kv_delta_batch"};
  c.instance(m.from_instance, "from_instance")
      .check(m.layer_end > m.layer_begin, "layer_end", m.layer_end, "must be > layer_begin")
      .check(detail::listed(m.phase, phase::decode), "phase", static_cast<std::uint64_t>(m.phase),
             "not a valid value")
      .check(!m.rows.empty() || !m.abandoned.empty(), "rows", 0,
             "entries, must be >= 1 (or some abandoned)")
      .limit(m.rows.size(), l.max_execute_items, "rows")
      .limit(m.abandoned.size(), l.max_request_ids, "abandoned");
  const auto zero = std::find(m.abandoned.begin(), m.abandoned.end(), request_id{0});
  if (zero != m.abandoned.end())
    c.request(0, "abandoned[" + std::to_string(zero - m.abandoned.begin()) + "]");
  for (std::size_t i = 0; i < m.rows.size() && c.ok(); ++i) {
    const kv_rows& row = m.rows[i];
    const bool fine = row.request != 0 && row.token_end > row.token_begin &&
                      (row.data.empty() || row.size_bytes == row.data.size());
    if (fine) continue;  // the path string is built only for a broken row
    detail::checker r{"kv_delta_batch.rows[" + std::to_string(i) + "]"};
    r.request(row.request, "request")
        .check(row.token_end > row.token_begin, "token_end", row.token_end,
               "must be > token_begin");
    check_size(r, row.size_bytes, row.data.span());
    c.merge(std::move(r).done());
  }
  return std::move(c).done();
}

status validate(const kv_ack& m, const decode_limits&) {
  detail::checker c{"kv_ack"};
  c.check(m.batches >= 1, "batches", m.batches, "must be >= 1");
  return std::move(c).done();
}

}  // namespace accellm::messages
