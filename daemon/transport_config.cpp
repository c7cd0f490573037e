#include "daemon/transport_config.hpp"

namespace accellm::daemon {

actors::transport_options transport_of(const config::daemon_config& d) {
  actors::transport_options t;
  t.heartbeat_interval = std::chrono::milliseconds{d.heartbeat_ms};
  t.connection_timeout = std::chrono::milliseconds{d.timeout_ms};
  t.max_message_bytes = std::uint64_t{d.max_message_mib} << 20;
  t.tls = d.tls;
  t.certificate = d.certificate;
  t.key = d.key;
  t.ca_file = d.ca;
  return t;
}

}  // namespace accellm::daemon
