// emu: runs CUDA kernel source on the host, one fiber per CUDA thread, to
// check a kernel's logic where no GPU is lent: the indexing, the pipelines of
// asynchronous copies and products, and the barriers.
//
// A block's threads are fibers (ucontext) run round-robin on the calling
// thread; a fiber runs until it reaches a barrier, so every interleaving the
// kernel's barriers allow is one a GPU could produce, and a barrier that
// never completes is reported as a deadlock instead of hanging.
//
// What it models, and how it catches misuse:
// - threadIdx, blockIdx, blockDim, __syncthreads (a barrier of the block),
//   __syncwarp, named barriers (bar.sync, bar.arrive), static __shared__
//   arrays (function-local statics), the warp
//   shuffles, ldmatrix and mma.sync m16n8k16 (a barrier of the warp's 32
//   threads around an exchange of addresses or fragments, the layouts of
//   the PTX ISA: shim device/cuda/ptx.cuh);
// - dynamic shared memory: one buffer per block, filled with bf16 NaN
//   before the block starts, so that reading what was never written shows;
// - cp.async: a copy's destination turns NaN when it is issued and gets its
//   bytes only at the issuing thread's cp.async.wait_group that covers it, so
//   reading a stage too early, or refilling one still read, corrupts the
//   result;
// - TMA copies and mbarriers (shim device/cuda/tma.cuh): a copy's box turns
//   NaN when it is issued and lands (128-byte swizzle, zeros outside the
//   tensor) only when a thread waits on its barrier, whose phase completes
//   once its arrivals and announced bytes are in; a thread that waits yields
//   until then. So reading a stage before its barrier's wait, or refilling
//   one still being read, corrupts the result;
// - wgmma (shim device/cuda/wgmma.cuh): a product that reads shared memory
//   a cp.async wrote, unless the writing thread fenced the async proxy
//   (fence.proxy.async) after the copy landed, fails; its accumulator turns NaN
//   when it is issued; its A registers and its shared-memory B are read only
//   at the wgmma.wait_group that retires it, when the warpgroup's 128
//   threads meet, each computing its own accumulator elements in fp32. So
//   touching an accumulator, an A register or a B tile while the product is
//   in flight changes the result. Descriptors without swizzle and with the
//   128-byte swizzle (K-major and MN-major) are decoded; A may come from one
//   too.
// Not modelled: timing, the memory consistency of real hardware beyond the
// above, and anything the tensor cores do differently from the PTX ISA's
// fragment layouts; those are checked on a GPU (attention_test.cpp).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>  // __global__, __device__, __align__ for the host compiler

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <vector>

#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
#ifndef __grid_constant__
#define __grid_constant__
#endif
// A block's static shared arrays: function-local statics, which all of the
// block's fibers share (blocks run one after the other).
#undef __shared__
#define __shared__ static

struct emu_dim3 {
  unsigned x = 1, y = 1, z = 1;
};
inline emu_dim3 threadIdx, blockIdx, blockDim;

// CUDA's integer min / max of device code.
using std::max;
using std::min;

