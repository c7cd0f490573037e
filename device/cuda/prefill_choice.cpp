#include "device/cuda/prefill_choice.hpp"

#include "device/cuda/candidate_check.hpp"
#include "device/cuda/check.hpp"
#include "device/cuda/fill_uniform.cuh"
#include "device/cuda/runtime.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace accellm::device::cuda {
namespace {

constexpr double agree_rtol = 2e-2;  // of max |rows64 output|; see the header
constexpr float clear_win = 0.97f;

// The probe's prompt as tiles of kernel k's height, longest first (as
// cuda_backend orders them).
std::vector<prefill_tile> probe_tiles(prefill_kernel k, std::uint32_t tokens) {
  std::vector<prefill_tile> t;
  append_prefill_tiles(t, k, 0, tokens, 0, 0);
  sort_longest_first(t);
  return t;
}

// max |got - ref| / max |ref|; infinity when any value is not finite.
double max_rel_diff(const std::vector<float>& got, const std::vector<float>& ref) {
  const deviation d = deviation_of(got, ref);
  return d.finite ? d.max_diff / std::max(d.max_ref, 1e-30) : INFINITY;
}

// Two back-to-back launches per sample (median_launch_ms).
constexpr int runs_per_sample = 2;

// The probe's device memory, freed when it goes out of scope.
struct probe {
  device_buffer<__nv_bfloat16> q, pool, out64, out128;
  device_buffer<std::int32_t> table;
  device_buffer<prefill_tile> tiles64, tiles128;
  prefill_attention_args a64, a128;
};

result<probe> make_probe(const attn_shape& shape, std::uint32_t block_tokens, std::uint32_t tokens,
                         cudaStream_t s) {
  probe p;
  const std::uint32_t blocks = (tokens + block_tokens - 1) / block_tokens;
  kv_pool_view kv{nullptr, 1, block_tokens, shape.kv_width(), nullptr, blocks};
  const std::size_t q_elems = std::size_t{tokens} * shape.q_width();
  ACCELLM_TRY_ASSIGN(p.q, device_buffer<__nv_bfloat16>::allocate(q_elems));
  ACCELLM_TRY_ASSIGN(p.out64, device_buffer<__nv_bfloat16>::allocate(q_elems));
  ACCELLM_TRY_ASSIGN(p.out128, device_buffer<__nv_bfloat16>::allocate(q_elems));
  ACCELLM_TRY_ASSIGN(p.pool, device_buffer<__nv_bfloat16>::allocate(blocks * kv.block_elems()));
  std::vector<std::int32_t> table(blocks);
  for (std::uint32_t i = 0; i < blocks; ++i) table[i] = static_cast<std::int32_t>(blocks - 1 - i);
  const auto t64 = probe_tiles(prefill_kernel::rows64, tokens);
  const auto t128 = probe_tiles(prefill_kernel::rows128, tokens);
  ACCELLM_TRY_ASSIGN(p.table, device_buffer<std::int32_t>::allocate(blocks));
  ACCELLM_TRY_ASSIGN(p.tiles64, device_buffer<prefill_tile>::allocate(t64.size()));
  ACCELLM_TRY_ASSIGN(p.tiles128, device_buffer<prefill_tile>::allocate(t128.size()));
  ACCELLM_TRY(p.table.upload(table.data(), s));
  ACCELLM_TRY(p.tiles64.upload(t64.data(), s));
  ACCELLM_TRY(p.tiles128.upload(t128.data(), s));
  ACCELLM_TRY(fill_uniform(p.q.data(), p.q.size(), 0x9a11, 2.0f, s));
  ACCELLM_TRY(fill_uniform(p.pool.data(), p.pool.size(), 0x9a12, 1.0f, s));
  // All ones bits (bf16 NaN): a row a kernel fails to write is not finite.
  ACCELLM_CUDA_TRY(cudaMemsetAsync(p.out64.data(), 0xff, p.out64.bytes(), s));
  ACCELLM_CUDA_TRY(cudaMemsetAsync(p.out128.data(), 0xff, p.out128.bytes(), s));
  ACCELLM_CUDA_TRY(cudaStreamSynchronize(s));  // the host vectors go out of scope
  kv.pool = p.pool.data();
  kv.tables = p.table.data();
  p.a64 = prefill_attention_args{p.q.data(),
                                 p.out64.data(),
                                 p.tiles64.data(),
                                 static_cast<std::uint32_t>(t64.size()),
                                 shape,
                                 kv,
                                 0,
                                 prefill_kernel::rows64};
  p.a128 = p.a64;
  p.a128.out = p.out128.data();
  p.a128.tiles = p.tiles128.data();
  p.a128.n_tiles = static_cast<std::uint32_t>(t128.size());
  p.a128.kernel = prefill_kernel::rows128;
  return p;
}

// Both kernels' times into c; either is negative when its launches failed.
status time_both(const probe& p, cudaStream_t s, prefill_fn candidate, prefill_choice& c) {
  event e0, e1;
  ACCELLM_TRY_ASSIGN(e0, event::create());
  ACCELLM_TRY_ASSIGN(e1, event::create());
  c.rows64_ms = median_launch_ms(s, e0.get(), e1.get(), runs_per_sample,
                                 [&] { return prefill_attention(p.a64, s).ok(); });
  c.rows128_ms = median_launch_ms(s, e0.get(), e1.get(), runs_per_sample,
                                  [&] { return candidate(p.a128, s).ok(); });
  cudaGetLastError();  // a refused launch leaves no sticky error; clear it
  ACCELLM_CUDA_TRY(cudaStreamSynchronize(s));
  return {};
}

}  // namespace

