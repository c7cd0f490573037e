#include "cli/report_command.hpp"

#include "workload/report/report_html.hpp"

#include <iostream>
#include <memory>
#include <string>

namespace accellm::cli {

int write_report(const std::filesystem::path& dir, const char* who, std::ostream& out) {
  auto path = report::write_report(dir);
  if (!path) {
    std::cerr << who << ": " << path.err().message() << "\n";
    return path.err().code() == errc::io_failure ? 1 : 2;
  }
  out << "report: " << path->string() << "\n";
  return 0;
}

void add_report_command(CLI::App& app, std::function<int()>& run) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd =
      app.add_subcommand("report", "HTML page with SVG plots from `simulate --out DIR`");
  cmd->add_option("DIR", *dir, "the directory simulate --out wrote")->required();
  cmd->callback(
      [dir, &run] { run = [dir] { return write_report(*dir, "accellm report", std::cout); }; });
}

}  // namespace accellm::cli
