// accellm: one binary, one subcommand per job (DESIGN.md "Command line").
// main() is the only place that builds the top-level components; each
// subcommand's parse callback hands back the function that does its work.
#include "cli/daemon_commands.hpp"
#include "cli/model_command.hpp"
#include "cli/report_command.hpp"
#include "cli/selftest_command.hpp"
#include "cli/simulate_command.hpp"
#include "cli/trace_command.hpp"

#include <CLI/CLI.hpp>

#include <exception>
#include <functional>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"accellm: an AcceLLM cluster coordinator for LLM inference", "accellm"};
  // At most one subcommand; none is reported below, after parsing, so that an
  // unknown word is named as such rather than as a missing subcommand.
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", "accellm 0.1.0");
  std::function<int()> run;
  accellm::cli::add_daemon_commands(app, run);
  accellm::cli::add_model_command(app, run);
  accellm::cli::add_report_command(app, run);
  accellm::cli::add_selftest_command(app, run);
  accellm::cli::add_simulate_command(app, run);
  accellm::cli::add_trace_command(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2 with CLI11's
    // message naming the bad flag.
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!run) {
    std::cerr << "accellm: a subcommand is required (coordinator, worker, up, load, model, report, "
                 "selftest, simulate, trace); try --help\n";
    return 2;
  }
  try {
    return run();
  } catch (const std::exception& e) {
    std::cerr << "accellm: " << e.what() << '\n';
    return 1;
  }
}
