// Building simulated devices by name.
//
//   "sim:h100", "sim:a100", "sim:ascend910b2"  roofline_model on that hardware
//   "sim:h100-splitwise2023"                   profile_model on a shipped profile
//                                              (device/profiles/<name>.csv)
//   "sim:file:<path>"                          profile_model on a user CSV; it
//                                              must name its @hardware
//
// KV capacity of an instance of tp devices: per device, HBM minus the
// activation reserve minus 1/tp of the weights, divided by the per-device KV
// bytes per token (ceil(kv_heads / tp) heads), in blocks of block_tokens.
//
// Pure functions (loading a user CSV reads the file); safe from any thread.
#pragma once

#include "common/result.hpp"
#include "device/backend.hpp"
#include "device/hardware_spec.hpp"
#include "device/sim/cost_model.hpp"

#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace accellm::device::sim {

/// Deployment choices that are not the device name or the TP degree.
struct sim_options {
  dtype weights = dtype::bf16;
  dtype activations = dtype::bf16;
  dtype kv = dtype::bf16;
  std::uint32_t block_tokens = 16;
};

/// KV pool of an instance: fails with out_of_memory when the weights leave
/// no room for one block, invalid_argument for block_tokens == 0.
result<kv_geometry> kv_capacity(const model_spec& model, const hardware_spec& hardware,
                                std::uint32_t tp, const sim_options& options);

/// How a simulated device is timed.
enum class timing : std::uint8_t { roofline, profile };

/// A simulated device, resolved: what it runs on and how it is timed.
struct sim_device {
  std::string name;  ///< "sim:h100"
  timing kind = timing::roofline;
  hardware_spec hardware;            ///< peak figures and memory of one device
  std::unique_ptr<cost_model> cost;  ///< never null
  kv_geometry kv;
  /// TP degree the timings correspond to: the requested one for roofline
  /// devices, the profile's @tp for profiles that state it.
  std::uint32_t timing_tp = 1;
  /// Set when the timings ignore the request in some way ("profile measured
  /// at tp 2; --tp only sizes the KV pool").
  std::string caveat;
};

/// The built-in device names, in a stable order (not "sim:file:").
std::span<const std::string_view> known_sim_devices() noexcept;

/// Resolves `device`. Errors: not_found for an unknown name (the message
/// lists the known ones); invalid_argument when check_tp() fails;
/// unsupported when a profile is for another model; config when a user
/// profile names no or an unknown @hardware; what parse/load and
/// kv_capacity() return.
result<sim_device> make_sim_device(std::string_view device, const model_spec& model,
                                   std::uint32_t tp, const sim_options& options = {});

/// make_sim_device() wrapped into a sim_backend.
result<std::unique_ptr<backend>> make_sim_backend(std::string_view device, const model_spec& model,
                                                  std::uint32_t tp,
                                                  const sim_options& options = {});

}  // namespace accellm::device::sim
