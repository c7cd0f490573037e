// Codec of cluster membership, monitoring and tracing: InstanceReport,
// IterationReport, RegisterWorker, Heartbeat, TraceEvent.
#include "messages/codec.hpp"
#include "messages/detail/checker.hpp"
#include "messages/detail/wire.hpp"

#include <algorithm>

namespace accellm::messages {
namespace {

namespace w = accellm::wire;
using detail::text;

void fill(w::InstanceReport::Builder b, const instance_report& m) {
  b.setEpoch(m.epoch);
  b.setInstance(m.instance);
  b.setTimeNs(m.time_ns);
  b.setRole(static_cast<w::Role>(m.role));
  b.setQueuedPrefillTokens(m.queued_prefill_tokens);
  b.setRunningDecode(m.running_decode);
  b.setKvBlocksTotal(m.kv_blocks_total);
  b.setPrimaryBlocks(m.primary_blocks);
  b.setReplicaBlocks(m.replica_blocks);
  b.setFreeBlocks(m.free_blocks);
  b.setKvBytesSent(m.kv_bytes_sent);
  b.setBusyNs(m.busy_ns);
  b.setIterations(m.iterations);
  b.setPartner(m.partner);
  b.setQueuedRequests(m.queued_requests);
  b.setRejectedMessages(m.rejected_messages);
  b.setKvBytesShared(m.kv_bytes_shared);
  b.setKvBytesCopied(m.kv_bytes_copied);
  b.setKvBytesDropped(m.kv_bytes_dropped);
}

result<instance_report> read(w::InstanceReport::Reader r, const decode_limits& l) {
  detail::field_reader f{"instance_report", l};
  instance_report m;
  m.epoch = r.getEpoch();
  m.instance = r.getInstance();
  m.time_ns = r.getTimeNs();
  f.enumeration(r.getRole(), role::mixed, "role", m.role);
  m.queued_prefill_tokens = r.getQueuedPrefillTokens();
  m.running_decode = r.getRunningDecode();
  m.kv_blocks_total = r.getKvBlocksTotal();
  m.primary_blocks = r.getPrimaryBlocks();
  m.replica_blocks = r.getReplicaBlocks();
  m.free_blocks = r.getFreeBlocks();
  m.kv_bytes_sent = r.getKvBytesSent();
  m.busy_ns = r.getBusyNs();
  m.iterations = r.getIterations();
  m.partner = r.getPartner();
  m.queued_requests = r.getQueuedRequests();
  m.rejected_messages = r.getRejectedMessages();
  m.kv_bytes_shared = r.getKvBytesShared();
  m.kv_bytes_copied = r.getKvBytesCopied();
  m.kv_bytes_dropped = r.getKvBytesDropped();
  return std::move(f).finish(std::move(m));
}

void fill(w::IterationReport::Builder b, const iteration_report& m) {
  b.setEpoch(m.epoch);
  b.setInstance(m.instance);
  b.setIteration(m.iteration);
  b.setStartNs(m.start_ns);
  b.setDurationNs(m.duration_ns);
  b.setRole(static_cast<w::Role>(m.role));
  b.setPrefillTokens(m.prefill_tokens);
  b.setDecodeRequests(m.decode_requests);
  if (!m.runs.empty()) {
    auto runs = b.initRuns(static_cast<unsigned>(m.runs.size()));
    for (unsigned i = 0; i < runs.size(); ++i) {
      auto r = runs[i];
      r.setRequestId(m.runs[i].request);
      r.setFirstIndex(m.runs[i].first_index);
      r.setCount(m.runs[i].count);
      r.setFirstStep(m.runs[i].first_step);
    }
  }
  fill(b.initLoad(), m.load);
  if (!m.evicted_replicas.empty()) {
    b.setEvictedReplicas(kj::arrayPtr(m.evicted_replicas.data(), m.evicted_replicas.size()));
  }
  if (!m.preempted.empty()) b.setPreempted(kj::arrayPtr(m.preempted.data(), m.preempted.size()));
  if (!m.step_ends_ns.empty()) {
    b.setStepEndsNs(kj::arrayPtr(m.step_ends_ns.data(), m.step_ends_ns.size()));
  }
  detail::set_tokens(m.tokens, [&](auto p) { b.setTokens(p); });
}

result<iteration_report> read(w::IterationReport::Reader r, const decode_limits& l) {
  detail::field_reader f{"iteration_report", l};
  iteration_report m;
  m.epoch = r.getEpoch();
  m.instance = r.getInstance();
  m.iteration = r.getIteration();
  m.start_ns = r.getStartNs();
  m.duration_ns = r.getDurationNs();
  f.enumeration(r.getRole(), role::mixed, "role", m.role);
  m.prefill_tokens = r.getPrefillTokens();
  m.decode_requests = r.getDecodeRequests();
  const auto runs = r.getRuns();
  if (f.within(runs.size(), l.max_execute_items, "runs")) {
    m.runs.reserve(runs.size());
    for (const auto x : runs) {
      m.runs.push_back({.request = x.getRequestId(),
                        .first_index = x.getFirstIndex(),
                        .count = x.getCount(),
                        .first_step = x.getFirstStep()});
    }
  }
  f.tokens(r.getTokens(), l.max_execute_items * l.max_decode_steps, "tokens", m.tokens);
  f.values(r.getStepEndsNs(), l.max_decode_steps, "step_ends_ns", m.step_ends_ns);
  f.ids(r.getEvictedReplicas(), l.max_request_ids, "evicted_replicas", m.evicted_replicas);
  f.ids(r.getPreempted(), l.max_request_ids, "preempted", m.preempted);
  auto load = read(r.getLoad(), l);
  if (!load) return std::move(load).err().context("iteration_report.load");
  m.load = std::move(*load);
  return std::move(f).finish(std::move(m));
}

void fill(w::RegisterWorker::Builder b, const register_worker& m) {
  b.setEpoch(m.epoch);
  b.setClusterToken(text(m.cluster_token));
  b.setInstanceName(text(m.instance_name));
  b.setDevice(text(m.device));
  b.setModel(text(m.model));
  b.setTp(m.tp);
  b.setKvBlocks(m.kv_blocks);
  b.setBlockTokens(m.block_tokens);
  b.setHost(text(m.host));
  b.setPid(m.pid);
  b.setKvBytesPerBlock(m.kv_bytes_per_block);
  b.setProtocolVersion(m.protocol_version);
  b.setKvPort(m.kv_port);
}

result<register_worker> read(w::RegisterWorker::Reader r, const decode_limits& l) {
  detail::field_reader f{"register_worker", l};
  register_worker m;
  m.epoch = r.getEpoch();
  f.text(r.getClusterToken(), "cluster_token", m.cluster_token);
  f.text(r.getInstanceName(), "instance_name", m.instance_name);
  f.text(r.getDevice(), "device", m.device);
  f.text(r.getModel(), "model", m.model);
  m.tp = r.getTp();
  m.kv_blocks = r.getKvBlocks();
  m.block_tokens = r.getBlockTokens();
  f.text(r.getHost(), "host", m.host);
  m.pid = r.getPid();
  m.kv_bytes_per_block = r.getKvBytesPerBlock();
  m.protocol_version = r.getProtocolVersion();
  m.kv_port = r.getKvPort();
  return std::move(f).finish(std::move(m));
}

void fill(w::Heartbeat::Builder b, const heartbeat& m) {
  b.setEpoch(m.epoch);
  b.setInstance(m.instance);
  b.setSeq(m.seq);
  b.setSentNs(m.sent_ns);
}

result<heartbeat> read(w::Heartbeat::Reader r, const decode_limits& l) {
  detail::field_reader f{"heartbeat", l};
  heartbeat m;
  m.epoch = r.getEpoch();
  m.instance = r.getInstance();
  m.seq = r.getSeq();
  m.sent_ns = r.getSentNs();
  return std::move(f).finish(std::move(m));
}

void fill(w::TraceEvent::Builder b, const trace_event& m) {
  b.setEpoch(m.epoch);
  b.setTimeNs(m.time_ns);
  b.setKind(static_cast<w::TraceKind>(m.kind));
  b.setSender(text(m.sender));
  b.setReceiver(text(m.receiver));
  b.setSenderNode(text(m.sender_node));
  b.setReceiverNode(text(m.receiver_node));
  b.setMessageType(m.message_type);
  b.setBytes(m.bytes);
  b.setRequestId(m.request);
  b.setDurationNs(m.duration_ns);
  b.setPrefillTokens(m.prefill_tokens);
  b.setDecodeRequests(m.decode_requests);
  b.setRole(static_cast<w::Role>(m.role));
  b.setInstance(m.instance);
  b.setPeerTimeNs(m.peer_time_ns);
  b.setNote(text(m.note));
  b.setDropped(m.dropped);
}

result<trace_event> read(w::TraceEvent::Reader r, const decode_limits& l) {
  detail::field_reader f{"trace_event", l};
  trace_event m;
  m.epoch = r.getEpoch();
  m.time_ns = r.getTimeNs();
  f.enumeration(r.getKind(), trace_kind::log_end, "kind", m.kind);
  f.text(r.getSender(), "sender", m.sender);
  f.text(r.getReceiver(), "receiver", m.receiver);
  f.text(r.getSenderNode(), "sender_node", m.sender_node);
  f.text(r.getReceiverNode(), "receiver_node", m.receiver_node);
  m.message_type = r.getMessageType();
  m.bytes = r.getBytes();
  m.request = r.getRequestId();
  m.duration_ns = r.getDurationNs();
  m.prefill_tokens = r.getPrefillTokens();
  m.decode_requests = r.getDecodeRequests();
  f.enumeration(r.getRole(), role::mixed, "role", m.role);
  m.instance = r.getInstance();
  m.peer_time_ns = r.getPeerTimeNs();
  f.text(r.getNote(), "note", m.note);
  m.dropped = r.getDropped();
  return std::move(f).finish(std::move(m));
}

// primary + replica + free <= total, without overflow.
bool blocks_fit(const instance_report& m) noexcept {
  const std::uint64_t total = m.kv_blocks_total;
  if (m.primary_blocks > total) return false;
  if (m.replica_blocks > total - m.primary_blocks) return false;
  return m.free_blocks <= total - m.primary_blocks - m.replica_blocks;
}

}  // namespace

capnp_blob encode(const instance_report& m) {
  return detail::encode_with<w::InstanceReport>(m, detail::hint_words(0), fill);
}

capnp_blob encode(const register_worker& m) {
  const auto payload = m.cluster_token.size() + m.instance_name.size() + m.device.size() +
                       m.model.size() + m.host.size();
  return detail::encode_with<w::RegisterWorker>(m, detail::hint_words(payload + 40), fill);
}

capnp_blob encode(const heartbeat& m) {
  return detail::encode_with<w::Heartbeat>(m, detail::hint_words(0), fill);
}

capnp_blob encode(const trace_event& m) {
  const auto payload = m.sender.size() + m.receiver.size() + m.sender_node.size() +
                       m.receiver_node.size() + m.note.size();
  return detail::encode_with<w::TraceEvent>(m, detail::hint_words(payload + 32), fill);
}

result<instance_report> decode_as(std::type_identity<instance_report>, blob_view b,
                                  const decode_limits& l) {
  return detail::decode_with<w::InstanceReport>(b, l, read);
}

result<register_worker> decode_as(std::type_identity<register_worker>, blob_view b,
                                  const decode_limits& l) {
  return detail::decode_with<w::RegisterWorker>(b, l, read);
}

result<heartbeat> decode_as(std::type_identity<heartbeat>, blob_view b, const decode_limits& l) {
  return detail::decode_with<w::Heartbeat>(b, l, read);
}

result<trace_event> decode_as(std::type_identity<trace_event>, blob_view b,
                              const decode_limits& l) {
  return detail::decode_with<w::TraceEvent>(b, l, read);
}

status validate(const instance_report& m, const decode_limits&) {
  detail::checker c{"instance_report"};
  c.instance(m.instance, "instance")
      .check(detail::listed(m.role, role::mixed), "role", static_cast<std::uint64_t>(m.role),
             "not a valid value")
      .check(blocks_fit(m), "free_blocks", m.free_blocks,
             "primary + replica + free blocks exceed kv_blocks_total")
      .not_self(m.partner, m.instance, "partner")
      .check(m.kv_bytes_shared <= m.kv_bytes_sent, "kv_bytes_shared", m.kv_bytes_shared,
             "exceeds kv_bytes_sent")
      .check(m.kv_bytes_copied <= m.kv_bytes_sent, "kv_bytes_copied", m.kv_bytes_copied,
             "exceeds kv_bytes_sent");
  return std::move(c).done();
}

capnp_blob encode(const iteration_report& m) {
  const std::size_t payload = 24 * m.runs.size() + 4 * m.tokens.size() +
                              8 * m.evicted_replicas.size() + 8 * m.preempted.size() +
                              8 * m.step_ends_ns.size() + 128;
  return detail::encode_with<w::IterationReport>(m, detail::hint_words(payload), fill);
}

result<iteration_report> decode_as(std::type_identity<iteration_report>, blob_view b,
                                   const decode_limits& l) {
  return detail::decode_with<w::IterationReport>(b, l, read);
}

constexpr std::uint64_t max_index = std::uint64_t{1} << 32;

status validate(const iteration_report& m, const decode_limits& l) {
  detail::checker c{"iteration_report"};
  c.instance(m.instance, "instance")
      .check(detail::listed(m.role, role::mixed), "role", static_cast<std::uint64_t>(m.role),
             "not a valid value")
      .check(m.load.instance == m.instance, "load.instance", m.load.instance, "must equal instance")
      .limit(m.runs.size(), l.max_execute_items, "runs")
      .limit(m.tokens.size(), l.max_execute_items * l.max_decode_steps, "tokens")
      .limit(m.evicted_replicas.size(), l.max_request_ids, "evicted_replicas")
      .limit(m.preempted.size(), l.max_request_ids, "preempted")
      .limit(m.step_ends_ns.size(), l.max_decode_steps, "step_ends_ns")
      .check(std::is_sorted(m.step_ends_ns.begin(), m.step_ends_ns.end()), "step_ends_ns",
             m.step_ends_ns.size(), "entries, must be ascending");
  std::uint64_t counted = 0;
  const std::uint64_t steps = std::max<std::uint64_t>(1, m.step_ends_ns.size());
  for (std::size_t i = 0; i < m.runs.size() && c.ok(); ++i) {
    const token_run& x = m.runs[i];
    counted += x.count;
    const bool fits = std::uint64_t{x.first_step} + x.count <= steps &&
                      std::uint64_t{x.first_index} + x.count <= max_index;
    if (x.request != 0 && x.count >= 1 && fits) continue;  // no path string when fine
    const std::string at = "runs[" + std::to_string(i) + "]";
    c.request(x.request, at + ".request")
        .check(x.count >= 1, at + ".count", x.count, "must be >= 1")
        .check(std::uint64_t{x.first_step} + x.count <= steps, at + ".count", x.count,
               "runs past the last step")
        .check(std::uint64_t{x.first_index} + x.count <= max_index, at + ".count", x.count,
               "first_index + count must fit 32 bits");
  }
  if (c.ok()) {
    c.check(counted == m.tokens.size(), "tokens", m.tokens.size(),
            "entries, must be the runs' counts summed (" + std::to_string(counted) + ")")
        .tokens(m.tokens, l.max_execute_items * l.max_decode_steps, "tokens");
  }
  for (std::size_t i = 0; i < m.evicted_replicas.size() && c.ok(); ++i) {
    if (m.evicted_replicas[i] != 0) continue;
    c.request(m.evicted_replicas[i], "evicted_replicas[" + std::to_string(i) + "]");
  }
  for (std::size_t i = 0; i < m.preempted.size() && c.ok(); ++i) {
    if (m.preempted[i] != 0) continue;
    c.request(m.preempted[i], "preempted[" + std::to_string(i) + "]");
  }
  if (c.ok()) c.merge(validate(m.load, l));
  return std::move(c).done();
}

status validate(const register_worker& m, const decode_limits& l) {
  detail::checker c{"register_worker"};
  c.required(m.cluster_token, "cluster_token")
      .required(m.instance_name, "instance_name")
      .required(m.device, "device")
      .check(m.tp >= 1, "tp", m.tp, "must be >= 1")
      .check(m.kv_blocks >= 1, "kv_blocks", m.kv_blocks, "must be >= 1")
      .check(m.block_tokens >= 1, "block_tokens", m.block_tokens, "must be >= 1");
  c.text(m.cluster_token, l.max_text_bytes, "cluster_token")
      .text(m.instance_name, l.max_text_bytes, "instance_name")
      .text(m.device, l.max_text_bytes, "device")
      .text(m.model, l.max_text_bytes, "model")
      .text(m.host, l.max_text_bytes, "host");
  return std::move(c).done();
}

status validate(const heartbeat& m, const decode_limits&) {
  detail::checker c{"heartbeat"};
  c.instance(m.instance, "instance");
  return std::move(c).done();
}

status validate(const trace_event& m, const decode_limits& l) {
  detail::checker c{"trace_event"};
  c.check(detail::listed(m.kind, trace_kind::log_end), "kind", static_cast<std::uint64_t>(m.kind),
          "not a valid value")
      .check(m.message_type == 0 || to_msg_type(m.message_type).has_value(), "message_type",
             m.message_type, "not a message type")
      .check(detail::listed(m.role, role::mixed), "role", static_cast<std::uint64_t>(m.role),
             "not a valid value")
      .text(m.sender, l.max_text_bytes, "sender")
      .text(m.receiver, l.max_text_bytes, "receiver")
      .text(m.sender_node, l.max_text_bytes, "sender_node")
      .text(m.receiver_node, l.max_text_bytes, "receiver_node")
      .text(m.note, l.max_text_bytes, "note");
  return std::move(c).done();
}

}  // namespace accellm::messages
