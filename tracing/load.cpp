// tracing::load (declared in merge.hpp): read the logs, then merge them.
#include "tracing/merge.hpp"

#include <filesystem>
#include <system_error>
#include <utility>

namespace accellm::tracing {

result<merged> load(const std::vector<std::string>& paths, const actors::trace_read_options& opts) {
  std::vector<actors::trace_log> logs;
  for (const auto& path : paths) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return fail(errc::not_found, path + ": no such file");
    auto log = actors::read_trace_log(path, opts);
    if (!log) return std::move(log).err();
    logs.push_back(std::move(*log));
  }
  return merge(std::move(logs));
}

}  // namespace accellm::tracing
