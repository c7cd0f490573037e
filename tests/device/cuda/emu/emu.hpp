// emu: runs CUDA kernel source on the host, one std::thread per CUDA
// thread, to check a kernel's logic where no GPU is lent: the indexing,
// the pipeline of asynchronous copies and products, and the barriers.
//
// What it models, and how it catches misuse:
// - threadIdx, blockIdx (thread_local), __syncthreads (a barrier of the
//   block's threads), __shfl_xor_sync and __shfl_sync (a barrier of the
//   warp's 32 threads around an exchange of values);
// - dynamic shared memory: one buffer per block, filled with bf16 NaN
//   before the block starts, so that reading what was never written shows;
// - cp.async (shim device/cuda/ptx.cuh): a copy's destination turns NaN when
//   it is issued and gets its bytes only at the issuing thread's
//   cp.async.wait_group that covers it, so reading a stage too early, or
//   refilling one still read, corrupts the result;
// - wgmma (shim device/cuda/wgmma.cuh): a product's accumulator turns NaN
//   when it is issued; its A registers and its shared-memory B are read only
//   at the wgmma.wait_group that retires it, when the warpgroup's 128
//   threads meet, each computing its own accumulator elements in fp32. So
//   touching an accumulator, an A register or a B tile while the product is
//   in flight changes the result.
// Not modelled: timing, the memory consistency of real hardware beyond the
// above, and anything the tensor cores do differently from the PTX ISA's
// fragment layouts (wgmma.cuh); those are checked on a GPU
// (attention_test.cpp).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>  // __global__, __device__, __align__ for the host compiler

#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

struct emu_dim3 {
  unsigned x = 0, y = 0, z = 0;
};
inline thread_local emu_dim3 threadIdx, blockIdx;

namespace emu {

/// One thread's pending asynchronous work.
struct copy16 {
  void* dst;
  const void* src;
  bool valid;
};
struct product {
  float* d;                ///< the thread's accumulator, N / 8 x 4 floats
  const std::uint32_t* a;  ///< its A fragment, read at retirement
  std::uint64_t b;         ///< shared-memory descriptor
  int n;                   ///< N: 64 or 128
  bool scale_d, trans_b;
};
struct thread_state {
  std::vector<std::vector<copy16>> copy_groups;  ///< committed, oldest first
  std::vector<copy16> open_copies;
  std::vector<std::vector<product>> product_groups;
  std::vector<product> open_products;
  /// Accumulators in flight: their values as the products see them.
  std::vector<std::pair<float*, std::vector<float>>> accumulators;
};

/// The state of the block being run.
struct block_state {
  explicit block_state(unsigned threads, std::size_t smem_bytes);
  unsigned threads;
  std::vector<unsigned char> smem_storage;
  unsigned char* smem;  ///< 128-byte aligned
  std::barrier<> block_barrier;
  std::vector<std::unique_ptr<std::barrier<>>> warp_barriers, group_barriers;
  std::vector<std::uint32_t> exchange;  ///< one slot per thread
  std::vector<thread_state> states;
};

inline thread_local block_state* current = nullptr;

inline thread_state& self() {
  return current->states[threadIdx.x];
}

/// Runs kernel() for every thread of every block of grid (x, y), blocks one
/// after the other, `threads` threads each with `smem_bytes` of dynamic
/// shared memory.
void launch(emu_dim3 grid, unsigned threads, std::size_t smem_bytes,
            const std::function<void()>& kernel);

std::uint32_t shuffle(std::uint32_t v, unsigned source_lane);

void copy_issue(void* dst, const void* src, bool valid);
void copy_commit();
void copy_wait(int pending);
void product_issue(float* d, int n, const std::uint32_t* a, std::uint64_t b, bool scale_d,
                   bool trans_b);
void product_commit();
void product_wait(int pending);

}  // namespace emu

inline void __syncthreads() {
  emu::current->block_barrier.arrive_and_wait();
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
