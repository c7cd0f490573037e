#include "device/cuda/check.hpp"

#include <string>

namespace accellm::device::cuda {

namespace {

// "call failed at file:line: text (name)", with the file's directory dropped.
error describe(errc kind, std::string_view call, std::string_view file, int line,
               std::string_view text, std::string_view name) {
  auto slash = file.find_last_of('/');
  if (slash != std::string_view::npos) file.remove_prefix(slash + 1);
  std::string out{call};
  out += " failed at ";
  out += file;
  out += ':';
  out += std::to_string(line);
  out += ": ";
  out += text;
  out += " (";
  out += name;
  out += ')';
  return error{kind, std::move(out)};
}

}  // namespace

error cuda_error(cudaError_t code, std::string_view call, std::string_view file, int line) {
  auto kind = code == cudaErrorMemoryAllocation ? errc::out_of_memory : errc::device_failure;
  return describe(kind, call, file, line, cudaGetErrorString(code), cudaGetErrorName(code));
}

error cublas_error(cublasStatus_t code, std::string_view call, std::string_view file, int line) {
  auto kind = code == CUBLAS_STATUS_ALLOC_FAILED ? errc::out_of_memory : errc::device_failure;
  return describe(kind, call, file, line, cublasGetStatusString(code), cublasGetStatusName(code));
}

}  // namespace accellm::device::cuda
