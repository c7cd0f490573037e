// bench_gpu_model: decode-step and prefill times of the CUDA model on one
// GPU, with the napkin math beside each figure (bytes moved, FLOPs, fraction
// of H100 SXM peak: 3.35 TB/s HBM, 989 TFLOP/s dense bf16).
//
//   bench_gpu_model --model llama2-7b [--tp 8] [--batches 1,8,64] [--contexts 512,2048]
//                   [--prefill 128,2048] [--steps 10] [--csv out.csv] [--profile out.csv]
//                   [--stream 512,2048] [--stream-csv out.csv] [--breakdown on]
//                   [--prefill-kernel timed|rows64|rows128|wgmma64|wgmma128|tma128|tma128pp|
//                                     tma128n]
//                   [--skinny on|off] [--lt-split-k on|off] [--pdl on|off]
//                   [--decode-tile timed|32x2|16x4|32x4|64x2|16x2|tma16x3|tma16x5]
//                   [--decode-splits blocks|waves] [--pinned-mib N]
//                   [--profiler-range off|decode|prefill] [--kv-blocks N]
//
// Decode: B requests at context C (their KV stands in from a seeded pool, see
// cuda_backend::assume_cached), 3 warm-up steps, then the median over
// --steps steps of the device time (CUDA events). Prefill: one request of T
// prompt tokens, 1 warm-up, median of 3. Configurations whose KV does not fit
// in the pool are reported as skipped. --csv appends one row per figure;
// --profile writes the medians in device/profiles' format (tp > 1 times
// include the modelled all-reduce). The header names the prefill attention
// kernel the backend chose at creation and why (prefill_choice.hpp).
// --prefill-kernel (default timed: the backend's own rule; rows128, wgmma64, wgmma128,
// tma128, tma128pp, tma128n: that one whenever it is verified), --skinny off (the planner tries
// cuBLAS(Lt) only) and --lt-split-k off (cuBLASLt's proposals only, no split-K variants) set
// those choices, to compare them or to step around a kernel that fails. --pdl off launches
// the kernels without programmatic dependent launch (launch.cuh), to measure what it buys.
// --decode-tile (default timed: the backend's own probe, decode_choice.hpp) runs decode
// attention with that pipeline (keys per stage x stages; decode_attention.cuh), to compare
// them end to end; the tile used and why is printed under the header. --decode-splits
// blocks splits each decode step's context aiming at 32 blocks per SM instead of by the
// waves of resident blocks it makes (waves, the backend's default; decode_attention.cuh).
//
// --stream: the layer-wise KV copy of a prompt (run_streaming, one layer per
// group, what a worker does for a replicated prefill) against the same
// prefill without it, median of 3 after a warm-up, host wall-clock: the
// iteration's time both ways, when the first and the last layer's KV reached
// the host (from the call), and the KV's bytes. The copy is hidden when the
// last layer lands about when the iteration ends. Chunks for the host are
// held until the call returns (a worker's queue holds them while the network
// drains), so a prompt larger than the pinned pool has its last groups
// dropped (kv_chunk::dropped: a worker gives up their copies); how many is
// printed and is the CSV's last column.
//
// --profiler-range decode (prefill): the first timed decode step (prefill)
// of the run, and nothing else, runs between cudaProfilerStart and
// cudaProfilerStop, so that `ncu --profile-from-start off` profiles that
// iteration's kernels alone, after the probes, the planner and the warm-up
// (run.sh's NCU=1 phase). --kv-blocks N sizes the KV pool (default: 90% of
// what the weights leave free), so that the profiler can back up the
// device's memory on the device.
//
// --breakdown on: after each decode and prefill figure, one more iteration
// launched kernel by kernel with an event after every operator, printed per
// operator: time, share, and the bytes and FLOPs it moves as TB/s and TFLOP/s
// (weights for the products, KV for decode attention).
#include "device/cuda/cuda_backend.hpp"
#include "device/cuda/device_query.hpp"

#include <cuda_profiler_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace accellm;
using namespace accellm::device;

constexpr double peak_bytes = 3.35e12;  // H100 SXM HBM3
constexpr double peak_flops = 989e12;   // H100 SXM dense bf16

