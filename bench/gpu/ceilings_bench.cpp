// bench_gpu_ceilings: the two ceilings the model figures are read against
// (METHOD.md: measure them rather than trust the datasheet): device-to-device
// copy bandwidth (bytes read + written) and a large bf16 GEMM through the
// same cuBLAS call the model uses, on seeded random data (and on zeros, for
// the power that the operands' bits cost); Llama-2-7B's prefill products at
// 2048 rows, alone and 32 layers back to back; then the
// decode-shaped products of the model: cuBLAS, the best cuBLASLt algorithm,
// gemv (up to 8 rows), skinny_gemm, skinny_gemm_wgmma, skinny_gemm_tma (also at every
// split count) and skinny_gemm_stream at one block an SM, tiles of 128 and 256 outputs (up to 128
// rows; with how far their output is from cuBLAS's, relative to the largest |y|); decode attention
// alone, reads alone in its pattern and contiguous, and prefill attention alone with each kernel
// (rows64, rows128, wgmma64, wgmma128, tma128, tma128pp, tma128n); the elementwise kernels of a
// prefill against the copy ceiling.
//
//   bench_gpu_ceilings [--csv FILE]
//                      [--skip wgmma128,tma128,tma128pp,tma128n,skinny_wgmma,skinny_tma,
//                              skinny_stream,lt_split_k,decode_tiles]
//
// --skip leaves those candidate kernels out (run.sh does, for one that
// failed its canary: a fault would end the process and its later figures).
#include "bench/gpu/lt_probe.hpp"
#include "bench/gpu/read_probe.hpp"
#include "device/backend.hpp"
#include "device/cuda/candidate_check.hpp"
#include "device/cuda/decode_attention.cuh"
#include "device/cuda/device_query.hpp"
#include "device/cuda/fill_uniform.cuh"
#include "device/cuda/gemm.hpp"
#include "device/cuda/gemv.cuh"
#include "device/cuda/prefill_attention.cuh"
#include "device/cuda/rmsnorm.cuh"
#include "device/cuda/rope_append.cuh"
#include "device/cuda/runtime.hpp"
#include "device/cuda/sampling.cuh"
#include "device/cuda/skinny_gemm.cuh"
#include "device/cuda/swiglu.cuh"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using namespace accellm;
using namespace accellm::device::cuda;

