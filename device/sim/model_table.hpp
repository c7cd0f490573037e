// model_table: what `accellm model` prints. For each simulated device, the
// prefill time of one request over prompt lengths and the decode step time
// over batch sizes at a fixed context, with napkin math beside each time:
// achieved TFLOP/s per device and % of peak for prefill, HBM GB/s per device
// and % of peak bandwidth for decode. The work (FLOPs, bytes) is counted by
// the roofline operator list on the device's hardware whatever model timed
// it, so a profile's times get the same napkin math.
//
// Pure function of its inputs (a "sim:file:" device reads its file).
#pragma once

#include "common/result.hpp"
#include "device/model_spec.hpp"
#include "device/sim/sim_factory.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace accellm::device::sim {

enum class table_format : std::uint8_t { table, csv };

struct model_table_options {
  /// Device names (see make_sim_device()); "all" stands for every built-in one.
  std::vector<std::string> devices{"sim:h100"};
  std::uint32_t tp = 1;
  std::uint32_t context = 2048;  ///< context of every request in the decode rows
  table_format format = table_format::table;
  sim_options sim;
  std::vector<std::uint32_t> prompt_lengths{128, 256, 512, 1024, 2048, 4096, 8192};
  std::vector<std::uint32_t> batch_sizes{1, 2, 4, 8, 16, 32, 64, 128, 256};
};

struct model_table_output {
  std::string text;                  ///< the table, or CSV with one header row
  std::vector<std::string> skipped;  ///< "sim:x: why", devices "all" could not show
};

/// Renders the table. Errors: invalid_argument for tp or context 0, or empty
/// prompt/batch lists; any make_sim_device() error for a device named
/// explicitly. Under "all", devices that cannot serve the model (a profile
/// of another model, weights that do not fit) go to `skipped` instead; if
/// none is left the first such error is returned.
result<model_table_output> model_table(const model_spec& model, const model_table_options& options);

}  // namespace accellm::device::sim
