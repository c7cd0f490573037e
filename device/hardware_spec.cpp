#include "device/hardware_spec.hpp"

#include <array>

// Source tags [Sx] refer to the source list of notes/hardware.md; "peers.md"
// and "paper.md" to notes/peers.md and notes/paper.md. "(derived)" is
// arithmetic on sourced figures, "(assumption)" a judgement with no source.

namespace accellm::device {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr std::uint64_t gib = 1024ull * 1024 * 1024;
constexpr double giga = 1e9;

hardware_spec h100() {
  hardware_spec h;
  h.name = "h100";
  h.description = "NVIDIA H100 SXM5 80GB";
  h.peak_flops = 989.4e12;  // dense BF16, hardware.md 1.1 [S1,S2,S3] (1,979 is sparse)
  // 80 GiB: SplitwiseSim's h100-80gb memory_size 85,899,345,920 B (paper.md 6.2).
  h.hbm_bytes = 80 * gib;
  h.hbm_bandwidth = 3.35e12;  // HBM3 datasheet peak, hardware.md 1.1 [S1]
  // NVLink4: 450 GB/s per direction line rate; ~380 GB/s measured p2p [S1,S7].
  // Latency (assumption): a few us for a copy launch; not in the notes.
  h.intra_node = {"NVLink4", 450 * giga, 380 * giga, microseconds(5)};
  // IB NDR 400 Gb/s per GPU = 50 GB/s per direction [S17]; x0.87, the RDMA
  // efficiency Mooncake measured (87 of 100 GB/s) [S33] (derived). Latency:
  // assumption (RDMA write setup + one way), not in the notes.
  h.inter_node = {"IB NDR 400G", 50 * giga, 0.87 * 50 * giga, microseconds(10)};
  // NCCL ring busbw over NVLink4 ~370 GB/s [S8]; alpha 15 us, the middle of the
  // 8-30 us per call measured for decode-size all-reduces [S8,S19].
  h.allreduce = {fabric::switched, 370 * giga, microseconds(15)};
  h.tdp_watts = 700.0;  // [S1]
  // $38/h per 8-GPU DGX H100 -> 4.76 per GPU-hour, SplitwiseSim (paper.md 6.2).
  h.price_per_hour = 4.76;
  // Fitted to accellm's own CUDA backend on an H100 (issue 8): every point of
  // device/profiles/h100-cuda-{llama2-7b,llama3-8b,llama2-70b-tp8}.csv (the
  // run of 2026-11-27 20:01 at 53bcf7a, with tma128 prefill attention and the
  // TMA decode tiles), by
  // `build/sim/bench/bench_calibrate bench/results/nvidia-h100-80gb-hbm3-model.csv`
  // (bench/calibrate_h100.cpp; docs/cost-model.md has the fit and what the
  // factors were before). Median / worst error of the roofline against each
  // table: 2.9 / 9.4 % (7B), 1.6 / 9.7 % (Llama-3-8B), 3.9 / 13.4 %
  // (70B TP-8); held-out Llama-2-13B rows 2.6 / 6.7 %.
  // eta.hbm sits at its bound, the copy ceiling bench_gpu_ceilings measured
  // (3.02 TB/s = 0.90); the fixed cost is 40 us per block (~10 kernels and
  // the gaps between them) and none per iteration (the fit's lower bound).
  h.eta = {0.67, 0.35, 0.90, 0.81};
  h.iteration_overhead = microseconds(0);
  h.layer_overhead = microseconds(40);
  h.memory_reserve = 0.10;  // assumption: vLLM's default gpu_memory_utilization 0.9
  return h;
}

hardware_spec a100() {
  hardware_spec h;
  h.name = "a100";
  h.description = "NVIDIA A100 SXM4 80GB";
  h.peak_flops = 312e12;   // dense BF16, hardware.md 1.2 ("271.2 = 86.9 % of 312") [S5]
  h.hbm_bytes = 80 * gib;  // SplitwiseSim a100-80gb, same memory_size (paper.md 6.2)
  // 2.04 TB/s (derived): peers.md 1 "H100 vs A100: 1.64x HBM BW" -> 3.35/1.64;
  // matches the A100 80GB datasheet's 2,039 GB/s (not in the notes) and the MBU
  // percentages of hardware.md 1.2 (1.26 TB/s = 62 %, 1.397 TB/s = 69 %).
  h.hbm_bandwidth = 2.039e12;
  // NVLink3 600 GB/s bidirectional [S15] -> 300 per direction; effective x0.84,
  // the measured/nominal ratio of NVLink4 p2p (380/450 [S7]) (derived).
  h.intra_node = {"NVLink3", 300 * giga, 0.84 * 300 * giga, microseconds(5)};
  // IB HDR 200 Gb/s per GPU = 25 GB/s per direction (Splitwise testbed [S34]);
  // x0.87 RDMA efficiency [S33] (derived); latency as for H100 (assumption).
  h.inter_node = {"IB HDR 200G", 25 * giga, 0.87 * 25 * giga, microseconds(10)};
  // busbw: NVLink4's 370/450 ratio [S8] applied to 300 GB/s (derived); alpha
  // as for H100 (assumption).
  h.allreduce = {fabric::switched, 300 * giga * 370 / 450, microseconds(15)};
  // 400 W (derived): peers.md 1 "H100 vs A100: 1.75x power" -> 700/1.75.
  h.tdp_watts = 400.0;
  h.price_per_hour = 2.21;  // SplitwiseSim DGX-A100 2.21 per GPU-hour (paper.md 6.2)
  // gemm 0.70: TRT-LLM 69 %, Splitwise 67 % of 312 [S13,S14]. attention 0.30
  // (assumption; the H100's before its calibration). hbm 0.65: A100 MBU
  // evidence 58-69 % (hardware.md 0).
  h.eta = {0.70, 0.30, 0.65, 0.65};        // kv: as hbm (no measurement)
  h.iteration_overhead = milliseconds(1);  // assumption (the H100's before its calibration)
  h.memory_reserve = 0.10;                 // as for H100 (assumption)
  return h;
}

hardware_spec ascend910b2() {
  hardware_spec h;
  h.name = "ascend910b2";
  h.description = "Huawei Ascend 910B2 64GB";
  // 353.9 T cube-only (24 cores x 8192 FLOP/clk x 1.8 GHz), the part GEMMs run
  // on; the datasheet's 376 T adds the vector units [S20,S21,S37].
  h.peak_flops = 353.9e12;
  h.hbm_bytes = 64 * gib;    // CANN Ascend910B2.ini memory_size 64 GiB [S20]
  h.hbm_bandwidth = 1.6e12;  // 1.6 TB/s [S21,S37]
  // HCCS: 56 GB/s bidirectional to any single peer in the 8P full mesh [S36,S37]
  // -> 28 per direction; effective x0.84, NVLink4's measured/nominal p2p ratio
  // (380/450 [S7]) (derived; no 910B p2p copy measurement in the notes).
  h.intra_node = {"HCCS", 28 * giga, 0.84 * 28 * giga, microseconds(5)};
  // 200GE RoCE per NPU = 25 GB/s per direction [S37,S28]; x0.87 RDMA
  // efficiency [S33] (derived); latency as for IB (assumption).
  h.inter_node = {"200GE RoCE", 25 * giga, 0.87 * 25 * giga, microseconds(10)};
  // Full mesh: 18 GB/s busbw per peer link (2-card measurement [S23]); 8 cards
  // then give 126 GB/s, which is the measured 8-card all_reduce of 72 GB/s
  // read as algbw (x 2*7/8) [S23] (derived, consistent). alpha (assumption):
  // a little above NCCL's, HCCL small-message latency is not in the notes.
  h.allreduce = {fabric::full_mesh, 18 * giga, microseconds(20)};
  h.tdp_watts = 400.0;  // Atlas 800T A2, max per processor [S36,S37]
  // Assumption: no public per-device price in the notes; we price it like the
  // A100 (2.21), the class it sits in (1.13x the peak, 0.78x the bandwidth).
  h.price_per_hour = 2.21;
  // gemm 0.70: the NVIDIA serving-stack fraction (no 910B serving data; its
  // GEMM microbenchmark ceiling is 89 % [S24]). attention 0.25 (assumption).
  // hbm 0.60 (derived): the 910B reaches 0.92x the A800's fraction of peak on
  // the same memory probe (640/1600 vs 885/2039 [S23]) -> 0.92 x 0.65.
  h.eta = {0.70, 0.25, 0.60, 0.60};  // kv: as hbm (no measurement)
  // Assumption: twice the NVIDIA figure, graph capture on torch_npu is younger.
  h.iteration_overhead = milliseconds(2);
  h.memory_reserve = 0.10;  // as for H100 (assumption)
  return h;
}

const std::array<hardware_spec, 3>& catalogue() {
  static const std::array<hardware_spec, 3> all{h100(), a100(), ascend910b2()};
  return all;
}

}  // namespace

