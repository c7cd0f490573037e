#include "emu.hpp"

#include <ucontext.h>
#if defined(__SANITIZE_ADDRESS__)
#include <dlfcn.h>
#include <sanitizer/common_interface_defs.h>
#endif

#include <exception>
#include <map>
#include <memory>
#include <new>
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
  void* fake_stack = nullptr;  ///< AddressSanitizer's, while it is switched out
  bool done = false;
  const barrier_state* waits = nullptr;  ///< the barrier it waits at, if any
  unsigned generation = 0;               ///< that barrier's generation when it arrived
  bool spinning = false;                 ///< it yielded in an mbarrier wait (runnable)
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
/// Named barriers' keys: their id past this, beyond any thread's index.
constexpr unsigned named_first = 0x40000000u;
/// Counts the events that can let a waiting thread go on (barrier arrivals,
/// mbarrier arrivals and landed copies, threads ending): a round of the
/// scheduler in which only mbarrier waits ran and this did not move is a
/// deadlock.
std::uint64_t progress = 0;

// Switches between the scheduler's stack and a fiber's. Under
// AddressSanitizer each switch is announced (its fiber annotations), so that
// it knows which stack is live, and goes through libc's own swapcontext: ASan's
// interceptor of it would clear the shadow of the stack it enters, and with it
// the redzones of a kernel's local arrays, each time a thread came back from a
// barrier.
#if defined(__SANITIZE_ADDRESS__)
const void* main_stack = nullptr;
std::size_t main_stack_bytes = 0;

void swap(ucontext_t* from, const ucontext_t* to) {
  using swap_fn = int (*)(ucontext_t*, const ucontext_t*);
  static const swap_fn libc_swap = [] {
    void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    void* f = libc != nullptr ? dlsym(libc, "swapcontext") : nullptr;
    if (f == nullptr) throw std::runtime_error("emu: libc's swapcontext not found");
    return reinterpret_cast<swap_fn>(f);
  }();
  libc_swap(from, to);
}
#else
void swap(ucontext_t* from, const ucontext_t* to) {
  swapcontext(from, to);
}
#endif

// From the scheduler into `f`, until `f` yields or ends.
void run_fiber(ucontext_t& main, fiber& f) {
#if defined(__SANITIZE_ADDRESS__)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f.stack.get(), stack_bytes);
  swap(&main, &f.context);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  swap(&main, &f.context);
#endif
}

// In the running fiber, once the scheduler has switched to it.
void fiber_entered([[maybe_unused]] fiber& f) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(f.fake_stack, &main_stack, &main_stack_bytes);
#endif
}

// From the running fiber back to the scheduler; it runs on when the
// scheduler next picks it.
void yield_fiber(fiber& f) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(&f.fake_stack, main_stack, main_stack_bytes);
#endif
  swap(&f.context, &sched->main);
  fiber_entered(f);
}

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

// A block's dynamic shared memory: exactly the bytes asked for, 1024-byte
// aligned (as the 128-byte swizzle's address bits need), so that
// AddressSanitizer reports an access even one byte past its end.
constexpr std::align_val_t smem_alignment{1024};
struct free_shared {
  void operator()(unsigned char* p) const { ::operator delete(p, smem_alignment); }
};
using shared_memory = std::unique_ptr<unsigned char, free_shared>;
shared_memory allocate_shared(std::size_t bytes) {
  return shared_memory{
      static_cast<unsigned char*>(::operator new(std::max<std::size_t>(bytes, 1), smem_alignment))};
}