struct args {
  std::string model = "llama2-7b";
  std::uint32_t tp = 1;
  std::vector<std::uint32_t> batches{1, 8, 16, 32, 64, 128, 256};
  std::vector<std::uint32_t> contexts{512, 1024, 2048, 4096, 8192};
  std::vector<std::uint32_t> prefill{128, 256, 512, 1024, 2048, 4096, 8192};
  std::vector<std::uint32_t> stream;
  bool breakdown = false;
  cuda::prefill_rule prefill_rule = cuda::prefill_rule::timed;
  bool skinny = true;
  bool lt_split_k = true;
  bool pdl = true;
  cuda::decode_tile_rule decode_tile;  // timed
  cuda::decode_split_rule decode_splits = cuda::decode_split_rule::waves;
  std::optional<std::uint32_t> pinned_mib;  // cuda_options' default unless given
  std::string profiler_range = "off";       // off, decode or prefill
  std::uint64_t kv_blocks = 0;              // 0: cuda_options' default
  std::uint32_t steps = 10;
  std::string csv, profile, stream_csv;
};

std::vector<std::uint32_t> parse_list(const std::string& s) {
  std::vector<std::uint32_t> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(static_cast<std::uint32_t>(std::stoul(item)));
  return out;
}

// One flag and its value into `a`; false when the flag or value is unknown.
// Numbers go through std::stoul, which throws on one that does not parse.
bool parse_flag(const std::string& k, const std::string& v, args& a) {
  if (k == "--model")
    a.model = v;
  else if (k == "--tp")
    a.tp = static_cast<std::uint32_t>(std::stoul(v));
  else if (k == "--batches")
    a.batches = parse_list(v);
  else if (k == "--contexts")
    a.contexts = parse_list(v);
  else if (k == "--prefill")
    a.prefill = parse_list(v);
  else if (k == "--steps")
    a.steps = static_cast<std::uint32_t>(std::stoul(v));
  else if (k == "--csv")
    a.csv = v;
  else if (k == "--profile")
    a.profile = v;
  else if (k == "--stream")
    a.stream = parse_list(v);
  else if (k == "--stream-csv")
    a.stream_csv = v;
  else if (k == "--breakdown" && (v == "on" || v == "off"))
    a.breakdown = v == "on";
  else if (k == "--prefill-kernel" && cuda::prefill_rule_named(v))
    a.prefill_rule = *cuda::prefill_rule_named(v);
  else if (k == "--skinny" && (v == "on" || v == "off"))
    a.skinny = v == "on";
  else if (k == "--lt-split-k" && (v == "on" || v == "off"))
    a.lt_split_k = v == "on";
  else if (k == "--pdl" && (v == "on" || v == "off"))
    a.pdl = v == "on";
  else if (k == "--decode-tile" && cuda::decode_tile_rule_named(v))
    a.decode_tile = *cuda::decode_tile_rule_named(v);
  else if (k == "--decode-splits" && cuda::decode_split_rule_named(v))
    a.decode_splits = *cuda::decode_split_rule_named(v);
  else if (k == "--pinned-mib" && std::stoul(v) <= 65536)
    a.pinned_mib = static_cast<std::uint32_t>(std::stoul(v));
  else if (k == "--profiler-range" && (v == "off" || v == "decode" || v == "prefill"))
    a.profiler_range = v;
  else if (k == "--kv-blocks" && std::stoul(v) <= (1ul << 24))
    a.kv_blocks = std::stoul(v);
  else
    return false;
  return true;
}

// "" when the flags parse; otherwise what is wrong, naming the flag.
std::string parse(int argc, char** argv, args& a) {
  if (argc % 2 == 0) return std::string{argv[argc - 1]} + ": a flag without a value";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    try {
      if (!parse_flag(k, v, a)) return k + " " + v + ": unknown flag or value";
    } catch (const std::exception&) {  // std::stoul
      return k + " " + v + ": not a number (or out of range)";
    }
  }
  return "";
}

