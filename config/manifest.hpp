// manifest: the processes of a running cluster, for `accellm chaos` to act
// on. `accellm up` writes one while its cluster runs (and removes it at the
// end); tests/integration/netns_cluster.sh writes one for its hosts. TOML:
//
//   cluster = "local"            # the cluster file's [cluster] name
//   started_unix_s = 1764150000.25
//   [[process]]
//   name = "w1"                  # what chaos calls it: coordinator, w0, w1, ...
//   pid = 4242                   # the daemon's PID (in the caller's PID namespace)
//   netns = "accellm77-w1"       # optional: its network namespace ...
//   dev = "eth0"                 # ... and its link there (partition, slow)
//
// Errors are errc::config naming the file, the line and the key; a missing
// or unreadable file is errc::io_failure.
//
// Thread contract: plain functions and values.
#pragma once

#include "common/result.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace accellm::config {

struct manifest_process {
  std::string name;
  std::uint32_t pid = 0;
  std::string netns;  ///< "" when it shares the caller's network
  std::string dev;    ///< its link in netns ("" without one)
  friend bool operator==(const manifest_process&, const manifest_process&) = default;
};

struct cluster_manifest {
  std::string cluster;
  double started_unix_s = 0;
  std::vector<manifest_process> processes;
  friend bool operator==(const cluster_manifest&, const cluster_manifest&) = default;
};

/// Reads and checks a manifest: names unique and non-empty, pids >= 1,
/// netns and dev both given or both absent, both made of [A-Za-z0-9_.-].
result<cluster_manifest> load_manifest(const std::filesystem::path& path);

/// Parses manifest text (`source` names it in errors).
result<cluster_manifest> parse_manifest(std::string_view text, std::string_view source);

/// The TOML text of `m` (what load_manifest reads back).
std::string to_toml(const cluster_manifest& m);

/// Where `accellm up` writes the manifest of cluster `name` by default, and
/// `accellm chaos --cluster NAME` looks: $TMPDIR/accellm-NAME.manifest.toml,
/// each character of NAME outside [A-Za-z0-9_.-] as '_'.
std::filesystem::path default_manifest(std::string_view name);

}  // namespace accellm::config
