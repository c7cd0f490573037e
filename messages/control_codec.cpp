// Codec of the coordinator's decisions: AssignPrefill, StartDecode,
// MoveDecode, SetRole, EvictReplica.
#include "messages/codec.hpp"
#include "messages/detail/checker.hpp"
#include "messages/detail/wire.hpp"

#include <algorithm>

namespace accellm::messages {
namespace {

namespace w = accellm::wire;

void fill(w::AssignPrefill::Builder b, const assign_prefill& m) {
  b.setEpoch(m.epoch);
  b.setRequestId(m.request);
  b.setInstance(m.instance);
  b.setPartner(m.partner);
  detail::set_tokens(m.prompt, [&](auto p) { b.setPrompt(p); });
  b.setPromptLen(m.prompt_len);
  detail::set_tokens(m.already_generated, [&](auto p) { b.setAlreadyGenerated(p); });
  b.setAlreadyGeneratedLen(m.already_generated_len);
  b.setMaxTokens(m.max_tokens);
  b.setChunkTokens(m.chunk_tokens);
  b.setArrivalNs(m.arrival_ns);
  detail::set_tokens(m.stop_tokens, [&](auto p) { b.setStopTokens(p); });
  b.setThenDecode(m.then_decode);
}

result<assign_prefill> read(w::AssignPrefill::Reader r, const decode_limits& l) {
  detail::field_reader f{"assign_prefill", l};
  assign_prefill m;
  m.epoch = r.getEpoch();
  m.request = r.getRequestId();
  m.instance = r.getInstance();
  m.partner = r.getPartner();
  f.tokens(r.getPrompt(), l.max_tokens, "prompt", m.prompt);
  m.prompt_len = r.getPromptLen();
  f.tokens(r.getAlreadyGenerated(), l.max_tokens, "already_generated", m.already_generated);
  m.already_generated_len = r.getAlreadyGeneratedLen();
  m.max_tokens = r.getMaxTokens();
  m.chunk_tokens = r.getChunkTokens();
  m.arrival_ns = r.getArrivalNs();
  f.tokens(r.getStopTokens(), l.max_stop_tokens, "stop_tokens", m.stop_tokens);
  m.then_decode = r.getThenDecode();
  return std::move(f).finish(std::move(m));
}

void fill(w::StartDecode::Builder b, const start_decode& m) {
  b.setEpoch(m.epoch);
  b.setRequestId(m.request);
  b.setInstance(m.instance);
  b.setContextLen(m.context_len);
  b.setLastToken(m.last_token);
  b.setFromReplica(m.from_replica);
  b.setGenerated(m.generated);
  b.setPartner(m.partner);
  b.setMaxTokens(m.max_tokens);
  detail::set_tokens(m.stop_tokens, [&](auto p) { b.setStopTokens(p); });
  detail::set_tokens(m.context_tokens, [&](auto p) { b.setContextTokens(p); });
  b.setTakeover(m.takeover);
}

result<start_decode> read(w::StartDecode::Reader r, const decode_limits& l) {
  detail::field_reader f{"start_decode", l};
  start_decode m;
  m.epoch = r.getEpoch();
  m.request = r.getRequestId();
  m.instance = r.getInstance();
  m.context_len = r.getContextLen();
  m.last_token = r.getLastToken();
  m.from_replica = r.getFromReplica();
  m.generated = r.getGenerated();
  m.partner = r.getPartner();
  m.max_tokens = r.getMaxTokens();
  f.tokens(r.getStopTokens(), l.max_stop_tokens, "stop_tokens", m.stop_tokens);
  f.tokens(r.getContextTokens(), l.max_tokens, "context_tokens", m.context_tokens);
  m.takeover = r.getTakeover();
  return std::move(f).finish(std::move(m));
}

void fill(w::MoveDecode::Builder b, const move_decode& m) {
  b.setEpoch(m.epoch);
  b.setRequestId(m.request);
  b.setFromInstance(m.from_instance);
  b.setToInstance(m.to_instance);
  b.setContextLen(m.context_len);
  b.setLastToken(m.last_token);
  b.setGenerated(m.generated);
  b.setReason(static_cast<w::MoveReason>(m.reason));
  detail::set_tokens(m.tail_tokens, [&](auto p) { b.setTailTokens(p); });
  b.setNewPartner(m.new_partner);
  b.setMaxTokens(m.max_tokens);
  detail::set_tokens(m.stop_tokens, [&](auto p) { b.setStopTokens(p); });
}

result<move_decode> read(w::MoveDecode::Reader r, const decode_limits& l) {
  detail::field_reader f{"move_decode", l};
  move_decode m;
  m.epoch = r.getEpoch();
  m.request = r.getRequestId();
  m.from_instance = r.getFromInstance();
  m.to_instance = r.getToInstance();
  m.context_len = r.getContextLen();
  m.last_token = r.getLastToken();
  m.generated = r.getGenerated();
  f.enumeration(r.getReason(), move_reason::handoff, "reason", m.reason);
  f.tokens(r.getTailTokens(), l.max_tokens, "tail_tokens", m.tail_tokens);
  m.new_partner = r.getNewPartner();
  m.max_tokens = r.getMaxTokens();
  f.tokens(r.getStopTokens(), l.max_stop_tokens, "stop_tokens", m.stop_tokens);
  return std::move(f).finish(std::move(m));
}

void fill(w::SetRole::Builder b, const set_role& m) {
  b.setEpoch(m.epoch);
  b.setInstance(m.instance);
  b.setRole(static_cast<w::Role>(m.role));
  b.setPartner(m.partner);
  b.setFenced(m.fenced);
}

result<set_role> read(w::SetRole::Reader r, const decode_limits& l) {
  detail::field_reader f{"set_role", l};
  set_role m;
  m.epoch = r.getEpoch();
  m.instance = r.getInstance();
  f.enumeration(r.getRole(), role::mixed, "role", m.role);
  m.partner = r.getPartner();
  m.fenced = r.getFenced();
  return std::move(f).finish(std::move(m));
}

void fill(w::EvictReplica::Builder b, const evict_replica& m) {
  b.setEpoch(m.epoch);
  b.setInstance(m.instance);
  if (!m.requests.empty()) {
    b.setRequestIds(kj::arrayPtr(m.requests.data(), m.requests.size()));
  }
  b.setReason(static_cast<w::EvictReason>(m.reason));
}

result<evict_replica> read(w::EvictReplica::Reader r, const decode_limits& l) {
  detail::field_reader f{"evict_replica", l};
  evict_replica m;
  m.epoch = r.getEpoch();
  m.instance = r.getInstance();
  f.ids(r.getRequestIds(), l.max_request_ids, "requests", m.requests);
  f.enumeration(r.getReason(), evict_reason::handed_off, "reason", m.reason);
  return std::move(f).finish(std::move(m));
}

}  // namespace

capnp_blob encode(const assign_prefill& m) {
  const auto tokens = m.prompt.size() + m.already_generated.size() + m.stop_tokens.size();
  return detail::encode_with<w::AssignPrefill>(m, detail::hint_words(4 * tokens), fill);
}

capnp_blob encode(const start_decode& m) {
  return detail::encode_with<w::StartDecode>(
      m, detail::hint_words(4 * (m.stop_tokens.size() + m.context_tokens.size())), fill);
}

capnp_blob encode(const move_decode& m) {
  const auto tokens = m.tail_tokens.size() + m.stop_tokens.size();
  return detail::encode_with<w::MoveDecode>(m, detail::hint_words(4 * tokens), fill);
}

capnp_blob encode(const set_role& m) {
  return detail::encode_with<w::SetRole>(m, detail::hint_words(0), fill);
}

capnp_blob encode(const evict_replica& m) {
  return detail::encode_with<w::EvictReplica>(m, detail::hint_words(8 * m.requests.size()), fill);
}

result<assign_prefill> decode_as(std::type_identity<assign_prefill>, blob_view b,
                                 const decode_limits& l) {
  return detail::decode_with<w::AssignPrefill>(b, l, read);
}

result<start_decode> decode_as(std::type_identity<start_decode>, blob_view b,
                               const decode_limits& l) {
  return detail::decode_with<w::StartDecode>(b, l, read);
}

result<move_decode> decode_as(std::type_identity<move_decode>, blob_view b,
                              const decode_limits& l) {
  return detail::decode_with<w::MoveDecode>(b, l, read);
}

result<set_role> decode_as(std::type_identity<set_role>, blob_view b, const decode_limits& l) {
  return detail::decode_with<w::SetRole>(b, l, read);
}

result<evict_replica> decode_as(std::type_identity<evict_replica>, blob_view b,
                                const decode_limits& l) {
  return detail::decode_with<w::EvictReplica>(b, l, read);
}

status validate(const assign_prefill& m, const decode_limits& l) {
  detail::checker c{"assign_prefill"};
  c.request(m.request, "request")
      .instance(m.instance, "instance")
      .not_self(m.partner, m.instance, "partner")
      .check(m.prompt_len >= 1, "prompt_len", m.prompt_len, "a prompt has >= 1 token")
      .tokens(m.prompt, l.max_tokens, "prompt")
      .empty_or_len(m.prompt.size(), m.prompt_len, "prompt")
      .tokens(m.already_generated, l.max_tokens, "already_generated")
      .empty_or_len(m.already_generated.size(), m.already_generated_len, "already_generated")
      .check(m.already_generated_len < m.max_tokens, "max_tokens", m.max_tokens,
             "must exceed already_generated_len")
      .tokens(m.stop_tokens, l.max_stop_tokens, "stop_tokens");
  return std::move(c).done();
}

status validate(const start_decode& m, const decode_limits& l) {
  detail::checker c{"start_decode"};
  c.request(m.request, "request")
      .instance(m.instance, "instance")
      .not_self(m.partner, m.instance, "partner")
      .check(m.context_len >= 1, "context_len", m.context_len, "must be >= 1")
      .check_signed(m.last_token >= 0, "last_token", m.last_token, "token ids are >= 0")
      .check(m.generated >= 1, "generated", m.generated, "must be >= 1")
      .check(m.generated <= m.context_len, "generated", m.generated,
             "must be <= context_len (the prompt has >= 1 token)")
      .check(m.generated <= m.max_tokens, "max_tokens", m.max_tokens, "must be >= generated")
      .tokens(m.stop_tokens, l.max_stop_tokens, "stop_tokens")
      .tokens(m.context_tokens, l.max_tokens, "context_tokens")
      .empty_or_len(m.context_tokens.size(), m.context_len, "context_tokens");
  return std::move(c).done();
}

status validate(const move_decode& m, const decode_limits& l) {
  detail::checker c{"move_decode"};
  c.request(m.request, "request")
      .instance(m.from_instance, "from_instance")
      .instance(m.to_instance, "to_instance")
      .not_self(m.to_instance, m.from_instance, "to_instance")
      .not_self(m.new_partner, m.to_instance, "new_partner")
      .check(m.context_len >= 1, "context_len", m.context_len, "must be >= 1")
      .check_signed(m.last_token >= 0, "last_token", m.last_token, "token ids are >= 0")
      .check(m.generated >= 1, "generated", m.generated, "must be >= 1")
      .check(m.generated <= m.context_len, "generated", m.generated, "must be <= context_len")
      .check(detail::listed(m.reason, move_reason::handoff), "reason",
             static_cast<std::uint64_t>(m.reason), "not a valid value")
      .tokens(m.tail_tokens, l.max_tokens, "tail_tokens")
      .check(m.tail_tokens.size() <= m.context_len, "tail_tokens", m.tail_tokens.size(),
             "entries, must be <= context_len")
      .check(m.generated <= m.max_tokens, "max_tokens", m.max_tokens, "must be >= generated")
      .tokens(m.stop_tokens, l.max_stop_tokens, "stop_tokens");
  return std::move(c).done();
}

status validate(const set_role& m, const decode_limits&) {
  detail::checker c{"set_role"};
  c.instance(m.instance, "instance")
      .check(detail::listed(m.role, role::mixed), "role", static_cast<std::uint64_t>(m.role),
             "not a valid value")
      .not_self(m.partner, m.instance, "partner");
  return std::move(c).done();
}

status validate(const evict_replica& m, const decode_limits& l) {
  detail::checker c{"evict_replica"};
  c.instance(m.instance, "instance")
      .check(!m.requests.empty(), "requests", 0, "entries, must be >= 1")
      .limit(m.requests.size(), l.max_request_ids, "requests")
      .check(detail::listed(m.reason, evict_reason::handed_off), "reason",
             static_cast<std::uint64_t>(m.reason), "not a valid value");
  const auto zero = std::find(m.requests.begin(), m.requests.end(), request_id{0});
  if (zero != m.requests.end()) {
    c.request(0, "requests[" + std::to_string(zero - m.requests.begin()) + "]");
  }
  return std::move(c).done();
}

}  // namespace accellm::messages
