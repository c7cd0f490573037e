#include "daemon/chaos.hpp"

#include "daemon/process.hpp"

#include "config/manifest.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>
#include <vector>

extern char** environ;

namespace accellm::daemon {
namespace {

constexpr std::array<std::string_view, 6> actions{"kill",      "stop", "resume",
                                                  "partition", "heal", "slow"};

bool network_action(std::string_view a) {
  return a == "partition" || a == "heal" || a == "slow";
}

// Runs a tool (ip, tc) without a shell; its stderr is the error's text.
status run_tool(const std::vector<std::string>& args) {
  std::array<int, 2> pipe_fds{-1, -1};
  if (pipe2(pipe_fds.data(), O_CLOEXEC) != 0) {
    return fail(errc::io_failure, std::string{"pipe: "} + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions_;
  posix_spawn_file_actions_init(&actions_);
  posix_spawn_file_actions_adddup2(&actions_, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_adddup2(&actions_, pipe_fds[1], STDOUT_FILENO);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int e = posix_spawnp(&pid, argv[0], &actions_, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions_);
  close(pipe_fds[1]);
  std::string said;
  std::array<char, 512> buf{};
  for (ssize_t n; (n = read(pipe_fds[0], buf.data(), buf.size())) > 0;) {
    said.append(buf.data(), static_cast<std::size_t>(n));
  }
  close(pipe_fds[0]);
  std::string line;
  for (const auto& a : args) line += (line.empty() ? "" : " ") + a;
  if (e != 0) return fail(errc::io_failure, "cannot run '" + line + "': " + std::strerror(e));
  int st = 0;
  waitpid(pid, &st, 0);
  while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    return fail(errc::io_failure, "'" + line + "' failed: " + (said.empty() ? "no message" : said));
  }
  return {};
}

// The manifest the flags name; errors are exit_config.
result<config::cluster_manifest> manifest_of(const chaos_flags& f) {
  if (f.manifest.empty() && f.cluster.empty()) {
    return fail(errc::config,
                "which cluster? give --manifest FILE or --cluster NAME (of a cluster started by "
                "`accellm up`)");
  }
  const auto path = f.manifest.empty() ? config::default_manifest(f.cluster) : f.manifest;
  auto m = config::load_manifest(path);
  if (!m && f.manifest.empty() && m.err().code() == errc::io_failure) {
    return fail(errc::config, "no running cluster named '" + f.cluster + "' (" + m.err().what() +
                                  "; `accellm up` writes it while the cluster runs)");
  }
  return m;
}

result<config::manifest_process> target_of(const config::cluster_manifest& m,
                                           const std::string& name) {
  std::string known;
  for (const auto& p : m.processes) {
    if (p.name == name) return p;
    known += (known.empty() ? "" : ", ") + p.name;
  }
  return fail(errc::config,
              "no process named '" + name + "' in the cluster (it has " + known + ")");
}

// The process is still the daemon the manifest names (PIDs are reused).
status still_there(const config::manifest_process& p) {
  const std::string who = p.name + " (pid " + std::to_string(p.pid) + ")";
  if (kill(static_cast<pid_t>(p.pid), 0) != 0 && errno == ESRCH) {
    return fail(errc::io_failure, who + " is not running");
  }
  std::ifstream in{"/proc/" + std::to_string(p.pid) + "/cmdline", std::ios::binary};
  std::string argv0;
  if (!std::getline(in, argv0, '\0')) {
    return fail(errc::io_failure, "cannot tell whether " + who + " is an accellm daemon: /proc/" +
                                      std::to_string(p.pid) + "/cmdline is unreadable");
  }
  if (argv0.find("accellm") == std::string::npos) {
    return fail(errc::io_failure,
                who + " is now '" + argv0 + "', not an accellm daemon: the manifest is stale");
  }
  return {};
}

// Waits until `at` seconds after the cluster started.
status wait_until(const config::cluster_manifest& m, double at) {
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double wait = m.started_unix_s + at - now;
  if (wait < 0) {
    char msg[160];
    std::snprintf(msg, sizeof msg, "--at %g: the cluster started %.1f s ago; that time is past", at,
                  now - m.started_unix_s);
    return fail(errc::config, msg);
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(wait));
  return {};
}

// Does the action; what it did, as `chaos:` reports it.
result<std::string> act(const chaos_flags& f, const config::manifest_process& p) {
  const std::string who = p.name + " (pid " + std::to_string(p.pid) + ")";
  auto signal_it = [&](int sig, std::string done) -> result<std::string> {
    if (kill(static_cast<pid_t>(p.pid), sig) != 0) {
      return fail(errc::io_failure, "cannot signal " + who + ": " + std::strerror(errno));
    }
    return done;
  };
  if (f.action == "kill") return signal_it(SIGKILL, "killed " + who);
  if (f.action == "stop") return signal_it(SIGSTOP, "stopped " + who + " (SIGSTOP)");
  if (f.action == "resume") return signal_it(SIGCONT, "resumed " + who + " (SIGCONT)");
  const std::string link = who + ": " + p.netns + " " + p.dev;
  if (f.action == "partition") {
    ACCELLM_TRY(run_tool({"ip", "-n", p.netns, "link", "set", p.dev, "down"}));
    return "partitioned " + link + " is down";
  }
  if (f.action == "heal") {
    ACCELLM_TRY(run_tool({"ip", "-n", p.netns, "link", "set", p.dev, "up"}));
    // Removes a `slow` qdisc; without one the kernel's default stays (an error we ignore).
    (void)run_tool({"tc", "-n", p.netns, "qdisc", "del", "dev", p.dev, "root"});
    return "healed " + link + " is up, unshaped";
  }
  if (!f.rate.empty()) {
    ACCELLM_TRY(run_tool({"tc", "-n", p.netns, "qdisc", "replace", "dev", p.dev, "root", "tbf",
                          "rate", f.rate, "burst", "32kbit", "latency", "400ms"}));
    return "slowed " + link + " capped at " + f.rate;
  }
  char ms[32];
  std::snprintf(ms, sizeof ms, "%g", f.delay_ms.value_or(100.0));
  const std::string delay = std::string{ms} + "ms";
  auto s = run_tool(
      {"tc", "-n", p.netns, "qdisc", "replace", "dev", p.dev, "root", "netem", "delay", delay});
  if (!s && s.err().message().find("qdisc kind is unknown") != std::string::npos) {
    return fail(errc::io_failure,
                s.err().message() +
                    " (this kernel has no sch_netem; --rate RATE caps the bandwidth instead)");
  }
  if (!s) return std::move(s).err();
  return "slowed " + link + " delayed by " + std::string{ms} + " ms";
}

// Checks everything that needs no system call; "" when fine.
std::string bad_flags(const chaos_flags& f) {
  if (std::find(actions.begin(), actions.end(), f.action) == actions.end()) {
    return "unknown action '" + f.action + "' (known: kill, stop, resume, partition, heal, slow)";
  }
  if (f.at && !(std::isfinite(*f.at) && *f.at >= 0)) return "--at: must be seconds >= 0";
  if (f.action != "slow" && (f.delay_ms || !f.rate.empty())) {
    return "--delay-ms and --rate are for `slow` only";
  }
  if (f.delay_ms && !f.rate.empty()) return "slow: give --delay-ms or --rate, not both";
  if (f.delay_ms && !(std::isfinite(*f.delay_ms) && *f.delay_ms > 0 && *f.delay_ms <= 60000)) {
    return "--delay-ms: must be in (0, 60000]";
  }
  const bool rate_ok = std::all_of(f.rate.begin(), f.rate.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.';
  });
  if (!rate_ok) return "--rate: '" + f.rate + "' is not a rate such as 1mbit or 500kbit";
  return {};
}

}  // namespace

int run_chaos(const chaos_flags& f) {
  auto complain = [](const error& e) {
    std::cerr << "accellm chaos: " << e.what() << '\n';
    return e.code() == errc::config ? exit_config : exit_failure;
  };
  if (auto why = bad_flags(f); !why.empty()) return complain(fail(errc::config, why));
  auto m = manifest_of(f);
  if (!m) return complain(m.err());
  auto p = target_of(*m, f.target);
  if (!p) return complain(p.err());
  if (network_action(f.action) && p->netns.empty()) {
    return complain(fail(errc::config, f.action + " " + p->name +
                                           ": it has no network namespace of its own (a cluster "
                                           "on loopback, as `accellm up` starts); partition, heal "
                                           "and slow act on the netns script's hosts"));
  }
  if (f.at) {
    if (auto s = wait_until(*m, *f.at); !s) return complain(s.err());
  }
  if (!network_action(f.action)) {  // a namespace outlives its process; a PID does not
    if (auto s = still_there(*p); !s) return complain(s.err());
  }
  auto done = act(f, *p);
  if (!done) return complain(done.err());
  std::cout << "chaos: " << *done << std::endl;
  return exit_ok;
}

}  // namespace accellm::daemon