double hardware_spec::allreduce_busbw(std::uint32_t tp) const noexcept {
  if (tp <= 1) return 0.0;
  if (allreduce.topology == fabric::full_mesh) return allreduce.busbw * (tp - 1);
  return allreduce.busbw;
}

std::string hardware_spec::check() const {
  if (name.empty()) return "name is empty";
  if (!(peak_flops > 0.0)) return "peak_flops is not positive";
  if (hbm_bytes == 0) return "hbm_bytes is 0";
  if (!(hbm_bandwidth > 0.0)) return "hbm_bandwidth is not positive";
  if (devices_per_node == 0) return "devices_per_node is 0";
  if (!(allreduce.busbw > 0.0)) return "allreduce.busbw is not positive";
  if (!(intra_node.bandwidth > 0.0) || !(inter_node.bandwidth > 0.0)) {
    return "a link bandwidth is not positive";
  }
  for (double e : {eta.gemm, eta.attention, eta.hbm, eta.kv}) {
    if (!(e > 0.0 && e <= 1.0)) return "an efficiency is outside (0, 1]";
  }
  if (!(memory_reserve >= 0.0 && memory_reserve < 1.0)) return "memory_reserve outside [0, 1)";
  if (iteration_overhead.count() < 0) return "iteration_overhead is negative";
  if (layer_overhead.count() < 0) return "layer_overhead is negative";
  return {};
}

std::span<const hardware_spec> known_hardware() noexcept {
  return catalogue();
}

const hardware_spec* find_hardware(std::string_view name) noexcept {
  for (const hardware_spec& h : catalogue()) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

}  // namespace accellm::device
