#include "device/cpu/cpu_backend.hpp"

#include "device/cpu/kernels.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace accellm::device::cpu {
namespace {

// Built only on failure: checking a batch must not allocate.
std::string item_name(request_id request) {
  return "request " + std::to_string(request);
}

}  // namespace

cpu_backend::cpu_backend(key, model_spec spec, cpu_options options, weights w)
    : spec_(std::move(spec)),
      options_(std::move(options)),
      weights_(std::move(w)),
      cache_(kv_shape{spec_.layers, spec_.kv_width(), options_.block_tokens, options_.kv_blocks}),
      pass_(spec_, weights_) {}

kv_geometry cpu_backend::kv() const noexcept {
  return kv_geometry{options_.block_tokens, options_.kv_blocks,
                     options_.block_tokens * spec_.kv_bytes_per_token(dtype::fp32), dtype::fp32};
}

std::chrono::nanoseconds cpu_backend::now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch());
}

status cpu_backend::check_item(const batch_item& item) const {
  const auto name = [&item] { return item_name(item.request); };
  if (item.num_tokens == 0) return fail(errc::invalid_argument, name() + ": num_tokens is 0");
  if (item.tokens.size() != item.num_tokens)
    return fail(errc::invalid_argument, name() + ": num_tokens " + std::to_string(item.num_tokens) +
                                            " but " + std::to_string(item.tokens.size()) +
                                            " tokens");
  if (item.kind == phase::decode && item.num_tokens != 1)
    return fail(errc::invalid_argument, name() + ": decode with num_tokens " +
                                            std::to_string(item.num_tokens) + " (must be 1)");
  for (const token_id t : item.tokens)
    if (t < 0 || static_cast<std::uint32_t>(t) >= spec_.vocab)
      return fail(errc::out_of_range, name() + ": token id " + std::to_string(t) +
                                          " outside vocabulary of " + std::to_string(spec_.vocab));
  if (std::uint64_t{item.context} + item.num_tokens > spec_.max_context)
    return fail(errc::out_of_range, name() + ": context " + std::to_string(item.context) + " + " +
                                        std::to_string(item.num_tokens) +
                                        " tokens exceeds max_context " +
                                        std::to_string(spec_.max_context));
  return check_cached(item);
}

status cpu_backend::check_cached(const batch_item& item) const {
  const auto name = [&item] { return item_name(item.request); };
  const kv_cache::sequence* seq = cache_.find(item.request);
  if (!seq) {
    if (item.kind == phase::decode || item.context != 0)
      return fail(errc::not_found, name() + ": unknown request at context " +
                                       std::to_string(item.context) + " (nothing cached)");
    return {};
  }
  // What every layer holds. Rows some layers hold beyond it (a copy cut off
  // between two layers) are overwritten from there.
  const std::uint32_t cached = kv_cache::complete_tokens(*seq);
  if (item.context != cached) {
    const auto most = *std::max_element(seq->layer_tokens.begin(), seq->layer_tokens.end());
    return fail(errc::invalid_argument,
                name() + ": context " + std::to_string(item.context) + " but " +
                    std::to_string(cached) + " tokens cached in every layer" +
                    (most > cached ? " (" + std::to_string(most) + " in some)" : std::string{}));
  }
  return {};
}

status cpu_backend::check_batch(const batch& b) {
  ids_.clear();
  for (std::size_t i = 0; i < b.items.size(); ++i) {
    if (auto s = check_item(b.items[i]); !s)
      return std::move(s).err().context("run: items[" + std::to_string(i) + "]");
    ids_.push_back(b.items[i].request);
  }
  std::sort(ids_.begin(), ids_.end());
  if (const auto dup = std::adjacent_find(ids_.begin(), ids_.end()); dup != ids_.end())
    return fail(errc::invalid_argument,
                "run: request " + std::to_string(*dup) + " appears twice in the batch");
  std::uint64_t extra = 0;
  for (const batch_item& item : b.items)
    extra += cache_.extra_blocks(item.request, item.context + item.num_tokens);
  if (extra > cache_.free_blocks())
    return fail(errc::out_of_memory, "run: kv pool exhausted: batch needs " +
                                         std::to_string(extra) + " more blocks, " +
                                         std::to_string(cache_.free_blocks()) + " free");
  return {};
}

status cpu_backend::grow_and_plan(const batch& b) {
  seqs_.clear();
  rows_.clear();
  outputs_.clear();
  for (const batch_item& item : b.items) {
    auto grown = cache_.grow(item.request, item.context + item.num_tokens);
    // check_batch reserved the capacity of the whole batch: failing here is a bug.
    if (!grown) return std::move(grown).err().context("run (internal)");
    seqs_.push_back(*grown);
    for (std::uint32_t j = 0; j < item.num_tokens; ++j)
      rows_.push_back(token_row{item.tokens[j], item.context + j, *grown});
    if (item.wants_output) outputs_.push_back(static_cast<std::uint32_t>(rows_.size() - 1));
  }
  return {};
}

