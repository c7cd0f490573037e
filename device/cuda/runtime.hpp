// RAII owners of CUDA resources (STYLE.md rule 12): a stream, a typed device
// buffer, a cuBLAS handle. Each is created by a factory that returns an error
// value instead of throwing, is move-only, and releases in its destructor.
//
// Thread contract: an owner is used by one thread at a time (the worker's GPU
// thread); CUDA itself is thread-safe for distinct streams.
#pragma once

#include "common/result.hpp"
#include "device/cuda/check.hpp"
#include "device/host_pool.hpp"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

namespace accellm::device::cuda {

/// A non-blocking CUDA stream.
class stream {
 public:
  static result<stream> create();
  stream() = default;
  stream(stream&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  stream& operator=(stream&& o) noexcept;
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;
  ~stream();

  cudaStream_t get() const noexcept { return s_; }
  /// Waits for everything queued on the stream.
  status synchronize() const;

 private:
  explicit stream(cudaStream_t s) : s_(s) {}
  cudaStream_t s_ = nullptr;
};

/// `n` elements of T in device memory.
template <class T>
class device_buffer {
 public:
  static result<device_buffer> allocate(std::size_t n) {
    void* p = nullptr;
    if (n != 0) ACCELLM_CUDA_TRY(cudaMalloc(&p, n * sizeof(T)));
    return device_buffer{static_cast<T*>(p), n};
  }
  device_buffer() = default;
  device_buffer(device_buffer&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  device_buffer& operator=(device_buffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  ~device_buffer() {
    if (p_ != nullptr) cudaFree(p_);
  }

  T* data() const noexcept { return p_; }
  std::size_t size() const noexcept { return n_; }
  std::size_t bytes() const noexcept { return n_ * sizeof(T); }

  /// Copies `size()` elements from host memory `src`, asynchronously on `s`.
  status upload(const T* src, cudaStream_t s) {
    ACCELLM_CUDA_TRY(cudaMemcpyAsync(p_, src, bytes(), cudaMemcpyHostToDevice, s));
    return {};
  }
  /// Copies `size()` elements to host memory `dst`, asynchronously on `s`.
  status download(T* dst, cudaStream_t s) const {
    ACCELLM_CUDA_TRY(cudaMemcpyAsync(dst, p_, bytes(), cudaMemcpyDeviceToHost, s));
    return {};
  }

 private:
  device_buffer(T* p, std::size_t n) : p_(p), n_(n) {}
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

/// `n` elements of T in page-locked host memory (staging for async copies).
template <class T>
class pinned_buffer {
 public:
  static result<pinned_buffer> allocate(std::size_t n) {
    void* p = nullptr;
    if (n != 0) ACCELLM_CUDA_TRY(cudaMallocHost(&p, n * sizeof(T)));
    return pinned_buffer{static_cast<T*>(p), n};
  }
  pinned_buffer() = default;
  pinned_buffer(pinned_buffer&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  pinned_buffer& operator=(pinned_buffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  pinned_buffer(const pinned_buffer&) = delete;
  pinned_buffer& operator=(const pinned_buffer&) = delete;
  ~pinned_buffer() {
    if (p_ != nullptr) cudaFreeHost(p_);
  }
  T* data() const noexcept { return p_; }
  std::size_t size() const noexcept { return n_; }

 private:
  pinned_buffer(T* p, std::size_t n) : p_(p), n_(n) {}
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

/// A CUDA event (timing enabled).
class event {
 public:
  static result<event> create() {
    cudaEvent_t e = nullptr;
    ACCELLM_CUDA_TRY(cudaEventCreate(&e));
    return event{e};
  }
  event() = default;
  event(event&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  event& operator=(event&& o) noexcept {
    std::swap(e_, o.e_);
    return *this;
  }
  event(const event&) = delete;
  event& operator=(const event&) = delete;
  ~event() {
    if (e_ != nullptr) cudaEventDestroy(e_);
  }
  cudaEvent_t get() const noexcept { return e_; }

 private:
  explicit event(cudaEvent_t e) : e_(e) {}
  cudaEvent_t e_ = nullptr;
};

/// Page-locked host memory for a host_pool's arenas: cudaHostAlloc,
/// portable (pinned for every device's context), and cudaFreeHost. Both
/// make `device` current first: a pool is used from other threads (a
/// worker's actors), which must not create a context on device 0. A failed
/// allocation is nullptr (the pool refuses).
host_allocator pinned_allocator(int device);

/// A cuBLAS handle bound to one stream.
class cublas_handle {
 public:
  static result<cublas_handle> create(cudaStream_t s);
  cublas_handle() = default;
  cublas_handle(cublas_handle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  cublas_handle& operator=(cublas_handle&& o) noexcept;
  cublas_handle(const cublas_handle&) = delete;
  cublas_handle& operator=(const cublas_handle&) = delete;
  ~cublas_handle();

  cublasHandle_t get() const noexcept { return h_; }

 private:
  explicit cublas_handle(cublasHandle_t h) : h_(h) {}
  cublasHandle_t h_ = nullptr;
};

}  // namespace accellm::device::cuda
