#include "device/cuda/check.hpp"
#include "device/cuda/decode_attention.cuh"
#include "device/cuda/decode_kernels.cuh"
#include "device/cuda/launch.cuh"
#include "device/cuda/tma_map.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

namespace accellm::device::cuda {
namespace {

constexpr int warps = 4;
constexpr int unroll = 2;

struct bf16x8 {
  float v[8];
};

__device__ inline bf16x8 load8(const __nv_bfloat16* p) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const auto* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
  bf16x8 out;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    out.v[2 * i] = f.x;
    out.v[2 * i + 1] = f.y;
  }
  return out;
}

// Lanes are split in groups of L = head_dim / 8: a group holds one position,
// each lane 8 of its dims. G = query heads per KV head.
template <int G>
__global__ void __launch_bounds__(warps * 32) decode_pass1(decode_attention_args a, float scale) {
  ptx::follow_previous_grid();
  extern __shared__ float smem[];  // [warps][G][hd + 2]
  const std::uint32_t hd = a.shape.head_dim;
  const int L = static_cast<int>(hd / 8), per_warp = 32 / L;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int sub = lane / L, part = lane % L;
  const decode_item item = a.items[blockIdx.z];
  const std::uint32_t kvh = blockIdx.x, split = blockIdx.y;
  const int chunk = (item.length + static_cast<int>(a.splits) - 1) / static_cast<int>(a.splits);
  const int begin = static_cast<int>(split) * chunk;
  const int end = min(item.length, begin + chunk);

  float q[G][8], m[G], l[G], acc[G][8];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const bf16x8 qv = load8(a.q + static_cast<std::uint64_t>(item.row) * a.shape.q_width() +
                            (kvh * G + g) * hd + part * 8);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      q[g][i] = qv.v[i] * scale;
      acc[g][i] = 0.0f;
    }
    m[g] = -INFINITY;
    l[g] = 0.0f;
  }
  const std::uint32_t col = kvh * hd + part * 8;
  const int step = warps * per_warp;
  for (int base = begin + warp * per_warp; base < end; base += step * unroll) {
    bf16x8 k[unroll], v[unroll];
    bool valid[unroll];
#pragma unroll
    for (int u = 0; u < unroll; ++u) {
      const int t = base + u * step + sub;
      valid[u] = t < end;
      if (valid[u]) {
        const auto slot = static_cast<std::uint32_t>(item.slot);
        k[u] = load8(a.kv.pool + a.kv.row_offset(slot, a.layer, 0, t) + col);
        v[u] = load8(a.kv.pool + a.kv.row_offset(slot, a.layer, 1, t) + col);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) k[u].v[i] = v[u].v[i] = 0.0f;
      }
    }
#pragma unroll
    for (int u = 0; u < unroll; ++u) {
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float sc = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; ++i) sc += q[g][i] * k[u].v[i];
        for (int o = L / 2; o > 0; o >>= 1) sc += __shfl_xor_sync(0xffffffffu, sc, o);
        if (!valid[u]) continue;
        const float mn = fmaxf(m[g], sc);
        const float alpha = __expf(m[g] - mn), p = __expf(sc - mn);
        l[g] = l[g] * alpha + p;
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[g][i] = acc[g][i] * alpha + p * v[u].v[i];
        m[g] = mn;
      }
    }
  }
  // Merge the position groups of the warp.
  for (int o = L; o < 32; o <<= 1) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float m2 = __shfl_xor_sync(0xffffffffu, m[g], o);
      const float l2 = __shfl_xor_sync(0xffffffffu, l[g], o);
      const float mn = fmaxf(m[g], m2);
      const float a1 = mn == -INFINITY ? 0.0f : __expf(m[g] - mn);
      const float a2 = mn == -INFINITY ? 0.0f : __expf(m2 - mn);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float other = __shfl_xor_sync(0xffffffffu, acc[g][i], o);
        acc[g][i] = acc[g][i] * a1 + other * a2;
      }
      l[g] = l[g] * a1 + l2 * a2;
      m[g] = mn;
    }
  }
  const std::uint32_t row_floats = hd + 2;
  if (sub == 0) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float* dst = smem + (warp * G + g) * row_floats;
