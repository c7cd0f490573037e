// Codec of the instance_manager <-> worker iteration protocol: Execute and
// IterationDone.
#include "messages/codec.hpp"
#include "messages/detail/checker.hpp"
#include "messages/detail/wire.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace accellm::messages {
namespace {

namespace w = accellm::wire;

std::string item_path(std::size_t i) {
  return "execute.items[" + std::to_string(i) + "]";
}

void fill_item(w::ExecuteItem::Builder b, const execute_item& m) {
  b.setRequestId(m.request);
  b.setPhase(static_cast<w::Phase>(m.phase));
  b.setContext(m.context);
  b.setNumTokens(m.num_tokens);
  detail::set_tokens(m.tokens, [&](auto p) { b.setTokens(p); });
  b.setWantsOutput(m.wants_output);
  b.setReplicaTo(m.replica_to);
  b.setSteps(m.steps);
}

void fill(w::Execute::Builder b, const execute& m) {
  b.setEpoch(m.epoch);
  b.setInstance(m.instance);
  b.setIteration(m.iteration);
  if (m.items.empty()) return;
  auto items = b.initItems(static_cast<unsigned>(m.items.size()));
  for (std::size_t i = 0; i < m.items.size(); ++i) {
    fill_item(items[static_cast<unsigned>(i)], m.items[i]);
  }
}

result<execute_item> read_item(w::ExecuteItem::Reader r, std::size_t index,
                               const decode_limits& l) {
  // The path names the item only when reading it fails (a string per item
  // would dominate decoding a large batch).
  detail::field_reader f{"execute.items[]", l};
  execute_item m;
  m.request = r.getRequestId();
  f.enumeration(r.getPhase(), phase::decode, "phase", m.phase);
  m.context = r.getContext();
  m.num_tokens = r.getNumTokens();
  f.tokens(r.getTokens(), l.max_tokens, "tokens", m.tokens);
  m.wants_output = r.getWantsOutput();
  m.replica_to = r.getReplicaTo();
  m.steps = r.getSteps();
  auto out = std::move(f).finish(std::move(m));
  if (!out) {
    std::string msg = out.err().message();
    const std::string generic = "execute.items[]";
    if (msg.rfind(generic, 0) == 0) msg.replace(0, generic.size(), item_path(index));
    return error{out.err().code(), std::move(msg)};
  }
  return out;
}

result<execute> read(w::Execute::Reader r, const decode_limits& l) {
  detail::field_reader f{"execute", l};
  execute m;
  m.epoch = r.getEpoch();
  m.instance = r.getInstance();
  m.iteration = r.getIteration();
  const auto items = r.getItems();
  if (!f.within(items.size(), l.max_execute_items, "items"))
    return std::move(f).finish(std::move(m));
  m.items.resize(items.size());
  for (unsigned i = 0; i < items.size(); ++i) {
    const auto in = items[i];  // each items[i] is a bounds-checked library call
    const auto ph = static_cast<std::uint16_t>(in.getPhase());
    const bool has_tokens = in.hasTokens();
    if (ph > static_cast<std::uint16_t>(phase::decode) ||
        (has_tokens && in.getTokens().size() > l.max_tokens)) {
      auto item = read_item(in, i, l);  // the slow path names the problem
      if (!item) return std::move(item).err();
      m.items[i] = std::move(*item);
      continue;
    }
    execute_item& out = m.items[i];
    out.request = in.getRequestId();
    out.phase = static_cast<phase>(ph);
    out.context = in.getContext();
    out.num_tokens = in.getNumTokens();
    if (has_tokens) {
      const auto tokens = in.getTokens();
      out.tokens.reserve(tokens.size());
      for (const std::int32_t t : tokens) out.tokens.push_back(t);
    }
    out.wants_output = in.getWantsOutput();
    out.replica_to = in.getReplicaTo();
    out.steps = in.getSteps();
  }
  return std::move(f).finish(std::move(m));
}

void fill(w::IterationDone::Builder b, const iteration_done& m) {
  b.setEpoch(m.epoch);
  b.setInstance(m.instance);
  b.setIteration(m.iteration);
  b.setDurationNs(m.duration_ns);
  detail::set_tokens(m.next_tokens, [&](auto p) { b.setNextTokens(p); });
  b.setError(detail::text(m.error));
  b.setKvBytesSent(m.kv_bytes_sent);
  b.setSteps(m.steps);
  if (!m.step_ends_ns.empty()) {
    b.setStepEndsNs(kj::arrayPtr(m.step_ends_ns.data(), m.step_ends_ns.size()));
  }
  b.setJoined(m.joined);
  b.setKvBytesShared(m.kv_bytes_shared);
  b.setKvBytesCopied(m.kv_bytes_copied);
  b.setKvBytesDropped(m.kv_bytes_dropped);
  if (m.refused.empty()) return;
  auto refused = b.initRefused(static_cast<unsigned>(m.refused.size()));
  for (unsigned i = 0; i < refused.size(); ++i) {
    refused[i].setItem(m.refused[i].item);
    refused[i].setReason(detail::text(m.refused[i].reason));
  }
}

result<iteration_done> read(w::IterationDone::Reader r, const decode_limits& l) {
  detail::field_reader f{"iteration_done", l};
  iteration_done m;
  m.epoch = r.getEpoch();
  m.instance = r.getInstance();
  m.iteration = r.getIteration();
  m.duration_ns = r.getDurationNs();
  f.tokens(r.getNextTokens(), l.max_execute_items * l.max_decode_steps, "next_tokens",
           m.next_tokens);
  f.text(r.getError(), "error", m.error);
  m.kv_bytes_sent = r.getKvBytesSent();
  m.steps = r.getSteps();
  f.values(r.getStepEndsNs(), l.max_decode_steps, "step_ends_ns", m.step_ends_ns);
  m.joined = r.getJoined();
  m.kv_bytes_shared = r.getKvBytesShared();
  m.kv_bytes_copied = r.getKvBytesCopied();
  m.kv_bytes_dropped = r.getKvBytesDropped();
  const auto refused = r.getRefused();
  if (!f.within(refused.size(), l.max_execute_items, "refused"))
    return std::move(f).finish(std::move(m));
  m.refused.resize(refused.size());
  for (unsigned i = 0; i < refused.size(); ++i) {
    const auto in = refused[i];  // each refused[i] is a bounds-checked library call
    m.refused[i].item = in.getItem();
    f.text(in.getReason(), "refused.reason", m.refused[i].reason);
  }
  return std::move(f).finish(std::move(m));
}

constexpr std::uint64_t max_position = std::numeric_limits<std::uint32_t>::max();

// The rules of validate_item without building any message (the fast path).
bool item_ok(const execute_item& m, instance_id self, const decode_limits& l) {
  const bool decode = m.phase == phase::decode;
  const bool tokens_ok =
      m.tokens.size() <= l.max_tokens && (m.tokens.empty() || m.tokens.size() == m.num_tokens) &&
      std::all_of(m.tokens.begin(), m.tokens.end(), [](token_id t) { return t >= 0; });
  return m.request != 0 && detail::listed(m.phase, phase::decode) && m.num_tokens >= 1 &&
         (!decode || (m.num_tokens == 1 && m.context >= 1)) &&
         (m.steps == 1 || (decode && m.steps >= 1 && m.steps <= l.max_decode_steps)) &&
         std::uint64_t{m.context} + m.num_tokens <= max_position && tokens_ok &&
         (m.replica_to == no_instance || m.replica_to != self);
}

status validate_item(const execute_item& m, std::size_t index, instance_id self,
                     const decode_limits& l) {
  if (item_ok(m, self, l)) return {};
  const bool decode = m.phase == phase::decode;
  detail::checker c{item_path(index)};
  c.request(m.request, "request")
      .check(detail::listed(m.phase, phase::decode), "phase", static_cast<std::uint64_t>(m.phase),
             "not a valid value")
      .check(m.num_tokens >= 1, "num_tokens", m.num_tokens, "must be >= 1")
      .check(!decode || m.num_tokens == 1, "num_tokens", m.num_tokens, "a decode step is 1 token")
      .check(!decode || m.context >= 1, "context", m.context, "a decode step follows a prompt")
      .check(m.steps >= 1, "steps", m.steps, "must be >= 1")
      .check(m.steps == 1 || decode, "steps", m.steps, "only a decode runs several steps")
      .check(m.steps <= l.max_decode_steps, "steps", m.steps, "exceeds max_decode_steps")
      .check(std::uint64_t{m.context} + m.num_tokens <= max_position, "num_tokens", m.num_tokens,
             "context + num_tokens must fit 32 bits")
      .tokens(m.tokens, l.max_tokens, "tokens")
      .empty_or_len(m.tokens.size(), m.num_tokens, "tokens")
      .not_self(m.replica_to, self, "replica_to");
  return std::move(c).done();
}

// Each request at most once per batch: the backend appends its tokens once.
status check_unique(const std::vector<execute_item>& items) {
  auto duplicate = [&](std::size_t first, std::size_t second) {
    return fail(errc::out_of_range, item_path(second) +
                                        ".request: " + std::to_string(items[second].request) +
                                        " (duplicate of items[" + std::to_string(first) + "])");
  };
  if (items.size() <= 32) {  // typical batches: pairwise is cheaper than sorting
    for (std::size_t j = 1; j < items.size(); ++j) {
      for (std::size_t i = 0; i < j; ++i) {
        if (items[i].request == items[j].request) return duplicate(i, j);
      }
    }
    return {};
  }
  std::vector<std::pair<request_id, std::size_t>> ids;
  ids.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) ids.emplace_back(items[i].request, i);
  std::sort(ids.begin(), ids.end());
  const auto dup = std::adjacent_find(
      ids.begin(), ids.end(), [](const auto& a, const auto& b) { return a.first == b.first; });
  if (dup == ids.end()) return {};
  return duplicate(dup->second, std::next(dup)->second);
}

}  // namespace

