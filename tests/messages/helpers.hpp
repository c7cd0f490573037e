// Shared helpers of the messages/ tests.
#pragma once

#include "messages/codec.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <variant>

namespace accellm::messages::testing {

/// The library's example of message type T (fully populated, valid).
template <class T>
T example() {
  for (auto& m : example_messages()) {
    if (auto* p = std::get_if<T>(&m)) return *p;
  }
  ADD_FAILURE() << "no example of " << to_string(T::type);
  return T{};
}

/// Seed for randomised tests: $ACCELLM_TEST_SEED, else `fallback`. Tests
/// print it with SCOPED_TRACE so that a failure can be replayed.
inline std::uint64_t test_seed(std::uint64_t fallback) {
  if (const char* s = std::getenv("ACCELLM_TEST_SEED")) return std::strtoull(s, nullptr, 0);
  return fallback;
}

/// "code: message" of a failed result, or "ok".
template <class R>
std::string describe(const R& r) {
  return r.ok() ? std::string{"ok"} : r.err().what();
}

}  // namespace accellm::messages::testing