#pragma unroll
      for (int i = 0; i < 8; ++i) dst[part * 8 + i] = acc[g][i];
      if (part == 0) {
        dst[hd] = m[g];
        dst[hd + 1] = l[g];
      }
    }
  }
  __syncthreads();
  // Merge the warps and write this split's partial.
  for (std::uint32_t e = threadIdx.x; e < G * (hd + 2); e += blockDim.x) {
    const std::uint32_t g = e / (hd + 2), j = e % (hd + 2);
    float mx = -INFINITY;
    for (int w = 0; w < warps; ++w) mx = fmaxf(mx, smem[(w * G + g) * row_floats + hd]);
    float val = mx;
    if (j != hd) {
      val = 0.0f;
      for (int w = 0; w < warps; ++w) {
        const float* src = smem + (w * G + g) * row_floats;
        if (src[hd] != -INFINITY) val += src[j] * __expf(src[hd] - mx);
      }
    }
    const std::uint64_t head = kvh * G + g;
    float* dst =
        a.partial +
        ((static_cast<std::uint64_t>(blockIdx.z) * a.shape.heads + head) * a.splits + split) *
            row_floats;
    dst[j] = val;
  }
}

// Pass 2: merges the splits of every (head, item).
status decode_combine(const decode_attention_args& a, cudaStream_t s) {
  return launch_kernel(decode_kernels::combine_kernel, dim3(a.shape.heads, a.n_items),
                       dim3(std::min(a.shape.head_dim, 128u)), 0, s, a);
}

template <int G>
status launch(const decode_attention_args& a, cudaStream_t s) {
  const dim3 grid(a.shape.kv_heads, a.splits, a.n_items);
  const auto smem = static_cast<std::size_t>(warps * G * (a.shape.head_dim + 2) * sizeof(float));
  const float scale = 1.0f / std::sqrt(static_cast<float>(a.shape.head_dim));
  ACCELLM_TRY(launch_kernel(decode_pass1<G>, grid, dim3(warps * 32), smem, s, a, scale));
  return decode_combine(a, s);
}

// A tile's keys per stage, stages and copies (cp.async, or TMA) as types,
// for templates.
template <int KEYS, int STAGES, bool TMA = false>
struct tile_tag {
  static constexpr int keys = KEYS, stages = STAGES;
  static constexpr bool tma = TMA;
};

// f(tile_tag<keys, stages, tma>) for tile `t`.
template <class F>
auto visit_tile(decode_tile t, F&& f) -> decltype(f(tile_tag<32, 2>{})) {
  switch (t) {
    case decode_tile::tma16_stages3:
      return f(tile_tag<16, 3, true>{});
    case decode_tile::tma16_stages5:
      return f(tile_tag<16, 5, true>{});
    case decode_tile::keys32_stages2:
      return f(tile_tag<32, 2>{});
    case decode_tile::keys16_stages4:
      return f(tile_tag<16, 4>{});
    case decode_tile::keys32_stages4:
      return f(tile_tag<32, 4>{});
    case decode_tile::keys64_stages2:
      return f(tile_tag<64, 2>{});
    case decode_tile::keys16_stages2:
      return f(tile_tag<16, 2>{});
  }
  return fail(errc::invalid_argument, "decode_attention: unknown tile");
}

// The pass-1 kernel of tile Tag at head_dim HD and its shared memory.
template <int HD, class Tag>
constexpr auto pass1_kernel() {
  static_assert(!Tag::tma || Tag::keys == decode_kernels::tma_decode::page, "a page a stage");
  if constexpr (Tag::tma)
    return decode_kernels::tma_kernel<HD, Tag::stages>;
  else
    return decode_kernels::mma_kernel<HD, Tag::keys, Tag::stages>;
}
template <int HD, class Tag>
constexpr int pass1_smem() {
  if constexpr (Tag::tma)
    return decode_kernels::tma_decode::smem_bytes<HD, Tag::stages>;
  else
    return decode_kernels::smem_bytes<HD, Tag::keys, Tag::stages>;
}

