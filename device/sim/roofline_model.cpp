#include "device/sim/roofline_model.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <utility>

namespace accellm::device::sim {
namespace {

// Per-device widths of one block under tensor parallelism t (Megatron
// sharding: heads, KV heads and the FFN split across devices; KV heads are
// replicated when t > kv_heads, as Vidur's param_counter does [S12]).
struct shard {
  double h = 0;                    // hidden (activations are full width on every device)
  double q = 0;                    // query width: heads / t * head_dim
  double kv = 0;                   // K (or V) width: ceil(kv_heads / t) * head_dim
  double f = 0;                    // FFN width: ffn / t
  double vocab = 0;                // LM-head rows: vocab / t
  double t = 1;                    // devices
  double bw = 0, ba = 0, bkv = 0;  // bytes per weight, activation, KV element
};

shard make_shard(const model_spec& m, const deployment& d) {
  const double t = d.tp;
  const std::uint32_t kv_local = (m.kv_heads + d.tp - 1) / d.tp;
  return {double(m.hidden),
          double(m.heads) / t * m.head_dim(),
          double(kv_local) * m.head_dim(),
          double(m.ffn) / t,
          double(m.vocab) / t,
          t,
          double(dtype_bytes(d.weights)),
          double(dtype_bytes(d.activations)),
          double(dtype_bytes(d.kv))};
}

// One operator's totals in seconds (converted to nanoseconds at the end so
// that rounding does not accumulate over layers).
struct cost {
  const char* name = "";
  double flops = 0, bytes = 0, compute = 0, memory = 0, time = 0;
  bool collective = false;
};

class roof {
 public:
  roof(const hardware_spec& hw, const deployment& d) : hw_(hw), d_(d) {}

  // max(compute, memory) for one kernel, added to `c`; its bytes move at
  // eta_memory of the HBM bandwidth (eta.hbm unless given).
  void kernel(cost& c, double flops, double bytes, double eta_compute,
              double eta_memory = 0) const {
    const double tc = flops / (hw_.peak_flops * eta_compute);
    const double tm = bytes / (hw_.hbm_bandwidth * (eta_memory > 0 ? eta_memory : hw_.eta.hbm));
    c.flops += flops;
    c.bytes += bytes;
    c.compute += tc;
    c.memory += tm;
    c.time += std::max(tc, tm);
  }

  // y[T x n] = x[T x k] * W[k x n]: weights read once, activations in and out.
  cost gemm(const char* name, double tokens, double k, double n, const shard& s) const {
    cost c{name};
    kernel(c, 2 * tokens * k * n, k * n * s.bw + tokens * (k + n) * s.ba, hw_.eta.gemm);
    return c;
  }

  // RMSNorm: ~4 FLOP per element, read and write the rows, read the weights.
  cost norm(const char* name, double tokens, const shard& s) const {
    cost c{name};
    kernel(c, 4 * tokens * s.h, 2 * tokens * s.h * s.ba + s.h * s.bw, hw_.eta.gemm);
    return c;
  }

  // Collective of `payload` bytes: ring all-reduce moves 2(t-1)/t of it, an
  // all-gather (t-1)/t; plus alpha per call. Nothing on one device.
  void collective(cost& c, double payload, double factor) const {
    c.collective = true;
    if (d_.tp <= 1) return;
    const double t = d_.tp;
    const double wire = factor * (t - 1) / t * payload;
    const double seconds = wire / hw_.allreduce_busbw(d_.tp) +
                           std::chrono::duration<double>(hw_.allreduce.latency).count();
    c.bytes += wire;
    c.memory += seconds;
    c.time += seconds;
  }

 private:
  const hardware_spec& hw_;
  const deployment& d_;
};

// Attention of every item over its own context. Causal prefill chunk of q
// tokens after c cached ones: each query i sees c + i + 1 keys, so
// sum = q (c + (q + 1) / 2) query-key pairs; QK^T and AV cost 2 * q_width
// FLOPs per pair each. Bytes: K and V of all c + q positions read, the q new
// ones written, Q read and O written; this traffic moves at eta.kv (fitted
// on the H100 to what one more KV byte costs a decode step, docs/cost-model.md
// 1.4).
cost attention(const batch& b, const shard& s, const roof& r, const efficiency& eta) {
  cost c{"attention"};
  for (const batch_item& it : b.items) {
    const double q = it.num_tokens;
    const double ctx = it.context;
    const double pairs = q * (ctx + (q + 1) / 2);
    const double kv_bytes = (ctx + 2 * q) * 2 * s.kv * s.bkv;
    r.kernel(c, 4 * s.q * pairs, kv_bytes + 2 * q * s.q * s.ba, eta.attention, eta.kv);
  }
  return c;
}

// The operators of one step, in execution order, without heap allocation
// (the simulator prices every iteration).
class op_list {
 public:
  void push_back(const cost& c) { ops_[n_++] = c; }
  const cost* begin() const { return ops_.data(); }
  const cost* end() const { return ops_.data() + n_; }