result<iteration_result> cpu_backend::run(const batch& b) {
  return run_pass(b, {});
}

result<iteration_result> cpu_backend::run_streaming(const batch& b, const kv_stream& stream) {
  auto slices = stream_slices(b, stream);
  if (!slices) return std::move(slices).err();
  const std::vector<index_range> groups = layer_groups(spec_.layers, stream.layers_per_chunk);
  std::size_t group = 0;
  status exported;  // the first export that failed, if any
  auto after_layer = [&](std::uint32_t layer) {
    // The layer holds the iteration's rows now: export_kv may read them.
    for (std::size_t i = 0; i < b.items.size(); ++i)
      seqs_[i]->layer_tokens[layer] = b.items[i].context + b.items[i].num_tokens;
    if (layer + 1 != groups[group].end) return;
    auto chunks = export_group(*this, *slices, groups[group++], stream);
    if (!chunks) {  // cannot happen: every slice's rows were just written
      if (exported) exported = std::move(chunks).err();
      return;
    }
    if (stream.sink) stream.sink(std::move(*chunks));
  };
  auto r = run_pass(b, after_layer);
  if (r && !exported) return std::move(exported).err();
  return r;
}

result<iteration_result> cpu_backend::run_pass(
    const batch& b, const std::function<void(std::uint32_t)>& after_layer) {
  const auto start = now();
  if (auto s = check_batch(b); !s) return std::move(s).err();
  if (auto s = grow_and_plan(b); !s) return std::move(s).err();
  last_logits_ = pass_.run(rows_, outputs_, cache_, after_layer);
  iteration_result out;
  out.next_tokens.reserve(b.items.size());
  std::size_t o = 0;
  for (std::size_t i = 0; i < b.items.size(); ++i) {
    const batch_item& item = b.items[i];
    std::fill(seqs_[i]->layer_tokens.begin(), seqs_[i]->layer_tokens.end(),
              item.context + item.num_tokens);
    if (!item.wants_output) {
      out.next_tokens.push_back(no_token);
      continue;
    }
    const auto logits = last_logits_.subspan(o++ * spec_.vocab, spec_.vocab);
    out.next_tokens.push_back(static_cast<token_id>(argmax(logits)));
  }
  out.duration = now() - start;
  return out;
}

std::uint32_t cpu_backend::cached_tokens(request_id request) const noexcept {
  const kv_cache::sequence* seq = cache_.find(request);
  return seq ? kv_cache::complete_tokens(*seq) : 0;
}

void cpu_backend::release(request_id request) noexcept {
  cache_.release(request);
}

namespace {

std::string range_text(index_range r) {
  return "[" + std::to_string(r.begin) + ", " + std::to_string(r.end) + ")";
}

// Shape checks shared by export_kv and import_kv.
status check_ranges(const char* where, const model_spec& spec, index_range layers,
                    index_range tokens) {
  if (layers.begin > layers.end || tokens.begin > tokens.end)
    return fail(errc::invalid_argument, std::string{where} + ": reversed range: layers " +
                                            range_text(layers) + ", tokens " + range_text(tokens));
  if (layers.end > spec.layers)
    return fail(errc::out_of_range, std::string{where} + ": layers " + range_text(layers) +
                                        " outside the model's " + std::to_string(spec.layers));
  if (tokens.end > spec.max_context)
    return fail(errc::out_of_range, std::string{where} + ": tokens " + range_text(tokens) +
                                        " beyond max_context " + std::to_string(spec.max_context));
  return {};
}

}  // namespace

result<kv_chunk> cpu_backend::export_kv(request_id request, index_range layers,
                                        index_range tokens) {
  const kv_cache::sequence* seq = cache_.find(request);
  if (!seq)
    return fail(errc::not_found, "export_kv: request " + std::to_string(request) + " not cached");
  if (auto s = check_ranges("export_kv", spec_, layers, tokens); !s) return std::move(s).err();
  for (std::uint32_t l = layers.begin; l < layers.end; ++l)
    if (tokens.end > seq->layer_tokens[l])
      return fail(errc::out_of_range, "export_kv: request " + std::to_string(request) + " layer " +
                                          std::to_string(l) + " holds " +
                                          std::to_string(seq->layer_tokens[l]) + " tokens, asked " +
                                          range_text(tokens));
  const std::size_t row_bytes = std::size_t{spec_.kv_width()} * sizeof(float);
  std::vector<std::byte> data(std::size_t{2} * layers.size() * tokens.size() * row_bytes);
  std::byte* out = data.data();
  for (std::uint32_t l = layers.begin; l < layers.end; ++l)
    for (const bool value : {false, true})
      for (std::uint32_t t = tokens.begin; t < tokens.end; ++t, out += row_bytes)
        std::memcpy(out, value ? cache_.v_row(*seq, l, t) : cache_.k_row(*seq, l, t), row_bytes);
  const std::uint64_t bytes = data.size();
  return kv_chunk{request, layers, tokens, bytes, std::move(data)};
}

