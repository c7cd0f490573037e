// Helpers of the device/cuda tests: skip without a GPU, move vectors to and
// from the device, bf16 rounding on the host, error norms.
#pragma once

#include "device/cuda/device_query.hpp"
#include "device/cuda/gemm.hpp"
#include "device/cuda/prefill_attention_wgmma.cuh"
#include "device/cuda/runtime.hpp"

#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#define ACCELLM_REQUIRE_GPU()                                          \
  do {                                                                 \
    auto s_ = ::accellm::device::cuda::probe();                        \
    if (!s_.usable()) GTEST_SKIP() << "no CUDA device: " << s_.reason; \
  } while (false)

namespace accellm::device::cuda::test {

/// Whether k is one of the wgmma prefill kernels (sm_90a, head_dim 64, 128).
inline bool is_wgmma(prefill_kernel k) {
  return prefill_kernel_uses_wgmma(k);
}

/// Whether the wgmma prefill kernels can run here: a build with sm_90a code
/// and device 0 of compute capability 9.0 (H100, H200).
inline bool wgmma_runs_here() {
  int major = 0, minor = 0;
  return prefill_wgmma_built() &&
         cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) == cudaSuccess &&
         cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0) == cudaSuccess &&
         major == 9 && minor == 0;
}

template <class T>
device_buffer<T> to_device(const std::vector<T>& v) {
  auto b = device_buffer<T>::allocate(v.size());
  EXPECT_TRUE(b.ok());
  if (!v.empty()) cudaMemcpy(b->data(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice);
  return std::move(*b);
}

template <class T>
std::vector<T> to_host(const device_buffer<T>& b) {
  std::vector<T> v(b.size());
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  if (!v.empty()) cudaMemcpy(v.data(), b.data(), b.bytes(), cudaMemcpyDeviceToHost);
  return v;
}

inline std::vector<__nv_bfloat16> to_bf16(const std::vector<float>& v) {
  std::vector<__nv_bfloat16> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = __float2bfloat16(v[i]);
  return out;
}

inline std::vector<float> to_float(const std::vector<__nv_bfloat16>& v) {
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = __bfloat162float(v[i]);
  return out;
}

/// Rounds through bf16 (what the GPU sees of a float).
inline float round_bf16(float x) {
  return __bfloat162float(__float2bfloat16(x));
}

/// ||a - b|| / ||b||.
inline double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

/// Fails the test unless `got` (rows x out) is x w^T + beta y0 (y0 rounded
/// to bf16 first for a bf16 y) against a double-precision sum of the bf16
/// operands (as floats): fp32 y within 1e-4 (1 + |ref|) (exact products,
/// fp32 sums), bf16 y within 1e-2 (1 + |ref|) (one rounding of the sum).
/// `what` names the case in the message.
inline void expect_product(const std::vector<float>& got, const std::vector<float>& x,
                           const std::vector<float>& w, const std::vector<float>& y0,
                           std::uint32_t rows, std::uint32_t in, std::uint32_t out, gemm_out type,
                           float beta, const std::string& what) {
  for (std::uint32_t r = 0; r < rows; ++r)
    for (std::uint32_t o = 0; o < out; ++o) {
      const std::size_t i = std::size_t{r} * out + o;
      double ref = 0.0;
      if (beta != 0.0f) ref = type == gemm_out::fp32 ? y0[i] : round_bf16(y0[i]);
      for (std::uint32_t k = 0; k < in; ++k)
        ref += double(x[std::size_t{r} * in + k]) * w[std::size_t{o} * in + k];
      const double tol = (type == gemm_out::fp32 ? 1e-4 : 1e-2) * (1.0 + std::fabs(ref));
      ASSERT_NEAR(got[i], ref, tol) << what << (type == gemm_out::fp32 ? " fp32" : " bf16")
                                    << " beta " << beta << " at row " << r << ", output " << o;
    }
}

/// Uniform values in [-scale, scale) from a seed (std-free, reproducible).
inline std::vector<float> random_vector(std::size_t n, std::uint64_t seed, float scale) {
  std::vector<float> v(n);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& e : v) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    e = scale * (static_cast<float>(x >> 40) / 8388608.0f - 1.0f);
  }
  return v;
}

}  // namespace accellm::device::cuda::test
