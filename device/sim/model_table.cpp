#include "device/sim/model_table.hpp"

#include "device/sim/roofline_model.hpp"

#include <cstdarg>
#include <cstdio>
#include <optional>
#include <utility>

namespace accellm::device::sim {
namespace {

// One measured row: its shape, time and the work per device.
struct row {
  phase kind = phase::prefill;
  std::uint32_t tokens = 0;  // prompt length (prefill) or context (decode)
  std::uint32_t batch = 0;
  double seconds = 0;
  double flops = 0;      // per device
  double hbm_bytes = 0;  // per device
};

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char text[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(text, sizeof text, fmt, args);
  va_end(args);
  return text;
}

batch make_batch(phase kind, std::uint32_t batch_size, std::uint32_t context,
                 std::uint32_t tokens) {
  batch b;
  for (std::uint32_t i = 0; i < batch_size; ++i) {
    batch_item it;
    it.request = i + 1;
    it.kind = kind;
    it.context = context;
    it.num_tokens = tokens;
    b.items.push_back(std::move(it));
  }
  return b;
}

result<row> measure(const sim_device& d, const roofline_model& work, phase kind,
                    std::uint32_t batch_size, std::uint32_t context, std::uint32_t tokens) {
  const batch b = make_batch(kind, batch_size, context, tokens);
  auto time = d.cost->iteration_time(b);
  if (!time) return std::move(time).err();
  auto ops = work.estimate(b);
  if (!ops) return std::move(ops).err();
  row r{kind, kind == phase::prefill ? tokens : context, batch_size,
        std::chrono::duration<double>(*time).count()};
  for (const op_cost& op : ops->ops) {
    r.flops += op.flops;
    if (!op.collective) r.hbm_bytes += op.bytes;
  }
  return r;
}

result<std::vector<row>> measure_all(const sim_device& d, const model_spec& model,
                                     const model_table_options& o) {
  const deployment deploy{d.timing_tp, o.sim.weights, o.sim.activations, o.sim.kv};
  auto work = roofline_model::create(model, d.hardware, deploy);
  if (!work) return std::move(work).err();
  std::vector<row> rows;
  for (std::uint32_t p : o.prompt_lengths) {
    auto r = measure(d, *work, phase::prefill, 1, 0, p);
    if (!r) return std::move(r).err();
    rows.push_back(*r);
  }
  for (std::uint32_t bs : o.batch_sizes) {
    auto r = measure(d, *work, phase::decode, bs, o.context, 1);
    if (!r) return std::move(r).err();
    rows.push_back(*r);
  }
  return rows;
}

std::uint64_t capacity_tokens(const sim_device& d) {
  return d.kv.total_blocks * d.kv.block_tokens;
}

std::string header(const sim_device& d, const model_spec& m, const model_table_options& o) {
  const hardware_spec& h = d.hardware;
  std::string s =
      format("== %s on %s: %s ==\n", m.name.c_str(), d.name.c_str(), d.cost->describe().c_str());
  s += format("%s x %u: %.1f TFLOP/s dense, %.0f GB/s HBM, %.0f GiB per device\n",
              h.description.c_str(), o.tp, h.peak_flops / 1e12, h.hbm_bandwidth / 1e9,
              double(h.hbm_bytes) / (1ull << 30));
  if (d.kind == timing::roofline) {
    s += format(
        "eta gemm %.2f, attention %.2f, hbm %.2f, kv %.2f; all-reduce busbw %.0f GB/s + %.0f us; "
        "overhead %.2f ms per iteration + %.0f us per layer\n",
        h.eta.gemm, h.eta.attention, h.eta.hbm, h.eta.kv, h.allreduce_busbw(o.tp) / 1e9,
        std::chrono::duration<double, std::micro>(h.allreduce.latency).count(),
        std::chrono::duration<double, std::milli>(h.iteration_overhead).count(),
        std::chrono::duration<double, std::micro>(h.layer_overhead).count());
  }
  s += format("KV: %llu bytes per token (%s); capacity %llu tokens (%llu blocks of %u)\n",
              static_cast<unsigned long long>(m.kv_bytes_per_token(d.kv.kv_dtype)),
              std::string{to_string(d.kv.kv_dtype)}.c_str(),
              static_cast<unsigned long long>(capacity_tokens(d)),
              static_cast<unsigned long long>(d.kv.total_blocks), d.kv.block_tokens);
  if (!d.caveat.empty()) s += "note: " + d.caveat + "\n";
  if (d.timing_tp != o.tp) s += format("napkin math per device at tp %u\n", d.timing_tp);
  return s;
}

std::string render_table(const sim_device& d, const model_spec& m, const model_table_options& o,
                         const std::vector<row>& rows) {
  std::string s = header(d, m, o);
  bool beyond = false;
  s += "prefill, one request\n   prompt   time_ms      tok/s  TFLOP/dev  TFLOP/s/dev  %peak\n";
  for (const row& r : rows) {
    if (r.kind != phase::prefill) continue;
    const bool over = r.tokens > m.max_context;
    beyond = beyond || over;
    const double tflops = r.flops / r.seconds / 1e12;
    s += format("  %6u%s %9.2f %10.0f %10.2f %12.1f %6.1f\n", r.tokens, over ? "*" : " ",
                r.seconds * 1e3, r.tokens / r.seconds, r.flops / 1e12, tflops,
                100 * tflops * 1e12 / d.hardware.peak_flops);
  }
  if (beyond) s += format("  * beyond the model's max_context (%u)\n", m.max_context);
  s += format(
      "decode step, context %u\n    batch   step_ms      tok/s     GB/dev     GB/s/dev   %%HBM\n",
      o.context);
  bool unphysical = false;
  for (const row& r : rows) {
    if (r.kind != phase::decode) continue;
    const double gbps = r.hbm_bytes / r.seconds / 1e9;
    const double pct = 100 * gbps * 1e9 / d.hardware.hbm_bandwidth;
    // A profile table extrapolated past its last measured batch can claim
    // more bandwidth than the HBM has: flag it instead of hiding it.
    const bool over = pct > 100;
    unphysical = unphysical || over;
    s += format("  %6u%s %9.2f %10.0f %10.2f %12.1f %6.1f\n", r.batch, over ? "!" : " ",
                r.seconds * 1e3, r.batch / r.seconds, r.hbm_bytes / 1e9, gbps, pct);
  }
  if (unphysical)
    s += "  ! faster than the HBM allows: extrapolated beyond the measured batch sizes\n";
  return s + "\n";
}

constexpr const char* csv_header =
    "device,model,tp,phase,tokens,batch,context,time_ms,tokens_per_s,tflop_per_device,"
    "tflops_per_device,pct_peak_flops,gb_per_device,gbps_per_device,pct_peak_hbm,"
    "kv_bytes_per_token,kv_capacity_tokens\n";

std::string render_csv(const sim_device& d, const model_spec& m, const model_table_options& o,
                       const std::vector<row>& rows) {
  std::string s;
  for (const row& r : rows) {
    const bool prefill = r.kind == phase::prefill;
    const double flops_rate = r.flops / r.seconds;
    const double byte_rate = r.hbm_bytes / r.seconds;
    s += format("%s,%s,%u,%s,%u,%u,%u,%.4f,%.1f,%.4f,%.2f,%.2f,%.4f,%.2f,%.2f,%llu,%llu\n",
                d.name.c_str(), m.name.c_str(), o.tp, prefill ? "prefill" : "decode",
                prefill ? r.tokens : r.batch, r.batch, prefill ? 0 : r.tokens, r.seconds * 1e3,
                (prefill ? r.tokens : r.batch) / r.seconds, r.flops / 1e12, flops_rate / 1e12,
                100 * flops_rate / d.hardware.peak_flops, r.hbm_bytes / 1e9, byte_rate / 1e9,
                100 * byte_rate / d.hardware.hbm_bandwidth,
                static_cast<unsigned long long>(m.kv_bytes_per_token(d.kv.kv_dtype)),
                static_cast<unsigned long long>(capacity_tokens(d)));
  }
  return s;
}

std::vector<std::string> expand(const std::vector<std::string>& devices, bool& all) {
  std::vector<std::string> out;
  for (const std::string& name : devices) {
    if (name != "all") {
      out.push_back(name);
      continue;
    }
    all = true;
    for (std::string_view d : known_sim_devices()) out.emplace_back(d);
  }
  return out;
}

status check_options(const model_table_options& o) {
  if (o.tp == 0) return fail(errc::invalid_argument, "tp must be at least 1");
  if (o.context == 0) return fail(errc::invalid_argument, "context must be at least 1");
  if (o.devices.empty()) return fail(errc::invalid_argument, "no device given");
  if (o.prompt_lengths.empty() || o.batch_sizes.empty()) {
    return fail(errc::invalid_argument, "no prompt lengths or batch sizes");
  }
  for (auto list : {&o.prompt_lengths, &o.batch_sizes}) {
    for (std::uint32_t v : *list) {
      if (v == 0) return fail(errc::invalid_argument, "prompt lengths and batch sizes must be > 0");
    }
  }
  return {};
}

}  // namespace

result<model_table_output> model_table(const model_spec& model,
                                       const model_table_options& options) {
  if (auto ok = check_options(options); !ok) return std::move(ok).err();
  bool all = false;
  model_table_output out;
  if (options.format == table_format::csv) out.text = csv_header;
  std::optional<error> first_skip;
  for (const std::string& name : expand(options.devices, all)) {
    auto d = make_sim_device(name, model, options.tp, options.sim);
    if (d) {
      auto rows = measure_all(*d, model, options);
      if (!rows) return std::move(rows).err().context(name);
      out.text += options.format == table_format::csv ? render_csv(*d, model, options, *rows)
                                                      : render_table(*d, model, options, *rows);
      continue;
    }
    const errc code = d.err().code();
    if (!all || (code != errc::unsupported && code != errc::out_of_memory)) {
      return std::move(d).err();
    }
    out.skipped.push_back(name + ": " + d.err().message());
    if (options.format == table_format::table) out.text += "== " + out.skipped.back() + " ==\n\n";
    if (!first_skip) first_skip = d.err();
  }
  if (first_skip && out.skipped.size() == expand(options.devices, all).size()) return *first_skip;
  return out;
}

}  // namespace accellm::device::sim