void fiber_main() {
  fiber& f = sched->fibers[sched->running];
  fiber_entered(f);
  try {
    (*sched->kernel)();
    const thread_state& s = self();
    if (!s.open_products.empty() || !s.product_groups.empty())
      throw std::logic_error("emu: a thread ended with products in flight");
  } catch (...) {
    if (!sched->failure) sched->failure = std::current_exception();
  }
  ++progress;
  f.done = true;  // returns to sched->main (uc_link)
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(nullptr, main_stack, main_stack_bytes);  // for good
#endif
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
    bool live = false, ran = false, only_spun = true;
    const std::uint64_t before = progress;
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
      run_fiber(s.main, f);
      ran = true;
      only_spun = only_spun && f.spinning;
    }
    if (!live) break;
    if (!ran || (only_spun && progress == before)) {
      if (s.failure) std::rethrow_exception(s.failure);
      throw std::logic_error(
          "emu: deadlock: every thread left waits at a barrier or on an mbarrier that cannot "
          "complete");
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

/// The 128-byte swizzle (tma.cuh): byte address bits [4:6] ^= bits [7:9].
std::size_t swizzle_128b(std::size_t at) {
  return at ^ (((at >> 7) & 7u) << 4);
}

/// Where element (k, mn) of a k16 slice of a wgmma shared-memory operand
/// lies (wgmma.cuh): K-major (element (mn, k)), or MN-major when `trans`,
/// without swizzle; with the 128-byte swizzle (wgmma_layout.cuh), K-major:
/// rows of 128 bytes (64 k), 8-row groups `stride` apart; MN-major: rows of
/// 128 bytes holding 64 mn of one k, 8-row (8 k) groups `stride` apart and
/// the next 64 mn `leading` further (the PTX ISA's canonical layouts).
std::size_t operand_at(std::uint64_t desc, bool trans, std::size_t k, std::size_t mn) {
  const std::size_t start = (desc & 0x3fffu) << 4, leading = ((desc >> 16) & 0x3fffu) << 4,
                    stride = ((desc >> 32) & 0x3fffu) << 4;
  switch (desc >> 62) {
    case 0:
      return trans ? start + k / 8 * leading + mn / 8 * stride + k % 8 * 16 + mn % 8 * 2
                   : start + mn / 8 * stride + k / 8 * leading + mn % 8 * 16 + k % 8 * 2;
    case 1:
      if (((desc >> 49) & 7u) != 0) throw std::logic_error("emu: a descriptor base offset");
      if (trans)
        return swizzle_128b(start + mn / 64 * leading + mn % 64 * 2 + k / 8 * stride + k % 8 * 128);
      return swizzle_128b(start + mn / 8 * stride + mn % 8 * 128 + k * 2);
    default:
      throw std::logic_error("emu: a descriptor with the 64- or 32-byte swizzle");
  }
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
      if (peer.size() != ops.size() || peer[i].n != op.n ||
          (peer[i].a == nullptr) != (op.a == nullptr))
        throw std::logic_error("emu: the warpgroup's threads issued different products");
      const std::uint32_t* r = peer[i].a;
      if (r == nullptr) continue;  // A is in shared memory: read below
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
    if (op.a == nullptr) {
      // Rows 16 w + g and + 8 of the warpgroup's m64 A (warp w of it).
      const std::size_t r0 = 16 * (threadIdx.x % warpgroup / warp) + g;
      for (std::size_t k = 0; k < 16; ++k) {
        a[0][k] = smem_bf16(fenced(operand_at(op.a_desc, false, k, r0)));
        a[1][k] = smem_bf16(fenced(operand_at(op.a_desc, false, k, r0 + 8)));
      }
    }
    std::vector<float>& acc = accumulator_of(me, op.d);
    for (int j = 0; j < op.n / 8; ++j)
      for (int e = 0; e < 4; ++e) {
        const int row = e / 2;
        const auto col = static_cast<std::size_t>(8 * j + 2 * static_cast<int>(t) + e % 2);
        float sum = 0.0f;
        for (std::size_t k = 0; k < 16; ++k)
          sum += a[row][k] * smem_bf16(fenced(operand_at(op.b, op.trans_b, k, col)));
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
            const std::function<void()>& kernel, unsigned cluster, block_order order) {
  if (threads == 0 || threads > 1024) throw std::invalid_argument("emu: 1 to 1024 threads");
  if (cluster == 0 || grid.x % cluster != 0)
    throw std::invalid_argument("emu: the cluster size must divide grid.x");
  scheduler s;
  s.kernel = &kernel;
  s.threads = threads;
  s.fibers.resize(std::size_t{threads} * cluster);
  for (fiber& f : s.fibers) f.stack = std::make_unique<char[]>(stack_bytes);
  std::vector<shared_memory> smem;
  for (unsigned r = 0; r < cluster; ++r) smem.push_back(allocate_shared(smem_bytes));
  std::vector<block_state> blocks(cluster);
  s.blocks = &blocks;
  sched = &s;
  try {
    blockDim = {threads, 1, 1};
    for (unsigned bz = 0; bz < grid.z; ++bz)
      for (unsigned by = 0; by < grid.y; ++by)
        for (unsigned i = 0; i < grid.x; i += cluster) {
          const unsigned bx = order == block_order::forward ? i : grid.x - cluster - i;
          for (unsigned r = 0; r < cluster; ++r) {
            block_state& b = blocks[r];
            b = block_state{threads, smem[r].get(), {}, {}, {}, r, {}, {}};
            b.states.resize(threads);
            b.words.resize(threads * words_per_thread);
            b.addresses.resize(threads);
            b.unfenced.assign((smem_bytes + 15) / 16, 0);
            poison(b.smem, smem_bytes);
          }
          s.barriers.clear();
          blockIdx = {bx, by, bz};
          run_cluster(s);
          // A TMA copy nobody waited for could land after the block ended,
          // or over what the block wrote there meanwhile.
          for (const block_state& b : blocks)
            for (const auto& [at, m] : b.mbarriers)
              if (!m.copies.empty() || m.tx != 0)
                throw std::logic_error("emu: a block ended with a TMA copy in flight");
          // Nor may a named barrier be left part-way (arrivals nobody waited for).
          for (const auto& [key, b] : s.barriers)
            if (std::get<1>(key) >= named_first && b.arrived != 0)
              throw std::logic_error("emu: a block ended with a named barrier part-way");
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
  ++progress;
  if (++b.arrived == count) {
    b.arrived = 0;
    ++b.generation;
    return;
  }
  fiber& f = sched->fibers[sched->running];
  f.waits = &b;
  f.generation = b.generation;
  yield_fiber(f);
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

void named_barrier(unsigned id, unsigned count, bool wait) {
  if (id == 0 || id >= 16) throw std::logic_error("emu: a named barrier id outside 1..15");
  if (count % warp != 0 || count > current->threads)
    throw std::logic_error(
        "emu: a named barrier's count is not a whole number of the block's warps");
  barrier_state& b = sched->barriers[{current->cluster_rank, named_first + id, count}];
  if (wait) {
    wait_at(b, count);
    return;
  }
  ++progress;
  if (++b.arrived == count) {
    b.arrived = 0;
    ++b.generation;
  }
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
  s.open_products.push_back({d, a, 0, b, n, scale_d, trans_b});
}

void product_issue_ss(float* d, int n, std::uint64_t a_desc, std::uint64_t b, bool scale_d) {
  product_issue(d, n, nullptr, b, scale_d, false);
  self().open_products.back().a_desc = a_desc;
}

void product_commit() {
  thread_state& s = self();
  s.product_groups.push_back(std::move(s.open_products));
  s.open_products.clear();
}

void product_wait(int pending) {
  while (self().product_groups.size() > static_cast<std::size_t>(pending)) retire_oldest();
}

namespace {

std::size_t smem_offset(const void* p) {
  const auto* b = static_cast<const unsigned char*>(p);
  if (b < current->smem)
    throw std::logic_error("emu: an mbarrier or TMA destination outside dynamic shared memory");
  return static_cast<std::size_t>(b - current->smem);
}

// Where an mbarrier lies: 8-byte aligned in dynamic shared memory.
std::size_t mbarrier_offset(const void* bar) {
  const std::size_t at = smem_offset(bar);
  if (at % 8 != 0) throw std::logic_error("emu: an mbarrier not 8-byte aligned");
  return at;
}

mbarrier& mbarrier_at(const void* bar) {
  const auto it = current->mbarriers.find(mbarrier_offset(bar));
  if (it == current->mbarriers.end())
    throw std::logic_error("emu: an mbarrier used before mbarrier.init");
  return it->second;
}

// The phase completes when its arrivals and announced bytes are all in.
void complete_phase(mbarrier& m) {
  if (m.missing == 0 && m.tx == 0) {
    ++m.phase;
    m.missing = m.arrivals;
    ++progress;
  }
}

// The bytes of one box of `m`, as a copy credits them to its barrier.
std::size_t box_bytes(const tensor_map_2d& m) {
  return std::size_t{m.box[0]} * m.box[1] * m.element_bytes;
}

// One TMA copy's box into shared memory: zeros outside the tensor, rows of
// 128 bytes swizzled.
void land(const tma_copy& c) {
  const tensor_map_2d& m = c.map;
  const std::size_t row_bytes = std::size_t{m.box[0]} * m.element_bytes;
  for (std::uint32_t r = 0; r < m.box[1]; ++r)
    for (std::size_t byte = 0; byte < row_bytes; byte += m.element_bytes) {
      const std::int64_t col = c.c0 + static_cast<std::int64_t>(byte / m.element_bytes);
      const std::int64_t row = c.c1 + static_cast<std::int64_t>(r);
      const std::size_t at = r * row_bytes + byte;
      unsigned char* dst = c.dst + (m.swizzle_128b ? swizzle_128b(at) : at);
      if (col >= 0 && row >= 0 && static_cast<std::uint64_t>(col) < m.dims[0] &&
          static_cast<std::uint64_t>(row) < m.dims[1])
        std::memcpy(dst,
                    static_cast<const unsigned char*>(m.base) +
                        static_cast<std::uint64_t>(row) * m.row_bytes +
                        static_cast<std::uint64_t>(col) * m.element_bytes,
                    m.element_bytes);
      else
        std::memset(dst, 0, m.element_bytes);
    }
}

}  // namespace

void mbarrier_init(void* bar, unsigned arrivals) {
  mbarrier m;
  m.arrivals = m.missing = arrivals;
  current->mbarriers[mbarrier_offset(bar)] = m;
  ++progress;
}

void mbarrier_arrive_expect_tx(void* bar, std::uint32_t bytes) {
  mbarrier& m = mbarrier_at(bar);
  if (m.missing == 0) throw std::logic_error("emu: more arrivals on an mbarrier than it expects");
  m.tx += bytes;
  --m.missing;
  ++progress;
  complete_phase(m);
}

void tma_load_2d(void* dst, const tensor_map_2d& map, int c0, int c1, void* bar) {
  mbarrier& m = mbarrier_at(bar);
  const std::size_t at = smem_offset(dst);
  const std::size_t bytes = box_bytes(map);
  if (map.swizzle_128b && (at % 1024 != 0 || std::size_t{map.box[0]} * map.element_bytes != 128))
    throw std::logic_error(
        "emu: a 128-byte swizzled TMA copy needs 128-byte box rows and a 1024-byte aligned "
        "destination");
  poison(dst, bytes);
  m.copies.push_back({static_cast<unsigned char*>(dst), map, c0, c1});
  ++progress;
}

void mbarrier_wait(void* bar, unsigned parity) {
  for (;;) {
    mbarrier& m = mbarrier_at(bar);
    for (const tma_copy& c : m.copies) {
      land(c);
      m.tx -= static_cast<std::int64_t>(box_bytes(c.map));
      ++progress;
    }
    m.copies.clear();
    complete_phase(m);
    if ((m.phase & 1u) != (parity & 1u)) return;
    fiber& f = sched->fibers[sched->running];
    f.spinning = true;
    yield_fiber(f);
    f.spinning = false;
  }
}

}  // namespace emu
