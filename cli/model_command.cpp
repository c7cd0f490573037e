#include "cli/model_command.hpp"

#include "device/model_spec.hpp"
#include "device/sim/model_table.hpp"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace accellm::cli {
namespace {

namespace dev = accellm::device;

struct model_flags {
  std::string model;
  std::vector<std::string> devices{"sim:h100"};
  unsigned tp = 1;
  unsigned context = 2048;
  std::string format = "table";
  std::string weights = "bf16";
  std::string kv = "bf16";
};

std::string model_names() {
  std::string out;
  for (const dev::model_spec& m : dev::known_models()) out += (out.empty() ? "" : ", ") + m.name;
  return out;
}

int usage_error(const std::string& what) {
  std::cerr << "accellm model: " << what << "\n";
  return 2;
}

int run_model(const model_flags& f) {
  const dev::model_spec* model = dev::find_model(f.model);
  if (model == nullptr) {
    return usage_error("unknown model '" + f.model + "' (known: " + model_names() + ")");
  }
  dev::sim::model_table_options o;
  o.devices = f.devices;
  o.tp = f.tp;
  o.context = f.context;
  if (f.format != "table" && f.format != "csv") {
    return usage_error("--format must be table or csv, not '" + f.format + "'");
  }
  o.format = f.format == "csv" ? dev::sim::table_format::csv : dev::sim::table_format::table;
  if (!dev::parse_dtype(f.weights, o.sim.weights) || !dev::parse_dtype(f.kv, o.sim.kv)) {
    return usage_error("dtypes are fp32, bf16, fp16 or fp8");
  }
  auto out = dev::sim::model_table(*model, o);
  if (!out) return usage_error(out.err().what());
  for (const std::string& s : out->skipped) std::cerr << "accellm model: skipped " << s << "\n";
  std::cout << out->text << std::flush;
  return 0;
}

}  // namespace

void add_model_command(CLI::App& app, std::function<int()>& run) {
  auto flags = std::make_shared<model_flags>();
  CLI::App* sub = app.add_subcommand(
      "model", "Print modelled prefill and decode times of a model on simulated devices");
  sub->add_option("--model", flags->model, "Model: " + model_names())->required();
  sub->add_option("--device", flags->devices,
                  "sim:h100, sim:a100, sim:ascend910b2, sim:h100-splitwise2023, "
                  "sim:file:<csv>, or all (repeatable)")
      ->capture_default_str();
  sub->add_option("--tp", flags->tp, "Tensor-parallel degree")->capture_default_str();
  sub->add_option("--context", flags->context, "Context of every request in the decode rows")
      ->capture_default_str();
  sub->add_option("--format", flags->format, "table or csv")->capture_default_str();
  sub->add_option("--weights-dtype", flags->weights, "Weight dtype")->capture_default_str();
  sub->add_option("--kv-dtype", flags->kv, "KV-cache dtype")->capture_default_str();
  sub->callback([flags, &run] { run = [flags] { return run_model(*flags); }; });
}

}  // namespace accellm::cli
