// Codec of the messages between clients and the cluster: SubmitRequest,
// Cancel, TokenBatch, RequestDone.
#include "messages/codec.hpp"
#include "messages/detail/checker.hpp"
#include "messages/detail/wire.hpp"

namespace accellm::messages {
namespace {

namespace w = accellm::wire;

void fill(w::SubmitRequest::Builder b, const submit_request& m) {
  b.setRequestId(m.request);
  detail::set_tokens(m.prompt, [&](auto p) { b.setPrompt(p); });
  b.setPromptLen(m.prompt_len);
  b.setMaxTokens(m.max_tokens);
  b.setArrivalNs(m.arrival_ns);
  b.setStream(m.stream);
  b.setTtftMs(m.ttft_ms);
  b.setTbtMs(m.tbt_ms);
  detail::set_tokens(m.stop_tokens, [&](auto p) { b.setStopTokens(p); });
}

result<submit_request> read(w::SubmitRequest::Reader r, const decode_limits& l) {
  detail::field_reader f{"submit_request", l};
  submit_request m;
  m.request = r.getRequestId();
  f.tokens(r.getPrompt(), l.max_tokens, "prompt", m.prompt);
  m.prompt_len = r.getPromptLen();
  m.max_tokens = r.getMaxTokens();
  m.arrival_ns = r.getArrivalNs();
  m.stream = r.getStream();
  m.ttft_ms = r.getTtftMs();
  m.tbt_ms = r.getTbtMs();
  f.tokens(r.getStopTokens(), l.max_stop_tokens, "stop_tokens", m.stop_tokens);
  return std::move(f).finish(std::move(m));
}

void fill(w::Cancel::Builder b, const cancel& m) {
  b.setEpoch(m.epoch);
  b.setRequestId(m.request);
  b.setReason(detail::text(m.reason));
}

result<cancel> read(w::Cancel::Reader r, const decode_limits& l) {
  detail::field_reader f{"cancel", l};
  cancel m;
  m.epoch = r.getEpoch();
  m.request = r.getRequestId();
  f.text(r.getReason(), "reason", m.reason);
  return std::move(f).finish(std::move(m));
}

void fill(w::TokenBatch::Builder b, const token_batch& m) {
  b.setEpoch(m.epoch);
  b.setRequestId(m.request);
  b.setFirstIndex(m.first_index);
  detail::set_tokens(m.tokens, [&](auto p) { b.setTokens(p); });
  b.setInstance(m.instance);
  b.setTimeNs(m.time_ns);
}

result<token_batch> read(w::TokenBatch::Reader r, const decode_limits& l) {
  detail::field_reader f{"token_batch", l};
  token_batch m;
  m.epoch = r.getEpoch();
  m.request = r.getRequestId();
  m.first_index = r.getFirstIndex();
  f.tokens(r.getTokens(), l.max_tokens, "tokens", m.tokens);
  m.instance = r.getInstance();
  m.time_ns = r.getTimeNs();
  return std::move(f).finish(std::move(m));
}

void fill(w::RequestDone::Builder b, const request_done& m) {
  b.setEpoch(m.epoch);
  b.setRequestId(m.request);
  b.setStatus(static_cast<w::RequestStatus>(m.status));
  b.setFinishReason(static_cast<w::FinishReason>(m.finish));
  b.setOutputTokens(m.output_tokens);
  b.setError(detail::text(m.error));
  b.setInstance(m.instance);
}

result<request_done> read(w::RequestDone::Reader r, const decode_limits& l) {
  detail::field_reader f{"request_done", l};
  request_done m;
  m.epoch = r.getEpoch();
  m.request = r.getRequestId();
  f.enumeration(r.getStatus(), request_status::failed, "status", m.status);
  f.enumeration(r.getFinishReason(), finish_reason::context_limit, "finish", m.finish);
  m.output_tokens = r.getOutputTokens();
  f.text(r.getError(), "error", m.error);
  m.instance = r.getInstance();
  return std::move(f).finish(std::move(m));
}

}  // namespace

capnp_blob encode(const submit_request& m) {
  const auto hint = detail::hint_words(4 * (m.prompt.size() + m.stop_tokens.size()));
  return detail::encode_with<w::SubmitRequest>(m, hint, fill);
}

capnp_blob encode(const cancel& m) {
  return detail::encode_with<w::Cancel>(m, detail::hint_words(m.reason.size()), fill);
}

capnp_blob encode(const token_batch& m) {
  return detail::encode_with<w::TokenBatch>(m, detail::hint_words(4 * m.tokens.size()), fill);
}

capnp_blob encode(const request_done& m) {
  return detail::encode_with<w::RequestDone>(m, detail::hint_words(m.error.size()), fill);
}

result<submit_request> decode_as(std::type_identity<submit_request>, blob_view b,
                                 const decode_limits& l) {
  return detail::decode_with<w::SubmitRequest>(b, l, read);
}

result<cancel> decode_as(std::type_identity<cancel>, blob_view b, const decode_limits& l) {
  return detail::decode_with<w::Cancel>(b, l, read);
}

result<token_batch> decode_as(std::type_identity<token_batch>, blob_view b,
                              const decode_limits& l) {
  return detail::decode_with<w::TokenBatch>(b, l, read);
}

result<request_done> decode_as(std::type_identity<request_done>, blob_view b,
                               const decode_limits& l) {
  return detail::decode_with<w::RequestDone>(b, l, read);
}

status validate(const submit_request& m, const decode_limits& l) {
  detail::checker c{"submit_request"};
  c.check(m.prompt_len >= 1, "prompt_len", m.prompt_len, "a prompt has >= 1 token")
      .tokens(m.prompt, l.max_tokens, "prompt")
      .empty_or_len(m.prompt.size(), m.prompt_len, "prompt")
      .check(m.max_tokens >= 1, "max_tokens", m.max_tokens, "must be >= 1")
      .tokens(m.stop_tokens, l.max_stop_tokens, "stop_tokens");
  return std::move(c).done();
}

status validate(const cancel& m, const decode_limits& l) {
  detail::checker c{"cancel"};
  c.request(m.request, "request").text(m.reason, l.max_text_bytes, "reason");
  return std::move(c).done();
}

status validate(const token_batch& m, const decode_limits& l) {
  detail::checker c{"token_batch"};
  c.request(m.request, "request")
      .check(!m.tokens.empty(), "tokens", 0, "a batch has >= 1 token")
      .tokens(m.tokens, l.max_tokens, "tokens")
      .check(std::uint64_t{m.first_index} + m.tokens.size() <= std::uint64_t{1} << 32,
             "first_index", m.first_index, "the last index must fit 32 bits")
      .instance(m.instance, "instance");
  return std::move(c).done();
}

status validate(const request_done& m, const decode_limits& l) {
  detail::checker c{"request_done"};
  c.request(m.request, "request")
      .check(detail::listed(m.status, request_status::failed), "status",
             static_cast<std::uint64_t>(m.status), "not a valid value")
      .check(detail::listed(m.finish, finish_reason::context_limit), "finish",
             static_cast<std::uint64_t>(m.finish), "not a valid value")
      .text(m.error, l.max_text_bytes, "error");
  return std::move(c).done();
}

}  // namespace accellm::messages
