// accellm simulate: the policy comparison in virtual time (issue 4).
//
//   accellm simulate --cluster deploy/examples/h100-llama2-70b.toml
//                    --workload conv|code|TRACE --rate R --duration T
//                    [--policy all|vllm|splitwise|accellm] [--seed S] [--out DIR]
//                    [--sweep-rates R1,R2,..] [--goodput] [--no-report]
//
// Prints the comparison table, writes per-request, per-instance, memory,
// role, utilisation and TBT-histogram CSV and summary.json per policy into
// --out (goodput.json with --goodput), then --out/report.html unless
// --no-report (accellm report).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace accellm::cli {

void add_simulate_command(CLI::App& app, std::function<int()>& run);

}  // namespace accellm::cli