// The pass 1 of a tile at head_dim HD and its shared memory, with the
// attribute that lets it take more than 48 KB set.
template <int HD, class Tag>
result<int> prepare_pass1() {
  constexpr int bytes = pass1_smem<HD, Tag>();
  if (bytes > 48 * 1024)
    ACCELLM_CUDA_TRY(cudaFuncSetAttribute(pass1_kernel<HD, Tag>(),
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  return bytes;
}

template <int HD, class Tag = tile_tag<32, 2>>
status launch_mma(const decode_attention_args& a, cudaStream_t s) {
  const float scale_log2 = 1.4426950408889634f / std::sqrt(static_cast<float>(HD));
  auto bytes = prepare_pass1<HD, Tag>();
  if (!bytes) return std::move(bytes).err();
  const dim3 grid(a.shape.kv_heads, a.splits, a.n_items);
  const auto smem = static_cast<std::size_t>(*bytes);
  if constexpr (Tag::tma) {
    // Through the pool's map (decode_attention checked that it maps).
    decode_kernels::tma_decode::args p{};
    p.a = a;
    ACCELLM_TRY(encode_pool_map(p.kv_map, a.kv, "decode_attention"));
    ACCELLM_TRY(launch_kernel(pass1_kernel<HD, Tag>(), grid, dim3(32), smem, s, p, scale_log2));
  } else {
    ACCELLM_TRY(launch_kernel(pass1_kernel<HD, Tag>(), grid, dim3(32), smem, s, a, scale_log2));
  }
  // One split: pass 1 wrote the output (one launch per layer fewer).
  return a.splits == 1 ? status{} : decode_combine(a, s);
}

// head_dim HD's pass 1 with the tile asked for.
template <int HD>
status launch_tile(const decode_attention_args& a, cudaStream_t s) {
  return visit_tile(a.tile,
                    [&](auto tag) -> status { return launch_mma<HD, decltype(tag)>(a, s); });
}

// One block of the pass 1 of tile Tag at head_dim HD: how many fit on an SM
// at once.
template <int HD, class Tag = tile_tag<32, 2>>
result<std::uint32_t> resident_mma() {
  auto bytes = prepare_pass1<HD, Tag>();
  if (!bytes) return std::move(bytes).err();
  int blocks = 0;
  ACCELLM_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &blocks, pass1_kernel<HD, Tag>(), 32, static_cast<std::size_t>(*bytes)));
  return static_cast<std::uint32_t>(std::max(blocks, 1));
}

template <int HD>
result<std::uint32_t> resident_tile(decode_tile t) {
  return visit_tile(
      t, [](auto tag) -> result<std::uint32_t> { return resident_mma<HD, decltype(tag)>(); });
}

// The mma pass 1 for head_dim HD, then pass 2.
status decode_attention_mma(const decode_attention_args& a, cudaStream_t s) {
  if (!decode_tile_built(a.tile, a.shape.head_dim))
    return fail(errc::invalid_argument, std::string{"decode_attention: tile "} +
                                            decode_tile_name(a.tile) +
                                            " is built for head_dim 64 and 128 only");
  switch (a.shape.head_dim) {
    case 16:
      return launch_mma<16>(a, s);
    case 32:
      return launch_mma<32>(a, s);
    case 64:
      return launch_tile<64>(a, s);
    case 128:
      return launch_tile<128>(a, s);
    default:
      return fail(errc::invalid_argument, "decode_attention: head_dim must be 16, 32, 64 or 128");
  }
}

}  // namespace

result<std::uint32_t> decode_blocks_per_sm(decode_tile t, std::uint32_t head_dim) {
  if (!decode_tile_built(t, head_dim))
    return fail(errc::invalid_argument, std::string{"decode_blocks_per_sm: tile "} +
                                            decode_tile_name(t) +
                                            " is built for head_dim 64 and 128 only");
  switch (head_dim) {
    case 16:
      return resident_mma<16>();
    case 32:
      return resident_mma<32>();
    case 64:
      return resident_tile<64>(t);
    case 128:
      return resident_tile<128>(t);
    default:
      return fail(errc::invalid_argument,
                  "decode_blocks_per_sm: head_dim must be 16, 32, 64 or 128");
  }
}

