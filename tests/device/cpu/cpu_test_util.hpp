// Helpers shared by the cpu backend tests: model shapes, prompts drawn from a
// seed, batch items, and a "generate alone" driver that is the ground truth
// the batched, chunked and replicated runs are compared against.
#pragma once

#include "common/types.hpp"
#include "device/backend.hpp"
#include "device/cpu/cpu_backend.hpp"
#include "device/cpu/weights.hpp"
#include "device/model_spec.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace accellm::device::cpu::test {

/// The catalogue's "cpu-tiny" shape (GQA: 4 query heads, 2 KV heads).
inline model_spec tiny_spec() {
  return *find_model("cpu-tiny");
}

/// The catalogue's "cpu-small" shape (GQA: 8 query heads, 2 KV heads).
inline model_spec small_spec() {
  return *find_model("cpu-small");
}

/// Builds a backend or fails the test.
inline std::unique_ptr<cpu_backend> make(const model_spec& spec, std::uint64_t seed = 1,
                                         std::uint64_t kv_blocks = 256,
                                         std::uint32_t block_tokens = 16) {
  cpu_options o;
  o.seed = seed;
  o.kv_blocks = kv_blocks;
  o.block_tokens = block_tokens;
  auto b = make_cpu_backend(spec, o);
  EXPECT_TRUE(b.ok()) << (b.ok() ? "" : b.err().what());
  return b.ok() ? std::move(b).value() : nullptr;
}

/// `n` token ids in [0, vocab) drawn from `seed`.
inline std::vector<token_id> prompt(std::uint64_t seed, std::uint32_t n, std::uint32_t vocab) {
  splitmix64 rng{seed * 7919 + 13};
  std::vector<token_id> out(n);
  for (token_id& t : out) t = static_cast<token_id>(rng.next() % vocab);
  return out;
}

inline batch_item prefill(request_id r, std::uint32_t context, std::vector<token_id> tokens,
                          bool wants_output = true) {
  batch_item it;
  it.request = r;
  it.kind = phase::prefill;
  it.context = context;
  it.num_tokens = static_cast<std::uint32_t>(tokens.size());
  it.tokens = std::move(tokens);
  it.wants_output = wants_output;
  return it;
}

inline batch_item decode(request_id r, std::uint32_t context, token_id token) {
  batch_item it;
  it.request = r;
  it.kind = phase::decode;
  it.context = context;
  it.num_tokens = 1;
  it.tokens = {token};
  return it;
}

/// Runs a batch that must succeed and returns its next tokens.
inline std::vector<token_id> run_ok(backend& b, batch bt) {
  auto r = b.run(bt);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().what());
  return r.ok() ? r->next_tokens : std::vector<token_id>(bt.items.size(), no_token);
}

/// Decodes `steps` tokens of a request whose last token is `last` and whose
/// cache holds `context` tokens, one request per batch. Returns the tokens.
inline std::vector<token_id> decode_alone(backend& b, request_id r, std::uint32_t context,
                                          token_id last, int steps) {
  std::vector<token_id> out;
  for (int i = 0; i < steps; ++i) {
    last = run_ok(b, batch{{decode(r, context++, last)}})[0];
    out.push_back(last);
  }
  return out;
}

/// Prefills `p` in one piece, then decodes `steps` tokens, alone. Returns the
/// first token followed by the decoded ones (steps + 1 tokens).
inline std::vector<token_id> generate_alone(backend& b, request_id r,
                                            const std::vector<token_id>& p, int steps) {
  const token_id first = run_ok(b, batch{{prefill(r, 0, p)}})[0];
  std::vector<token_id> out{first};
  const auto rest = decode_alone(b, r, static_cast<std::uint32_t>(p.size()), first, steps);
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

/// Every byte of a request's KV, all layers, all cached tokens.
inline std::vector<std::byte> all_kv(backend& b, request_id r) {
  const std::uint32_t n = b.cached_tokens(r);
  auto c = b.export_kv(r, index_range{0, b.model().layers}, index_range{0, n});
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.err().what());
  return c.ok() ? c->data.to_vector() : std::vector<std::byte>{};
}

}  // namespace accellm::device::cpu::test
