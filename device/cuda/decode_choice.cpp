#include "device/cuda/decode_choice.hpp"

#include "device/cuda/candidate_check.hpp"
#include "device/cuda/check.hpp"
#include "device/cuda/fill_uniform.cuh"
#include "device/cuda/runtime.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

namespace accellm::device::cuda {
namespace {

constexpr double agree_rtol = 2e-2;  // of max |default output|; see the header
constexpr int runs_per_sample = 2;   // back-to-back launches per sample (median_launch_ms)

// The probe's device memory, freed when it goes out of scope. The default
// tile writes `ref`; a candidate writes `out`.
struct probe {
  device_buffer<__nv_bfloat16> q, pool, ref, out;
  device_buffer<std::int32_t> tables;
  device_buffer<decode_item> items;
  device_buffer<float> partial;
  decode_attention_args a;  // the reference's arguments
};

result<probe> make_probe(const attn_shape& shape, std::uint32_t block_tokens, std::uint32_t items,
                         std::uint32_t context, std::uint32_t target_blocks, cudaStream_t s) {
  probe p;
  const std::uint32_t per_item = context / block_tokens, blocks = items * per_item;
  kv_pool_view kv{nullptr, 1, block_tokens, shape.kv_width(), nullptr, per_item, blocks};
  const std::size_t q_elems = std::size_t{items} * shape.q_width();
  const std::uint32_t splits =
      target_blocks == 0 ? 1 : choose_decode_splits(items, shape.kv_heads, context, target_blocks);
  ACCELLM_TRY_ASSIGN(p.q, device_buffer<__nv_bfloat16>::allocate(q_elems));
  ACCELLM_TRY_ASSIGN(p.ref, device_buffer<__nv_bfloat16>::allocate(q_elems));
  ACCELLM_TRY_ASSIGN(p.out, device_buffer<__nv_bfloat16>::allocate(q_elems));
  ACCELLM_TRY_ASSIGN(p.pool, device_buffer<__nv_bfloat16>::allocate(blocks * kv.block_elems()));
  ACCELLM_TRY_ASSIGN(p.tables, device_buffer<std::int32_t>::allocate(blocks));
  ACCELLM_TRY_ASSIGN(p.items, device_buffer<decode_item>::allocate(items));
  ACCELLM_TRY_ASSIGN(p.partial,
                     device_buffer<float>::allocate(std::max<std::uint64_t>(
                         1, decode_partial_floats(items, shape.heads, splits, shape.head_dim))));
  // Blocks handed out backwards, as a pool that has been in use would.
  std::vector<std::int32_t> tables(blocks);
  for (std::uint32_t i = 0; i < blocks; ++i) tables[i] = static_cast<std::int32_t>(blocks - 1 - i);
  // Lengths up to 60 short of `context`, so that most end inside a stage
  // of every tile: the check covers the ragged ends, not only whole stages.
  std::vector<decode_item> list(items);
  for (std::uint32_t i = 0; i < items; ++i) {
    const std::uint32_t short_by = (i * 13) % std::min(61u, context);
    list[i] = decode_item{static_cast<std::int32_t>(i), static_cast<std::int32_t>(i),
                          static_cast<std::int32_t>(context - short_by)};
  }
  ACCELLM_TRY(p.tables.upload(tables.data(), s));
  ACCELLM_TRY(p.items.upload(list.data(), s));
  ACCELLM_TRY(fill_uniform(p.q.data(), p.q.size(), 0xdec1, 2.0f, s));
  ACCELLM_TRY(fill_uniform(p.pool.data(), p.pool.size(), 0xdec2, 1.0f, s));
  // All ones bits (bf16 NaN): a row the reference fails to write is not finite.
  ACCELLM_CUDA_TRY(cudaMemsetAsync(p.ref.data(), 0xff, p.ref.bytes(), s));
  ACCELLM_CUDA_TRY(cudaStreamSynchronize(s));  // the host vectors go out of scope
  kv.pool = p.pool.data();
  kv.tables = p.tables.data();
  p.a.q = p.q.data();
  p.a.out = p.ref.data();
  p.a.items = p.items.data();
  p.a.n_items = items;
  p.a.shape = shape;
  p.a.kv = kv;
  p.a.layer = 0;
  p.a.splits = splits;
  p.a.partial = p.partial.data();
  p.a.tile = decode_tile::keys32_stages2;
  return p;
}

// Runs tile t on the probe and checks it against `ref`, then times it.
// Errors only for the probe's own calls and faults (sticky).
result<decode_trial> try_tile(probe& p, decode_tile t, const std::vector<float>& ref,
                              decode_fn candidate, cudaStream_t s) {
  decode_trial trial;
  trial.tile = t;
  decode_attention_args a = p.a;
  a.out = p.out.data();
  a.tile = t;
  ACCELLM_CUDA_TRY(cudaMemsetAsync(p.out.data(), 0xff, p.out.bytes(), s));
  candidate_verdict v;
  ACCELLM_TRY_ASSIGN(v, check_candidate([&] { return candidate(a, s); }, p.out.data(), p.out.size(),
                                        ref, agree_rtol, "32x2", s));
  trial.verified = v.verified;
  trial.max_diff = v.max_diff;
  trial.note = std::move(v.note);
  if (!trial.verified) return trial;
  ACCELLM_TRY_ASSIGN(trial.ms,
                     median_ms_on(s, runs_per_sample, [&] { return candidate(a, s).ok(); }));
  return trial;
}

}  // namespace

std::optional<decode_tile_rule> decode_tile_rule_named(std::string_view name) noexcept {
  if (name == "timed") return decode_tile_rule{};
  if (const auto t = decode_tile_named(name)) return decode_tile_rule{*t};
  return std::nullopt;
}

std::string describe(const decode_choice& c) {
  std::vector<trial_summary> trials;
  for (const decode_trial& t : c.trials)
    trials.push_back({decode_tile_name(t.tile), t.verified, t.ms, t.note});
  char versus[96] = "";
  if (c.default_ms > 0.0f)
    std::snprintf(versus, sizeof versus, "vs 32x2 %.3f ms on %u x up to %u positions", c.default_ms,
                  c.items, c.context);
  return describe_choice(decode_tile_name(c.tile), c.note, trials, versus);
}

result<decode_choice> choose_decode_tile(const attn_shape& shape, std::uint32_t block_tokens,
                                         cudaStream_t s, const decode_probe_options& o) {
  decode_choice c;
  if (o.rule.fixed) {
    c.tile = *o.rule.fixed;
    c.note = "by rule, no probe";
    return c;
  }
  if (o.items == 0 || block_tokens == 0 || o.candidate == nullptr)
    return fail(errc::invalid_argument, "decode probe: items, block_tokens, candidate needed");
  // The other tiles exist at head_dim 64 and 128 (decode_tile_built); the
  // reference, 32x2 on mma, has no head_dim above 128.
  std::vector<decode_tile> tiles;
  for (decode_tile t : decode_tiles)
    if (t != decode_tile::keys32_stages2 && decode_tile_built(t, shape.head_dim) &&
        shape.head_dim <= 128)
      tiles.push_back(t);
  if (tiles.empty()) {
    c.note = "the only tile at head_dim " + std::to_string(shape.head_dim) + ", no probe";
    return c;
  }
  // Positions per request: o.context, fewer to stay within max_kv_bytes,
  // whole blocks.
  const std::uint64_t per_position = std::uint64_t{o.items} * shape.kv_width() * 2 * 2;
  std::uint64_t context = std::min<std::uint64_t>(o.context, o.max_kv_bytes / per_position);
  context -= context % block_tokens;
  if (context == 0) {
    c.note = "no room for the probe within its limit, 32x2 kept";
    return c;
  }
  auto made = make_probe(shape, block_tokens, o.items, static_cast<std::uint32_t>(context),
                         o.target_blocks, s);
  if (!made) {
    if (made.err().code() != errc::out_of_memory) return std::move(made).err();
    cudaGetLastError();  // an allocation that failed leaves no sticky error
    c.note = "no memory for the probe (" + made.err().message() + "), 32x2 kept";
    return c;
  }
  probe& p = *made;
  c.items = o.items;
  c.context = static_cast<std::uint32_t>(context);
  ACCELLM_TRY(decode_attention(p.a, s));  // the reference must run
  std::vector<float> ref;
  ACCELLM_TRY_ASSIGN(ref, download_floats(p.ref.data(), p.ref.size(), gemm_out::bf16, s));
  ACCELLM_TRY_ASSIGN(c.default_ms, median_ms_on(s, runs_per_sample,
                                                [&] { return decode_attention(p.a, s).ok(); }));
  for (const decode_tile t : tiles) {
    decode_trial trial;
    ACCELLM_TRY_ASSIGN(trial, try_tile(p, t, ref, o.candidate, s));
    c.trials.push_back(std::move(trial));
  }
  const decode_trial* best = fastest_verified(c.trials);
  if (best == nullptr) {
    c.note = "no other tile verified and timed, 32x2 kept";
  } else if (clear_win(best->ms, c.default_ms)) {
    c.tile = best->tile;
    c.note = best->note + ", a clear win";
  } else {
    c.note = std::string{"no clear win (best: "} + decode_tile_name(best->tile) + "), 32x2 kept";
  }
  return c;
}

}  // namespace accellm::device::cuda