// Median milliseconds of `reps` runs of f on stream s, after 2 warm-ups.
template <class F>
float time_ms(cudaStream_t s, int reps, F&& f) {
  auto a = event::create(), b = event::create();
  std::vector<float> ms;
  for (int i = 0; i < reps + 2; ++i) {
    cudaEventRecord(a->get(), s);
    f();
    cudaEventRecord(b->get(), s);
    cudaEventSynchronize(b->get());
    float t = 0;
    cudaEventElapsedTime(&t, a->get(), b->get());
    if (i >= 2) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// The CSV's rows ("gpu,name,metric,value"), each appended to the file as it
// is measured, so that a run cut short (run.sh's timeout) keeps what it
// measured. No file: rows are dropped.
class csv_rows {
 public:
  explicit csv_rows(const std::string& path) : wanted_(!path.empty()) {
    if (wanted_) out_.open(path, std::ios::app);
  }
  /// The GPU's name, the first column of every row.
  void set_gpu(std::string gpu) { gpu_ = std::move(gpu); }
  /// False when a path was given and cannot be appended to.
  bool usable() const { return !wanted_ || out_.is_open(); }
  /// "name,metric,value".
  void push_back(const std::string& row) {
    if (out_.is_open()) out_ << gpu_ << "," << row << std::endl;  // flushed
  }

 private:
  bool wanted_;  // a path was given
  std::ofstream out_;
  std::string gpu_;
};

// Prints and records the best cuBLASLt proposal and split-K variant of the
// product `key`: TB/s of `bytes` (decode shapes) or TFLOP/s of `flops`
// (prefill shapes, bytes 0).
void lt_figures(const accellm::bench::lt_best& lt, double bytes, double flops,
                const std::string& key, csv_rows& rows_csv) {
  const bool tb = bytes > 0;
  const auto rate = [&](float ms) { return (tb ? bytes : flops) / (ms * 1e-3) / 1e12; };
  const char* unit = tb ? "TB/s" : "TFLOP/s";
  const std::string column = tb ? "_tb_per_s," : "_tflop_per_s,";
  if (lt.proposed_ms > 0) {
    std::printf(", best of %d cuBLASLt algorithms %.3f ms %.2f %s", lt.proposed, lt.proposed_ms,
                rate(lt.proposed_ms), unit);
    rows_csv.push_back(key + ",best_lt" + column + std::to_string(rate(lt.proposed_ms)));
  }
  if (lt.variant_ms > 0) {
    std::printf(", best of %d split-K variants %.3f ms %.2f %s (split %d)", lt.variants,
                lt.variant_ms, rate(lt.variant_ms), unit, lt.variant_split);
    rows_csv.push_back(key + ",best_lt_split" + column + std::to_string(rate(lt.variant_ms)));
  }
}

// The host side of the layer-wise KV copy (run_streaming without a ring):
// device to pinned host memory for one layer's KV of a 2048-token Llama-2-7B
// prompt (32 MiB) and for all 32 layers (1 GiB), then the host copy out of
// pinned memory into kv_chunk::data, into a fresh vector each time (what
// run_streaming does) and into one reused.
void bench_host_copies(const __nv_bfloat16* src, cudaStream_t s) {
  const std::size_t layer = std::size_t{32} << 20, all = std::size_t{1} << 30;
  auto pinned = pinned_buffer<std::byte>::allocate(all);
  if (!pinned) {
    std::printf("  host copies: %s\n", pinned.err().what().c_str());
    return;
  }
  for (const std::size_t bytes : {layer, all}) {
    const float ms = time_ms(
        s, 5, [&] { cudaMemcpyAsync(pinned->data(), src, bytes, cudaMemcpyDeviceToHost, s); });
    std::printf("  device to pinned host %5zu MiB: %8.3f ms, %6.1f GB/s\n", bytes >> 20, ms,
                bytes / (ms * 1e-3) / 1e9);
  }
  using clock = std::chrono::steady_clock;
  auto host_ms = [](auto&& f) {
    std::vector<double> ms;
    for (int i = 0; i < 7; ++i) {
      const auto t0 = clock::now();
      f();
      ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  };
  const std::byte* from = pinned->data();
  const double fresh = host_ms([&] {
    std::vector<std::byte> v;
    v.assign(from, from + layer);
  });
  const double huge = host_ms([&] { (void)device::copy_out(from, layer); });
  std::vector<std::byte> kept(layer);
  const double reused = host_ms([&] { std::memcpy(kept.data(), from, layer); });
  std::printf(
      "  pinned to a fresh vector, 32 MiB: %7.3f ms (%5.1f GB/s); through copy_out (huge pages): "
      "%7.3f ms (%5.1f GB/s); to a reused one: %7.3f ms (%5.1f GB/s)\n",
      fresh, layer / (fresh * 1e-3) / 1e9, huge, layer / (huge * 1e-3) / 1e9, reused,
      layer / (reused * 1e-3) / 1e9);
}

// The elementwise kernels at a Llama-2-7B prefill of 2048 rows (hidden 4096,
// ffn 11008, 32 heads of 128, one request at positions 0..2047): bytes each
// must read plus write, over its median time, against the copy ceiling.
// Fails on an allocation or a launch that fails (each runs once untimed).
bool bench_elementwise(cudaStream_t s, double copy_tbps, csv_rows& rows_csv) {
  const std::uint32_t rows = 2048, d = 4096, f = 11008, vocab = 32000;
  const attn_shape shape{32, 32, 128};
  const std::uint32_t qkv_w = shape.q_width() + 2 * shape.kv_width(), half = 64;
  auto x = device_buffer<float>::allocate(std::size_t{rows} * d);
  auto xn = device_buffer<__nv_bfloat16>::allocate(std::size_t{rows} * d);
  auto gain = device_buffer<__nv_bfloat16>::allocate(d);
  auto emb = device_buffer<__nv_bfloat16>::allocate(std::size_t{vocab} * d);
  auto gu = device_buffer<__nv_bfloat16>::allocate(std::size_t{rows} * 2 * f);
  auto act = device_buffer<__nv_bfloat16>::allocate(std::size_t{rows} * f);
  auto qkv = device_buffer<__nv_bfloat16>::allocate(std::size_t{rows} * qkv_w);
  auto q = device_buffer<__nv_bfloat16>::allocate(std::size_t{rows} * shape.q_width());
  auto pool = device_buffer<__nv_bfloat16>::allocate(std::size_t{rows} * 2 * shape.kv_width());
  const auto rope = rope_table_host(rows, shape.head_dim, 10000.0);
  std::vector<std::int32_t> pos(rows), tokens(rows), tables(rows / 16), slot(rows, 0);
  for (std::uint32_t i = 0; i < rows; ++i) {
    pos[i] = static_cast<std::int32_t>(i);
    tokens[i] = static_cast<std::int32_t>((i * 7919u) % vocab);
    if (i < rows / 16) tables[i] = static_cast<std::int32_t>(i);
  }
  auto dpos = device_buffer<std::int32_t>::allocate(rows);
  auto dtok = device_buffer<std::int32_t>::allocate(rows);
  auto dslot = device_buffer<std::int32_t>::allocate(rows);
  auto dtables = device_buffer<std::int32_t>::allocate(tables.size());
  auto drope = device_buffer<float>::allocate(rope.size());
  if (!x || !xn || !gain || !emb || !gu || !act || !qkv || !q || !pool || !dpos || !dtok ||
      !dslot || !dtables || !drope)
    return false;
  if (!dpos->upload(pos.data(), s).ok() || !dtok->upload(tokens.data(), s).ok() ||
      !dslot->upload(slot.data(), s).ok() || !dtables->upload(tables.data(), s).ok() ||
      !drope->upload(rope.data(), s).ok() ||
      !fill_uniform(x->data(), x->size(), 11, 3.0f, s).ok() ||
      !fill_uniform(gain->data(), d, 12, 1.0f, s).ok() ||
      !fill_uniform(emb->data(), emb->size(), 13, 1.0f, s).ok() ||
      !fill_uniform(gu->data(), gu->size(), 14, 4.0f, s).ok() ||
      !fill_uniform(qkv->data(), qkv->size(), 15, 2.0f, s).ok())
    return false;
  const kv_pool_view kv{pool->data(), 1, 16, shape.kv_width(), dtables->data(), rows / 16};
  const double bf = 2.0, fp = 4.0;
  struct op_case {
    const char* name;
    double bytes;  // read + written
    std::function<status()> run;
  };
  const op_case ops[] = {
      {"embed", double(rows) * d * (bf + fp),
       [&] { return embed(emb->data(), dtok->data(), rows, d, x->data(), s); }},
      {"rmsnorm", double(rows) * d * (fp + bf) + d * bf,
       [&] { return rmsnorm(x->data(), gain->data(), rows, d, 1e-5f, nullptr, xn->data(), s); }},
      {"rope_append", 2.0 * rows * qkv_w * bf + double(rows) * half * 2 * fp,
       [&] {
         return rope_append(qkv->data(), rows, shape, row_tables{dpos->data(), dslot->data()},
                            drope->data(), drope->data() + rope.size() / 2, q->data(), kv, 0, s);
       }},
      {"swiglu", double(rows) * f * 3 * bf,
       [&] { return swiglu(gu->data(), rows, f, act->data(), s); }},
  };
  for (const op_case& op : ops) {
    if (!op.run().ok() || cudaStreamSynchronize(s) != cudaSuccess) return false;
    const float t = time_ms(s, 20, [&] { (void)op.run(); });
    const double gbps = op.bytes / (t * 1e-3) / 1e9;
    std::printf(
        "  %s, llama2-7b prefill %u rows: %.4f ms, %.1f MB, %.0f GB/s (%.1f%% of the copy)\n",
        op.name, rows, t, op.bytes / 1e6, gbps, 100 * gbps / (copy_tbps * 1e3));
    rows_csv.push_back(std::string{op.name} + "_prefill_2048,gb_per_s," + std::to_string(gbps));
  }
  return cudaStreamSynchronize(s) == cudaSuccess;
}

// Greedy sampling over Llama-3's vocabulary (128256 fp32 logits a row) at 1
// and 64 rows: one block reads each row, so the time per step is about the
// time of one row, whatever the batch. Fails on an allocation or a launch
// that fails.
bool bench_argmax(cudaStream_t s, csv_rows& rows_csv) {
  constexpr std::uint32_t vocab = 128256, max_rows = 64;
  auto logits = device_buffer<float>::allocate(std::size_t{max_rows} * vocab);
  auto out = device_buffer<std::int32_t>::allocate(max_rows);
  if (!logits || !out || !fill_uniform(logits->data(), logits->size(), 16, 8.0f, s).ok())
    return false;
  for (std::uint32_t rows : {1u, max_rows}) {
    if (!argmax_rows(logits->data(), rows, vocab, out->data(), s).ok() ||
        cudaStreamSynchronize(s) != cudaSuccess)
      return false;
    const float t =
        time_ms(s, 20, [&] { (void)argmax_rows(logits->data(), rows, vocab, out->data(), s); });
    const double gbps = 4.0 * rows * vocab / (t * 1e-3) / 1e9;
    std::printf("  argmax, vocab %u, %u rows: %.1f us, %.0f GB/s\n", vocab, rows, t * 1e3, gbps);
    rows_csv.push_back("argmax_vocab_128256_rows_" + std::to_string(rows) + ",us," +
                       std::to_string(t * 1e3));
  }
  return cudaStreamSynchronize(s) == cudaSuccess;
}

// The command line: where the CSV goes, and the candidate kernels left out.
struct options {
  std::string csv;
  std::vector<std::string> skip;
  bool skips(const std::string& kernel) const {
    return std::find(skip.begin(), skip.end(), kernel) != skip.end();
  }
};

// The candidate kernels --skip can leave out (the ones run.sh's canaries
// try first).
constexpr std::string_view skippable[] = {"wgmma128",      "tma128",       "tma128pp",
                                          "tma128n",       "skinny_wgmma", "skinny_tma",
                                          "skinny_stream", "lt_split_k",   "decode_tiles"};

// "" when the flags parse; otherwise what is wrong, naming the flag.
std::string parse(int argc, char** argv, options& o) {
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i];
    if (i + 1 == argc) return k + ": a flag without a value";
    const std::string v = argv[i + 1];
    if (k == "--csv") {
      o.csv = v;
    } else if (k == "--skip") {
      std::stringstream in(v);
      for (std::string name; std::getline(in, name, ',');) {
        if (std::find(std::begin(skippable), std::end(skippable), name) == std::end(skippable)) {
          std::string known;
          for (std::string_view kernel : skippable)
            known += (known.empty() ? "" : ", ") + std::string{kernel};
          return "--skip " + v + ": unknown kernel '" + name + "' (" + known + ")";
        }
        o.skip.push_back(name);
      }
    } else {
      return k + ": unknown flag (--csv FILE, --skip LIST)";
    }
  }
  return "";
}

// max |a - b| / max |b| over n elements (fp32 or bf16, `type`) of device
// memory, after the work queued on s; NaN when either holds a value that is
// not finite (or cannot be read), so that it prints as a disagreement.
double max_rel_diff(const void* a, const void* b, std::size_t n, gemm_out type, cudaStream_t s) {
  auto ha = download_floats(a, n, type, s), hb = download_floats(b, n, type, s);
  if (!ha || !hb) return NAN;
  const deviation d = deviation_of(*ha, *hb);
  return d.finite ? d.max_diff / std::max(d.max_ref, 1e-30) : NAN;
}

// What a skinny candidate measured on the product skinny_figures times.
struct measured {
  float ms;
  double tb_per_s;
  double diff;  // from cuBLAS's y, relative to its largest |y|
};

// Runs `run` (a skinny candidate writing its y at c + n) once, then times it
// and measures how far its y is from cuBLAS's at c; appends the CSV row
// `key,<name>_tb_per_s,...`. A refused or failed run prints "<label>: why"
// (its error cleared) and gives nothing.
template <class Run>
std::optional<measured> measure_skinny(cudaStream_t s, Run&& run, const std::string& label,
                                       const float* c, std::size_t n, double bytes,
                                       const std::string& key, const std::string& name,
                                       csv_rows& rows_csv) {
  if (auto st = run(); !st) {
    std::printf("%s: %s", label.c_str(), st.err().what().c_str());
    cudaGetLastError();
    return std::nullopt;
  }
  const float t = time_ms(s, 20, [&] { (void)run(); });
  const measured m{t, bytes / (t * 1e-3) / 1e12, max_rel_diff(c + n, c, n, gemm_out::fp32, s)};
  rows_csv.push_back(key + "," + name + "_tb_per_s," + std::to_string(m.tb_per_s));
  return m;
}

// skinny_gemm_stream at one block an SM (its stream-K partition: every
// block the same share of the weights), at tiles of 128 and of 256
// outputs, on the product skinny_figures times, with its own workspace.
void stream_figures(cudaStream_t s, const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                    const __nv_bfloat16* w, std::uint32_t out, float* c, double bytes,
                    const std::string& key, csv_rows& rows_csv) {
  int dev = 0, sms = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
    return;
  std::printf("\n    skinny_stream:");
  for (const std::uint32_t width : skinny_stream_widths) {
    const auto blocks = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(sms, skinny_stream_units(in, out, width)));
    auto partials =
        device_buffer<float>::allocate(skinny_stream_partial_bytes(blocks, rows, width) / 4);
    auto counters = device_buffer<unsigned>::allocate(skinny_stream_counters(out, width));
    if (!partials || !counters ||
        cudaMemsetAsync(counters->data(), 0, counters->bytes(), s) != cudaSuccess)
      return;
    const skinny_stream_space space{partials->data(), partials->bytes(), counters->data(),
                                    static_cast<std::uint32_t>(counters->size())};
    const std::size_t n = std::size_t{rows} * out;
    const auto m = measure_skinny(
        s,
        [&] {
          return skinny_gemm_stream(x, rows, in, w, out, c + n, gemm_out::fp32, 0.0f, blocks, width,
                                    space, s);
        },
        " " + std::to_string(width) + " wide", c, n, bytes, key,
        "skinny_stream_" + std::to_string(width), rows_csv);
    if (m)
      std::printf(" %u wide at %u blocks %.3f ms %.2f TB/s%s", width, blocks, m->ms, m->tb_per_s,
                  m->diff <= 1e-3 ? "" : " DISAGREES with cuBLAS");
  }
}

