// cuda_backend's same-node KV path between two processes (declared in
// cuda_backend.hpp): shared regions in GPU memory (shared_memory.hpp), and
// export_kv_to / import_kv_from packing into and unpacking out of them on
// the copy stream, with no host memory on the way.
#include "device/cuda/check.hpp"
#include "device/cuda/cuda_backend.hpp"
#include "device/cuda/kv_copy.cuh"
#include "device/cuda/shared_memory.hpp"

#include <string>
#include <utility>

namespace accellm::device::cuda {

result<__nv_bfloat16*> cuda_backend::region_span(const cuda_region& region, std::uint64_t offset,
                                                 std::uint64_t bytes, const char* where) const {
  if (region.device() != device_)
    return fail(errc::invalid_argument, std::string{where} + ": the region is mapped for GPU " +
                                            std::to_string(region.device()) + ", not " + name_);
  ACCELLM_TRY(check_span(region, offset, bytes, where));
  // kv_copy moves 16-byte vectors; every packed slice is a multiple of 16.
  if (offset % 16 != 0)
    return fail(errc::misaligned, std::string{where} + ": offset " + std::to_string(offset) +
                                      " is not a multiple of 16");
  return reinterpret_cast<__nv_bfloat16*>(region.data() + offset);
}

result<std::unique_ptr<shared_region>> cuda_backend::create_shared(std::uint64_t bytes) {
  auto r = cuda_region::create(device_, bytes);
  if (!r) return std::move(r).err().context(name_);
  return std::unique_ptr<shared_region>{std::move(*r)};
}

result<std::unique_ptr<shared_region>> cuda_backend::open_shared(region_kind kind, unique_fd fd,
                                                                 std::uint64_t bytes) {
  if (kind != region_kind::cuda) return backend::open_shared(kind, std::move(fd), bytes);
  auto r = cuda_region::open(device_, std::move(fd), bytes);
  if (!r) return std::move(r).err().context(name_);
  return std::unique_ptr<shared_region>{std::move(*r)};
}

result<kv_chunk> cuda_backend::export_kv_to(shared_region& region, std::uint64_t offset,
                                            request_id request, index_range layers,
                                            index_range tokens) {
  auto* gpu = dynamic_cast<cuda_region*>(&region);
  if (gpu == nullptr) return backend::export_kv_to(region, offset, request, layers, tokens);
  auto it = seqs_.find(request);
  if (it == seqs_.end())
    return fail(errc::not_found, "request " + std::to_string(request) + " is not cached");
  ACCELLM_TRY(check_slice(it->second, layers, tokens));
  kv_chunk c;
  c.request = request;
  c.layers = layers;
  c.tokens = tokens;
  c.bytes = slice_bytes(layers, tokens);
  auto to = region_span(*gpu, offset, c.bytes, "export_kv_to");
  if (!to) return std::move(to).err();
  if (c.bytes == 0) return c;
  ACCELLM_TRY(pack_slice(it->second, layers, tokens, *to));
  // The bytes must be in place before the peer hears of them.
  ACCELLM_CUDA_TRY(cudaStreamSynchronize(copy_stream_.get()));
  return c;
}

status cuda_backend::import_kv_from(const shared_region& region, std::uint64_t offset,
                                    const kv_chunk& header) {
  const auto* gpu = dynamic_cast<const cuda_region*>(&region);
  if (gpu == nullptr) return backend::import_kv_from(region, offset, header);
  ACCELLM_TRY(check_incoming(header.request, header.layers, header.tokens));
  const std::uint64_t bytes = slice_bytes(header.layers, header.tokens);
  if (header.bytes != bytes)
    return fail(errc::invalid_argument, "import_kv_from: the header says " +
                                            std::to_string(header.bytes) +
                                            " bytes, the shape needs " + std::to_string(bytes));
  auto from = region_span(*gpu, offset, bytes, "import_kv_from");
  if (!from) return std::move(from).err();
  if (bytes == 0) return {};
  ACCELLM_CUDA_TRY(cudaSetDevice(device_));
  ACCELLM_CUDA_TRY(cudaStreamWaitEvent(copy_stream_.get(), compute_done_.get(), 0));
  return unpack_from(header.request, header.layers, header.tokens, *from);
}

}  // namespace accellm::device::cuda
