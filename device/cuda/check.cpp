#include "device/cuda/check.hpp"

#include <string>

namespace accellm::device::cuda {

namespace {

std::string where(std::string_view call, std::string_view file, int line) {
  auto slash = file.find_last_of('/');
  if (slash != std::string_view::npos) file.remove_prefix(slash + 1);
  std::string out{call};
  out += " failed at ";
  out += file;
  out += ':';
  out += std::to_string(line);
  out += ": ";
  return out;
}

}  // namespace

error cuda_error(cudaError_t code, std::string_view call, std::string_view file, int line) {
  auto text = where(call, file, line);
  text += cudaGetErrorString(code);
  text += " (";
  text += cudaGetErrorName(code);
  text += ')';
  auto kind = code == cudaErrorMemoryAllocation ? errc::out_of_memory : errc::device_failure;
  return error{kind, std::move(text)};
}

error cublas_error(cublasStatus_t code, std::string_view call, std::string_view file, int line) {
  auto text = where(call, file, line);
  text += cublasGetStatusString(code);
  text += " (";
  text += cublasGetStatusName(code);
  text += ')';
  auto kind = code == CUBLAS_STATUS_ALLOC_FAILED ? errc::out_of_memory : errc::device_failure;
  return error{kind, std::move(text)};
}

}  // namespace accellm::device::cuda
