// bench_gpu_ceilings: the two ceilings the model figures are read against
// (METHOD.md: measure them rather than trust the datasheet): device-to-device
// copy bandwidth (bytes read + written) and a large bf16 GEMM through the
// same cuBLAS call the model uses, on seeded random data.
//
//   bench_gpu_ceilings [--csv FILE]
#include "device/cuda/device_query.hpp"
#include "device/cuda/fill_uniform.cuh"
#include "device/cuda/gemm.hpp"
#include "device/cuda/runtime.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

using namespace accellm;
using namespace accellm::device::cuda;

// Median milliseconds of `reps` runs of f on stream s, after 2 warm-ups.
template <class F>
float time_ms(cudaStream_t s, int reps, F&& f) {
  auto a = event::create(), b = event::create();
  std::vector<float> ms;
  for (int i = 0; i < reps + 2; ++i) {
    cudaEventRecord(a->get(), s);
    f();
    cudaEventRecord(b->get(), s);
    cudaEventSynchronize(b->get());
    float t = 0;
    cudaEventElapsedTime(&t, a->get(), b->get());
    if (i >= 2) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  auto devices = query_devices();
  if (!devices) {
    std::cerr << "bench_gpu_ceilings: " << devices.err().what() << "\n";
    return 1;
  }
  auto s = stream::create();
  auto h = cublas_handle::create(s->get());
  if (!s || !h) return 1;
  const std::size_t n = std::size_t{2} << 30;  // 2 Gi bf16 = 4 GiB per buffer
  auto x = device_buffer<__nv_bfloat16>::allocate(n), y = device_buffer<__nv_bfloat16>::allocate(n);
  if (!x || !y || !fill_uniform(x->data(), n, 1, 1.0f, s->get()).ok()) return 1;
  const float copy = time_ms(s->get(), 10, [&] {
    cudaMemcpyAsync(y->data(), x->data(), n * 2, cudaMemcpyDeviceToDevice, s->get());
  });
  const double copy_tbps = 2.0 * n * 2 / (copy * 1e-3) / 1e12;
  const std::uint32_t m = 8192;
  auto c = device_buffer<float>::allocate(std::size_t{m} * m);
  if (!c) return 1;
  const float mm = time_ms(s->get(), 10, [&] {
    (void)gemm(h->get(), x->data(), m, m, y->data(), m, c->data(), gemm_out::fp32, 0.0f);
  });
  const double tflops = 2.0 * m * m * m / (mm * 1e-3) / 1e12;
  std::printf(
      "%s: device-to-device copy %.2f TB/s (read + write, %.1f%% of 3.35), "
      "bf16 GEMM 8192^3 %.0f TFLOP/s (%.1f%% of 989)\n",
      (*devices)[0].name.c_str(), copy_tbps, 100 * copy_tbps / 3.35, tflops, 100 * tflops / 989);
  if (argc == 3 && std::string{argv[1]} == "--csv") {
    std::ofstream out(argv[2], std::ios::app);
    out << (*devices)[0].name << ",copy_tb_per_s," << copy_tbps << "\n"
        << (*devices)[0].name << ",gemm_bf16_8192_tflop_per_s," << tflops << "\n";
  }
  return 0;
}
