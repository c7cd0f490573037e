#include "device/cuda/runtime.hpp"

#include "device/cuda/programmatic.hpp"

#include <utility>

namespace accellm::device::cuda {

result<stream> stream::create() {
  cudaStream_t s = nullptr;
  ACCELLM_CUDA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return stream{s};
}

stream& stream::operator=(stream&& o) noexcept {
  std::swap(s_, o.s_);
  return *this;
}

stream::~stream() {
  if (s_ != nullptr) cudaStreamDestroy(s_);
}

status stream::synchronize() const {
  ACCELLM_CUDA_TRY(cudaStreamSynchronize(s_));
  return {};
}

result<cublas_handle> cublas_handle::create(cudaStream_t s) {
  cublasHandle_t h = nullptr;
  ACCELLM_CUBLAS_TRY(cublasCreate(&h));
  cublas_handle out{h};
  ACCELLM_CUBLAS_TRY(cublasSetStream(h, s));
  return out;
}

cublas_handle& cublas_handle::operator=(cublas_handle&& o) noexcept {
  std::swap(h_, o.h_);
  return *this;
}

cublas_handle::~cublas_handle() {
  if (h_ != nullptr) cublasDestroy(h_);
}

host_allocator pinned_allocator(int device) {
  return {[device](std::size_t bytes) -> void* {
            void* p = nullptr;
            if (cudaSetDevice(device) != cudaSuccess ||
                cudaHostAlloc(&p, bytes, cudaHostAllocPortable) != cudaSuccess) {
              (void)cudaGetLastError();  // not sticky: clear it for the next call
              return nullptr;
            }
            return p;
          },
          [device](void* p) {
            (void)cudaSetDevice(device);
            (void)cudaFreeHost(p);
          }};
}

namespace {
thread_local bool programmatic = false;
}  // namespace

bool programmatic_launch() noexcept {
  return programmatic;
}

programmatic_launch_scope::programmatic_launch_scope(bool on) noexcept
    : previous_(std::exchange(programmatic, on)) {}

programmatic_launch_scope::~programmatic_launch_scope() {
  programmatic = previous_;
}

}  // namespace accellm::device::cuda
