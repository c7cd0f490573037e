#include "device/cuda/prefill_choice.hpp"

#include "device/cuda/candidate_check.hpp"
#include "device/cuda/check.hpp"
#include "device/cuda/fill_uniform.cuh"
#include "device/cuda/runtime.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

namespace accellm::device::cuda {
namespace {

constexpr double agree_rtol = 2e-2;  // of max |rows64 output|; see the header

// The probe's prompt as tiles of kernel k's height, longest first (as
// cuda_backend orders them).
std::vector<prefill_tile> probe_tiles(prefill_kernel k, std::uint32_t tokens) {
  std::vector<prefill_tile> t;
  append_prefill_tiles(t, k, 0, tokens, 0, 0);
  sort_longest_first(t);
  return t;
}

// Two back-to-back launches per sample (median_launch_ms).
constexpr int runs_per_sample = 2;

// The probe's device memory, freed when it goes out of scope. The reference
// (rows64) writes `ref` from its own tiles; a candidate writes `out` from
// `cand_tiles`, re-cut at its height before each candidate.
struct probe {
  device_buffer<__nv_bfloat16> q, pool, ref, out;
  device_buffer<std::int32_t> table;
  device_buffer<prefill_tile> tiles, cand_tiles;
  prefill_attention_args a;  // the reference's arguments
  std::uint32_t tokens = 0;
};

result<probe> make_probe(const attn_shape& shape, std::uint32_t block_tokens, std::uint32_t tokens,
                         cudaStream_t s) {
  probe p;
  p.tokens = tokens;
  const std::uint32_t blocks = (tokens + block_tokens - 1) / block_tokens;
  kv_pool_view kv{nullptr, 1, block_tokens, shape.kv_width(), nullptr, blocks, blocks};
  const std::size_t q_elems = std::size_t{tokens} * shape.q_width();
  ACCELLM_TRY_ASSIGN(p.q, device_buffer<__nv_bfloat16>::allocate(q_elems));
  ACCELLM_TRY_ASSIGN(p.ref, device_buffer<__nv_bfloat16>::allocate(q_elems));
  ACCELLM_TRY_ASSIGN(p.out, device_buffer<__nv_bfloat16>::allocate(q_elems));
  ACCELLM_TRY_ASSIGN(p.pool, device_buffer<__nv_bfloat16>::allocate(blocks * kv.block_elems()));
  std::vector<std::int32_t> table(blocks);
  for (std::uint32_t i = 0; i < blocks; ++i) table[i] = static_cast<std::int32_t>(blocks - 1 - i);
  const auto t64 = probe_tiles(prefill_kernel::rows64, tokens);  // the most tiles of any kernel
  ACCELLM_TRY_ASSIGN(p.table, device_buffer<std::int32_t>::allocate(blocks));
  ACCELLM_TRY_ASSIGN(p.tiles, device_buffer<prefill_tile>::allocate(t64.size()));
  ACCELLM_TRY_ASSIGN(p.cand_tiles, device_buffer<prefill_tile>::allocate(t64.size()));
  ACCELLM_TRY(p.table.upload(table.data(), s));
  ACCELLM_TRY(p.tiles.upload(t64.data(), s));
  ACCELLM_TRY(fill_uniform(p.q.data(), p.q.size(), 0x9a11, 2.0f, s));
  ACCELLM_TRY(fill_uniform(p.pool.data(), p.pool.size(), 0x9a12, 1.0f, s));
  // All ones bits (bf16 NaN): a row the reference fails to write is not finite.
  ACCELLM_CUDA_TRY(cudaMemsetAsync(p.ref.data(), 0xff, p.ref.bytes(), s));
  ACCELLM_CUDA_TRY(cudaStreamSynchronize(s));  // the host vectors go out of scope
  kv.pool = p.pool.data();
  kv.tables = p.table.data();
  p.a = prefill_attention_args{p.q.data(),
                               p.ref.data(),
                               p.tiles.data(),
                               static_cast<std::uint32_t>(t64.size()),
                               shape,
                               kv,
                               0,
                               prefill_kernel::rows64};
  return p;
}

// Kernel k's arguments on the probe: its tiles in cand_tiles, `out` back to
// NaN bits so that a row it fails to write is not finite.
result<prefill_attention_args> candidate_args(probe& p, prefill_kernel k, cudaStream_t s) {
  const auto tiles = probe_tiles(k, p.tokens);
  ACCELLM_CUDA_TRY(cudaMemcpyAsync(p.cand_tiles.data(), tiles.data(),
                                   tiles.size() * sizeof(prefill_tile), cudaMemcpyHostToDevice, s));
  ACCELLM_CUDA_TRY(cudaMemsetAsync(p.out.data(), 0xff, p.out.bytes(), s));
  ACCELLM_CUDA_TRY(cudaStreamSynchronize(s));  // `tiles` goes out of scope
  prefill_attention_args a = p.a;
  a.out = p.out.data();
  a.tiles = p.cand_tiles.data();
  a.n_tiles = static_cast<std::uint32_t>(tiles.size());
  a.kernel = k;
  return a;
}

// Runs candidate k on the probe and checks it against `ref` (timing it when
// `timed`). Errors only for the probe's own calls and faults (sticky).
result<prefill_trial> try_candidate(probe& p, prefill_kernel k, const std::vector<float>& ref,
                                    prefill_fn candidate, bool timed, cudaStream_t s) {
  prefill_trial t;
  t.kernel = k;
  prefill_attention_args a;
  ACCELLM_TRY_ASSIGN(a, candidate_args(p, k, s));
  candidate_verdict v;
  ACCELLM_TRY_ASSIGN(v, check_candidate([&] { return candidate(a, s); }, p.out.data(), p.out.size(),
                                        ref, agree_rtol, "rows64", s));
  t.verified = v.verified;
  t.max_diff = v.max_diff;
  t.note = std::move(v.note);
  if (!t.verified) return t;
  if (timed)
    ACCELLM_TRY_ASSIGN(t.ms,
                       median_ms_on(s, runs_per_sample, [&] { return candidate(a, s).ok(); }));
  return t;
}

// The candidates a rule probes.
std::vector<prefill_kernel> candidates_of(prefill_rule r) {
  switch (r) {
    case prefill_rule::rows128_if_verified:
      return {prefill_kernel::rows128};
    case prefill_rule::wgmma64_if_verified:
      return {prefill_kernel::wgmma64};
    case prefill_rule::wgmma128_if_verified:
      return {prefill_kernel::wgmma128};
    case prefill_rule::tma128_if_verified:
      return {prefill_kernel::tma128};
    case prefill_rule::tma128pp_if_verified:
      return {prefill_kernel::tma128pp};
    case prefill_rule::tma128n_if_verified:
      return {prefill_kernel::tma128n};
    case prefill_rule::timed:
      return {prefill_kernel::rows128, prefill_kernel::wgmma64,  prefill_kernel::wgmma128,
              prefill_kernel::tma128,  prefill_kernel::tma128pp, prefill_kernel::tma128n};
    case prefill_rule::rows64:
      break;
  }
  return {};
}

}  // namespace

const prefill_trial* prefill_choice::trial(prefill_kernel k) const noexcept {
  for (const prefill_trial& t : trials)
    if (t.kernel == k) return &t;
  return nullptr;
}

std::optional<prefill_rule> prefill_rule_named(std::string_view name) noexcept {
  if (name == "timed") return prefill_rule::timed;
  if (name == "rows64") return prefill_rule::rows64;
  if (name == "rows128") return prefill_rule::rows128_if_verified;
  if (name == "wgmma64") return prefill_rule::wgmma64_if_verified;
  if (name == "wgmma128") return prefill_rule::wgmma128_if_verified;
  if (name == "tma128") return prefill_rule::tma128_if_verified;
  if (name == "tma128pp") return prefill_rule::tma128pp_if_verified;
  if (name == "tma128n") return prefill_rule::tma128n_if_verified;
  return std::nullopt;
}

std::string describe(const prefill_choice& c) {
  std::vector<trial_summary> trials;
  for (const prefill_trial& t : c.trials)
    trials.push_back({prefill_kernel_name(t.kernel), t.verified, t.ms, t.note});
  char versus[96] = "";
  if (c.rows64_ms > 0.0f)
    std::snprintf(versus, sizeof versus, "vs rows64 %.3f ms on %u tokens", c.rows64_ms, c.tokens);
  return describe_choice(prefill_kernel_name(c.kernel), c.note, trials, versus);
}

result<prefill_choice> choose_prefill_kernel(const attn_shape& shape, std::uint32_t block_tokens,
                                             cudaStream_t s, const prefill_probe_options& o) {
  prefill_choice c;
  if (o.rule == prefill_rule::rows64) {
    c.note = "by rule, no probe";
    return c;
  }
  if (o.tokens == 0 || block_tokens == 0 || o.candidate == nullptr)
    return fail(errc::invalid_argument, "prefill probe: tokens, block_tokens, candidate needed");
  probe p;
  ACCELLM_TRY_ASSIGN(p, make_probe(shape, block_tokens, o.tokens, s));
  c.tokens = o.tokens;
  ACCELLM_TRY(prefill_attention(p.a, s));  // the reference must run
  std::vector<float> ref;
  ACCELLM_TRY_ASSIGN(ref, download_floats(p.ref.data(), p.ref.size(), gemm_out::bf16, s));
  const bool timed = o.rule == prefill_rule::timed;
  if (timed)
    ACCELLM_TRY_ASSIGN(c.rows64_ms, median_ms_on(s, runs_per_sample,
                                                 [&] { return prefill_attention(p.a, s).ok(); }));
  for (const prefill_kernel k : candidates_of(o.rule)) {
    prefill_trial t;
    ACCELLM_TRY_ASSIGN(t, try_candidate(p, k, ref, o.candidate, timed, s));
    c.trials.push_back(std::move(t));
  }
  const prefill_trial* best = nullptr;
  if (timed) {
    best = fastest_verified(c.trials);
  } else {  // the rule's one candidate, untimed, kept once verified
    const auto it = std::find_if(c.trials.begin(), c.trials.end(),
                                 [](const prefill_trial& t) { return t.verified; });
    best = it == c.trials.end() ? nullptr : &*it;
  }
  if (best == nullptr) {
    c.note = "no candidate verified, rows64 kept";
  } else if (!timed) {
    c.kernel = best->kernel;
    c.note = best->note + ", kept by rule";
  } else if (clear_win(best->ms, c.rows64_ms)) {
    c.kernel = best->kernel;
    c.note = best->note + ", a clear win";
  } else {
    c.note = std::string{"no clear win (best: "} + prefill_kernel_name(best->kernel) + ")";
  }
  return c;
}

}  // namespace accellm::device::cuda
