// A paged bf16 KV pool on the host with random K/V and shuffled block
// tables, and the double-precision attention of one query row over it: the
// reference of the attention kernels' tests (attention_test.cpp on a GPU,
// prefill_emu_test.cpp on the host emulator).
#pragma once

#include "device/cuda/paged_kv.hpp"
#include "tests/device/cuda/cuda_test_util.hpp"

#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace accellm::device::cuda::test {

struct paged_host {
  attn_shape shape;
  std::uint32_t layers = 2, layer = 1, bt = 16, stride = 0;
  std::vector<__nv_bfloat16> pool;
  std::vector<std::int32_t> tables;

  /// `requests` block tables of `max_len` positions each, the blocks a
  /// permutation of the pool's (not in order).
  paged_host(attn_shape s, std::uint32_t requests, std::uint32_t max_len, std::uint64_t seed)
      : shape(s), stride((max_len + 15) / 16) {
    const std::uint64_t blocks = std::uint64_t{requests} * stride;
    pool = to_bf16(random_vector(blocks * host_view().block_elems(), seed, 1.0f));
    for (std::uint64_t i = 0; i < blocks; ++i)
      tables.push_back(static_cast<std::int32_t>((i * 7 + 3) % blocks));
  }

  /// The pool as a kernel sees it, at host addresses.
  kv_pool_view host_view() const {
    return kv_pool_view{
        const_cast<__nv_bfloat16*>(pool.data()),
        layers,
        bt,
        shape.kv_width(),
        tables.data(),
        stride,
        static_cast<std::uint32_t>(pool.size() / (2ull * layers * bt * shape.kv_width()))};
  }

  /// Attention of query `q` (head_dim floats, head h) at position qpos of slot.
  std::vector<double> reference(const float* q, std::uint32_t h, std::uint32_t slot,
                                std::uint32_t qpos) const {
    const kv_pool_view hk = host_view();
    const std::uint32_t hd = shape.head_dim, kvh = h / (shape.heads / shape.kv_heads);
    std::vector<double> scores(qpos + 1), out(hd, 0.0);
    double mx = -1e300;
    for (std::uint32_t t = 0; t <= qpos; ++t) {
      const auto* k = pool.data() + hk.row_offset(slot, layer, 0, t) + kvh * hd;
      double sc = 0;
      for (std::uint32_t i = 0; i < hd; ++i) sc += double(q[i]) * __bfloat162float(k[i]);
      scores[t] = sc / std::sqrt(double(hd));
      mx = std::max(mx, scores[t]);
    }
    double sum = 0;
    for (auto& sc : scores) sum += (sc = std::exp(sc - mx));
    for (std::uint32_t t = 0; t <= qpos; ++t) {
      const auto* v = pool.data() + hk.row_offset(slot, layer, 1, t) + kvh * hd;
      for (std::uint32_t i = 0; i < hd; ++i) out[i] += scores[t] / sum * __bfloat162float(v[i]);
    }
    return out;
  }
};

}  // namespace accellm::device::cuda::test
