// The bound on incoming BASP frames (transport.hpp, "Message size").
//
// CAF 0.17 reads a BASP header, then asks its socket for exactly the payload
// length the header announces (up to 4 GiB - 1), allocating that buffer before
// a byte of it has arrived; it has no setting to refuse a large frame. Every
// header passes through caf::io::basp::instance::handle(execution_unit*,
// new_data_msg&, header&, bool), which libcaf_io's BASP broker calls through
// the PLT. The definition below interposes on it (the binaries that link this
// library export it, because libcaf_io defines the same symbol): it calls
// CAF's own function, and when that asks for a payload over the bound it
// answers malformed_basp_message instead, on which the broker cleans up and
// closes the connection before any payload buffer exists. Nothing else
// changes.
//
// The bound is handshake_frame_limit for a connection whose peer has not
// completed CAF's handshake (it is not in the routing table yet), and the
// actor system's "accellm.max-message-bytes" (set by apply()) after it.
#include "actors/transport.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/execution_unit.hpp>
#include <caf/io/basp/connection_state.hpp>
#include <caf/io/basp/header.hpp>
#include <caf/io/basp/instance.hpp>
#include <caf/io/system_messages.hpp>
#include <caf/settings.hpp>
#include <dlfcn.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>

namespace accellm::actors {
namespace {

using caf::io::basp::connection_state;

#define ACCELLM_BASP_HANDLE \
  "_ZN3caf2io4basp8instance6handleEPNS_14execution_unitERNS0_12new_data_msgERNS1_6headerEb"

using handle_fn = connection_state (*)(caf::io::basp::instance*, caf::execution_unit*,
                                       caf::io::new_data_msg&, caf::io::basp::header&, bool);

handle_fn caf_handle() {
  static const auto next = reinterpret_cast<handle_fn>(dlsym(RTLD_NEXT, ACCELLM_BASP_HANDLE));
  return next;
}

std::atomic<std::uint64_t> refused{0};

std::mutex report_mutex;
std::function<void(const std::string&)> report;  // guarded by report_mutex

std::uint64_t configured_limit(caf::io::basp::instance& basp) {
  const caf::actor_system_config& cfg = basp.config();
  // One lookup per system and thread: each middleman runs its BASP broker
  // on a thread of its own.
  thread_local const caf::actor_system_config* cached_for = nullptr;
  thread_local std::uint64_t cached = 0;
  if (cached_for != &cfg) {
    const auto v = caf::get_or(cfg, max_message_bytes_key, caf::config_value::integer{0});
    cached = v > 0 ? static_cast<std::uint64_t>(v) : transport_options{}.max_message_bytes;
    cached_for = &cfg;
  }
  return cached;
}

void refuse(const caf::io::basp::header& hdr, std::uint64_t limit, bool handshaken) {
  refused.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock{report_mutex};
  if (!report) return;
  report("closing a connection: a BASP frame (" + to_string(hdr.operation) + ") announces " +
         std::to_string(hdr.payload_len) + " bytes, over the limit of " + std::to_string(limit) +
         (handshaken ? " (network.max_message_mib)" : " before the handshake"));
}

}  // namespace

namespace detail {

// Interposes on CAF's instance::handle (a member function: `basp` is `this`).
connection_state bounded_basp_handle(caf::io::basp::instance* basp, caf::execution_unit* ctx,
                                     caf::io::new_data_msg& dm, caf::io::basp::header& hdr,
                                     bool is_payload) __asm__(ACCELLM_BASP_HANDLE);

connection_state bounded_basp_handle(caf::io::basp::instance* basp, caf::execution_unit* ctx,
                                     caf::io::new_data_msg& dm, caf::io::basp::header& hdr,
                                     bool is_payload) {
  const connection_state next = caf_handle()(basp, ctx, dm, hdr, is_payload);
  if (next != caf::io::basp::await_payload) return next;
  const bool handshaken = static_cast<bool>(basp->tbl().lookup_direct(dm.handle));
  const std::uint64_t limit = handshaken ? configured_limit(*basp) : handshake_frame_limit;
  if (hdr.payload_len <= limit) return next;
  refuse(hdr, limit, handshaken);
  return caf::io::basp::malformed_basp_message;
}

bool basp_frame_limit_active() noexcept {
  // Active when CAF's function was found behind ours and the dynamic linker
  // binds the symbol to ours (the binary exports it).
  return caf_handle() != nullptr &&
         dlsym(RTLD_DEFAULT, ACCELLM_BASP_HANDLE) == reinterpret_cast<void*>(&bounded_basp_handle);
}

}  // namespace detail

std::uint64_t oversized_frames() noexcept {
  return refused.load(std::memory_order_relaxed);
}

void on_oversized_frame(std::function<void(const std::string&)> log) {
  std::lock_guard lock{report_mutex};
  report = std::move(log);
}

}  // namespace accellm::actors