// skinny_gemm, skinny_gemm_wgmma and skinny_gemm_tma on the product just timed through cuBLAS
// (whose y is at c): appends each one's time and its distance from cuBLAS's
// y to the printed line (a refused or failed launch says so).
void skinny_figures(cudaStream_t s, const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                    const __nv_bfloat16* w, std::uint32_t out, float* c, double bytes,
                    const std::string& key, const options& o, csv_rows& rows_csv) {
  if (!skinny_gemm_supports(rows, in, out)) return;
  const std::size_t n = std::size_t{rows} * out;
  for (const auto& [name, kernel] :
       {std::pair{"skinny", &skinny_gemm}, std::pair{"skinny_wgmma", &skinny_gemm_wgmma},
        std::pair{"skinny_tma", &skinny_gemm_tma}}) {
    if (o.skips(name)) continue;
    const auto m = measure_skinny(
        s, [&] { return kernel(x, rows, in, w, out, c + n, gemm_out::fp32, 0.0f, s); },
        std::string{", "} + name, c, n, bytes, key, name, rows_csv);
    if (m)
      std::printf(", %s (split %u) %.3f ms %.2f TB/s, %s %.1e", name, skinny_gemm_split(in, out),
                  m->ms, m->tb_per_s,
                  m->diff <= 1e-3 ? "off cuBLAS by" : "DISAGREES with cuBLAS:", m->diff);
  }
  if (!o.skips("skinny_stream")) stream_figures(s, x, rows, in, w, out, c, bytes, key, rows_csv);
  if (o.skips("skinny_tma")) return;
  // skinny_gemm_tma at every split count that fits: how much the waves of
  // blocks a count makes matter (the planner times the same candidates).
  std::printf("\n    skinny_tma by split:");
  const std::uint32_t rule = skinny_gemm_split(in, out);
  std::vector<std::uint32_t> counts = skinny_split_candidates(in, out);  // the rule's aside
  counts.insert(std::upper_bound(counts.begin(), counts.end(), rule), rule);
  for (const std::uint32_t split : counts) {
    const auto m = measure_skinny(
        s,
        [&] {
          return skinny_gemm_tma_split(x, rows, in, w, out, c + n, gemm_out::fp32, 0.0f, split, s);
        },
        " " + std::to_string(split), c, n, bytes, key, "skinny_tma_split_" + std::to_string(split),
        rows_csv);
    if (m)
      std::printf(" %u: %.2f TB/s%s%s", split, m->tb_per_s, split == rule ? " (rule)" : "",
                  m->diff <= 1e-3 ? "" : " DISAGREES with cuBLAS");
  }
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  if (const std::string bad = parse(argc, argv, opt); !bad.empty()) {
    std::cerr << "bench_gpu_ceilings: " << bad << "\n";
    return 2;
  }
  csv_rows rows_csv(opt.csv);  // before any CUDA call: a bad path is a bad flag
  if (!rows_csv.usable()) {
    std::cerr << "bench_gpu_ceilings: --csv " << opt.csv << ": cannot append to it\n";
    return 2;
  }
  auto devices = query_devices();
  if (!devices) {
    std::cerr << "bench_gpu_ceilings: " << devices.err().what() << "\n";
    return 1;
  }
  rows_csv.set_gpu((*devices)[0].name);
  auto s = stream::create();
  auto h = cublas_handle::create(s->get());
  if (!s || !h) return 1;
  const std::size_t n = std::size_t{2} << 30;  // 2 Gi bf16 = 4 GiB per buffer
  auto x = device_buffer<__nv_bfloat16>::allocate(n), y = device_buffer<__nv_bfloat16>::allocate(n);
  if (!x || !y || !fill_uniform(x->data(), n, 1, 1.0f, s->get()).ok()) return 1;
  const float copy = time_ms(s->get(), 10, [&] {
    cudaMemcpyAsync(y->data(), x->data(), n * 2, cudaMemcpyDeviceToDevice, s->get());
  });
  const double copy_tbps = 2.0 * n * 2 / (copy * 1e-3) / 1e12;
  rows_csv.push_back("copy_tb_per_s," + std::to_string(copy_tbps));
  const std::uint32_t m = 8192;
  auto c = device_buffer<float>::allocate(std::size_t{m} * m);
  if (!c) return 1;
  const float mm = time_ms(s->get(), 10, [&] {
    (void)gemm(h->get(), x->data(), m, m, y->data(), m, c->data(), gemm_out::fp32, 0.0f);
  });
  const double tflops = 2.0 * m * m * m / (mm * 1e-3) / 1e12;
  rows_csv.push_back("gemm_bf16_8192_tflop_per_s," + std::to_string(tflops));
  std::printf(
      "%s: device-to-device copy %.2f TB/s (read + write, %.1f%% of 3.35), "
      "bf16 GEMM 8192^3 %.0f TFLOP/s (%.1f%% of 989)\n",
      (*devices)[0].name.c_str(), copy_tbps, 100 * copy_tbps / 3.35, tflops, 100 * tflops / 989);
  bench_host_copies(x->data(), s->get());
  // Prefill-shaped products: Llama-2-7B's four at 2048 rows, with the output
  // type and beta the model uses (Wo and down accumulate into the fp32
  // residual): cuBLAS's default choice (what a prefill runs) against the best
  // cuBLASLt algorithm, in TFLOP/s. A gap says whether the planner should
  // choose algorithms for prefill shapes too (it does for decode only).
  auto ws = device_buffer<std::uint8_t>::allocate(std::size_t{32} << 20);
  if (!ws) return 1;
  struct prefill_product {
    const char* name;
    std::uint32_t in, out;
    gemm_out type;
    float beta;
  };
  const prefill_product prefill_products[] = {{"qkv", 4096, 12288, gemm_out::bf16, 0.0f},
                                              {"wo", 4096, 4096, gemm_out::fp32, 1.0f},
                                              {"gate_up", 4096, 22016, gemm_out::bf16, 0.0f},
                                              {"down", 11008, 4096, gemm_out::fp32, 1.0f}};
  double alone_ms = 0, layer_flops = 0;  // the four products once, timed alone
  for (const prefill_product& pr : prefill_products) {
    const std::uint32_t rows = 2048;
    const double flops = 2.0 * rows * pr.in * pr.out;
    const float blas = time_ms(s->get(), 10, [&] {
      (void)gemm(h->get(), x->data(), rows, pr.in, y->data(), pr.out, c->data(), pr.type, pr.beta);
    });
    alone_ms += blas;
    layer_flops += flops;
    const auto lt =
        accellm::bench::best_lt(x->data(), rows, pr.in, y->data(), pr.out, c->data(), ws->data(),
                                ws->size(), s->get(), pr.type, pr.beta, !opt.skips("lt_split_k"));
    std::printf("  prefill %-7s 2048 rows: cuBLAS %.3f ms %.0f TFLOP/s", pr.name, blas,
                flops / (blas * 1e-3) / 1e12);
    rows_csv.push_back(std::string{"prefill_"} + pr.name + "_2048,cublas_tflop_per_s," +
                       std::to_string(flops / (blas * 1e-3) / 1e12));
    lt_figures(lt, 0, flops, std::string{"prefill_"} + pr.name + "_2048", rows_csv);
    std::printf("\n");
  }
  // The same four products as a prefill runs them: 32 layers back to back,
  // each layer's weights at its own place in y (16 places of 202 MB, so no
  // layer finds its weights in L2), against the sum of their times alone. In
  // a whole prefill the products ran 4-10% slower than alone; a sustained
  // run that shows the same gap says clocks under sustained load, not the
  // model's other kernels, are the cause (run.sh logs the SM clock and power).
  {
    constexpr std::uint32_t rows = 2048, layers = 32, places = 16;
    std::size_t per_layer = 0;
    for (const prefill_product& pr : prefill_products) per_layer += std::size_t{pr.in} * pr.out;
    const float sustained = time_ms(s->get(), 3, [&] {
      for (std::uint32_t l = 0; l < layers; ++l) {
        const __nv_bfloat16* w = y->data() + (l % places) * per_layer;
        for (const prefill_product& pr : prefill_products) {
          (void)gemm(h->get(), x->data(), rows, pr.in, w, pr.out, c->data(), pr.type, pr.beta);
          w += std::size_t{pr.in} * pr.out;
        }
      }
    });
    const double sustained_tflops = layers * layer_flops / (sustained * 1e-3) / 1e12;
    const double alone_tflops = layer_flops / (alone_ms * 1e-3) / 1e12;
    std::printf(
        "  prefill products sustained (32 layers x qkv, wo, gate_up, down, 2048 rows): %.2f ms "
        "%.0f TFLOP/s, alone %.0f TFLOP/s (sustained/alone %.3f)\n",
        sustained, sustained_tflops, alone_tflops, sustained_tflops / alone_tflops);
    rows_csv.push_back("prefill_products_sustained_2048,cublas_tflop_per_s," +
                       std::to_string(sustained_tflops));
    rows_csv.push_back("prefill_products_alone_2048,cublas_tflop_per_s," +
                       std::to_string(alone_tflops));
  }
  // Power depends on the operands' bits: the 8192^3 GEMM on all-zero
  // operands against the random ones above.
  {
    const std::size_t mm_elems = std::size_t{m} * m;
    auto z = device_buffer<__nv_bfloat16>::allocate(2 * mm_elems);
    if (z && cudaMemsetAsync(z->data(), 0, 2 * mm_elems * sizeof(__nv_bfloat16), s->get()) ==
                 cudaSuccess) {
      const float zt = time_ms(s->get(), 10, [&] {
        (void)gemm(h->get(), z->data(), m, m, z->data() + mm_elems, m, c->data(), gemm_out::fp32,
                   0.0f);
      });
      const double ztflops = 2.0 * m * m * m / (zt * 1e-3) / 1e12;
      std::printf("  bf16 GEMM 8192^3 on zeros: %.0f TFLOP/s (random operands: %.0f)\n", ztflops,
                  tflops);
      rows_csv.push_back("gemm_bf16_8192_zeros,tflop_per_s," + std::to_string(ztflops));
    }
  }
  // Decode-shaped products: Llama-2-7B's gate/up projection (22016 x 4096,
  // 180 MB of weights) at a few batch sizes, cuBLAS and (up to 8 rows) gemv.
  const std::uint32_t out = 22016, in = 4096;
  for (std::uint32_t rows : {1u, 8u, 16u, 64u, 128u, 256u}) {
    const double bytes = 2.0 * out * in + 2.0 * rows * in + 4.0 * rows * out;
    const float blas = time_ms(s->get(), 20, [&] {
      (void)gemm(h->get(), x->data(), rows, in, y->data(), out, c->data(), gemm_out::fp32, 0.0f);
    });
    std::printf("  gate/up %5u rows: cuBLAS %.3f ms %.2f TB/s", rows, blas,
                bytes / (blas * 1e-3) / 1e12);
    rows_csv.push_back("gate_up_rows_" + std::to_string(rows) + ",cublas_tb_per_s," +
                       std::to_string(bytes / (blas * 1e-3) / 1e12));
    lt_figures(accellm::bench::best_lt(x->data(), rows, in, y->data(), out, c->data(), ws->data(),
                                       ws->size(), s->get(), gemm_out::fp32, 0.0f,
                                       !opt.skips("lt_split_k")),
               bytes, 0, "gate_up_rows_" + std::to_string(rows), rows_csv);
    if (rows <= gemv_max_rows) {
      const float mv = time_ms(s->get(), 20, [&] {
        (void)gemv(x->data(), rows, in, y->data(), out, c->data(), 0.0f, s->get());
      });
      std::printf(", gemv %.3f ms %.2f TB/s", mv, bytes / (mv * 1e-3) / 1e12);
      rows_csv.push_back("gate_up_rows_" + std::to_string(rows) + ",gemv_tb_per_s," +
                         std::to_string(bytes / (mv * 1e-3) / 1e12));
    }
    // gemv and the cuBLASLt probe wrote c too: cuBLAS's y again.
    (void)gemm(h->get(), x->data(), rows, in, y->data(), out, c->data(), gemm_out::fp32, 0.0f);
    skinny_figures(s->get(), x->data(), rows, in, y->data(), out, c->data(), bytes,
                   "gate_up_rows_" + std::to_string(rows), opt, rows_csv);
    std::printf("\n");
  }
  // The model's other decode products (Llama-2-7B: fused QKV, Wo, down), where
  // out = 4096 leaves few 128-output tiles: cuBLAS, best cuBLASLt, skinny.
  struct product {
    const char* name;
    std::uint32_t in, out;
  };
  for (const product& pr :
       {product{"qkv", 4096, 12288}, product{"wo", 4096, 4096}, product{"down", 11008, 4096}}) {
    for (std::uint32_t rows : {1u, 16u, 64u, 128u}) {
      const double bytes = 2.0 * pr.out * pr.in + 2.0 * rows * pr.in + 4.0 * rows * pr.out;
      const std::string key = std::string{pr.name} + "_rows_" + std::to_string(rows);
      const float blas = time_ms(s->get(), 20, [&] {
        (void)gemm(h->get(), x->data(), rows, pr.in, y->data(), pr.out, c->data(), gemm_out::fp32,
                   0.0f);
      });
      std::printf("  %-7s %5u rows: cuBLAS %.3f ms %.2f TB/s", pr.name, rows, blas,
                  bytes / (blas * 1e-3) / 1e12);
      rows_csv.push_back(key + ",cublas_tb_per_s," + std::to_string(bytes / (blas * 1e-3) / 1e12));
      lt_figures(accellm::bench::best_lt(x->data(), rows, pr.in, y->data(), pr.out, c->data(),
                                         ws->data(), ws->size(), s->get(), gemm_out::fp32, 0.0f,
                                         !opt.skips("lt_split_k")),
                 bytes, 0, key, rows_csv);
      (void)gemm(h->get(), x->data(), rows, pr.in, y->data(), pr.out, c->data(), gemm_out::fp32,
                 0.0f);
      skinny_figures(s->get(), x->data(), rows, pr.in, y->data(), pr.out, c->data(), bytes, key,
                     opt, rows_csv);
      std::printf("\n");
    }
  }
  // Decode attention alone, both kernels: B = 64 requests, one layer, over
  // Llama-2-7B's shape (32 KV heads) at context 1024 and Llama-3-8B's (8 KV
  // heads of 4 query heads... 4:1 is 32:8) at context 4096: 1.07 GB of K/V each.
  struct att_case {
    const char* name;
    attn_shape shape;
    std::uint32_t ctx;
  };
  for (const att_case& ac : {att_case{"llama2-7b ctx 1024", {32, 32, 128}, 1024},
                             att_case{"llama3-8b ctx 4096", {32, 8, 128}, 4096},
                             att_case{"llama2-7b ctx 512", {32, 32, 128}, 512}}) {
    const std::uint32_t b = 64, bt = 16, stride = ac.ctx / bt;
    kv_pool_view kv{x->data(), 1, bt, ac.shape.kv_width(), nullptr, stride};
    const std::uint64_t blocks = std::uint64_t{b} * stride;
    if (blocks * kv.block_elems() > n) continue;
    kv.blocks = static_cast<std::uint32_t>(blocks);  // the TMA tiles map this much
    std::vector<std::int32_t> tables(blocks);
    for (std::uint64_t i = 0; i < blocks; ++i) tables[i] = static_cast<std::int32_t>(i);
    std::vector<decode_item> items;
    for (std::uint32_t i = 0; i < b; ++i)
      items.push_back(decode_item{static_cast<std::int32_t>(i), static_cast<std::int32_t>(i),
                                  static_cast<std::int32_t>(ac.ctx)});
    auto dt = device_buffer<std::int32_t>::allocate(tables.size());
    auto di = device_buffer<decode_item>::allocate(items.size());
    const std::uint32_t splits =
        choose_decode_splits(b, ac.shape.kv_heads, ac.ctx, 32 * (*devices)[0].sm_count);
    // The split sweep below tries up to this many.
    constexpr std::uint32_t sweep_max = 8;
    auto dp = device_buffer<float>::allocate(
        decode_partial_floats(b, ac.shape.heads, std::max(splits, sweep_max), ac.shape.head_dim));
    auto dq = device_buffer<__nv_bfloat16>::allocate(std::size_t{b} * ac.shape.q_width());
    auto dout = device_buffer<__nv_bfloat16>::allocate(std::size_t{b} * ac.shape.q_width());
    if (!dt || !di || !dp || !dq || !dout) return 1;
    cudaMemcpy(dt->data(), tables.data(), tables.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(di->data(), items.data(), items.size() * sizeof(decode_item),
               cudaMemcpyHostToDevice);
    (void)fill_uniform(dq->data(), dq->size(), 3, 1.0f, s->get());
    kv.tables = dt->data();
    const double kv_bytes = double(b) * ac.ctx * 2.0 * ac.shape.kv_width() * 2.0;
    // mma with the default tile, simt, then mma with the other pipeline
    // tiles (the default, 32x2, keeps its old CSV name).
    std::vector<std::pair<decode_kernel, decode_tile>> runs{
        {decode_kernel::mma, decode_tile::keys32_stages2},
        {decode_kernel::simt, decode_tile::keys32_stages2}};
    for (decode_tile t : decode_tiles)
      if (t != decode_tile::keys32_stages2 && !opt.skips("decode_tiles"))
        runs.emplace_back(decode_kernel::mma, t);
    for (const auto& [k, tile] : runs) {
      decode_attention_args a{dq->data(), dout->data(), di->data(), b, ac.shape, kv,
                              0,          splits,       dp->data(), k};
      a.tile = tile;
      std::string name = k == decode_kernel::mma ? "mma" : "simt";
      if (tile != decode_tile::keys32_stages2) name += std::string{" "} + decode_tile_name(tile);
      if (auto st = decode_attention(a, s->get()); !st) {
        std::printf("  decode attention %s, %s: %s\n", ac.name, name.c_str(),
                    st.err().what().c_str());
        continue;
      }
      const float t = time_ms(s->get(), 10, [&] { (void)decode_attention(a, s->get()); });
      const double tb = kv_bytes / (t * 1e-3) / 1e12;
      std::printf(
          "  decode attention %s, batch 64, %u splits, %s: %.3f ms %.2f TB/s (%.1f%% of 3.35)\n",
          ac.name, splits, name.c_str(), t, tb, 100 * tb / 3.35);
      rows_csv.push_back(std::string{"attention "} + ac.name + " " + name + ",tb_per_s," +
                         std::to_string(tb));
    }
    // The default kernel at other split counts than choose_decode_splits'
    // (which aims at 32 blocks per SM, whatever fits there at once): what a
    // rule that counts waves of resident blocks would have to beat.
    std::printf("  decode attention %s, batch 64, mma by split count:", ac.name);
    for (std::uint32_t sp : {1u, 2u, 3u, 4u, 6u, sweep_max}) {
      decode_attention_args a{dq->data(), dout->data(), di->data(),        b, ac.shape, kv, 0,
                              sp,         dp->data(),   decode_kernel::mma};
      if (!decode_attention(a, s->get())) continue;
      const float t = time_ms(s->get(), 10, [&] { (void)decode_attention(a, s->get()); });
      const double tb = kv_bytes / (t * 1e-3) / 1e12;
      std::printf(" %u: %.3f ms %.2f TB/s%s", sp, t, tb, sp == splits ? " (chosen)" : "");
      rows_csv.push_back(std::string{"attention "} + ac.name + " mma splits " + std::to_string(sp) +
                         ",tb_per_s," + std::to_string(tb));
    }
    std::printf("\n");
  }
  // Reads alone (read_probe.hpp): 2 GiB streamed, against the same bytes read
  // as decode attention reads the pool, 256-byte head segments a KV row
  // apart. Decode attention's TB/s above read against these, not the copy.
  {
    constexpr std::size_t bytes = std::size_t{2} << 30;
    auto sink = device_buffer<std::uint32_t>::allocate(std::size_t{1} << 16);
    if (!sink) return 1;
    struct pattern {
      const char* name;
      const char* what;
      std::uint32_t row, segment;
    };
    for (const pattern& p :
         {pattern{"read_contiguous", "contiguous", 8192, 8192},
          pattern{"read_head_segments_8k", "256-byte segments 8 KB apart (Llama-2-7B's KV rows)",
                  8192, 256},
          pattern{"read_head_segments_2k", "256-byte segments 2 KB apart (Llama-3-8B's KV rows)",
                  2048, 256}}) {
      if (accellm::bench::read_pattern_sink_words(bytes, p.row, p.segment) > sink->size())
        return 1;  // a bug here: the sink is sized for these patterns
      const auto pass = [&] {
        return accellm::bench::read_pattern(x->data(), bytes, p.row, p.segment, sink->data(),
                                            s->get());
      };
      if (pass() != cudaSuccess || cudaStreamSynchronize(s->get()) != cudaSuccess) {
        std::printf("  read %s: FAILED\n", p.what);
        cudaGetLastError();
        continue;
      }
      const float t = time_ms(s->get(), 10, [&] { (void)pass(); });
      const double tb = bytes / (t * 1e-3) / 1e12;
      std::printf("  read %s: %.3f ms %.2f TB/s (%.1f%% of 3.35)\n", p.what, t, tb,
                  100 * tb / 3.35);
      rows_csv.push_back(std::string{p.name} + ",tb_per_s," + std::to_string(tb));
    }
  }
  // Prefill attention alone: one 2048-token prompt, one layer, Llama-2-7B's
  // shape and Llama-3-8B's (GQA 4:1), every kernel (rows64 and wgmma64:
  // 64-row tiles; rows128, wgmma128, tma128, tma128pp and tma128n: 128-row tiles; each cut at
  // its own height). Tiles longest first (what cuda_backend hands the
  // kernel) and in prompt order (longest last): the gap between the two is
  // the causal tail that the order removes. TFLOP/s count the causal half:
  // 4 * head_dim * heads * sum over rows of the keys each row sees. The
  // other kernels' distance from rows64's output is printed (max |diff| /
  // max |rows64|; prefill_choice requires <= 2e-2).
  for (const auto& [name, shape] : {std::pair{"llama2-7b", attn_shape{32, 32, 128}},
                                    std::pair{"llama3-8b", attn_shape{32, 8, 128}}}) {
    const std::uint32_t len = 2048, bt = 16, stride = len / bt;
    kv_pool_view kv{x->data(), 1, bt, shape.kv_width(), nullptr, stride, stride};
    std::vector<std::int32_t> table(stride);
    for (std::uint32_t i = 0; i < stride; ++i) table[i] = static_cast<std::int32_t>(i);
    auto dt = device_buffer<std::int32_t>::allocate(table.size());
    auto dtiles = device_buffer<prefill_tile>::allocate(len / prefill_min_tile_rows);
    auto dq = device_buffer<__nv_bfloat16>::allocate(std::size_t{len} * shape.q_width());
    auto dout = device_buffer<__nv_bfloat16>::allocate(7 * std::size_t{len} * shape.q_width());
    if (!dt || !dtiles || !dq || !dout) return 1;
    cudaMemcpy(dt->data(), table.data(), table.size() * 4, cudaMemcpyHostToDevice);
    (void)fill_uniform(dq->data(), dq->size(), 4, 1.0f, s->get());
    kv.tables = dt->data();
    const double flops = 4.0 * shape.head_dim * shape.heads * (double(len) * (len + 1) / 2);
    for (const prefill_kernel k :
         {prefill_kernel::rows64, prefill_kernel::rows128, prefill_kernel::wgmma64,
          prefill_kernel::wgmma128, prefill_kernel::tma128, prefill_kernel::tma128pp,
          prefill_kernel::tma128n}) {
      // --skip: wgmma128, tma128, tma128pp, tma128n
      if (opt.skips(prefill_kernel_name(k))) continue;
      std::vector<prefill_tile> tiles;  // prompt order
      append_prefill_tiles(tiles, k, 0, len, 0, 0);
      // Each kernel writes its own seventh of dout.
      __nv_bfloat16* dst = dout->data() + static_cast<std::size_t>(k) * dq->size();
      for (const bool longest_first : {true, false}) {
        std::vector<prefill_tile> order = tiles;
        if (longest_first) sort_longest_first(order);
        cudaMemcpy(dtiles->data(), order.data(), order.size() * sizeof(prefill_tile),
                   cudaMemcpyHostToDevice);
        prefill_attention_args a{
            dq->data(), dst, dtiles->data(), static_cast<std::uint32_t>(order.size()), shape, kv,
            0,          k};
        if (auto st = prefill_attention(a, s->get()); !st) {
          std::printf("  prefill attention %s %s: FAILED: %s\n", name, prefill_kernel_name(k),
                      st.err().what().c_str());
          cudaGetLastError();
          break;
        }
        const float t = time_ms(s->get(), 10, [&] { (void)prefill_attention(a, s->get()); });
        const double tf = flops / (t * 1e-3) / 1e12;
        const char* which = longest_first ? "longest first" : "prompt order";
        std::printf(
            "  prefill attention %s, 2048 tokens, %s, %s: %.3f ms %.0f TFLOP/s (%.1f%% of 989)",
            name, prefill_kernel_name(k), which, t, tf, 100 * tf / 989);
        if (k != prefill_kernel::rows64) {
          const double rel = max_rel_diff(dst, dout->data(), dq->size(), gemm_out::bf16, s->get());
          std::printf(", %s %.1e", rel <= 2e-2 ? "off rows64 by" : "DISAGREES with rows64:", rel);
        }
        std::printf("\n");
        rows_csv.push_back(std::string{"prefill attention "} + name + " 2048 " + which +
                           (k == prefill_kernel::rows64
                                ? std::string{}
                                : std::string{" "} + prefill_kernel_name(k)) +
                           ",tflop_per_s," + std::to_string(tf));
      }
    }
  }
  // Not fatal, so that run.sh goes on to the model benchmarks; the kernel
  // tests say what is wrong.
  if (!bench_elementwise(s->get(), copy_tbps, rows_csv))
    std::cerr << "bench_gpu_ceilings: elementwise kernels FAILED (allocation or launch)\n";
  if (!bench_argmax(s->get(), rows_csv))
    std::cerr << "bench_gpu_ceilings: argmax FAILED (allocation or launch)\n";
  return 0;
}