// The hardware catalogue's name for the GPU (device/hardware_spec.hpp).
std::string hardware_of(const std::string& gpu) {
  if (gpu.find("H100") != std::string::npos) return "h100";
  if (gpu.find("H200") != std::string::npos) return "h200";
  if (gpu.find("A100") != std::string::npos) return "a100";
  return "unknown";
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

struct figure {
  std::string kind;
  std::uint32_t batch, context, tokens;
  double ms, ar_ms, bytes, flops;
};

class bench {
 public:
  bench(cuda::cuda_backend& b, const args& a, std::string gpu)
      : b_(b), a_(a), gpu_(std::move(gpu)) {}

  // Per-layer linear-layer parameters of the shard.
  double linear_params() const {
    const auto& s = b_.shape();
    return double(s.hidden) * s.qkv_width() + double(s.attn.q_width()) * s.hidden +
           3.0 * s.hidden * s.ffn;
  }

  bool decode(std::uint32_t batch, std::uint32_t context, figure& f) {
    const std::uint32_t total = 3 + a_.steps;
    // Positions used: the timed steps, and the breakdown's step.
    const std::uint32_t used = total + (a_.breakdown ? 1 : 0);
    // At the model's longest context, start early enough to fit the steps.
    if (context + used > b_.model().max_context) {
      if (context > b_.model().max_context || used >= context) return false;
      context = b_.model().max_context - used;
    }
    const std::uint64_t per_req = (context + used + 15) / 16;
    if (per_req * batch > b_.free_blocks() || batch > 256) return false;
    for (request_id r = 0; r < batch; ++r)
      if (!b_.assume_cached(r, context).ok()) return false;
    std::vector<double> ms;
    for (std::uint32_t s = 0; s < total; ++s) {
      batch_t bt;
      for (request_id r = 0; r < batch; ++r)
        bt.items.push_back(
            batch_item{r,
                       phase::decode,
                       context + s,
                       1,
                       {static_cast<token_id>((r * 7919 + s * 104729) % b_.model().vocab)},
                       true});
      const bool profiled = s == 3 && profile_once("decode");
      auto out = b_.run(bt);
      if (profiled) cudaProfilerStop();
      if (!out) {
        std::cerr << "decode failed: " << out.err().what() << "\n";
        std::exit(1);
      }
      if (s >= 3) ms.push_back(out->duration.count() * 1e-6);
    }
    if (a_.breakdown) {
      batch_t bt;
      double kv = 0;
      for (request_id r = 0; r < batch; ++r) {
        bt.items.push_back(batch_item{r, phase::decode, context + total, 1, {1}, true});
        kv += double(context + total + 1) * kv_bytes_per_token();
      }
      breakdown(bt, batch, kv, 0);
    }
    for (request_id r = 0; r < batch; ++r) b_.release(r);
    const auto& sh = b_.shape();
    const double L = sh.layers;
    f.kind = "decode";
    f.batch = batch;
    f.context = context;
    f.tokens = batch;
    f.ar_ms = b_.allreduce_seconds(batch) * 1e3;
    f.ms = median(ms) - f.ar_ms;
    f.bytes = double(b_.parameters().streamed_bytes()) +
              double(batch) * (context + a_.steps / 2.0) * 2.0 * L * sh.attn.kv_width() * 2.0;
    f.flops = 2.0 * batch * (L * linear_params() + double(sh.vocab) * sh.hidden) +
              4.0 * batch * context * double(sh.attn.q_width()) * L;
    return true;
  }

  bool prefill(std::uint32_t tokens, figure& f) {
    if (tokens > b_.model().max_context || tokens > 8192 || (tokens + 15) / 16 > b_.free_blocks())
      return false;
    std::vector<double> ms;
    std::vector<token_id> ids(tokens);
    for (std::uint32_t i = 0; i < tokens; ++i)
      ids[i] = static_cast<token_id>((i * 7919) % b_.model().vocab);
    for (int rep = 0; rep < 4; ++rep) {
      batch_t bt{{batch_item{1000, phase::prefill, 0, tokens, ids, true}}};
      const bool profiled = rep == 1 && profile_once("prefill");
      auto out = b_.run(bt);
      if (profiled) cudaProfilerStop();
      if (!out) {
        std::cerr << "prefill failed: " << out.err().what() << "\n";
        std::exit(1);
      }
      b_.release(1000);
      if (rep > 0) ms.push_back(out->duration.count() * 1e-6);
    }
    if (a_.breakdown) {
      const auto& sh = b_.shape();
      breakdown(batch_t{{batch_item{1000, phase::prefill, 0, tokens, ids, true}}}, tokens, 0,
                2.0 * double(tokens) * tokens * sh.attn.q_width() * sh.layers);
      b_.release(1000);
    }
    const auto& sh = b_.shape();
    const double L = sh.layers, T = tokens;
    f.kind = "prefill";
    f.batch = 1;
    f.context = 0;
    f.tokens = tokens;
    f.ar_ms = b_.allreduce_seconds(tokens) * 1e3;
    f.ms = median(ms) - f.ar_ms;
    f.bytes = double(b_.parameters().streamed_bytes()) + T * 2.0 * L * sh.attn.kv_width() * 2.0;
    f.flops = 2.0 * T * L * linear_params() + 2.0 * sh.vocab * double(sh.hidden) +
              2.0 * T * T * double(sh.attn.q_width()) * L;
    return true;
  }

  // True (and the profiler started) for the first iteration of `kind` when
  // --profiler-range names it.
  bool profile_once(const char* kind) {
    if (profiled_ || a_.profiler_range != kind) return false;
    profiled_ = true;
    return cudaProfilerStart() == cudaSuccess;
  }

  // KV bytes of one token over every layer of the shard.
  double kv_bytes_per_token() const {
    return 2.0 * b_.shape().layers * b_.shape().attn.kv_width() * 2.0;
  }

  // Runs `bt` (`rows` token rows) once with the per-operator breakdown and
  // prints it; `kv_bytes` and `attention_flops` are what attention moves.
  void breakdown(const device::batch& bt, std::uint32_t rows, double kv_bytes,
                 double attention_flops) {
    b_.set_breakdown(true);
    auto out = b_.run(bt);
    b_.set_breakdown(false);
    if (!out) {
      std::cerr << "breakdown run failed: " << out.err().what() << "\n";
      std::exit(1);
    }
    const auto& sh = b_.shape();
    const double L = sh.layers, d = sh.hidden;
    // Weight elements each product streams, over all layers.
    auto weights = [&](cuda::op o) {
      switch (o) {
        case cuda::op::qkv:
          return L * d * sh.qkv_width();
        case cuda::op::wo:
          return L * double(sh.attn.q_width()) * d;
        case cuda::op::gate_up:
          return L * d * 2.0 * sh.ffn;
        case cuda::op::down:
          return L * double(sh.ffn) * d;
        case cuda::op::head:
          return double(sh.vocab) * d;
        default:
          return 0.0;
      }
    };
    const cuda::op_breakdown& t = b_.last_breakdown();
    double total = 0;
    for (double ms : t) total += ms;
    std::printf("  breakdown, launched kernel by kernel: %.3f ms\n", total);
    for (std::size_t i = 0; i < cuda::op_count; ++i) {
      if (t[i] <= 0) continue;
      const auto o = static_cast<cuda::op>(i);
      const double s = t[i] * 1e-3;
      double bytes = 2.0 * weights(o), flops = 2.0 * rows * weights(o);
      if (o == cuda::op::decode_attention) bytes = kv_bytes;
      if (o == cuda::op::prefill_attention) flops = attention_flops;
      std::printf("    %-18s %8.3f ms %5.1f%%", cuda::op_name(o), t[i], 100 * t[i] / total);
      if (bytes > 0)
        std::printf("  %6.2f TB/s (%5.1f%% of 3.35)", bytes / s / 1e12,
                    100 * bytes / s / peak_bytes);
      if (flops > 0)
        std::printf("  %6.1f TFLOP/s (%5.1f%% of 989)", flops / s / 1e12,
                    100 * flops / s / peak_flops);
      std::printf("\n");
    }
  }

  // The layer-wise copy of a prompt of `tokens` tokens, to the host (a
  // partner on another node: kv_chunk::data) and into a region of GPU memory
  // (a partner on this node: kv_stream::place, the same-node ring); false
  // when it does not fit.
  bool stream(std::uint32_t tokens, std::ostream* csv) {
    if (tokens > b_.model().max_context || tokens > 8192 || (tokens + 15) / 16 > b_.free_blocks())
      return false;
    using clock = std::chrono::steady_clock;
    auto ms_since = [](clock::time_point t0) {
      return std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    };
    std::vector<token_id> ids(tokens);
    for (std::uint32_t i = 0; i < tokens; ++i)
      ids[i] = static_cast<token_id>((i * 7919) % b_.model().vocab);
    const batch_t bt{{batch_item{1000, phase::prefill, 0, tokens, ids, true}}};
    auto region = b_.create_shared(b_.slice_bytes({0, b_.model().layers}, {0, tokens}));
    if (!region) {
      std::cerr << "stream: " << region.err().what() << "\n";
      std::exit(1);
    }
    struct times {
      std::vector<double> total, first, last, no_room;
    };
    times plain, host, ring;
    double bytes = 0;
    // Milliseconds of one prefill `go` runs (request 1000, released after).
    auto timed = [&](auto&& go) {
      const auto t0 = clock::now();
      auto r = go();
      const double ms = ms_since(t0);
      b_.release(1000);
      if (!r) {
        std::cerr << "stream failed: " << r.err().what() << "\n";
        std::exit(1);
      }
      return ms;
    };
    // One streamed prefill; `placed`: into the region, one chunk after another.
    // Chunks for the host are held until the call returns, as a worker's
    // send queue holds them while the network drains: they keep their lent
    // pinned memory, and the groups the pool has no room for are dropped.
    auto streamed = [&](bool placed, times& into) {
      double first_ms = -1, last_ms = 0, got = 0;
      std::uint64_t offset = 0, pos = 0;
      std::vector<kv_chunk> held;
      kv_stream s;
      s.requests = {1000};
      s.layers_per_chunk = 1;
      clock::time_point t0;
      s.sink = [&](std::vector<kv_chunk> chunks) {
        last_ms = ms_since(t0);
        if (first_ms < 0) first_ms = last_ms;
        for (kv_chunk& c : chunks) {
          got += static_cast<double>(c.bytes);
          if (!placed) held.push_back(std::move(c));
        }
      };
      if (placed)
        s.place = [&](std::size_t, std::uint64_t n) -> std::optional<kv_place> {
          const kv_place at{region->get(), offset, 1, pos++};
          offset += n;
          return at;
        };
      const std::uint64_t refused = b_.lent_kv().refusals();
      t0 = clock::now();
      into.total.push_back(timed([&] { return b_.run_streaming(bt, s); }));
      into.first.push_back(first_ms);
      into.last.push_back(last_ms);
      into.no_room.push_back(static_cast<double>(b_.lent_kv().refusals() - refused));
      bytes = got;
    };
    for (int rep = 0; rep < 4; ++rep) {
      plain.total.push_back(timed([&] { return b_.run(bt); }));
      streamed(false, host);
      streamed(true, ring);
    }
    // The first repetition warms up (staging buffers, first touch).
    auto med = [](const std::vector<double>& v) {
      return median(std::vector<double>(v.begin() + 1, v.end()));
    };
    const double p = med(plain.total);
    std::printf("stream   %-12s tp%-2u tokens %5u: prefill %8.3f ms; %.3f GB of KV\n",
                a_.model.c_str(), a_.tp, tokens, p, bytes / 1e9);
    for (const auto& [name, t] :
         {std::pair{"to the host", &host}, std::pair{"to a GPU ring", &ring}})
      std::printf(
          "  with the layer-wise copy %-13s %8.3f ms (%+6.1f%%); first layer's KV there after "
          "%7.3f ms, last after %8.3f ms\n",
          name, med(t->total), 100 * (med(t->total) - p) / p, med(t->first), med(t->last));
    std::printf(
        "  to the host: %.0f of %u layer groups dropped (no room in the %.0f MiB "
        "pinned pool), the rest lent\n",
        med(host.no_room), b_.model().layers,
        static_cast<double>(b_.lent_kv().cap_bytes()) / (1 << 20));
    if (csv)
      *csv << gpu_ << ',' << a_.model << ',' << a_.tp << ',' << tokens << ',' << p << ','
           << med(host.total) << ',' << med(host.first) << ',' << med(host.last) << ',' << bytes
           << ',' << med(ring.total) << ',' << med(ring.first) << ',' << med(ring.last) << ','
           << med(host.no_room) << ',' << static_cast<double>(b_.lent_kv().cap_bytes()) / (1 << 20)
           << '\n';
    return true;
  }

  void report(const figure& f, std::ostream* csv) const {
    const double s = f.ms * 1e-3;
    const double bw = f.bytes / s, fl = f.flops / s;
    std::printf(
        "%-8s %-12s tp%-2u batch %4u ctx %5u tokens %5u: %9.3f ms  %6.2f TB/s (%5.1f%% of 3.35)  "
        "%6.1f TFLOP/s (%5.1f%% of 989)%s\n",
        f.kind.c_str(), a_.model.c_str(), a_.tp, f.batch, f.context, f.tokens, f.ms, bw / 1e12,
        100 * bw / peak_bytes, fl / 1e12, 100 * fl / peak_flops,
        f.ar_ms > 0 ? (" + " + std::to_string(f.ar_ms) + " ms all-reduce (modelled)").c_str() : "");
    if (csv)
      *csv << gpu_ << ',' << a_.model << ',' << a_.tp << ',' << f.kind << ',' << f.batch << ','
           << f.context << ',' << f.tokens << ',' << f.ms << ',' << f.ar_ms << ',' << f.bytes << ','
           << f.flops << ',' << bw / 1e12 << ',' << bw / peak_bytes << ',' << fl / 1e12 << ','
           << fl / peak_flops << '\n';
  }

 private:
  using batch_t = device::batch;
  cuda::cuda_backend& b_;
  const args& a_;
  std::string gpu_;
  bool profiled_ = false;  // --profiler-range: its iteration has run
};

}  // namespace

