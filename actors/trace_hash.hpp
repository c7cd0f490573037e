// trace_hash: an order-sensitive 64-bit FNV-1a digest of a run's events.
// Text is folded in byte by byte (FNV-1a); an integer as one 64-bit word
// (xor, multiply by the FNV prime, then fold the high half into the low half
// so that every bit reaches later steps): the simulator hashes a few integers
// per token, and eight byte steps each were a visible share of its time.
//
// Two runs of the simulator with the same seed must produce the same digest;
// tests compare digests instead of whole traces. Every event is folded in
// field by field with a separator, so ("ab","c") and ("a","bc") differ.
//
// Thread contract: a value type; one owner at a time.
#pragma once

#include <cstdint>
#include <string_view>

namespace accellm::actors {

class trace_hash {
 public:
  static constexpr std::uint64_t offset_basis = 14695981039346656037ull;
  static constexpr std::uint64_t prime = 1099511628211ull;

  /// Folds in an integer as one word.
  trace_hash& add(std::uint64_t value) noexcept {
    h_ ^= value;
    h_ *= prime;
    h_ ^= h_ >> 32;
    return *this;
  }

  /// Folds in a string and a terminating separator.
  trace_hash& add(std::string_view text) noexcept {
    for (char c : text) byte(static_cast<std::uint8_t>(c));
    byte(0xff);
    return *this;
  }

  std::uint64_t value() const noexcept { return h_; }
  /// Events folded in so far (counts calls to event()).
  std::uint64_t events() const noexcept { return events_; }

  /// Marks the end of one event; call after its fields.
  trace_hash& event() noexcept {
    ++events_;
    byte(0xfe);
    return *this;
  }

 private:
  void byte(std::uint8_t b) noexcept {
    h_ ^= b;
    h_ *= prime;
  }

  std::uint64_t h_ = offset_basis;
  std::uint64_t events_ = 0;
};

}  // namespace accellm::actors
