#include "device/backend.hpp"

#include <algorithm>
#include <string>
#include <utility>

namespace accellm::device {

std::vector<index_range> layer_groups(std::uint32_t layers, std::uint32_t layers_per_chunk) {
  const std::uint32_t per =
      layers_per_chunk == 0 || layers_per_chunk > layers ? layers : layers_per_chunk;
  std::vector<index_range> out;
  for (std::uint32_t l = 0; l < layers; l += per) out.push_back({l, std::min(layers, l + per)});
  return out;
}

result<std::vector<stream_slice>> stream_slices(const batch& b, const kv_stream& stream) {
  std::vector<stream_slice> out;
  out.reserve(stream.requests.size());
  for (const request_id r : stream.requests) {
    const auto item = std::find_if(b.items.begin(), b.items.end(),
                                   [r](const batch_item& it) { return it.request == r; });
    if (item == b.items.end())
      return fail(errc::invalid_argument,
                  "run_streaming: request " + std::to_string(r) + " is not in the batch");
    const bool twice =
        std::any_of(out.begin(), out.end(), [r](const stream_slice& s) { return s.request == r; });
    if (twice)
      return fail(errc::invalid_argument,
                  "run_streaming: request " + std::to_string(r) + " is streamed twice");
    out.push_back({r, {item->context, item->context + item->num_tokens}});
  }
  return out;
}

result<std::vector<kv_chunk>> export_group(backend& dev, const std::vector<stream_slice>& slices,
                                           index_range layers) {
  std::vector<kv_chunk> chunks;
  chunks.reserve(slices.size());
  for (const stream_slice& s : slices) {
    auto c = dev.export_kv(s.request, layers, s.tokens);
    if (!c) return std::move(c).err().context("run_streaming");
    chunks.push_back(std::move(*c));
  }
  return chunks;
}

result<iteration_result> backend::run_streaming(const batch& b, const kv_stream& stream) {
  auto slices = stream_slices(b, stream);
  if (!slices) return std::move(slices).err();
  auto r = run(b);
  if (!r) return r;
  for (const index_range g : layer_groups(model().layers, stream.layers_per_chunk)) {
    auto chunks = export_group(*this, *slices, g);
    if (!chunks) return std::move(chunks).err();
    if (stream.sink) stream.sink(std::move(*chunks));
  }
  return r;
}

}  // namespace accellm::device
