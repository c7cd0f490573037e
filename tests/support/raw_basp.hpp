// raw_basp: a TCP client that speaks just enough BASP to send one header,
// for tests of the bound on incoming frames (actors/transport.hpp).
//
// Thread contract: a free function; blocks the calling thread for at most
// `limit`.
#pragma once

#include <arpa/inet.h>
#include <caf/binary_serializer.hpp>
#include <caf/io/basp/header.hpp>
#include <caf/io/basp/message_type.hpp>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <vector>

namespace accellm::testing {

/// Connects to 127.0.0.1:port, sends one valid BASP header of kind `op`
/// announcing `payload_len` bytes and nothing else, and waits up to `limit`
/// for the peer to close the connection: whether it did. (A server that
/// takes the header at its word waits for the payload instead.)
inline bool closes_after_header(std::uint16_t port, caf::io::basp::message_type op,
                                std::uint32_t payload_len,
                                std::chrono::milliseconds limit = std::chrono::seconds{3}) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ADD_FAILURE() << "cannot connect to port " << port;
    if (fd >= 0) close(fd);
    return false;
  }
  // Valid for its kind: only messages name a receiver, handshakes carry
  // operation data.
  const bool message = op == caf::io::basp::message_type::direct_message;
  caf::io::basp::header hdr{op, 0, payload_len, message ? 0u : 1u, 0, message ? 42u : 0u};
  std::vector<char> bytes;
  caf::binary_serializer sink{nullptr, bytes};
  if (auto err = sink(hdr);
      err || bytes.size() != caf::io::basp::header_size ||
      send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
    ADD_FAILURE() << "cannot send the header";
    close(fd);
    return false;
  }
  // The server's handshake arrives first; then end of stream, or nothing.
  bool closed = false;
  const auto give_up = std::chrono::steady_clock::now() + limit;
  char buf[4096];
  while (!closed && std::chrono::steady_clock::now() < give_up) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    closed = recv(fd, buf, sizeof(buf), 0) <= 0;
  }
  close(fd);
  return closed;
}

}  // namespace accellm::testing
