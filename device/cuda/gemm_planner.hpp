// gemm_planner: per-shape algorithm choice for the bandwidth-bound products
// of decode steps. cublasGemmEx's default choice streams decode-shaped weights
// at 2.2-2.4 TB/s on an H100, while the best of the algorithms cuBLASLt's
// heuristic proposes runs up to ~10% faster (bench_gpu_ceilings). The planner
// times those candidates once per shape, outside any graph capture, and then
// runs the shape with the winner; shapes it was not asked to prepare go
// through gemm() unchanged.
//
// Same contract as gemm(): y[rows x out] = x[rows x in] * w[out x in]^T +
// beta * y, bf16 operands, fp32 accumulation, fp32 or bf16 y.
//
// Resource type: owns a cuBLASLt handle and one descriptor set per shape;
// move-only; one thread at a time, on one stream.
#pragma once

#include "common/result.hpp"
#include "device/cuda/gemm.hpp"

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

namespace accellm::device::cuda {

class gemm_planner {
 public:
  /// `workspace` (`bytes` long, device memory) must outlive the planner and
  /// is used only on stream `s`.
  static result<gemm_planner> create(cudaStream_t s, void* workspace, std::size_t bytes);
  gemm_planner() = default;
  gemm_planner(gemm_planner&&) noexcept;
  gemm_planner& operator=(gemm_planner&&) noexcept;
  gemm_planner(const gemm_planner&) = delete;
  gemm_planner& operator=(const gemm_planner&) = delete;
  ~gemm_planner();

  /// Chooses the algorithm for (rows, in, out, type, beta != 0) unless done:
  /// times each candidate on x, w and `scratch` (rows x out elements of
  /// `type`, overwritten) and keeps the fastest if it beats gemm()'s choice.
  /// Synchronises the stream. Must not run during graph capture.
  status prepare(cublasHandle_t h, const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                 const __nv_bfloat16* w, std::uint32_t out, gemm_out type, float beta,
                 void* scratch);

  /// Runs the product with the prepared algorithm, or through gemm() when the
  /// shape was not prepared (or cuBLAS's own choice was the fastest).
  status run(cublasHandle_t h, const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
             const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type, float beta) const;

  /// Shapes prepared so far, and how many of them use a cuBLASLt algorithm.
  std::size_t prepared() const noexcept { return plans_.size(); }
  std::size_t using_lt() const noexcept;

 private:
  // One shape's descriptors; `use_lt` false when cublasGemmEx won the timing.
  struct plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool use_lt = false;
    plan() = default;
    plan(const plan&) = delete;
    plan& operator=(const plan&) = delete;
    ~plan();
  };
  using key = std::tuple<std::uint32_t, std::uint32_t, std::uint32_t, gemm_out, bool>;
  gemm_planner(cudaStream_t s, void* workspace, std::size_t bytes, cublasLtHandle_t lt);

  cudaStream_t stream_ = nullptr;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
  cublasLtHandle_t lt_ = nullptr;
  std::map<key, std::unique_ptr<plan>> plans_;
};

}  // namespace accellm::device::cuda
