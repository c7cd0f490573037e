// The two paths of the elementwise kernels (device/cuda/vec.cuh): 16-byte
// accesses for widths that are multiples of 8 on aligned pointers, one element
// at a time otherwise. Each kernel runs at real widths (Llama hidden, ffn,
// head_dim 128), at odd widths, with one pointer at a time moved off 16-byte
// alignment, and against device/cpu's kernels: rope_append and embed bit for
// bit (RoPE has no contraction on either side), swiglu's two paths bit for
// bit against each other and within 1e-2 of the CPU (__expf), rmsnorm within
// 1e-2 relative per element (bf16 output, fp32 sums in another order).
#include "device/cpu/kernels.hpp"
#include "device/cuda/rmsnorm.cuh"
#include "device/cuda/rope_append.cuh"
#include "device/cuda/sampling.cuh"
#include "device/cuda/swiglu.cuh"
#include "tests/device/cuda/cuda_test_util.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace accellm::device::cuda {
namespace {

using namespace test;

// A device copy of `v` that starts `pad` elements into its buffer, so that
// data() + pad is misaligned for pad = 1.
template <class T>
struct padded {
  device_buffer<T> buf;
  std::size_t pad = 0;

  padded(const std::vector<T>& v, std::size_t p) : pad(p) {
    std::vector<T> host(p + v.size());
    std::copy(v.begin(), v.end(), host.begin() + static_cast<std::ptrdiff_t>(p));
    buf = to_device(host);
  }
  T* data() const { return buf.data() + pad; }
  std::vector<T> host() const {
    auto all = to_host(buf);
    return {all.begin() + static_cast<std::ptrdiff_t>(pad), all.end()};
  }
};

// Which pointer a case moves off alignment (none: the vector path where the
// width allows it); kv is rope_append's pool.
enum class skew { none, in, aux, out, kv };

std::size_t pad_of(skew s, skew which) {
  return s == which ? 1 : 0;
}

const char* name(skew s) {
  switch (s) {
    case skew::none:
      return "aligned";
    case skew::in:
      return "input misaligned";
    case skew::aux:
      return "gain/table misaligned";
    case skew::out:
      return "output misaligned";
    case skew::kv:
      return "KV pool misaligned";
  }
  return "?";
}

TEST(cuda_elementwise, rmsnorm_paths_match_cpu) {
  ACCELLM_REQUIRE_GPU();
  // 4096/5120/8192: Llama hidden; 1000: a block with idle slots; 40000: past
  // what the registers hold (the rest is read twice); 100, 5001: not
  // multiples of 8.
  for (std::uint32_t n : {8u, 100u, 1000u, 4096u, 5001u, 5120u, 8192u, 40000u})
    for (skew sk : {skew::none, skew::in, skew::aux, skew::out}) {
      const std::uint32_t rows = 3;
      const std::uint64_t seed = 100 + n;
      SCOPED_TRACE("n " + std::to_string(n) + ", " + name(sk) + ", seed " + std::to_string(seed));
      auto x = random_vector(4 * n, seed, 3.0f);
      auto g = to_bf16(random_vector(n, seed + 1, 1.0f));
      padded<float> dx(x, pad_of(sk, skew::in));
      padded<__nv_bfloat16> dg(g, pad_of(sk, skew::aux));
      padded<__nv_bfloat16> dout(std::vector<__nv_bfloat16>(rows * n), pad_of(sk, skew::out));
      const std::vector<std::int32_t> gather{3, 0, 2};
      auto dgather = to_device(gather);
      ASSERT_TRUE(
          rmsnorm(dx.data(), dg.data(), rows, n, 1e-5f, dgather.data(), dout.data(), nullptr).ok());
      const auto out = to_float(dout.host());
      const auto gf = to_float(g);
      std::vector<float> ref(n);
      for (std::uint32_t r = 0; r < rows; ++r) {
        cpu::rmsnorm(x.data() + static_cast<std::size_t>(gather[r]) * n, gf.data(), n, 1e-5f,
                     ref.data());
        for (std::uint32_t i = 0; i < n; ++i)
          ASSERT_NEAR(out[r * n + i], ref[i], 1e-2 * std::fabs(ref[i]) + 1e-6)
              << "row " << r << " element " << i;
      }
    }
}

TEST(cuda_elementwise, swiglu_paths_agree_bit_for_bit_and_match_cpu) {
  ACCELLM_REQUIRE_GPU();
  struct shape {
    std::uint32_t rows, f;
  };
  // 11008 / 14336: Llama ffn; 36, 333: not multiples of 8; 70000 rows: more
  // than one grid row per block row.
  for (shape s : {shape{3, 36}, shape{3, 333}, shape{2, 4096}, shape{3, 11008}, shape{1, 14336},
                  shape{70000, 16}}) {
    const std::uint64_t seed = 200 + s.f;
    SCOPED_TRACE("rows " + std::to_string(s.rows) + ", f " + std::to_string(s.f) + ", seed " +
                 std::to_string(seed));
    const auto gu = to_bf16(random_vector(std::size_t{s.rows} * 2 * s.f, seed, 4.0f));
    const auto guf = to_float(gu);
    std::vector<float> ref(std::size_t{s.rows} * s.f);
    for (std::size_t r = 0; r < s.rows; ++r)
      cpu::silu_mul(guf.data() + r * 2 * s.f, guf.data() + r * 2 * s.f + s.f, s.f,
                    ref.data() + r * s.f);
    std::vector<std::vector<float>> outs;
    for (skew sk : {skew::none, skew::in, skew::out}) {
      SCOPED_TRACE(name(sk));
      padded<__nv_bfloat16> dgu(gu, pad_of(sk, skew::in));
      padded<__nv_bfloat16> dout(std::vector<__nv_bfloat16>(ref.size()), pad_of(sk, skew::out));
      ASSERT_TRUE(swiglu(dgu.data(), s.rows, s.f, dout.data(), nullptr).ok());
      outs.push_back(to_float(dout.host()));
      for (std::size_t i = 0; i < ref.size(); ++i)
        ASSERT_NEAR(outs.back()[i], ref[i], 1e-2 * (1 + std::fabs(ref[i]))) << "element " << i;
    }
    for (std::size_t k = 1; k < outs.size(); ++k)
      for (std::size_t i = 0; i < ref.size(); ++i)
        ASSERT_EQ(outs[0][i], outs[k][i]) << "aligned against case " << k << ", element " << i;
  }
}

// rope_append over `rows` rows of two requests against cpu::rope, bit for bit:
// Q, and the whole pool (K/V rows where they belong, zeros elsewhere).
void check_rope(attn_shape shape, skew sk) {
  const std::uint32_t rows = 5, layers = 3, layer = 1, bt = 16, positions = 64;
  const std::uint32_t qw = shape.q_width(), kvw = shape.kv_width(), width = qw + 2 * kvw;
  const std::uint64_t seed = 300 + shape.heads * 1000 + shape.kv_heads * 10 + shape.head_dim;
  SCOPED_TRACE("shape " + std::to_string(shape.heads) + "/" + std::to_string(shape.kv_heads) + "/" +
               std::to_string(shape.head_dim) + ", " + name(sk) + ", seed " + std::to_string(seed));
  const std::vector<std::int32_t> pos{0, 17, 33, 5, 63}, slot{0, 0, 1, 1, 0};
  const std::uint32_t stride = 4;  // slot 0: blocks {3, 1, 0, 6}; slot 1: {2, 4, 5, 7}
  const std::vector<std::int32_t> tables{3, 1, 0, 6, 2, 4, 5, 7};
  const auto qkv_bf16 = to_bf16(random_vector(rows * width, seed, 2.0f));
  const auto qkv = to_float(qkv_bf16);
  const auto table = rope_table_host(positions, shape.head_dim, 10000.0);
  const std::size_t half_table = table.size() / 2;

  kv_pool_view kv{nullptr, layers, bt, kvw, nullptr, stride};
  const std::uint64_t pool_elems = 8 * kv.block_elems();
  const __nv_bfloat16 zero = __float2bfloat16(0.0f);
  padded<__nv_bfloat16> dpool(std::vector<__nv_bfloat16>(pool_elems, zero), pad_of(sk, skew::kv));
  auto dtables = to_device(tables);
  kv.pool = dpool.data();
  kv.tables = dtables.data();
  padded<__nv_bfloat16> dqkv(qkv_bf16, pad_of(sk, skew::in));
  padded<float> drope(table, pad_of(sk, skew::aux));
  padded<__nv_bfloat16> dq(std::vector<__nv_bfloat16>(rows * qw, zero), pad_of(sk, skew::out));
  auto dpos = to_device(pos);
  auto dslot = to_device(slot);
  ASSERT_TRUE(rope_append(dqkv.data(), rows, shape, row_tables{dpos.data(), dslot.data()},
                          drope.data(), drope.data() + half_table, dq.data(), kv, layer, nullptr)
                  .ok());
  const auto q = to_float(dq.host());
  const auto pool = to_float(dpool.host());

  const cpu::rope_table rt{shape.head_dim / 2u, table.data(), table.data() + half_table};
  kv_pool_view host_kv = kv;
  host_kv.tables = tables.data();
  std::vector<float> want_pool(pool_elems, 0.0f);
  for (std::uint32_t r = 0; r < rows; ++r) {
    std::vector<float> ref(qkv.begin() + r * width, qkv.begin() + (r + 1) * width);
    cpu::rope(ref.data(), shape.heads, pos[r], rt);
    cpu::rope(ref.data() + qw, shape.kv_heads, pos[r], rt);
    for (std::uint32_t i = 0; i < qw; ++i)
      ASSERT_EQ(q[r * qw + i], round_bf16(ref[i])) << "Q row " << r << " element " << i;
    const auto k_at = host_kv.row_offset(slot[r], layer, 0, pos[r]);
    const auto v_at = host_kv.row_offset(slot[r], layer, 1, pos[r]);
    for (std::uint32_t i = 0; i < kvw; ++i) {
      want_pool[k_at + i] = round_bf16(ref[qw + i]);
      want_pool[v_at + i] = ref[qw + kvw + i];  // already bf16 values
    }
  }
  for (std::size_t i = 0; i < pool_elems; ++i) ASSERT_EQ(pool[i], want_pool[i]) << "pool " << i;
}

TEST(cuda_elementwise, rope_append_paths_match_cpu_bit_for_bit) {
  ACCELLM_REQUIRE_GPU();
  // head_dim 128: Llama-2 (heads == kv_heads) and Llama-3 (GQA 4:1); 256 with
  // 144 heads: more units than a row's 16 blocks have threads; 16 and 32:
  // one and two vector units per half; 8 and 12: half not a multiple of 8.
  for (attn_shape shape :
       {attn_shape{32, 32, 128}, attn_shape{32, 8, 128}, attn_shape{128, 16, 256},
        attn_shape{6, 3, 16}, attn_shape{8, 2, 32}, attn_shape{4, 2, 8}, attn_shape{5, 5, 12}})
    ASSERT_NO_FATAL_FAILURE(check_rope(shape, skew::none));
  for (skew sk : {skew::in, skew::aux, skew::out, skew::kv})
    ASSERT_NO_FATAL_FAILURE(check_rope(attn_shape{32, 8, 128}, sk));
}

TEST(cuda_elementwise, embed_paths_copy_the_rows_exactly) {
  ACCELLM_REQUIRE_GPU();
  const std::uint32_t vocab = 300;
  const std::vector<std::int32_t> tokens{299, 0, 150, 7};
  auto dtokens = to_device(tokens);
  for (std::uint32_t d : {70u, 64u, 4096u})
    for (skew sk : {skew::none, skew::aux, skew::out}) {
      SCOPED_TRACE("d " + std::to_string(d) + ", " + name(sk));
      const auto table = to_bf16(random_vector(std::size_t{vocab} * d, 400 + d, 1.0f));
      padded<__nv_bfloat16> dtable(table, pad_of(sk, skew::aux));
      padded<float> dx(std::vector<float>(tokens.size() * d), pad_of(sk, skew::out));
      ASSERT_TRUE(embed(dtable.data(), dtokens.data(), 4, d, dx.data(), nullptr).ok());
      const auto x = dx.host();
      for (std::size_t r = 0; r < tokens.size(); ++r)
        for (std::uint32_t i = 0; i < d; ++i)
          ASSERT_EQ(x[r * d + i],
                    __bfloat162float(table[static_cast<std::size_t>(tokens[r]) * d + i]))
              << "row " << r << " element " << i;
    }
}

}  // namespace
}  // namespace accellm::device::cuda
