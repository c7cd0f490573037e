// The profile tables shipped in device/profiles/*.csv, compiled into the
// library (device/CMakeLists.txt turns each file into a string constant at
// configure time), so that a binary needs no data files at run time.
//
// Immutable static data; safe from any thread.
#pragma once

#include <span>
#include <string_view>

namespace accellm::device::sim {

/// One shipped profile: its file name without ".csv" and the file's text.
struct embedded_profile {
  std::string_view name;  ///< e.g. "h100-splitwise2023"
  std::string_view csv;   ///< the CSV text, parse with parse_profile()
};

/// Every shipped profile, sorted by name.
std::span<const embedded_profile> embedded_profiles() noexcept;

/// The shipped profile called `name`, or nullptr.
const embedded_profile* find_embedded_profile(std::string_view name) noexcept;

}  // namespace accellm::device::sim