std::string describe(const prefill_choice& c) {
  char buf[160];
  if (c.rows64_ms > 0.0f && c.rows128_ms > 0.0f)
    std::snprintf(buf, sizeof buf, " (rows128 %.3f ms vs rows64 %.3f ms on %u tokens)",
                  c.rows128_ms, c.rows64_ms, c.tokens);
  else
    buf[0] = '\0';
  return std::string{prefill_kernel_name(c.kernel)} + ": " + c.note + buf;
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
  ACCELLM_TRY(prefill_attention(p.a64, s));  // the reference must run
  if (status st = o.candidate(p.a128, s); !st) {
    cudaGetLastError();  // a refused launch leaves no sticky error; clear it
    c.note = "rows128 failed to launch (" + st.err().message() + "), not used";
    return c;
  }
  // A fault in either kernel is sticky: the context is lost, an error.
  ACCELLM_CUDA_TRY(cudaStreamSynchronize(s));
  std::vector<float> ref, got;
  ACCELLM_TRY_ASSIGN(ref, download_floats(p.out64.data(), p.out64.size(), gemm_out::bf16, s));
  ACCELLM_TRY_ASSIGN(got, download_floats(p.out128.data(), p.out128.size(), gemm_out::bf16, s));
  c.max_diff = max_rel_diff(got, ref);
  char diff[64];
  std::snprintf(diff, sizeof diff, "max diff %.2e of max |out|", c.max_diff);
  if (!(c.max_diff <= agree_rtol)) {
    c.note = std::string{"rows128 disagrees with rows64 ("} + diff + "), not used";
    return c;
  }
  c.verified = true;
  if (o.rule == prefill_rule::rows128_if_verified) {
    c.kernel = prefill_kernel::rows128;
    c.note = std::string{"verified ("} + diff + "), kept by rule";
    return c;
  }
  ACCELLM_TRY(time_both(p, s, o.candidate, c));
  const bool win =
      c.rows128_ms > 0.0f && c.rows64_ms > 0.0f && c.rows128_ms < clear_win * c.rows64_ms;
  if (win) c.kernel = prefill_kernel::rows128;
  c.note = std::string{"verified ("} + diff + "), " + (win ? "a clear win" : "not a clear win");
  return c;
}

}  // namespace accellm::device::cuda
