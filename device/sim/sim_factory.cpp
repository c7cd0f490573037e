#include "device/sim/sim_factory.hpp"

#include "device/sim/embedded_profiles.hpp"
#include "device/sim/profile_model.hpp"
#include "device/sim/roofline_model.hpp"
#include "device/sim/sim_backend.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <utility>

namespace accellm::device::sim {
namespace {

constexpr std::string_view prefix = "sim:";
constexpr std::string_view file_prefix = "file:";
constexpr std::array<std::string_view, 4> builtin{"sim:h100", "sim:a100", "sim:ascend910b2",
                                                  "sim:h100-splitwise2023"};

std::string gb(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GB", bytes / 1e9);
  return text;
}

std::string known_list() {
  std::string out;
  for (std::string_view d : builtin) out += std::string{out.empty() ? "" : ", "} + std::string{d};
  return out + ", sim:file:<path>";
}

// The part shared by roofline and profile devices: tp check and KV pool.
result<sim_device> base_device(std::string_view device, const model_spec& model,
                               const hardware_spec& hw, std::uint32_t tp,
                               const sim_options& options) {
  if (auto ok = check_tp(model, tp, &hw); !ok) return std::move(ok).err();
  auto kv = kv_capacity(model, hw, tp, options);
  if (!kv) return std::move(kv).err();
  sim_device d;
  d.name = device;
  d.hardware = hw;
  d.kv = *kv;
  d.timing_tp = tp;
  return d;
}

result<sim_device> roofline_device(std::string_view device, const model_spec& model,
                                   const hardware_spec& hw, std::uint32_t tp,
                                   const sim_options& options) {
  auto d = base_device(device, model, hw, tp, options);
  if (!d) return d;
  auto m =
      roofline_model::create(model, hw, {tp, options.weights, options.activations, options.kv});
  if (!m) return std::move(m).err();
  d->cost = std::make_unique<roofline_model>(std::move(*m));
  return d;
}

result<sim_device> profile_device(std::string_view device, const model_spec& model,
                                  profile_table table, std::uint32_t tp,
                                  const sim_options& options) {
  if (!table.model.empty() && table.model != model.name) {
    return fail(errc::unsupported,
                std::string{device} + " is a profile of " + table.model + ", not of " + model.name);
  }
  const hardware_spec* hw = find_hardware(table.hardware);
  if (hw == nullptr) {
    return fail(errc::config, std::string{device} + ": the profile's @hardware '" + table.hardware +
                                  "' is missing or unknown");
  }
  auto d = base_device(device, model, *hw, tp, options);
  if (!d) return d;
  if (table.tp != 0 && table.tp != tp) {
    d->caveat = "profile measured at tp " + std::to_string(table.tp) + "; tp " +
                std::to_string(tp) + " only sizes the KV pool";
    d->timing_tp = table.tp;
  }
  d->kind = timing::profile;
  auto m = profile_model::create(std::move(table), std::string{device.substr(prefix.size())});
  if (!m) return std::move(m).err();
  d->cost = std::make_unique<profile_model>(std::move(*m));
  return d;
}

}  // namespace

result<kv_geometry> kv_capacity(const model_spec& model, const hardware_spec& hardware,
                                std::uint32_t tp, const sim_options& options) {
  if (options.block_tokens == 0) return fail(errc::invalid_argument, "block_tokens is 0");
  if (tp == 0) return fail(errc::invalid_argument, "tp must be at least 1");
  const double weights = double(model.params()) * dtype_bytes(options.weights) / tp;
  const double usable = double(hardware.hbm_bytes) * (1.0 - hardware.memory_reserve) - weights;
  const double kv_heads_local = (model.kv_heads + tp - 1) / tp;
  const double per_token =
      2.0 * model.layers * kv_heads_local * model.head_dim() * dtype_bytes(options.kv);
  const double blocks = usable > 0 ? std::floor(usable / (per_token * options.block_tokens)) : 0;
  if (blocks < 1) {
    return fail(errc::out_of_memory,
                model.name + " needs " + gb(weights) + " of " +
                    std::string{to_string(options.weights)} + " weights per device at tp " +
                    std::to_string(tp) + "; one " + hardware.name + " keeps " +
                    gb(double(hardware.hbm_bytes) * (1.0 - hardware.memory_reserve)) +
                    ", leaving no room for KV");
  }
  kv_geometry kv;
  kv.block_tokens = options.block_tokens;
  kv.total_blocks = static_cast<std::uint64_t>(blocks);
  kv.bytes_per_block = model.kv_bytes_per_token(options.kv) * options.block_tokens;
  kv.kv_dtype = options.kv;
  return kv;
}

std::span<const std::string_view> known_sim_devices() noexcept {
  return builtin;
}

result<sim_device> make_sim_device(std::string_view device, const model_spec& model,
                                   std::uint32_t tp, const sim_options& options) {
  if (auto why = model.check(); !why.empty()) {
    return fail(errc::invalid_argument, "model " + model.name + ": " + why);
  }
  if (device.substr(0, prefix.size()) != prefix) {
    return fail(errc::not_found,
                "unknown device '" + std::string{device} + "' (known: " + known_list() + ")");
  }
  const std::string_view rest = device.substr(prefix.size());
  if (rest.substr(0, file_prefix.size()) == file_prefix) {
    auto table = load_profile(std::string{rest.substr(file_prefix.size())});
    if (!table) return std::move(table).err();
    return profile_device(device, model, std::move(*table), tp, options);
  }
  if (const hardware_spec* hw = find_hardware(rest)) {
    return roofline_device(device, model, *hw, tp, options);
  }
  if (const embedded_profile* p = find_embedded_profile(rest)) {
    auto table = parse_profile(p->csv, "profiles/" + std::string{p->name} + ".csv");
    if (!table) return std::move(table).err();
    return profile_device(device, model, std::move(*table), tp, options);
  }
  return fail(errc::not_found,
              "unknown device '" + std::string{device} + "' (known: " + known_list() + ")");
}

result<std::unique_ptr<backend>> make_sim_backend(std::string_view device, const model_spec& model,
                                                  std::uint32_t tp, const sim_options& options) {
  auto d = make_sim_device(device, model, tp, options);
  if (!d) return std::move(d).err();
  std::unique_ptr<backend> b =
      std::make_unique<sim_backend>(d->name, model, std::move(d->cost), d->kv);
  return b;
}

}  // namespace accellm::device::sim
