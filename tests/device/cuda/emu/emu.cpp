#include "emu.hpp"

#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace emu {
namespace {

constexpr unsigned warp = 32, warpgroup = 128;

void poison(void* p, std::size_t bytes) {
  auto* b = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i + 1 < bytes; i += 2) {
    b[i] = 0xc0;  // bf16 NaN (0x7fc0), little-endian
    b[i + 1] = 0x7f;
  }
}

// bf16 bits to float: the high half of an fp32.
float low(std::uint32_t w) {
  const std::uint32_t bits = (w & 0xffffu) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
float high(std::uint32_t w) {
  return low(w >> 16);
}

float smem_bf16(std::size_t at) {
  std::uint16_t bits;
  std::memcpy(&bits, current->smem + at, 2);
  return low(bits);
}

/// The shared-memory byte offset of element (k, n) of a k16 x N B operand
/// (wgmma.cuh): K-major, or MN-major when trans_b.
std::size_t b_offset(std::uint64_t desc, bool trans_b, int k, int n) {
  const std::size_t start = (desc & 0x3fffu) << 4, leading = ((desc >> 16) & 0x3fffu) << 4,
                    stride = ((desc >> 32) & 0x3fffu) << 4;
  const auto ku = static_cast<std::size_t>(k), nu = static_cast<std::size_t>(n);
  if (trans_b) return start + ku / 8 * leading + nu / 8 * stride + ku % 8 * 16 + nu % 8 * 2;
  return start + nu / 8 * stride + ku / 8 * leading + nu % 8 * 16 + ku % 8 * 2;
}

std::vector<float>& accumulator_of(thread_state& s, float* d) {
  for (auto& [p, v] : s.accumulators)
    if (p == d) return v;
  throw std::logic_error("emu: product retired on an accumulator not in flight");
}

/// Retires this thread's oldest group of products; every thread of the
/// warpgroup calls it at the same point (wgmma.wait_group is aligned).
void retire_oldest() {
  block_state& b = *current;
  thread_state& me = self();
  std::barrier<>& meet = *b.group_barriers[threadIdx.x / warpgroup];
  meet.arrive_and_wait();  // every thread has issued the group
  const unsigned lane = threadIdx.x % warp, g = lane / 4, t = lane % 4;
  const unsigned quad0 = threadIdx.x - lane + 4 * g;  // the 4 threads holding rows g, g + 8
  const std::vector<product>& ops = me.product_groups.front();
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const product& op = ops[i];
    // Rows g and g + 8 of A (16 columns each) from the quad's fragments.
    float a[2][16];
    for (unsigned q = 0; q < 4; ++q) {
      const std::vector<product>& peer = b.states[quad0 + q].product_groups.front();
      if (peer.size() != ops.size() || peer[i].n != op.n)
        throw std::logic_error("emu: the warpgroup's threads issued different products");
      const std::uint32_t* r = peer[i].a;
      a[0][2 * q] = low(r[0]);
      a[0][2 * q + 1] = high(r[0]);
      a[1][2 * q] = low(r[1]);
      a[1][2 * q + 1] = high(r[1]);
      a[0][2 * q + 8] = low(r[2]);
      a[0][2 * q + 9] = high(r[2]);
      a[1][2 * q + 8] = low(r[3]);
      a[1][2 * q + 9] = high(r[3]);
    }
    std::vector<float>& acc = accumulator_of(me, op.d);
    for (int j = 0; j < op.n / 8; ++j)
      for (int e = 0; e < 4; ++e) {
        const int row = e / 2, col = 8 * j + 2 * static_cast<int>(t) + e % 2;
        float sum = 0.0f;
        for (int k = 0; k < 16; ++k)
          sum += a[row][k] * smem_bf16(b_offset(op.b, op.trans_b, k, col));
        float& v = acc[static_cast<std::size_t>(4 * j + e)];
        v = (op.scale_d ? v : 0.0f) + sum;
      }
  }
  meet.arrive_and_wait();  // every thread has read its quad's A registers
  me.product_groups.erase(me.product_groups.begin());
  // Accumulators no pending product writes get their values back.
  for (std::size_t i = 0; i < me.accumulators.size();) {
    float* d = me.accumulators[i].first;
    bool pending = false;
    for (const auto& group : me.product_groups)
      for (const product& p : group) pending = pending || p.d == d;
    for (const product& p : me.open_products) pending = pending || p.d == d;
    if (pending) {
      ++i;
      continue;
    }
    std::memcpy(d, me.accumulators[i].second.data(), me.accumulators[i].second.size() * 4);
    me.accumulators.erase(me.accumulators.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

}  // namespace

block_state::block_state(unsigned n, std::size_t smem_bytes)
    : threads(n), smem_storage(smem_bytes + 128), block_barrier(n), exchange(n), states(n) {
  auto at = reinterpret_cast<std::uintptr_t>(smem_storage.data());
  smem = smem_storage.data() + (128 - at % 128) % 128;
  poison(smem, smem_bytes);
  for (unsigned w = 0; w < (n + warp - 1) / warp; ++w)
    warp_barriers.push_back(std::make_unique<std::barrier<>>(warp));
  for (unsigned w = 0; w < (n + warpgroup - 1) / warpgroup; ++w)
    group_barriers.push_back(std::make_unique<std::barrier<>>(warpgroup));
}

void launch(emu_dim3 grid, unsigned threads, std::size_t smem_bytes,
            const std::function<void()>& kernel) {
  if (threads % warp != 0) throw std::invalid_argument("emu: whole warps only");
  for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      block_state block(threads, smem_bytes);
      std::mutex m;
      std::exception_ptr failure;
      std::vector<std::thread> pool;
      pool.reserve(threads);
      for (unsigned t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
          threadIdx = {t, 0, 0};
          blockIdx = {bx, by, 0};
          current = &block;
          try {
            kernel();
            thread_state& s = self();
            if (!s.open_products.empty() || !s.product_groups.empty())
              throw std::logic_error("emu: a thread ended with products in flight");
          } catch (...) {
            std::lock_guard lock(m);
            if (!failure) failure = std::current_exception();
          }
        });
      for (auto& th : pool) th.join();
      if (failure) std::rethrow_exception(failure);
    }
}

