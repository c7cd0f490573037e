#include "device/cuda/forward.hpp"

#include "device/cuda/check.hpp"
#include "device/cuda/decode_attention.cuh"
#include "device/cuda/gemm.hpp"
#include "device/cuda/gemv.cuh"
#include "device/cuda/graph.hpp"
#include "device/cuda/prefill_attention.cuh"
#include "device/cuda/programmatic.hpp"
#include "device/cuda/rmsnorm.cuh"
#include "device/cuda/rope_append.cuh"
#include "device/cuda/sampling.cuh"
#include "device/cuda/swiglu.cuh"

#include <algorithm>
#include <array>
#include <cstring>

namespace accellm::device::cuda {
namespace {

// cuBLAS needs a workspace it owns for the whole capture: with one set,
// graph capture never allocates.
constexpr std::size_t blas_workspace_bytes = 32u << 20;

template <class T>
result<device_buffer<T>> alloc(std::uint64_t n) {
  return device_buffer<T>::allocate(n);
}

// Wide single-row products with an fp32 output (in practice the LM head of a
// one-request decode step) go through gemv: on an H100 a 22016 x 4096 product
// streams at 2.67 TB/s there against cuBLAS's 2.38 (bench_gpu_ceilings).
// With more rows, or fewer outputs (too few blocks), cuBLAS was as fast or
// faster, so it takes everything else.
constexpr std::uint32_t gemv_min_out = 16384;

bool use_gemv(std::uint32_t rows, std::uint32_t in, std::uint32_t out, gemm_out type) {
  return rows == 1 && out >= gemv_min_out && in % 8 == 0 && type == gemm_out::fp32;
}

}  // namespace

const char* op_name(op o) noexcept {
  static constexpr std::array<const char*, op_count> names{
      "embed",   "norm",   "qkv",  "rope_append", "decode_attention", "prefill_attention", "wo",
      "gate_up", "swiglu", "down", "head"};
  const auto i = static_cast<std::size_t>(o);
  return i < op_count ? names[i] : "?";
}

void step_plan::clear() {
  tokens.clear();
  pos.clear();
  slot.clear();
  decodes.clear();
  tiles.clear();
  out_rows.clear();
  tables.clear();
  items = 0;
  max_decode_length = 0;
}

forward_pass::forward_pass(const shard_shape& shape, const model_spec& spec, const weights& w,
                           kv_pool_view kv, forward_limits limits, use_graphs graphs,
                           cudaStream_t s)
    : shape_(shape),
      eps_(spec.norm_eps),
      w_(w),
      kv_(kv),
      limits_(limits),
      graphs_mode_(graphs),
      stream_(s) {}

forward_pass::~forward_pass() {
  for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
}

result<std::unique_ptr<forward_pass>> forward_pass::create(
    const shard_shape& shape, const model_spec& spec, const weights& w, kv_pool_view kv,
    forward_limits limits, use_graphs graphs, cudaStream_t s, prefill_rule prefill,
    gemm_planner_options planner, decode_tile_rule decode) {
  std::unique_ptr<forward_pass> f{new forward_pass(shape, spec, w, kv, limits, graphs, s)};
  ACCELLM_TRY(f->allocate(planner));
  auto table = rope_table_host(limits.max_context, shape.attn.head_dim, spec.rope_theta);
  ACCELLM_TRY_ASSIGN(f->rope_, alloc<float>(table.size()));
  ACCELLM_CUDA_TRY(cudaMemcpy(f->rope_.data(), table.data(), table.size() * sizeof(float),
                              cudaMemcpyHostToDevice));
  prefill_probe_options po;
  po.rule = prefill;
  po.tokens = std::min({po.tokens, limits.max_rows, limits.max_context});
  ACCELLM_TRY_ASSIGN(f->prefill_, choose_prefill_kernel(shape.attn, limits.block_tokens, s, po));
  decode_probe_options dp;
  dp.rule = decode;
  dp.context = std::min(dp.context, limits.max_context);
  dp.target_blocks = 32 * f->sm_count_;  // as run() splits a decode step
  ACCELLM_TRY_ASSIGN(f->decode_, choose_decode_tile(shape.attn, limits.block_tokens, s, dp));
  return f;
}

status forward_pass::allocate(gemm_planner_options planner) {
  int dev = 0;
  ACCELLM_CUDA_TRY(cudaGetDevice(&dev));
  ACCELLM_CUDA_TRY(cudaDeviceGetAttribute(reinterpret_cast<int*>(&sm_count_),
                                          cudaDevAttrMultiProcessorCount, dev));
  ACCELLM_TRY_ASSIGN(blas_, cublas_handle::create(stream_));
  ACCELLM_TRY_ASSIGN(blas_workspace_, alloc<std::uint8_t>(blas_workspace_bytes));
  ACCELLM_CUBLAS_TRY(cublasSetWorkspace(blas_.get(), blas_workspace_.data(), blas_workspace_bytes));
  ACCELLM_TRY_ASSIGN(planner_, gemm_planner::create(stream_, blas_workspace_.data(),
                                                    blas_workspace_bytes, planner));
  const std::uint64_t R = limits_.max_rows, I = limits_.max_items, T = limits_.max_tiles();
  const std::uint64_t meta = 3 * R + 3 * I + 4 * T + I + I * limits_.table_stride() + I;
  ACCELLM_TRY_ASSIGN(meta_, alloc<std::int32_t>(meta));
  ACCELLM_TRY_ASSIGN(meta_host_, pinned_buffer<std::int32_t>::allocate(meta));
  ACCELLM_TRY_ASSIGN(next_host_, pinned_buffer<std::int32_t>::allocate(I));
  std::int32_t* p = meta_.data();
  d_tokens_ = p, p += R;
  d_pos_ = p, p += R;
  d_slot_ = p, p += R;
  d_decodes_ = reinterpret_cast<decode_item*>(p), p += 3 * I;
  d_tiles_ = reinterpret_cast<prefill_tile*>(p), p += 4 * T;
  d_out_rows_ = p, p += I;
  d_tables_ = p, p += I * limits_.table_stride();
  d_next_ = p;
  kv_.tables = d_tables_;
  kv_.table_stride = limits_.table_stride();
  const std::uint64_t d = shape_.hidden, hd = shape_.attn.head_dim;
  ACCELLM_TRY_ASSIGN(x_, alloc<float>(R * d));
  ACCELLM_TRY_ASSIGN(qkv_, alloc<__nv_bfloat16>(R * shape_.qkv_width()));
  ACCELLM_TRY_ASSIGN(gate_up_, alloc<__nv_bfloat16>(R * 2 * shape_.ffn));
  ACCELLM_TRY_ASSIGN(logits_, alloc<float>(I * shape_.vocab));
  ACCELLM_TRY_ASSIGN(
      partial_, alloc<float>(decode_partial_floats(I, shape_.attn.heads, max_decode_splits, hd)));
  ACCELLM_TRY_ASSIGN(xn_, alloc<__nv_bfloat16>(R * std::max<std::uint64_t>(d, shape_.ffn)));
  ACCELLM_TRY_ASSIGN(q_, alloc<__nv_bfloat16>(R * shape_.attn.q_width()));
  ACCELLM_TRY_ASSIGN(att_, alloc<__nv_bfloat16>(R * shape_.attn.q_width()));
  ACCELLM_TRY_ASSIGN(act_, alloc<__nv_bfloat16>(R * shape_.ffn));
  const std::uint64_t widest =
      std::max<std::uint64_t>({shape_.qkv_width(), 2ull * shape_.ffn, d, shape_.vocab});
  ACCELLM_TRY_ASSIGN(planner_scratch_, alloc<std::uint8_t>(I * widest * sizeof(float)));
  ACCELLM_TRY_ASSIGN(start_, event::create());
  ACCELLM_TRY_ASSIGN(stop_, event::create());
  return {};
}

status forward_pass::upload(const step_plan& plan) {
  // Stage every region in pinned memory, then copy each used prefix.
  std::int32_t* host = meta_host_.data();
  auto put = [&](std::int32_t* dev, const void* src, std::size_t ints) -> status {
    if (ints == 0) return {};
    std::int32_t* h = host + (dev - meta_.data());
    std::memcpy(h, src, ints * sizeof(std::int32_t));
    ACCELLM_CUDA_TRY(
        cudaMemcpyAsync(dev, h, ints * sizeof(std::int32_t), cudaMemcpyHostToDevice, stream_));
    return {};
  };
  ACCELLM_TRY(put(d_tokens_, plan.tokens.data(), plan.tokens.size()));
  ACCELLM_TRY(put(d_pos_, plan.pos.data(), plan.pos.size()));
  ACCELLM_TRY(put(d_slot_, plan.slot.data(), plan.slot.size()));
  ACCELLM_TRY(put(reinterpret_cast<std::int32_t*>(d_decodes_), plan.decodes.data(),
                  3 * plan.decodes.size()));
  ACCELLM_TRY(
      put(reinterpret_cast<std::int32_t*>(d_tiles_), plan.tiles.data(), 4 * plan.tiles.size()));
  ACCELLM_TRY(put(d_out_rows_, plan.out_rows.data(), plan.out_rows.size()));
  ACCELLM_TRY(put(d_tables_, plan.tables.data(), plan.tables.size()));
  return {};
}

status forward_pass::linear(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                            const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type,
                            float beta) {
  if (use_gemv(rows, in, out, type))
    return gemv(x, rows, in, w, out, static_cast<float*>(y), beta, stream_);
  return planner_.run(blas_.get(), x, rows, in, w, out, y, type, beta);
}

status forward_pass::prepare_products(std::uint32_t rows, std::uint32_t outs) {
  const std::uint32_t d = shape_.hidden, qw = shape_.attn.q_width(), f = shape_.ffn;
  const layer_weights& lw = w_.layers[0];
  cublasHandle_t h = blas_.get();
  // Where the timing runs of a product of `r` rows x `out` write: the
  // planner's scratch holds a decode step's (r <= max_items); a longer
  // step's go to the gate/up activations, which nothing reads before the
  // step's own gate/up product writes them (every Llama shape fits there:
  // 2 ffn bf16 >= hidden fp32 and >= the QKV width in bf16). A product
  // that fits neither is left to cuBLAS's default.
  const auto prepare = [&](const __nv_bfloat16* x, std::uint32_t r, std::uint32_t in,
                           const __nv_bfloat16* w, std::uint32_t out, gemm_out type,
                           float beta) -> status {
    const std::uint64_t bytes =
        std::uint64_t{r} * out * (type == gemm_out::fp32 ? sizeof(float) : sizeof(__nv_bfloat16));
    void* scratch = bytes <= planner_scratch_.bytes() ? static_cast<void*>(planner_scratch_.data())
                    : bytes <= gate_up_.bytes()       ? static_cast<void*>(gate_up_.data())
                                                      : nullptr;
    if (scratch == nullptr) return {};
    return planner_.prepare(h, x, r, in, w, out, type, beta, scratch);
  };
  ACCELLM_TRY(
      prepare(xn_.data(), rows, d, lw.wqkv.data(), shape_.qkv_width(), gemm_out::bf16, 0.0f));
  ACCELLM_TRY(prepare(att_.data(), rows, qw, lw.wo.data(), d, gemm_out::fp32, 1.0f));
  ACCELLM_TRY(prepare(xn_.data(), rows, d, lw.wgate_up.data(), 2 * f, gemm_out::bf16, 0.0f));
  ACCELLM_TRY(prepare(act_.data(), rows, f, lw.wdown.data(), d, gemm_out::fp32, 1.0f));
  if (!use_gemv(outs, d, shape_.vocab, gemm_out::fp32))
    ACCELLM_TRY(
        prepare(xn_.data(), outs, d, w_.lm_head.data(), shape_.vocab, gemm_out::fp32, 0.0f));
  return {};
}

status forward_pass::layer(std::uint32_t l, const step_plan& plan, std::uint32_t splits) {
  const layer_weights& lw = w_.layers[l];
  const auto rows = static_cast<std::uint32_t>(plan.tokens.size());
  const std::uint32_t d = shape_.hidden, qw = shape_.attn.q_width(), f = shape_.ffn;
  ACCELLM_TRY(rmsnorm(x_.data(), lw.attn_norm.data(), rows, d, eps_, nullptr, xn_.data(), stream_));
  ACCELLM_TRY(mark(op::norm));
  ACCELLM_TRY(linear(xn_.data(), rows, d, lw.wqkv.data(), shape_.qkv_width(), qkv_.data(),
                     gemm_out::bf16, 0.0f));
  ACCELLM_TRY(mark(op::qkv));
  ACCELLM_TRY(rope_append(qkv_.data(), rows, shape_.attn, row_tables{d_pos_, d_slot_}, rope_.data(),
                          rope_.data() + rope_.size() / 2, q_.data(), kv_, l, stream_));
  ACCELLM_TRY(mark(op::rope_append));
  if (!plan.decodes.empty()) {
    decode_attention_args a;
    a.q = q_.data();
    a.out = att_.data();
    a.items = d_decodes_;
    a.n_items = static_cast<std::uint32_t>(plan.decodes.size());
    a.shape = shape_.attn;
    a.kv = kv_;
    a.layer = l;
    a.splits = splits;
    a.partial = partial_.data();
    a.tile = decode_.tile;
    ACCELLM_TRY(decode_attention(a, stream_));
    ACCELLM_TRY(mark(op::decode_attention));
  }
  if (!plan.tiles.empty()) {
    prefill_attention_args a;
    a.q = q_.data();
    a.out = att_.data();
    a.tiles = d_tiles_;
    a.n_tiles = static_cast<std::uint32_t>(plan.tiles.size());
    a.shape = shape_.attn;
    a.kv = kv_;
    a.layer = l;
    a.kernel = prefill_.kernel;  // the tiles were cut at its height
    ACCELLM_TRY(prefill_attention(a, stream_));
    ACCELLM_TRY(mark(op::prefill_attention));
  }
  ACCELLM_TRY(linear(att_.data(), rows, qw, lw.wo.data(), d, x_.data(), gemm_out::fp32, 1.0f));
  ACCELLM_TRY(mark(op::wo));
  ACCELLM_TRY(rmsnorm(x_.data(), lw.mlp_norm.data(), rows, d, eps_, nullptr, xn_.data(), stream_));
  ACCELLM_TRY(mark(op::norm));
  ACCELLM_TRY(linear(xn_.data(), rows, d, lw.wgate_up.data(), 2 * f, gate_up_.data(),
                     gemm_out::bf16, 0.0f));
  ACCELLM_TRY(mark(op::gate_up));
  ACCELLM_TRY(swiglu(gate_up_.data(), rows, f, act_.data(), stream_));
  ACCELLM_TRY(mark(op::swiglu));
  ACCELLM_TRY(linear(act_.data(), rows, f, lw.wdown.data(), d, x_.data(), gemm_out::fp32, 1.0f));
  return mark(op::down);
}

status forward_pass::launch(const step_plan& plan, std::uint32_t splits, const layer_hooks* hooks) {
  const auto rows = static_cast<std::uint32_t>(plan.tokens.size());
  const auto outs = static_cast<std::uint32_t>(plan.out_rows.size());
  ACCELLM_TRY(embed(w_.embedding.data(), d_tokens_, rows, shape_.hidden, x_.data(), stream_));
  ACCELLM_TRY(mark(op::embed));
  for (std::uint32_t l = 0; l < shape_.layers; ++l) {
    ACCELLM_TRY(layer(l, plan, splits));
    if (hooks != nullptr && hooks->enqueued) ACCELLM_TRY(hooks->enqueued(l));
  }
  ACCELLM_TRY(rmsnorm(x_.data(), w_.final_norm.data(), outs, shape_.hidden, eps_, d_out_rows_,
                      xn_.data(), stream_));
  ACCELLM_TRY(linear(xn_.data(), outs, shape_.hidden, w_.lm_head.data(), shape_.vocab,
                     logits_.data(), gemm_out::fp32, 0.0f));
  ACCELLM_TRY(argmax_rows(logits_.data(), outs, shape_.vocab, d_next_, stream_));
  return mark(op::head);
}

status forward_pass::mark(op o) {
  if (!breakdown_on_) return {};
  if (marks_used_ >= marks_.size())  // start_marks made room: a bug
    return fail(errc::internal, "forward_pass: more operators than breakdown events");
  ACCELLM_CUDA_TRY(cudaEventRecord(marks_[marks_used_].get(), stream_));
  mark_ops_[marks_used_++] = o;
  return {};
}

status forward_pass::start_marks() {
  // embed, 10 per layer at most, head, and the start.
  const std::size_t need = 3 + 10 * std::size_t{shape_.layers};
  while (marks_.size() < need) {
    auto e = event::create();
    if (!e) return std::move(e).err();
    marks_.push_back(std::move(*e));
  }
  mark_ops_.resize(marks_.size());
  marks_used_ = 0;
  return mark(op::embed);  // the start; its own tag is never read
}

status forward_pass::read_marks() {
  breakdown_.fill(0.0);
  for (std::size_t k = 1; k < marks_used_; ++k) {
    float ms = 0.0f;
    ACCELLM_CUDA_TRY(cudaEventElapsedTime(&ms, marks_[k - 1].get(), marks_[k].get()));
    breakdown_[static_cast<std::size_t>(mark_ops_[k])] += ms;
  }
  return {};
}

status forward_pass::run_graph(const step_plan& plan, std::uint32_t splits) {
  const std::array<std::uint32_t, 3> key{static_cast<std::uint32_t>(plan.tokens.size()), splits,
                                         static_cast<std::uint32_t>(plan.out_rows.size())};
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    cudaGraphExec_t exec = nullptr;
    ACCELLM_TRY_ASSIGN(exec, capture_graph(stream_, [&] { return launch(plan, splits, nullptr); }));
    it = graphs_.emplace(key, exec).first;
  }
  ACCELLM_CUDA_TRY(cudaGraphLaunch(it->second, stream_));
  return {};
}