std::uint32_t choose_decode_splits(std::uint32_t n_items, std::uint32_t kv_heads,
                                   std::uint32_t max_length, std::uint32_t target_blocks) {
  const std::uint32_t blocks = std::max(1u, n_items * kv_heads);
  std::uint32_t splits = (target_blocks + blocks - 1) / blocks;
  splits = std::min(splits, std::max(1u, max_length / 256));
  return std::clamp(splits, 1u, max_decode_splits);
}

const char* decode_split_rule_name(decode_split_rule r) noexcept {
  return r == decode_split_rule::waves ? "waves" : "blocks";
}

std::optional<decode_split_rule> decode_split_rule_named(std::string_view name) noexcept {
  if (name == "blocks") return decode_split_rule::blocks;
  if (name == "waves") return decode_split_rule::waves;
  return std::nullopt;
}

std::uint32_t choose_decode_splits_by_waves(std::uint32_t n_items, std::uint32_t kv_heads,
                                            std::uint32_t max_length, std::uint32_t resident) {
  constexpr std::uint64_t edge = 32, merge = 32;  // in positions' worth of time
  const std::uint64_t blocks = std::max<std::uint64_t>(1, std::uint64_t{n_items} * kv_heads);
  const std::uint64_t at_once = std::max(1u, resident);
  // At least 256 positions a split, as choose_decode_splits: one wave of
  // blocks of a page or two each, which the model above prices as cheap,
  // ran 4-9% slower than two splits on the H100 (Llama-2-70B's TP-8 shard,
  // one KV head: 64 blocks a split, 16 splits of 32 positions at ctx 512).
  const std::uint32_t most = std::clamp(max_length / 256, 1u, max_decode_splits);
  std::uint32_t best = 1;
  std::uint64_t best_cost = ~std::uint64_t{0};
  for (std::uint32_t s = 1; s <= most; ++s) {
    const std::uint64_t waves = (blocks * s + at_once - 1) / at_once;
    const std::uint64_t slice = (std::uint64_t{max_length} + s - 1) / s;
    const std::uint64_t cost = waves * (slice + edge) + (s > 1 ? merge : 0);
    if (cost < best_cost) {
      best = s;
      best_cost = cost;
    }
  }
  return best;
}

status decode_attention(const decode_attention_args& a, cudaStream_t s) {
  if (a.n_items == 0) return {};
  const std::uint32_t hd = a.shape.head_dim;
  if (hd != 16 && hd != 32 && hd != 64 && hd != 128 && hd != 256)
    return fail(errc::invalid_argument,
                "decode_attention: head_dim must be 16, 32, 64, 128 or 256");
  if (a.shape.kv_heads == 0 || a.shape.heads % a.shape.kv_heads != 0)
    return fail(errc::invalid_argument, "decode_attention: kv_heads must divide heads");
  if (a.splits == 0 || a.splits > max_decode_splits)
    return fail(errc::invalid_argument, "decode_attention: splits out of range");
  if (!a.q || !a.out || !a.items || !a.partial || !a.kv.pool || !a.kv.tables)
    return fail(errc::invalid_argument, "decode_attention: null pointer");
  if (a.shape.kv_width() != a.kv.kv_width || a.layer >= a.kv.layers)
    return fail(errc::invalid_argument, "decode_attention: shape does not match the KV pool");
  const std::uint32_t group = a.shape.heads / a.shape.kv_heads;
  if (group != 1 && group != 2 && group != 4 && group != 8)
    return fail(errc::invalid_argument, "decode_attention: heads / kv_heads must be 1, 2, 4 or 8");
  if (a.kernel == decode_kernel::mma && decode_tile_uses_tma(a.tile) && !tma_maps_pool(a.kv))
    return fail(errc::invalid_argument,
                std::string{"decode_attention: tile "} + decode_tile_name(a.tile) +
                    " needs a pool of 16-token blocks, counted, of at most 2^31 rows");
  if (a.kernel == decode_kernel::mma) return decode_attention_mma(a, s);
  switch (a.shape.heads / a.shape.kv_heads) {
    case 1:
      return launch<1>(a, s);
    case 2:
      return launch<2>(a, s);
    case 4:
      return launch<4>(a, s);
    case 8:
      return launch<8>(a, s);
    default:
      return fail(errc::invalid_argument,
                  "decode_attention: heads / kv_heads must be 1, 2, 4 or 8");
  }
}

}  // namespace accellm::device::cuda
