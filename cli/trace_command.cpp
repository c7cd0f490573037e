#include "cli/trace_command.hpp"

#include "tracing/merge.hpp"
#include "tracing/perfetto.hpp"
#include "tracing/summary.hpp"

#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace accellm::cli {
namespace {

struct trace_flags {
  std::vector<std::string> logs;
  bool salvage = false;
  std::string format = "perfetto";
  std::string out;
  std::size_t top = 10;
  request_id request = 0;
  bool no_spans = false;
};

int fail_with(const char* who, const error& e) {
  std::cerr << who << ": " << e.message() << "\n";
  return e.code() == errc::io_failure ? 1 : 2;
}

/// The merged logs; on failure prints the error and sets `code`.
std::unique_ptr<tracing::merged> open(const char* who, const trace_flags& f, int& code) {
  auto m = tracing::load(f.logs, {.salvage = f.salvage});
  if (!m) {
    code = fail_with(who, m.err());
    return nullptr;
  }
  for (const auto& w : m->warnings) std::cerr << who << ": warning: " << w << "\n";
  return std::make_unique<tracing::merged>(std::move(*m));
}

void print_offsets(const tracing::merged& m, std::ostream& out) {
  for (const auto& l : m.logs) {
    out << "  " << l.path << ": node " << l.node << ", " << l.events << " events, offset "
        << (l.offset_ns >= 0 ? "+" : "") << l.offset_ns << " ns (" << l.basis << ")"
        << (l.salvaged ? ", salvaged" : "") << "\n";
  }
}

int run_export(const trace_flags& f) {
  const char* who = "accellm trace export";
  if (f.format != "perfetto") {
    std::cerr << who << ": --format '" << f.format << "': only perfetto is supported\n";
    return 2;
  }
  int code = 0;
  auto m = open(who, f, code);
  if (!m) return code;
  auto doc = tracing::perfetto_json(*m);
  auto text = doc.dump();
  std::ofstream out{f.out, std::ios::binary | std::ios::trunc};
  out << text;
  out.close();
  if (!out) {
    std::cerr << who << ": cannot write '" << f.out << "'\n";
    return 1;
  }
  std::cout << "perfetto: " << f.out << " (" << doc["traceEvents"].size() << " trace events from "
            << m->events.size() << " events of " << m->logs.size() << " log"
            << (m->logs.size() == 1 ? "" : "s") << ", " << text.size()
            << " bytes); open it in ui.perfetto.dev or chrome://tracing\n";
  print_offsets(*m, std::cout);
  return 0;
}

int run_summary(const trace_flags& f) {
  int code = 0;
  auto m = open("accellm trace summary", f, code);
  if (!m) return code;
  tracing::print_summary(*m, tracing::summarize(*m, f.top), std::cout);
  return 0;
}

int run_follow(const trace_flags& f) {
  const char* who = "accellm trace follow";
  int code = 0;
  auto m = open(who, f, code);
  if (!m) return code;
  auto spans = f.no_spans ? tracing::with_spans::no : tracing::with_spans::yes;
  auto st = tracing::follow(*m, f.request, spans, std::cout);
  if (!st) return fail_with(who, st.err());
  if (m->logs.size() > 1) {
    std::cout << "merged from:\n";
    print_offsets(*m, std::cout);
  }
  return 0;
}

CLI::App* add_logs(CLI::App* cmd, trace_flags& f) {
  cmd->add_option("LOG", f.logs,
                  "trace logs written by --trace (one run: simulate's, or every "
                  "daemon's)")
      ->required();
  cmd->add_flag("--salvage", f.salvage,
                "read a log whose last frame is torn (a killed process) up to that frame");
  return cmd;
}

}  // namespace

void add_trace_command(CLI::App& app, std::function<int()>& run) {
  auto f = std::make_shared<trace_flags>();
  CLI::App* trace = app.add_subcommand("trace", "merge, export and read message traces (--trace)");
  trace->require_subcommand(1);

  auto* exp =
      add_logs(trace->add_subcommand("export", "Chrome trace JSON for ui.perfetto.dev"), *f);
  exp->add_option("--format", f->format, "output format (perfetto)")->capture_default_str();
  exp->add_option("-o,--out", f->out, "the JSON file to write")->required();
  exp->callback([f, &run] { run = [f] { return run_export(*f); }; });

  auto* sum = add_logs(
      trace->add_subcommand("summary", "message counts and bytes, the slowest requests"), *f);
  sum->add_option("--top", f->top, "how many of the slowest requests to list")
      ->capture_default_str();
  sum->callback([f, &run] { run = [f] { return run_summary(*f); }; });

  auto* fol = add_logs(trace->add_subcommand("follow", "one request's story, event by event"), *f);
  fol->add_option("--request", f->request, "the request id")->required();
  fol->add_flag("--no-spans", f->no_spans, "leave out the iterations of the instances");
  fol->callback([f, &run] { run = [f] { return run_follow(*f); }; });
}

}  // namespace accellm::cli
