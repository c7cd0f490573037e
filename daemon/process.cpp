#include "daemon/process.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <ctime>

namespace accellm::daemon {
namespace {

sigset_t stop_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

result<std::shared_ptr<spdlog::logger>> make_logger(std::string name, std::string_view level) {
  const auto lvl = spdlog::level::from_str(std::string{level});
  if (lvl == spdlog::level::off && level != "off") {
    return fail(errc::invalid_argument, "log level '" + std::string{level} +
                                            "' is not one of trace, debug, info, warn, error, off");
  }
  auto log = std::make_shared<spdlog::logger>(
      std::move(name), std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  log->set_level(lvl);
  log->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n] [%^%l%$] %v");
  log->flush_on(spdlog::level::info);
  return log;
}

void block_stop_signals() {
  const sigset_t set = stop_set();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int wait_for_stop(const std::atomic<bool>* give_up) {
  const sigset_t set = stop_set();
  const timespec tick{.tv_sec = 0, .tv_nsec = 200'000'000};
  for (;;) {
    const int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig > 0) return sig;
    if (give_up != nullptr && give_up->load()) return 0;
  }
}

int wait_for_signal(std::chrono::milliseconds limit) {
  const sigset_t set = stop_set();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(limit).count();
  const timespec wait{.tv_sec = ns / 1'000'000'000, .tv_nsec = ns % 1'000'000'000};
  const int sig = sigtimedwait(&set, nullptr, &wait);
  return sig > 0 ? sig : 0;
}

std::string cluster_token(const std::string& from_config) {
  const char* env = std::getenv("ACCELLM_CLUSTER_TOKEN");
  if (env != nullptr && *env != '\0') return env;
  return from_config;
}

result<std::unique_ptr<actors::tracer>> open_trace(const std::filesystem::path& file,
                                                   std::string node) {
  if (file.empty()) return std::unique_ptr<actors::tracer>{};
  // The actor clock of a daemon is the steady clock; main() reads it here.
  const actors::time_point now = caf::actor_clock::clock_type::now();
  return actors::tracer::open({.path = file.string(),
                               .node = std::move(node),
                               .clock = "steady",
                               .origin = {},
                               .opened = now,
                               .block_when_full = false,
                               .queue_limit = std::size_t{1} << 18});
}

bool close_trace(actors::tracer* t, spdlog::logger& log) {
  if (t == nullptr) return true;
  const auto ok = t->close("the daemon stopped");
  const auto n = t->totals();
  if (!ok) {
    log.error("{}", ok.err().what());
    return false;
  }
  log.info("trace: {} events ({} bytes) in {}{}", n.events, n.bytes, t->options().path,
           n.dropped > 0 ? " (" + std::to_string(n.dropped) + " dropped: the disk fell behind)"
                         : std::string{});
  return true;
}

}  // namespace accellm::daemon