capnp_blob encode(const execute& m) {
  std::size_t payload = 40 * m.items.size();
  for (const auto& item : m.items) payload += 4 * item.tokens.size();
  return detail::encode_with<w::Execute>(m, detail::hint_words(payload), fill);
}

capnp_blob encode(const iteration_done& m) {
  auto payload = 4 * m.next_tokens.size() + 8 * m.step_ends_ns.size() + m.error.size();
  for (const item_refusal& r : m.refused) payload += 16 + r.reason.size();
  return detail::encode_with<w::IterationDone>(m, detail::hint_words(payload), fill);
}

result<execute> decode_as(std::type_identity<execute>, blob_view b, const decode_limits& l) {
  return detail::decode_with<w::Execute>(b, l, read);
}

result<iteration_done> decode_as(std::type_identity<iteration_done>, blob_view b,
                                 const decode_limits& l) {
  return detail::decode_with<w::IterationDone>(b, l, read);
}

status validate(const execute& m, const decode_limits& l) {
  detail::checker c{"execute"};
  c.instance(m.instance, "instance")
      .check(!m.items.empty(), "items", 0, "entries, must be >= 1")
      .limit(m.items.size(), l.max_execute_items, "items");
  const bool all_ok = std::all_of(m.items.begin(), m.items.end(), [&](const execute_item& item) {
    return item_ok(item, m.instance, l);
  });
  for (std::size_t i = 0; !all_ok && i < m.items.size() && c.ok(); ++i) {
    c.merge(validate_item(m.items[i], i, m.instance, l));
  }
  if (c.ok()) c.merge(check_unique(m.items));
  return std::move(c).done();
}