int main(int argc, char** argv) {
  args a;
  if (const std::string bad = parse(argc, argv, a); !bad.empty()) {
    std::cerr << "bench_gpu_model: " << bad
              << "\nusage: bench_gpu_model --model NAME [--tp N] [--batches LIST] [--contexts LIST]"
                 " [--prefill LIST] [--steps N] [--csv FILE] [--profile FILE] [--stream LIST]"
                 " [--stream-csv FILE] [--breakdown on|off] [--prefill-kernel "
                 "timed|rows64|rows128|wgmma64|wgmma128|tma128|tma128pp|tma128n]"
                 " [--skinny on|off] [--lt-split-k on|off] [--pdl on|off]"
                 " [--decode-tile timed|32x2|16x4|32x4|64x2|16x2|tma16x3|tma16x5]"
                 " [--decode-splits blocks|waves] [--pinned-mib 0..65536]"
                 " [--profiler-range off|decode|prefill] [--kv-blocks 0..16777216]\n";
    return 2;
  }
  auto devices = cuda::query_devices();
  if (!devices) {
    std::cerr << "bench_gpu_model: " << devices.err().what() << "\n";
    return 1;
  }
  const std::string gpu = (*devices)[0].name;
  cuda::cuda_options o;
  o.tp = a.tp;
  o.seed = 1;
  o.prefill = a.prefill_rule;
  o.skinny_gemm = a.skinny;
  o.cublaslt_split_k = a.lt_split_k;
  o.programmatic_launch = a.pdl;
  o.decode_attention_tile = a.decode_tile;
  o.decode_splits = a.decode_splits;
  if (a.pinned_mib) o.pinned_kv_bytes = std::uint64_t{*a.pinned_mib} << 20;
  o.kv_blocks = a.kv_blocks;
  auto b = cuda::make_cuda_backend("cuda:0", a.model, o);
  if (!b) {
    std::cerr << "bench_gpu_model: " << b.err().what() << "\n";
    return 1;
  }
  if (auto st = (*b)->fill_pool(7); !st) {
    std::cerr << "bench_gpu_model: " << st.err().what() << "\n";
    return 1;
  }
  std::printf("%s on %s: %.2f GB of bf16 weights, KV pool %llu blocks of %llu bytes\n",
              a.model.c_str(), gpu.c_str(), (*b)->parameters().bytes() / 1e9,
              static_cast<unsigned long long>((*b)->kv().total_blocks),
              static_cast<unsigned long long>((*b)->kv().bytes_per_block));
  std::printf("prefill attention kernel %s\n",
              cuda::describe((*b)->prefill_kernel_choice()).c_str());
  std::printf("decode attention tile %s; context splits by %s\n",
              cuda::describe((*b)->decode_tile_choice()).c_str(),
              cuda::decode_split_rule_name(o.decode_splits));
  std::printf("programmatic dependent launch: %s%s\n", (*b)->programmatic_launch() ? "on" : "off",
              (*b)->programmatic_launch_refused().empty()
                  ? ""
                  : (" (" + (*b)->programmatic_launch_refused() + ")").c_str());
  std::ofstream csv_file;
  std::ostream* csv = nullptr;
  if (!a.csv.empty()) {
    csv_file.open(a.csv, std::ios::app);
    csv = &csv_file;
  }
  bench runner(**b, a, gpu);
  std::vector<figure> figures;
  for (std::uint32_t t : a.prefill) {
    figure f{};
    if (!runner.prefill(t, f)) {
      std::printf("prefill  %-12s tokens %5u: skipped (beyond max_context or the pool)\n",
                  a.model.c_str(), t);
      continue;
    }
    runner.report(f, csv);
    figures.push_back(f);
  }
  for (std::uint32_t batch : a.batches)
    for (std::uint32_t ctx : a.contexts) {
      figure f{};
      if (!runner.decode(batch, ctx, f)) {
        std::printf(
            "decode   %-12s batch %4u ctx %5u: skipped (KV does not fit or beyond max_context)\n",
            a.model.c_str(), batch, ctx);
        continue;
      }
      runner.report(f, csv);
      figures.push_back(f);
    }
  // Which algorithm each product shape timed runs with: the skinny kernels
  // and cuBLASLt only where they verified and beat cuBLAS (gemm_planner);
  // prefill-sized shapes are timed once per power-of-two bucket of rows.
  const cuda::gemm_planner& plans = (*b)->planner();
  std::printf(
      "gemm planner: %zu product shapes timed (%zu of them prefill-sized, a bucket of rows each, "
      "whose choice %zu more row counts share), %zu via cuBLASLt (%zu of them a split-K "
      "variant), %zu via skinny_gemm, %zu via skinny_gemm_wgmma, %zu via skinny_gemm_tma (%zu "
      "of them at a split count of their own), %zu via skinny_gemm_stream (%zu of them at 256 "
      "outputs a tile), %zu via cuBLAS's default\n",
      plans.prepared(), plans.prepared_by_bucket(), plans.sharing(), plans.using_lt(),
      plans.using_lt_variant(), plans.using_skinny(), plans.using_skinny_wgmma(),
      plans.using_skinny_tma(), plans.using_skinny_tma_split(), plans.using_skinny_stream(),
      plans.using_skinny_stream_wide(),
      plans.prepared() - plans.using_lt() - plans.using_skinny() - plans.using_skinny_wgmma() -
          plans.using_skinny_tma() - plans.using_skinny_stream());
  std::ofstream stream_file;
  std::ostream* stream_csv = nullptr;
  if (!a.stream_csv.empty()) {
    stream_file.open(a.stream_csv, std::ios::app);
    stream_csv = &stream_file;
  }
  for (std::uint32_t t : a.stream)
    if (!runner.stream(t, stream_csv))
      std::printf("stream   %-12s tokens %5u: skipped (beyond max_context or the pool)\n",
                  a.model.c_str(), t);
  if (!a.profile.empty()) {
    std::ofstream p(a.profile);
    p << "# accellm profile, format v1 (docs/cost-model.md, device/sim/profile_model.hpp)\n"
      << "#\n# " << a.model << " at tp " << a.tp << " on " << gpu
      << ", measured by bench/gpu/run.sh (bench_gpu_model): the CUDA backend\n"
      << "# (device/cuda, docs/cuda.md), bf16 weights and KV, medians of CUDA-event\n"
      << "# device times." << (a.tp > 1 ? " Includes the modelled all-reduce of a TP shard." : "")
      << "\n@model," << a.model << "\n@hardware," << hardware_of(gpu) << "\n@tp," << a.tp
      << "\nkind,batch,tokens,time_ms\n";
    for (const figure& f : figures)
      p << f.kind << ',' << f.batch << ',' << (f.kind == "decode" ? f.context : f.tokens) << ','
        << f.ms + f.ar_ms << '\n';
  }
  return 0;
}