status forward_pass::set_decode_split_rule(decode_split_rule rule) {
  if (rule == decode_split_rule::waves) {
    auto per_sm = decode_blocks_per_sm(decode_.tile, shape_.attn.head_dim);
    if (!per_sm) return std::move(per_sm).err();
    resident_blocks_ = *per_sm * sm_count_;
  }
  split_rule_ = rule;
  return {};
}

result<std::pair<std::span<const std::int32_t>, float>> forward_pass::run(
    const step_plan& plan, const layer_hooks* hooks) {
  ACCELLM_TRY(upload(plan));
  std::uint32_t splits = 1;
  if (!plan.decodes.empty()) {
    const auto items = static_cast<std::uint32_t>(plan.decodes.size());
    splits = split_rule_ == decode_split_rule::waves
                 ? choose_decode_splits_by_waves(items, shape_.attn.kv_heads,
                                                 plan.max_decode_length, resident_blocks_)
                 : choose_decode_splits(items, shape_.attn.kv_heads, plan.max_decode_length,
                                        32 * sm_count_);
  }
  // Every launch of this iteration, graph capture included, is made here.
  const programmatic_launch_scope programmatic(programmatic_ && !breakdown_on_);
  // The planner's first timing of a shape is not the iteration's time.
  ACCELLM_TRY(prepare_products(static_cast<std::uint32_t>(plan.tokens.size()),
                               static_cast<std::uint32_t>(plan.out_rows.size())));
  ACCELLM_CUDA_TRY(cudaEventRecord(start_.get(), stream_));
  const bool decode_only = plan.tiles.empty() && !plan.decodes.empty();
  if (breakdown_on_) ACCELLM_TRY(start_marks());
  if (decode_only && graphs_mode_ == use_graphs::yes && hooks == nullptr && !breakdown_on_) {
    ACCELLM_TRY(run_graph(plan, splits));
  } else {
    ACCELLM_TRY(launch(plan, splits, hooks));
  }
  ACCELLM_CUDA_TRY(cudaEventRecord(stop_.get(), stream_));
  const auto outs = plan.out_rows.size();
  ACCELLM_CUDA_TRY(cudaMemcpyAsync(next_host_.data(), d_next_, outs * sizeof(std::int32_t),
                                   cudaMemcpyDeviceToHost, stream_));
  if (hooks != nullptr && hooks->before_wait) ACCELLM_TRY(hooks->before_wait());
  ACCELLM_CUDA_TRY(cudaStreamSynchronize(stream_));
  if (breakdown_on_) ACCELLM_TRY(read_marks());
  float ms = 0.0f;
  ACCELLM_CUDA_TRY(cudaEventElapsedTime(&ms, start_.get(), stop_.get()));
  last_outputs_ = static_cast<std::uint32_t>(outs);
  return std::pair<std::span<const std::int32_t>, float>{
      std::span<const std::int32_t>{next_host_.data(), outs}, ms};
}

result<std::vector<float>> forward_pass::last_logits() const {
  std::vector<float> out(static_cast<std::size_t>(last_outputs_) * shape_.vocab);
  ACCELLM_CUDA_TRY(
      cudaMemcpy(out.data(), logits_.data(), out.size() * sizeof(float), cudaMemcpyDeviceToHost));
  return out;
}

}  // namespace accellm::device::cuda