std::uint32_t shuffle(std::uint32_t v, unsigned source_lane) {
  block_state& b = *current;
  const unsigned base = threadIdx.x - threadIdx.x % warp;
  std::barrier<>& bar = *b.warp_barriers[threadIdx.x / warp];
  b.exchange[threadIdx.x] = v;
  bar.arrive_and_wait();
  const std::uint32_t r = b.exchange[base + source_lane];
  bar.arrive_and_wait();
  return r;
}

void copy_issue(void* dst, const void* src, bool valid) {
  poison(dst, 16);
  self().open_copies.push_back({dst, src, valid});
}

void copy_commit() {
  thread_state& s = self();
  s.copy_groups.push_back(std::move(s.open_copies));
  s.open_copies.clear();
}

void copy_wait(int pending) {
  thread_state& s = self();
  while (s.copy_groups.size() > static_cast<std::size_t>(pending)) {
    for (const copy16& c : s.copy_groups.front()) {
      if (c.valid)
        std::memcpy(c.dst, c.src, 16);
      else
        std::memset(c.dst, 0, 16);
    }
    s.copy_groups.erase(s.copy_groups.begin());
  }
}

void product_issue(float* d, int n, const std::uint32_t* a, std::uint64_t b, bool scale_d,
                   bool trans_b) {
  thread_state& s = self();
  bool in_flight = false;
  for (const auto& acc : s.accumulators) in_flight = in_flight || acc.first == d;
  if (!in_flight) {
    const auto count = static_cast<std::size_t>(n / 8 * 4);
    s.accumulators.emplace_back(d, std::vector<float>(d, d + count));
    for (std::size_t i = 0; i < count; ++i) d[i] = std::nanf("");
  }
  s.open_products.push_back({d, a, b, n, scale_d, trans_b});
}

void product_commit() {
  thread_state& s = self();
  s.product_groups.push_back(std::move(s.open_products));
  s.open_products.clear();
}

void product_wait(int pending) {
  while (self().product_groups.size() > static_cast<std::size_t>(pending)) retire_oldest();
}

}  // namespace emu