status cpu_backend::check_import(const kv_chunk& chunk) const {
  if (auto s = check_ranges("import_kv", spec_, chunk.layers, chunk.tokens); !s) return s;
  const std::uint64_t expected =
      2ull * chunk.layers.size() * chunk.tokens.size() * spec_.kv_width() * sizeof(float);
  if (chunk.data.size() != expected || chunk.bytes != chunk.data.size())
    return fail(errc::invalid_argument,
                "import_kv: request " + std::to_string(chunk.request) + " layers " +
                    range_text(chunk.layers) + " tokens " + range_text(chunk.tokens) + " needs " +
                    std::to_string(expected) + " bytes, got data " +
                    std::to_string(chunk.data.size()) + ", bytes " + std::to_string(chunk.bytes));
  const kv_cache::sequence* seq = cache_.find(chunk.request);
  for (std::uint32_t l = chunk.layers.begin; l < chunk.layers.end; ++l) {
    const std::uint32_t have = seq ? seq->layer_tokens[l] : 0;
    if (chunk.tokens.begin > have)
      return fail(errc::out_of_range, "import_kv: request " + std::to_string(chunk.request) +
                                          " layer " + std::to_string(l) + " holds " +
                                          std::to_string(have) + " tokens; tokens " +
                                          range_text(chunk.tokens) + " would leave a gap");
  }
  return {};
}

status cpu_backend::import_kv(const kv_chunk& chunk) {
  if (auto s = check_import(chunk); !s) return s;
  auto grown = cache_.grow(chunk.request, chunk.tokens.end);  // fails without change
  if (!grown) return std::move(grown).err().context("import_kv");
  kv_cache::sequence& seq = **grown;
  const std::size_t row_bytes = std::size_t{spec_.kv_width()} * sizeof(float);
  const std::byte* in = chunk.data.data();
  for (std::uint32_t l = chunk.layers.begin; l < chunk.layers.end; ++l) {
    for (const bool value : {false, true})
      for (std::uint32_t t = chunk.tokens.begin; t < chunk.tokens.end; ++t, in += row_bytes)
        std::memcpy(value ? cache_.v_row(seq, l, t) : cache_.k_row(seq, l, t), in, row_bytes);
    seq.layer_tokens[l] = std::max(seq.layer_tokens[l], chunk.tokens.end);
  }
  return {};
}

namespace {

constexpr std::uint64_t max_floats = 1ull << 30;  // 4 GiB of fp32: far beyond a "small" model

status check_spec(const model_spec& s) {
  const std::string name = "cpu backend: model '" + s.name + "': ";
  if (const std::string problem = s.check(); !problem.empty())
    return fail(errc::invalid_argument, name + problem);
  if (s.vocab > 0x7fffffffu)
    return fail(errc::invalid_argument, name + "vocab must fit a token_id");
  const std::uint64_t params = s.params();
  if (params > max_floats || std::uint64_t{s.max_context} * s.head_dim() > max_floats)
    return fail(errc::too_large,
                name + std::to_string(params) + " parameters: too large for the cpu backend");
  return {};
}

status check_options(const model_spec& s, const cpu_options& o) {
  if (o.block_tokens == 0 || o.kv_blocks == 0)
    return fail(errc::invalid_argument, "cpu backend: block_tokens and kv_blocks must be > 0");
  if (o.block_tokens > s.max_context)
    return fail(errc::invalid_argument,
                "cpu backend: block_tokens " + std::to_string(o.block_tokens) +
                    " exceeds max_context " + std::to_string(s.max_context));
  // Divide rather than multiply: the product of the options can overflow.
  const std::uint64_t block_floats = 2ull * s.layers * s.kv_width() * o.block_tokens;
  if (o.kv_blocks > 0xffffffffu || block_floats > max_floats ||
      o.kv_blocks > max_floats / block_floats)
    return fail(errc::too_large,
                "cpu backend: kv pool of " + std::to_string(o.kv_blocks) + " blocks is too large");
  return {};
}

}  // namespace

result<std::unique_ptr<cpu_backend>> make_cpu_backend(const model_spec& spec, cpu_options options) {
  if (auto s = check_spec(spec); !s) return std::move(s).err();
  if (auto s = check_options(spec, options); !s) return std::move(s).err();
  weights w = make_weights(spec, options.seed);
  return std::make_unique<cpu_backend>(cpu_backend::key{}, spec, std::move(options), std::move(w));
}

}  // namespace accellm::device::cpu
