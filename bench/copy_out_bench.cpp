// bench_copy_out: what filling a KV chunk costs on the host (device::copy_out,
// the last step of the layer-wise copy's network path), in fresh memory from
// the kernel and in memory the C library kept from the chunk before
// (device::keep_freed_host_buffers, which worker processes on a real device
// call). Each size: the median of 15 chunks, each allocated, filled from a
// source and freed, as a worker does with the chunks it sends.
//
//   bench_copy_out [MiB ...]   (default: 8 32 64)
#include "device/backend.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

double median_ms(std::size_t bytes, const std::vector<std::byte>& source) {
  std::vector<double> ms;
  for (int i = 0; i < 15; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    {
      const std::vector<std::byte> chunk = accellm::device::copy_out(source.data(), bytes);
      if (chunk.size() != bytes) std::abort();
    }
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> mib;
  for (int i = 1; i < argc; ++i) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(argv[i], &end, 10);
    if (end == argv[i] || *end != '\0' || v == 0 || v > 4096) {
      std::fprintf(stderr, "bench_copy_out: '%s' is not a MiB count in 1..4096\n", argv[i]);
      return 2;
    }
    mib.push_back(v);
  }
  if (mib.empty()) mib = {8, 32, 64};
  const std::size_t largest = *std::max_element(mib.begin(), mib.end()) << 20;
  const std::vector<std::byte> source(largest, std::byte{0x5a});
  std::vector<double> fresh;
  for (const std::size_t m : mib) fresh.push_back(median_ms(m << 20, source));
  const bool kept = accellm::device::keep_freed_host_buffers();
  std::printf("copy_out of one chunk, median of 15 (keep_freed_host_buffers: %s)\n",
              kept ? "on" : "refused");
  std::printf("%8s %22s %22s\n", "MiB", "fresh memory ms (GB/s)", "kept memory ms (GB/s)");
  for (std::size_t i = 0; i < mib.size(); ++i) {
    const double bytes = static_cast<double>(mib[i] << 20);
    const double again = median_ms(mib[i] << 20, source);
    std::printf("%8zu %13.2f (%5.1f) %14.2f (%5.1f)\n", mib[i], fresh[i], bytes / fresh[i] / 1e6,
                again, bytes / again / 1e6);
  }
  return 0;
}