namespace emu {

/// One thread's pending asynchronous work.
struct copy16 {
  void* dst;
  const void* src;
  bool valid;
};
struct product {
  float* d;                ///< the thread's accumulator, N / 8 x 4 floats
  const std::uint32_t* a;  ///< its A fragment, read at retirement; null: A is `a_desc`
  std::uint64_t a_desc;    ///< A's shared-memory descriptor (K-major) when `a` is null
  std::uint64_t b;         ///< shared-memory descriptor
  int n;                   ///< N: 64 or 128
  bool scale_d, trans_b;
};

/// A 2-D tensor as a TMA copy reads it (the stand-in for CUtensorMap):
/// `dims[0]` contiguous elements of `element_bytes` per row, rows
/// `row_bytes` apart, `dims[1]` rows; boxes of box[0] x box[1]; with
/// `swizzle_128b` a box row must be 128 bytes and lands swizzled (tma.cuh).
struct tensor_map_2d {
  const void* base = nullptr;
  std::uint64_t dims[2] = {0, 0};
  std::uint64_t row_bytes = 0;
  std::uint32_t box[2] = {0, 0};
  std::uint32_t element_bytes = 2;
  bool swizzle_128b = true;
};

/// A TMA copy issued and not landed yet, and a shared-memory barrier
/// (mbarrier): its arrivals per phase, those still missing in this phase,
/// the bytes announced and not yet landed, and the phases completed.
struct tma_copy {
  unsigned char* dst;
  tensor_map_2d map;
  int c0, c1;
};
struct mbarrier {
  unsigned arrivals = 0, missing = 0;
  std::int64_t tx = 0;
  unsigned phase = 0;
  std::vector<tma_copy> copies;
};
struct thread_state {
  std::vector<std::vector<copy16>> copy_groups;  ///< committed, oldest first
  std::vector<copy16> open_copies;
  std::vector<std::vector<product>> product_groups;
  std::vector<product> open_products;
  /// Accumulators in flight: their values as the products see them.
  std::vector<std::pair<float*, std::vector<float>>> accumulators;
};

struct block_state;
inline block_state* current = nullptr;

/// The state of a block being run.
struct block_state {
  unsigned threads;
  unsigned char* smem;  ///< 1024-byte aligned, `smem_bytes` of bf16 NaN at the start
  std::vector<thread_state> states;
  /// What the threads of a warp hand each other (shuffles, ldmatrix, mma).
  std::vector<std::uint32_t> words;  ///< 8 per thread
  std::vector<const void*> addresses;
  unsigned cluster_rank = 0;  ///< its place in its thread-block cluster
  /// Per 16 bytes of shared memory: 1 + the thread whose cp.async landed
  /// there and which has not fenced the async proxy since, else 0.
  std::vector<std::uint16_t> unfenced;
  /// The block's mbarriers, by shared-memory offset.
  std::map<std::size_t, mbarrier> mbarriers;
};

inline thread_state& self() {
  return current->states[threadIdx.x];
}

/// The order blocks run in along x: a kernel whose blocks meet through
/// global memory (a counter the last one to arrive reads) must give the
/// same result either way, as on a GPU, where any order can happen.
enum class block_order : bool { forward, backward };

/// Runs kernel() for every thread of every block of `grid`, `threads`
/// threads each (the last warp may be partial) with `smem_bytes` of dynamic
/// shared memory. Blocks run one after the other (along x in `order`), or,
/// with `cluster` > 1 (which must divide grid.x), the `cluster` blocks of a
/// thread-block cluster together. Rethrows what a thread threw; throws
/// std::logic_error on a deadlock (every live thread waits at a barrier that
/// cannot complete).
void launch(emu_dim3 grid, unsigned threads, std::size_t smem_bytes,
            const std::function<void()>& kernel, unsigned cluster = 1,
            block_order order = block_order::forward);

/// The running block's cluster: its size, a block of it by rank, and a
/// barrier of all its threads (cluster.sync()).
unsigned cluster_size();
block_state& cluster_block(unsigned rank);
void cluster_sync();

/// Waits until the `count` threads from `first` (a warp, a warpgroup, the
/// block) have all arrived here.
void barrier(unsigned first, unsigned count);
void warp_barrier();
/// A named barrier `id` of the block (bar.sync with `wait`, else bar.arrive):
/// this thread arrives; with `wait` it waits until `count` threads have
/// arrived in this generation. Id 0 is __syncthreads' barrier.
void named_barrier(unsigned id, unsigned count, bool wait);

std::uint32_t shuffle(std::uint32_t v, unsigned source_lane);

void copy_issue(void* dst, const void* src, bool valid);
void copy_commit();
void copy_wait(int pending);
/// fence.proxy.async: this thread's landed copies become visible to wgmma.
void proxy_fence();
void product_issue(float* d, int n, const std::uint32_t* a, std::uint64_t b, bool scale_d,
                   bool trans_b);
/// A product whose A operand is K-major in shared memory too (descriptor).
void product_issue_ss(float* d, int n, std::uint64_t a_desc, std::uint64_t b, bool scale_d);

/// mbarrier.init; mbarrier.arrive.expect_tx; a TMA copy completing on
/// `bar` (its destination turns NaN now and gets its bytes, with zeros
/// outside the tensor, when some thread next waits on `bar`); and
/// mbarrier.try_wait.parity in a loop: this thread yields until the phase of
/// parity `parity` has completed. A wait that can never end is a deadlock.
void mbarrier_init(void* bar, unsigned arrivals);
void mbarrier_arrive_expect_tx(void* bar, std::uint32_t bytes);
void tma_load_2d(void* dst, const tensor_map_2d& map, int c0, int c1, void* bar);
void mbarrier_wait(void* bar, unsigned parity);
void product_commit();
void product_wait(int pending);

/// ldmatrix .x`count` (count 2 or 4), .trans when `trans`: `row` is this
/// lane's row address.
void ldmatrix(std::uint32_t* r, int count, const void* row, bool trans);
/// mma.sync.m16n8k16 bf16 -> f32, c += a b.
void mma_m16n8k16(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1);

}  // namespace emu

inline void __syncthreads() {
  emu::barrier(0, emu::current->threads);
}
inline void __syncwarp(unsigned /*mask*/ = 0xffffffffu) {
  emu::warp_barrier();
}
inline float __expf(float x) {
  return std::exp(x);
}

inline std::size_t __cvta_generic_to_shared(const void* p) {
  return static_cast<std::size_t>(static_cast<const unsigned char*>(p) - emu::current->smem);
}

template <class T>
T __shfl_sync(unsigned /*mask*/, T v, int source_lane) {
  static_assert(sizeof(T) == 4);
  std::uint32_t bits;
  std::memcpy(&bits, &v, 4);
  bits = emu::shuffle(bits, static_cast<unsigned>(source_lane) % 32);
  std::memcpy(&v, &bits, 4);
  return v;
}

template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
  return __shfl_sync(mask, v,
                     static_cast<int>((threadIdx.x % 32) ^ static_cast<unsigned>(lane_mask)));
}
