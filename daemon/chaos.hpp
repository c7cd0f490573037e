// chaos: `accellm chaos ACTION TARGET [--at T]`, failure injection into a
// running cluster (docs/resilience.md "Failure injection"). TARGET is a
// process named in the cluster's manifest (config/manifest.hpp): the one
// `accellm up` writes, or the netns test script's.
//
//   kill       SIGKILL: the process dies; its connections close at once
//   stop       SIGSTOP: it hangs; the coordinator notices after its
//              [network] timeout_ms + heartbeat_ms
//   resume     SIGCONT: a stopped worker finds itself cut off and joins again
//              as a new instance (fencing)
//   partition  its network namespace's link goes down: nothing in or out
//   heal       the link comes back up, and any `slow` shaping is removed
//   slow       netem delay (--delay-ms, default 100) on its link, or, with
//              --rate (e.g. 1mbit), a token bucket capping its bandwidth
//
// partition, heal and slow need a process in its own network namespace (the
// netns script's hosts) and root; `ip` and `tc` (iproute2) do the work. `--at
// T` acts T seconds after the cluster started (as `simulate --fault
// KIND:I@T`), waiting until then; a time already past is an error.
//
// Exit codes as process.hpp: 0 done, 1 the action failed (the process is
// gone, ip or tc refused), 2 bad input (unknown action or target, a bad
// manifest, --at in the past, a network action on a process without a
// namespace).
//
// Thread contract: main()'s.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace accellm::daemon {

struct chaos_flags {
  std::string action;              ///< kill, stop, resume, partition, heal, slow
  std::string target;              ///< a process name in the manifest
  std::filesystem::path manifest;  ///< empty: config::default_manifest(cluster)
  std::string cluster;             ///< the cluster's name, when no manifest is given
  std::optional<double> at;        ///< seconds after the cluster started
  std::optional<double> delay_ms;  ///< slow: netem delay
  std::string rate;                ///< slow: tbf rate ("1mbit") instead of a delay
};

int run_chaos(const chaos_flags& flags);

}  // namespace accellm::daemon