 private:
  std::array<cost, 10> ops_{};
  std::size_t n_ = 0;
};

op_list block_ops(const batch& b, double tokens, const shard& s, const roof& r,
                  const hardware_spec& hw) {
  op_list ops;
  ops.push_back(r.norm("attn_norm", tokens, s));
  ops.push_back(r.gemm("qkv_proj", tokens, s.h, s.q + 2 * s.kv, s));
  ops.push_back(attention(b, s, r, hw.eta));
  ops.push_back(r.gemm("o_proj", tokens, s.q, s.h, s));
  ops.push_back(r.norm("mlp_norm", tokens, s));
  ops.push_back(r.gemm("gate_proj", tokens, s.h, s.f, s));
  ops.push_back(r.gemm("up_proj", tokens, s.h, s.f, s));
  cost act{"mlp_act"};  // silu(gate) * up: read two, write one
  r.kernel(act, 4 * tokens * s.f, 3 * tokens * s.f * s.ba, hw.eta.gemm);
  ops.push_back(act);
  ops.push_back(r.gemm("down_proj", tokens, s.f, s.h, s));
  cost allreduce{"allreduce"};  // after o_proj and after down_proj
  r.collective(allreduce, tokens * s.h * s.ba, 2.0);
  r.collective(allreduce, tokens * s.h * s.ba, 2.0);
  ops.push_back(allreduce);
  return ops;
}

// Once per iteration, after the last block: final norm over all rows, LM head
// and logits all-gather only for the rows that sample a token.
op_list head_ops(double tokens, double outputs, const shard& s, const roof& r) {
  op_list ops;
  ops.push_back(r.norm("final_norm", tokens, s));
  if (outputs > 0) {
    ops.push_back(r.gemm("lm_head", outputs, s.h, s.vocab, s));
    cost gather{"logits_gather"};
    r.collective(gather, outputs * s.vocab * s.t * s.ba, 1.0);  // full logits
    ops.push_back(gather);
  }
  return ops;
}

op_cost to_op(const cost& c, double scale) {
  return {c.name,
          c.flops * scale,
          c.bytes * scale,
          from_seconds(c.compute * scale),
          from_seconds(c.memory * scale),
          from_seconds(c.time * scale),
          c.collective};
}

}  // namespace

status check_tp(const model_spec& model, std::uint32_t tp, const hardware_spec* hardware) {
  const std::string name = "tp " + std::to_string(tp);
  if (tp == 0) return fail(errc::invalid_argument, "tp must be at least 1");
  if (model.heads % tp != 0) {
    return fail(
        errc::invalid_argument,
        name + " does not divide the " + std::to_string(model.heads) + " heads of " + model.name);
  }
  if (model.kv_heads % tp != 0 && tp % model.kv_heads != 0) {
    return fail(errc::invalid_argument, name + " neither divides nor is a multiple of the " +
                                            std::to_string(model.kv_heads) + " KV heads of " +
                                            model.name);
  }
  if (hardware != nullptr && tp > hardware->devices_per_node) {
    return fail(errc::invalid_argument, name + " exceeds the " +
                                            std::to_string(hardware->devices_per_node) +
                                            " devices of one " + hardware->name + " node");
  }
  return {};
}

result<roofline_model> roofline_model::create(const model_spec& model,
                                              const hardware_spec& hardware,
                                              const deployment& deploy) {
  if (auto why = model.check(); !why.empty()) {
    return fail(errc::invalid_argument, "model " + model.name + ": " + why);
  }
  if (auto why = hardware.check(); !why.empty()) {
    return fail(errc::invalid_argument, "hardware " + hardware.name + ": " + why);
  }
  if (auto ok = check_tp(model, deploy.tp, &hardware); !ok) return std::move(ok).err();
  return roofline_model{model, hardware, deploy};
}

roofline_model::roofline_model(model_spec model, hardware_spec hardware, deployment deploy)
    : model_(std::move(model)), hardware_(std::move(hardware)), deploy_(deploy) {
  const shard s = make_shard(model_, deploy_);
  const roof r{hardware_, deploy_};
  const batch none;  // attention over no item costs nothing: the rest remains
  decode_block_.assign(decode_table_size + 1, 0.0);
  decode_head_.assign(decode_table_size + 1, 0.0);
  for (std::size_t n = 1; n <= decode_table_size; ++n) {
    const auto tokens = static_cast<double>(n);
    for (const cost& c : block_ops(none, tokens, s, r, hardware_)) decode_block_[n] += c.time;
    for (const cost& c : head_ops(tokens, tokens, s, r)) decode_head_[n] += c.time;
  }
}

std::string roofline_model::describe() const {
  return "roofline " + hardware_.name + " tp" + std::to_string(deploy_.tp);
}

template <class OnOp>
std::chrono::nanoseconds roofline_model::price(const batch& b, OnOp on_op,
                                               std::chrono::nanoseconds& per_layer) const {
  double tokens = 0, outputs = 0;
  for (const batch_item& it : b.items) {
    tokens += it.num_tokens;
    outputs += it.wants_output ? 1 : 0;
  }
  const shard s = make_shard(model_, deploy_);
  const roof r{hardware_, deploy_};
  double block_seconds = 0;
  for (const cost& c : block_ops(b, tokens, s, r, hardware_)) {
    block_seconds += c.time;
    on_op(c, static_cast<double>(model_.layers));
  }
  double head_seconds = 0;
  for (const cost& c : head_ops(tokens, outputs, s, r)) {
    head_seconds += c.time;
    on_op(c, 1.0);
  }
  const double layer_overhead = std::chrono::duration<double>(hardware_.layer_overhead).count();
  per_layer = from_seconds(block_seconds + layer_overhead);
  return from_seconds((block_seconds + layer_overhead) * model_.layers + head_seconds) +
         hardware_.iteration_overhead;
}

std::chrono::nanoseconds roofline_model::fixed_overhead() const {
  return hardware_.iteration_overhead + hardware_.layer_overhead * model_.layers;
}

result<cost_breakdown> roofline_model::estimate(const batch& b) const {
  if (auto ok = check_batch_shape(b); !ok) return std::move(ok).err();
  cost_breakdown out;
  out.ops.reserve(12);
  out.total = price(
      b, [&](const cost& c, double scale) { out.ops.push_back(to_op(c, scale)); }, out.per_layer);
  out.overhead = fixed_overhead();
  return out;
}

result<std::chrono::nanoseconds> roofline_model::iteration_time(const batch& b) const {
  const std::size_t n = b.items.size();
  const bool decode_only =
      n >= 1 && n <= decode_table_size &&
      std::all_of(b.items.begin(), b.items.end(), [](const batch_item& it) {
        return it.kind == phase::decode && it.num_tokens == 1 && it.wants_output;
      });
  if (decode_only) {  // what a simulation prices most often
    // attention() for one-token items, with the divisions hoisted out.
    const shard s = make_shard(model_, deploy_);
    const double per_flop = 1.0 / (hardware_.peak_flops * hardware_.eta.attention);
    const double per_byte = 1.0 / (hardware_.hbm_bandwidth * hardware_.eta.kv);
    const double kv_row = 2 * s.kv * s.bkv;
    const double q_io = 2 * s.q * s.ba;
    double att = 0;
    for (const batch_item& it : b.items) {
      const double ctx = it.context;
      const double tc = 4 * s.q * (ctx + 1) * per_flop;
      const double tm = ((ctx + 2) * kv_row + q_io) * per_byte;
      att += std::max(tc, tm);
    }
    const double layer_overhead = std::chrono::duration<double>(hardware_.layer_overhead).count();
    return from_seconds((decode_block_[n] + att + layer_overhead) * model_.layers +
                        decode_head_[n]) +
           hardware_.iteration_overhead;
  }
  if (auto ok = check_batch_shape(b); !ok) return std::move(ok).err();
  std::chrono::nanoseconds per_layer{0};
  return price(
      b, [](const cost&, double) {}, per_layer);
}

}  // namespace accellm::device::sim
