// hardware_spec: the figures a cost model needs about one accelerator type
// (peak compute, HBM, links, power, price, achieved-efficiency factors), and
// the catalogue of accelerators accellm can simulate: "h100" (H100 SXM5 80GB),
// "a100" (A100 SXM4 80GB), "ascend910b2" (Huawei Ascend 910B2).
//
// Every catalogue number carries a source comment in hardware_spec.cpp that
// points into notes/hardware.md ([Sx] tags) or says it is an assumption;
// docs/cost-model.md collects them.
//
// Value type; the catalogue is immutable and safe to read from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace accellm::device {

/// A point-to-point link from one device to one peer.
struct link_spec {
  std::string name;                     ///< "NVLink4", "IB NDR 400G", ...
  double nominal_bandwidth = 0.0;       ///< line rate, bytes/s per direction
  double bandwidth = 0.0;               ///< bytes/s per direction the models use
  std::chrono::nanoseconds latency{0};  ///< fixed cost per transfer (setup + one way)
};

/// How the devices of one node are wired for collectives.
enum class fabric : std::uint8_t {
  switched,   ///< every device reaches the switch at full rate (NVSwitch)
  full_mesh,  ///< one direct link per peer, no switch (Ascend HCCS 8P mesh)
};

/// Tensor-parallel all-reduce inside one node.
struct allreduce_spec {
  fabric topology = fabric::switched;
  /// NCCL-style bus bandwidth in bytes/s: for `switched`, of the whole group;
  /// for `full_mesh`, contributed by each peer link (a group of t devices
  /// uses t - 1 links, so its busbw is `busbw * (t - 1)`).
  double busbw = 0.0;
  std::chrono::nanoseconds latency{0};  ///< alpha: fixed cost per call
};

/// Fractions of peak that real kernels reach (roofline derating).
struct efficiency {
  double gemm = 1.0;       ///< dense matmuls (projections, MLP, LM head), of peak_flops
  double attention = 1.0;  ///< attention score/value matmuls, of peak_flops
  double hbm = 1.0;        ///< memory-bound operators other than attention, of hbm_bandwidth
  double kv = 1.0;         ///< attention's memory traffic (KV-cache reads), of hbm_bandwidth
};

/// One accelerator type. All figures are per device.
struct hardware_spec {
  std::string name;         ///< catalogue key, e.g. "h100"
  std::string description;  ///< "NVIDIA H100 SXM5 80GB"
  double peak_flops = 0.0;  ///< dense bf16/fp16 matrix peak, FLOP/s
  std::uint64_t hbm_bytes = 0;
  double hbm_bandwidth = 0.0;          ///< bytes/s
  std::uint32_t devices_per_node = 8;  ///< TP groups larger than this are rejected
  link_spec intra_node;                ///< device to a peer in the same node
  link_spec inter_node;                ///< device to a device in another node (its NIC)
  allreduce_spec allreduce;
  double tdp_watts = 0.0;
  double price_per_hour = 0.0;  ///< USD per device-hour
  efficiency eta;
  std::chrono::nanoseconds iteration_overhead{0};  ///< launches, sampling, scheduling
  /// Fixed cost of each transformer block per iteration (kernel launches and
  /// the gaps between a block's kernels), on top of its operators' roofline.
  std::chrono::nanoseconds layer_overhead{0};
  double memory_reserve = 0.0;  ///< fraction of HBM kept for activations and runtime

  /// Bus bandwidth of an all-reduce over `tp` devices of one node, bytes/s.
  double allreduce_busbw(std::uint32_t tp) const noexcept;
  /// Empty when every field is usable, otherwise what is wrong.
  std::string check() const;
};

/// Every accelerator in the catalogue, in a stable order.
std::span<const hardware_spec> known_hardware() noexcept;

/// The catalogue entry called `name`, or nullptr.
const hardware_spec* find_hardware(std::string_view name) noexcept;

}  // namespace accellm::device
