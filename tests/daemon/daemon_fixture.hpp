// Helpers of the multi-process tests: child daemons of the accellm binary
// under test, a cluster file in a temporary folder, bounded waits.
#pragma once

#include "tests/support/temp_dir.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

extern char** environ;

namespace accellm::daemon::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// One child process running `accellm ARGS...`, its stdout and stderr in a file. The
/// destructor kills it if it still runs.
class child {
 public:
  child(const fs::path& log, std::vector<std::string> args, std::vector<std::string> env_extra = {})
      : log_(log) {
    std::vector<char*> argv;
    std::string bin = ACCELLM_BINARY;
    argv.push_back(bin.data());
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string_view{*e}.starts_with("ACCELLM_CLUSTER_TOKEN=")) continue;
      env.emplace_back(*e);
    }
    env.insert(env.end(), env_extra.begin(), env_extra.end());
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);  // stdout into the same log
    EXPECT_EQ(posix_spawn(&pid_, bin.c_str(), &fa, nullptr, argv.data(), envp.data()), 0);
    posix_spawn_file_actions_destroy(&fa);
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  ~child() {
    if (pid_ > 0 && !code_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  pid_t pid() const { return pid_; }

  /// Its exit code once it exited (within `limit`); -signal when killed;
  /// nullopt when it still runs after `limit`.
  std::optional<int> wait(std::chrono::milliseconds limit) {
    const auto give_up = std::chrono::steady_clock::now() + limit;
    while (!code_) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() > give_up) break;
      std::this_thread::sleep_for(10ms);
    }
    return code_;
  }

  /// SIGTERM, then its exit code (SIGKILL after 10 s).
  std::optional<int> stop() {
    if (code_) return code_;
    kill(pid_, SIGTERM);
    if (auto c = wait(10s)) return c;
    kill(pid_, SIGKILL);
    return wait(5s);
  }

  /// What it wrote to stderr so far.
  std::string log() const {
    std::ifstream in{log_};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  /// Whether its log shows `text` within `limit`: a line it writes after
  /// another process already saw the event (a join the coordinator counted).
  bool await_log(std::string_view text, std::chrono::milliseconds limit) const {
    const auto give_up = std::chrono::steady_clock::now() + limit;
    while (log().find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() > give_up) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  std::optional<int> code_;
};

/// A fresh temporary folder, removed at the end.
using accellm::testing::temp_dir;

/// A cluster file for live tests: cpu-tiny on loopback, ephemeral ports.
inline std::string local_cluster(const std::string& token, const std::string& policy = "accellm") {
  return "[cluster]\nmodel = \"cpu-tiny\"\ndevice = \"cpu\"\ntp = 1\ninstances = 4\n"
         "[batching]\nmax_batch_size = 64\n"
         "[coordinator]\nhost = \"127.0.0.1\"\nport = 0\nhttp_host = \"127.0.0.1\"\n"
         "http_port = 0\npolicy = \"" +
         policy +
         "\"\n"
         "[worker]\nhost = \"127.0.0.1\"\nkv_port = 0\n"
         "[security]\ntoken = \"" +
         token + "\"\n[log]\nlevel = \"info\"\n";
}

/// Reads a coordinator's ready file: CAF and HTTP ports (0, 0 on timeout).
inline std::pair<std::uint16_t, std::uint16_t> ready_ports(const fs::path& file, child& c) {
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < give_up) {
    std::ifstream in{file};
    unsigned a = 0, b = 0;
    if (in >> a >> b) return {static_cast<std::uint16_t>(a), static_cast<std::uint16_t>(b)};
    if (c.wait(0ms)) break;
    std::this_thread::sleep_for(20ms);
  }
  return {0, 0};
}

/// `accellm coordinator --config CONFIG` with a ready file in `dir`, and the
/// ports it listens on (0, 0 when it did not come up: see its log).
struct coordinator_child {
  std::unique_ptr<child> proc;
  std::uint16_t caf_port = 0, http_port = 0;
  /// Its CAF address, for --coordinator.
  std::string at() const { return "127.0.0.1:" + std::to_string(caf_port); }
};

inline coordinator_child start_coordinator(const fs::path& dir, const fs::path& config) {
  const fs::path ready = dir / "ready";
  coordinator_child c;
  c.proc = std::make_unique<child>(
      dir / "coordinator.log", std::vector<std::string>{"coordinator", "--config", config.string(),
                                                        "--ready-file", ready.string()});
  std::tie(c.caf_port, c.http_port) = ready_ports(ready, *c.proc);
  return c;
}

/// `accellm worker --coordinator AT --instance NAME --config CONFIG EXTRA...`,
/// its output in dir/NAME.log.
inline std::unique_ptr<child> start_worker(const fs::path& dir, const std::string& at,
                                           const std::string& name, const fs::path& config,
                                           std::vector<std::string> extra = {},
                                           std::vector<std::string> env = {}) {
  std::vector<std::string> args{"worker",   "--coordinator", at, "--instance", name,
                                "--config", config.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<child>(dir / (name + ".log"), std::move(args), std::move(env));
}

/// The instance count /health reports (-1 when it does not answer).
inline int health_instances(std::uint16_t http) {
  httplib::Client cli{"127.0.0.1", http};
  cli.set_connection_timeout(1, 0);
  auto res = cli.Get("/health");
  if (!res) return -1;
  const auto at = res->body.find("\"instances\":");
  return at == std::string::npos ? -1 : std::stoi(res->body.substr(at + 12));
}

/// Waits until /health counts `n` instances (false after `limit`).
inline bool await_instances(std::uint16_t http, int n, std::chrono::milliseconds limit) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < give_up) {
    if (health_instances(http) == n) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

}  // namespace accellm::daemon::test