status validate(const iteration_done& m, const decode_limits& l) {
  detail::checker c{"iteration_done"};
  c.instance(m.instance, "instance")
      .tokens(m.next_tokens, l.max_execute_items * l.max_decode_steps, "next_tokens", no_token)
      .text(m.error, l.max_text_bytes, "error")
      .check(m.steps >= 1, "steps", m.steps, "must be >= 1")
      .check(m.steps <= l.max_decode_steps, "steps", m.steps, "exceeds max_decode_steps")
      .check(m.step_ends_ns.empty() || m.step_ends_ns.size() == m.steps, "step_ends_ns",
             m.step_ends_ns.size(), "entries, must be none or one per step")
      .check(m.steps == 1 || !m.step_ends_ns.empty(), "step_ends_ns", 0,
             "entries, a multi-step iteration needs one per step")
      .check(std::is_sorted(m.step_ends_ns.begin(), m.step_ends_ns.end()), "step_ends_ns",
             m.step_ends_ns.size(), "entries, must be ascending")
      .check(m.joined <= l.max_execute_items, "joined", m.joined, "exceeds max_execute_items")
      .check(m.kv_bytes_shared <= m.kv_bytes_sent, "kv_bytes_shared", m.kv_bytes_shared,
             "exceeds kv_bytes_sent")
      .check(m.kv_bytes_copied <= m.kv_bytes_sent, "kv_bytes_copied", m.kv_bytes_copied,
             "exceeds kv_bytes_sent")
      .limit(m.refused.size(), l.max_execute_items, "refused");
  for (std::size_t i = 0; i < m.refused.size() && c.ok(); ++i) {
    const std::string at = "refused[" + std::to_string(i) + "]";
    const item_refusal& r = m.refused[i];
    c.check(i == 0 || m.refused[i - 1].item < r.item, at + ".item", r.item,
            "must be above the previous refusal's")
        .check(r.item < l.max_execute_items, at + ".item", r.item, "exceeds max_execute_items")
        .required(r.reason, at + ".reason")
        .text(r.reason, l.max_text_bytes, at + ".reason");
  }
  return std::move(c).done();
}

}  // namespace accellm::messages
