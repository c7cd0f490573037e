// transport_config: the node-to-node transport a cluster file asks for.
//
// Thread contract: a pure function.
#pragma once

#include "actors/transport.hpp"
#include "config/cluster_config.hpp"

namespace accellm::daemon {

/// Heartbeat, timeout and message bound from [network], TLS files from [security].
actors::transport_options transport_of(const config::daemon_config& d);

}  // namespace accellm::daemon
