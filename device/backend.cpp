#include "device/backend.hpp"

#include <malloc.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_set>
#include <utility>

namespace accellm::device {

std::vector<std::byte> copy_out(const std::byte* from, std::size_t bytes) {
  constexpr std::uintptr_t huge = std::uintptr_t{2} << 20;
  std::vector<std::byte> out;
  out.reserve(bytes);
  if (bytes >= 2 * huge) {
    // Only whole huge pages inside the allocation; a refusal (no THP in this
    // kernel) leaves ordinary pages, which are correct, only slower.
    const auto at = reinterpret_cast<std::uintptr_t>(out.data());
    const std::uintptr_t begin = (at + huge - 1) & ~(huge - 1), end = (at + bytes) & ~(huge - 1);
    if (end > begin) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  }
  out.assign(from, from + bytes);
  return out;
}

bool keep_freed_host_buffers(std::size_t keep_bytes) {
#if defined(__GLIBC__)
  const int keep = static_cast<int>(std::min<std::size_t>(keep_bytes, 0x7fffffff));
  return mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, keep) == 1;
#else
  (void)keep_bytes;
  return false;
#endif
}

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
                                           index_range layers, const kv_stream& stream) {
  std::vector<kv_chunk> chunks;
  chunks.reserve(slices.size());
  for (std::size_t i = 0; i < slices.size(); ++i) {
    const stream_slice& s = slices[i];
    const std::optional<kv_place> at =
        stream.place ? stream.place(i, dev.slice_bytes(layers, s.tokens)) : std::nullopt;
    auto c = at ? dev.export_kv_to(*at->region, at->offset, s.request, layers, s.tokens)
                : dev.export_kv(s.request, layers, s.tokens);
    if (!c) return std::move(c).err().context("run_streaming");
    if (at) {
      c->ring = at->ring;
      c->ring_pos = at->pos;
    }
    chunks.push_back(std::move(*c));
  }
  return chunks;
}

screened_batch screen(const backend& dev, batch b) {
  screened_batch out;
  out.runnable.items.reserve(b.items.size());
  out.from.reserve(b.items.size());
  std::unordered_set<request_id> seen;
  seen.reserve(b.items.size());
  for (std::size_t i = 0; i < b.items.size(); ++i) {
    batch_item& item = b.items[i];
    const request_id r = item.request;
    if (!seen.insert(r).second) {
      out.refused.push_back({i, error{errc::invalid_argument,
                                      "request " + std::to_string(r) + " is in the batch twice"}});
      continue;
    }
    if (auto ok = dev.check_item(item); !ok) {
      out.refused.push_back({i, std::move(ok).err()});
      continue;
    }
    out.runnable.items.push_back(std::move(item));
    out.from.push_back(i);
  }
  return out;
}

std::vector<token_id> unscreen(const screened_batch& s, std::size_t items,
                               std::vector<token_id> tokens) {
  if (s.refused.empty() && tokens.size() == items) return tokens;
  std::vector<token_id> out(items, no_token);
  for (std::size_t k = 0; k < s.from.size() && k < tokens.size(); ++k) {
    if (s.from[k] < items) out[s.from[k]] = tokens[k];
  }
  return out;
}

result<iteration_result> backend::run_streaming(const batch& b, const kv_stream& stream) {
  auto slices = stream_slices(b, stream);
  if (!slices) return std::move(slices).err();
  auto r = run(b);
  if (!r) return r;
  for (const index_range g : layer_groups(model().layers, stream.layers_per_chunk)) {
    auto chunks = export_group(*this, *slices, g, stream);
    if (!chunks) return std::move(chunks).err();
    if (stream.sink) stream.sink(std::move(*chunks));
  }
  return r;
}

std::uint64_t backend::slice_bytes(index_range layers, index_range tokens) const noexcept {
  const kv_geometry g = kv();
  const std::uint64_t per_token_layer = g.block_tokens == 0 || model().layers == 0
                                            ? 0
                                            : g.bytes_per_block / g.block_tokens / model().layers;
  return per_token_layer * layers.size() * tokens.size();
}

namespace {

// The host region behind `region`, and a check that `bytes` fit at `offset`.
result<const host_region*> host_span(const shared_region& region, std::uint64_t offset,
                                     std::uint64_t bytes, const char* where) {
  auto* host = dynamic_cast<const host_region*>(&region);
  if (!host)
    return fail(errc::unsupported, std::string{where} + ": a " +
                                       std::string{to_string(region.kind())} +
                                       " region; this backend reads host memory only");
  ACCELLM_TRY(check_span(region, offset, bytes, where));
  return host;
}

}  // namespace

result<std::unique_ptr<shared_region>> backend::create_shared(std::uint64_t bytes) {
  auto r = host_region::create(bytes, "accellm-kv-ring");
  if (!r) return std::move(r).err();
  return std::unique_ptr<shared_region>{std::move(*r)};
}

result<std::unique_ptr<shared_region>> backend::open_shared(region_kind kind, unique_fd fd,
                                                            std::uint64_t bytes) {
  if (kind != region_kind::host)
    return fail(errc::unsupported,
                std::string{name()} + " cannot map a " + std::string{to_string(kind)} + " region");
  auto r = host_region::open(std::move(fd), bytes);
  if (!r) return std::move(r).err();
  return std::unique_ptr<shared_region>{std::move(*r)};
}

result<kv_chunk> backend::export_kv_to(shared_region& region, std::uint64_t offset,
                                       request_id request, index_range layers, index_range tokens) {
  auto host = host_span(region, offset, slice_bytes(layers, tokens), "export_kv_to");
  if (!host) return std::move(host).err();
  auto c = export_kv(request, layers, tokens);
  if (!c) return c;
  if (c->data.size() > (*host)->bytes() - offset)  // a backend whose slice_bytes is wrong
    return fail(errc::internal, "export_kv_to: the slice has " + std::to_string(c->data.size()) +
                                    " bytes, slice_bytes said fewer");
  std::memcpy((*host)->data() + offset, c->data.data(), c->data.size());
  c->data = {};
  return c;
}

status backend::import_kv_from(const shared_region& region, std::uint64_t offset,
                               const kv_chunk& header) {
  auto host = host_span(region, offset, header.bytes, "import_kv_from");
  if (!host) return std::move(host).err();
  kv_chunk c{.request = header.request,
             .layers = header.layers,
             .tokens = header.tokens,
             .bytes = header.bytes,
             .data = {}};
  c.data = copy_out((*host)->data() + offset, header.bytes);
  return import_kv(c);
}

}  // namespace accellm::device
