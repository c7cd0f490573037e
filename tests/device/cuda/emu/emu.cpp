#include "emu.hpp"

#include <ucontext.h>

#include <exception>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

namespace emu {
namespace {

constexpr unsigned warp = 32, warpgroup = 128;
constexpr std::size_t stack_bytes = 256 * 1024;
constexpr std::size_t words_per_thread = 8;

struct barrier_state {
  unsigned arrived = 0, generation = 0;
};

struct fiber {
  ucontext_t context{};
  std::unique_ptr<char[]> stack;
  bool done = false;
  const barrier_state* waits = nullptr;  ///< the barrier it waits at, if any
  unsigned generation = 0;               ///< that barrier's generation when it arrived
};

// The cluster being run (one block unless launched with clusters): its
// fibers, block after block, and barriers.
struct scheduler {
  ucontext_t main{};
  std::vector<fiber> fibers;
  unsigned threads = 0;  ///< per block
  std::vector<block_state>* blocks = nullptr;
  unsigned running = 0;
  const std::function<void()>* kernel = nullptr;
  std::exception_ptr failure;
  /// Keyed by (block rank, or all_blocks for the cluster; first thread; count).
  std::map<std::tuple<unsigned, unsigned, unsigned>, barrier_state> barriers;
};
scheduler* sched = nullptr;
constexpr unsigned all_blocks = ~0u;

void poison(void* p, std::size_t bytes) {
  auto* b = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i + 1 < bytes; i += 2) {
    b[i] = 0xc0;  // bf16 NaN (0x7fc0), little-endian
    b[i + 1] = 0x7f;
  }
}

// bf16 bits (the low 16 of w) to float: the high half of an fp32.
float low(std::uint32_t w) {
  const std::uint32_t bits = (w & 0xffffu) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
float high(std::uint32_t w) {
  return low(w >> 16);
}

std::uint16_t bf16_at(const void* p, std::size_t element) {
  std::uint16_t bits;
  std::memcpy(&bits, static_cast<const unsigned char*>(p) + 2 * element, 2);
  return bits;
}

float smem_bf16(std::size_t at) {
  return low(bf16_at(current->smem + at, 0));
}

void fiber_main() {
  fiber& f = sched->fibers[sched->running];
  try {
    (*sched->kernel)();
    const thread_state& s = self();
    if (!s.open_products.empty() || !s.product_groups.empty())
      throw std::logic_error("emu: a thread ended with products in flight");
  } catch (...) {
    if (!sched->failure) sched->failure = std::current_exception();
  }
  f.done = true;  // returns to sched->main (uc_link)
}

// Runs the fibers of the cluster's blocks round-robin to completion.
void run_cluster(scheduler& s) {
  for (fiber& f : s.fibers) {
    f.done = false;
    f.waits = nullptr;
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack.get();
    f.context.uc_stack.ss_size = stack_bytes;
    f.context.uc_link = &s.main;
    makecontext(&f.context, fiber_main, 0);
  }
  const unsigned x0 = blockIdx.x;  // the cluster's first block
  for (;;) {
    bool live = false, ran = false;
    for (unsigned i = 0; i < s.fibers.size(); ++i) {
      fiber& f = s.fibers[i];
      if (f.done) continue;
      live = true;
      if (f.waits != nullptr && f.waits->generation == f.generation) continue;
      s.running = i;
      const unsigned rank = i / s.threads;
      current = &(*s.blocks)[rank];
      threadIdx = {i % s.threads, 0, 0};
      blockIdx.x = x0 + rank;
      swapcontext(&s.main, &f.context);
      ran = true;
    }
    if (!live) break;
    if (!ran) {
      if (s.failure) std::rethrow_exception(s.failure);
      throw std::logic_error("emu: deadlock: every thread left waits at a barrier");
    }
  }
  blockIdx.x = x0;
  if (s.failure) std::rethrow_exception(s.failure);
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
  const unsigned first = threadIdx.x - threadIdx.x % warpgroup;
  barrier(first, warpgroup);  // every thread has issued the group
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
    // B's element (k, n) in shared memory (wgmma.cuh): K-major, or
    // MN-major when trans_b.
    // What the tensor cores read must have been fenced by whoever wrote it.
    auto fenced = [&](std::size_t at) {
      if (b.unfenced[at / 16] != 0)
        throw std::logic_error("emu: wgmma read shared memory that thread " +
                               std::to_string(b.unfenced[at / 16] - 1) +
                               "'s cp.async wrote without fence.proxy.async after it landed");
      return at;
    };
    const std::size_t start = (op.b & 0x3fffu) << 4, leading = ((op.b >> 16) & 0x3fffu) << 4,
                      stride = ((op.b >> 32) & 0x3fffu) << 4;
    auto b_at = [&](std::size_t k, std::size_t n) {
      return op.trans_b ? start + k / 8 * leading + n / 8 * stride + k % 8 * 16 + n % 8 * 2
                        : start + n / 8 * stride + k / 8 * leading + n % 8 * 16 + k % 8 * 2;
    };
    std::vector<float>& acc = accumulator_of(me, op.d);
    for (int j = 0; j < op.n / 8; ++j)
      for (int e = 0; e < 4; ++e) {
        const int row = e / 2;
        const auto col = static_cast<std::size_t>(8 * j + 2 * static_cast<int>(t) + e % 2);
        float sum = 0.0f;
        for (std::size_t k = 0; k < 16; ++k) sum += a[row][k] * smem_bf16(fenced(b_at(k, col)));
        float& v = acc[static_cast<std::size_t>(4 * j + e)];
        v = (op.scale_d ? v : 0.0f) + sum;
      }
  }
  barrier(first, warpgroup);  // every thread has read its quad's A registers
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

void launch(emu_dim3 grid, unsigned threads, std::size_t smem_bytes,
            const std::function<void()>& kernel, unsigned cluster) {
  if (threads == 0 || threads > 1024) throw std::invalid_argument("emu: 1 to 1024 threads");
  if (cluster == 0 || grid.x % cluster != 0)
    throw std::invalid_argument("emu: the cluster size must divide grid.x");
  scheduler s;
  s.kernel = &kernel;
  s.threads = threads;
  s.fibers.resize(std::size_t{threads} * cluster);
  for (fiber& f : s.fibers) f.stack = std::make_unique<char[]>(stack_bytes);
  std::vector<std::vector<unsigned char>> smem(cluster,
                                               std::vector<unsigned char>(smem_bytes + 128));
  std::vector<block_state> blocks(cluster);
  s.blocks = &blocks;
  sched = &s;
  try {
    blockDim = {threads, 1, 1};
    for (unsigned bz = 0; bz < grid.z; ++bz)
      for (unsigned by = 0; by < grid.y; ++by)
        for (unsigned bx = 0; bx < grid.x; bx += cluster) {
          for (unsigned r = 0; r < cluster; ++r) {
            const auto at = reinterpret_cast<std::uintptr_t>(smem[r].data());
            block_state& b = blocks[r];
            b = block_state{threads, smem[r].data() + (128 - at % 128) % 128, {}, {}, {}, r, {}};
            b.states.resize(threads);
            b.words.resize(threads * words_per_thread);
            b.addresses.resize(threads);
            b.unfenced.assign((smem_bytes + 15) / 16, 0);
            poison(b.smem, smem_bytes);
          }
          s.barriers.clear();
          blockIdx = {bx, by, bz};
          run_cluster(s);
        }
  } catch (...) {
    sched = nullptr;
    current = nullptr;
    throw;
  }
  sched = nullptr;
  current = nullptr;
}

namespace {

void wait_at(barrier_state& b, unsigned count) {
  if (++b.arrived == count) {
    b.arrived = 0;
    ++b.generation;
    return;
  }
  fiber& f = sched->fibers[sched->running];
  f.waits = &b;
  f.generation = b.generation;
  swapcontext(&f.context, &sched->main);
  f.waits = nullptr;
}

}  // namespace

void barrier(unsigned first, unsigned count) {
  wait_at(sched->barriers[{current->cluster_rank, first, count}], count);
}

unsigned cluster_size() {
  return static_cast<unsigned>(sched->blocks->size());
}

block_state& cluster_block(unsigned rank) {
  return sched->blocks->at(rank);
}

void cluster_sync() {
  const auto count = static_cast<unsigned>(sched->fibers.size());
  wait_at(sched->barriers[{all_blocks, 0, count}], count);
}

void warp_barrier() {
  barrier(threadIdx.x - threadIdx.x % warp, warp);
}

std::uint32_t shuffle(std::uint32_t v, unsigned source_lane) {
  block_state& b = *current;
  const unsigned base = threadIdx.x - threadIdx.x % warp;
  b.words[threadIdx.x * words_per_thread] = v;
  warp_barrier();
  const std::uint32_t r = b.words[(base + source_lane) * words_per_thread];
  warp_barrier();
  return r;
}

void ldmatrix(std::uint32_t* r, int count, const void* row, bool trans) {
  block_state& b = *current;
  const unsigned lane = threadIdx.x % warp, base = threadIdx.x - lane, g = lane / 4, t = lane % 4;
  b.addresses[threadIdx.x] = row;
  warp_barrier();
  for (int m = 0; m < count; ++m) {
    const void* const* rows = &b.addresses[base + 8 * static_cast<unsigned>(m)];
    // Lane 4 g + t gets (row g, cols 2t, 2t + 1) of matrix m, or of its
    // transpose: (rows 2t, 2t + 1, col g).
    const std::uint16_t lo = trans ? bf16_at(rows[2 * t], g) : bf16_at(rows[g], 2 * t);
    const std::uint16_t hi = trans ? bf16_at(rows[2 * t + 1], g) : bf16_at(rows[g], 2 * t + 1);
    r[m] = static_cast<std::uint32_t>(lo) | static_cast<std::uint32_t>(hi) << 16;
  }
  warp_barrier();
}

void mma_m16n8k16(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1) {
  block_state& b = *current;
  const unsigned lane = threadIdx.x % warp, base = threadIdx.x - lane, g = lane / 4, t = lane % 4;
  std::uint32_t* mine = &b.words[threadIdx.x * words_per_thread];
  std::copy(a, a + 4, mine);
  mine[4] = b0;
  mine[5] = b1;
  warp_barrier();
  auto word = [&](unsigned l, unsigned reg) {
    return b.words[(base + l) * words_per_thread + reg];
  };
  // A (row, k): lane 4 (row % 8) + (k % 8) / 2, register (row / 8) + 2 (k / 8);
  // B (k, col): lane 4 col + (k % 8) / 2, register 4 + k / 8; half k % 2.
  float sums[4] = {};
  for (unsigned e = 0; e < 4; ++e) {
    const unsigned row = g + 8 * (e / 2), col = 2 * t + e % 2;
    for (unsigned k = 0; k < 16; ++k) {
      const std::uint32_t aw = word(4 * (row % 8) + (k % 8) / 2, row / 8 + 2 * (k / 8));
      const std::uint32_t bw = word(4 * col + (k % 8) / 2, 4 + k / 8);
      sums[e] += (k % 2 ? high(aw) : low(aw)) * (k % 2 ? high(bw) : low(bw));
    }
  }
  warp_barrier();
  for (int e = 0; e < 4; ++e) c[e] += sums[e];
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
  block_state& b = *current;
  while (s.copy_groups.size() > static_cast<std::size_t>(pending)) {
    for (const copy16& c : s.copy_groups.front()) {
      if (c.valid)
        std::memcpy(c.dst, c.src, 16);
      else
        std::memset(c.dst, 0, 16);
      // Dynamic shared memory only (static __shared__ arrays are elsewhere,
      // and wgmma reads the dynamic one).
      const auto at =
          reinterpret_cast<std::uintptr_t>(c.dst) - reinterpret_cast<std::uintptr_t>(b.smem);
      if (at < b.unfenced.size() * 16)
        b.unfenced[at / 16] = static_cast<std::uint16_t>(threadIdx.x + 1);
    }
    s.copy_groups.erase(s.copy_groups.begin());
  }
}

void proxy_fence() {
  block_state& b = *current;
  const auto me = static_cast<std::uint16_t>(threadIdx.x + 1);
  for (std::uint16_t& u : b.unfenced)
    if (u == me) u = 0;
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
