// messages::detail: the Cap'n Proto side of the codec, shared by the
// per-group codec files. Private to messages/ (it includes the generated
// schema header, which only this library sees).
//
// encode_with<Wire>(m, hint, fill): builds a message with `fill` and
// serialises it into a capnp_blob with one copy.
// decode_with<Wire>(blob, limits, read): envelope checks, aligned reader,
// `read` (enum and list-size checks while copying), then validate(); turns
// kj::Exception into errc::malformed.
//
// Thread contract: free functions; safe from any thread.
#pragma once

#include "messages/codec.hpp"

#include <accellm.capnp.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace accellm::messages::detail {

/// "Execute (8)", or "unknown (999)".
std::string describe_type(std::uint16_t raw);

/// Type, emptiness, size limit, alignment and segment-table checks.
status check_envelope(msg_type expected, blob_view b, const decode_limits& limits);

/// The input as Cap'n Proto words; copies it when the pointer is unaligned.
class aligned_words {
 public:
  explicit aligned_words(std::span<const std::uint8_t> bytes);
  kj::ArrayPtr<const capnp::word> words() const noexcept { return words_; }

 private:
  std::vector<std::uint64_t> copy_;
  kj::ArrayPtr<const capnp::word> words_;
};

/// Traversal limit = the type's size limit in words.
capnp::ReaderOptions reader_options(std::size_t max_bytes) noexcept;

/// Serialises `builder` as a flat array (segment table + segments).
capnp_blob to_blob(msg_type t, capnp::MessageBuilder& builder);

/// errc::malformed naming the type and kj's description.
error malformed(msg_type t, const kj::Exception& e);

/// Copies fields out of a Cap'n Proto reader, checking list and text sizes
/// before copying and enum values against their enumeration; after the first
/// error it skips the rest and finish() returns that error.
class field_reader {
 public:
  field_reader(std::string_view msg, const decode_limits& limits) : msg_(msg), limits_(limits) {}

  /// False (and too_large) when a list of `n` entries exceeds `max`.
  bool within(std::size_t n, std::size_t max, std::string_view field,
              std::string_view unit = "entries");
  /// True after the first error (then later calls do nothing).
  bool failed() const noexcept { return failed_; }

  void tokens(capnp::List<std::int32_t>::Reader in, std::size_t max, std::string_view field,
              std::vector<token_id>& out);
  void ids(capnp::List<std::uint64_t>::Reader in, std::size_t max, std::string_view field,
           std::vector<request_id>& out);
  /// Any list of 64-bit values (times, sizes).
  void values(capnp::List<std::uint64_t>::Reader in, std::size_t max, std::string_view field,
              std::vector<std::uint64_t>& out) {
    ids(in, max, field, out);
  }
  void text(capnp::Text::Reader in, std::string_view field, std::string& out);
  /// KV bytes: bounded by the message size limit only.
  void data(capnp::Data::Reader in, std::vector<std::byte>& out);
  void data(capnp::Data::Reader in, shared_bytes& out);

  template <class E, class W>
  void enumeration(W raw, E last, std::string_view field, E& out) {
    const auto v = static_cast<std::uint16_t>(raw);
    if (failed_) return;
    if (v > static_cast<std::uint16_t>(last)) {
      set(errc::out_of_range, field, std::to_string(v) + " (not a valid value)");
      return;
    }
    out = static_cast<E>(v);
  }

  /// The message, or the first error.
  template <class T>
  result<T> finish(T m) && {
    if (failed_) return error{code_, std::move(message_)};
    return m;
  }

 private:
  void set(errc code, std::string_view field, std::string what);

  // The first error, kept as parts: GCC 12 with ASan warns (falsely) about
  // an uninitialised std::optional<error> when moved out.
  std::string_view msg_;
  const decode_limits& limits_;
  bool failed_ = false;
  errc code_ = errc::internal;
  std::string message_;
};

/// Writes a list or data only when non-empty (null pointer otherwise).
template <class SetFn>
void set_tokens(const std::vector<token_id>& v, SetFn set) {
  if (!v.empty()) set(kj::arrayPtr(v.data(), v.size()));
}
capnp::Text::Reader text(const std::string& s) noexcept;
kj::ArrayPtr<const kj::byte> bytes(std::span<const std::byte> v) noexcept;

/// Words for the first segment: enough for a typical message of this size.
constexpr std::size_t hint_words(std::size_t payload_bytes) noexcept {
  return 64 + (payload_bytes + 7) / 8;
}

/// A zeroed first segment for the messages of this thread that fit it (all
/// but those carrying KV bytes): building into it saves an allocation and
/// the zeroing of a fresh segment per message. release() zeroes what the
/// last message used, as Cap'n Proto requires of a first segment.
class scratch_segment {
 public:
  static constexpr std::size_t words = 8192;  // 64 KiB
  static scratch_segment& local();
  kj::ArrayPtr<capnp::word> get() noexcept { return {words_.get(), words}; }
  void release(std::size_t used_words) noexcept;

 private:
  scratch_segment();
  std::unique_ptr<capnp::word[]> words_;
};

/// Builds the message with `fill` and serialises it.
template <class Wire, class T>
capnp_blob encode_with(const T& m, std::size_t hint,
                       void (*fill)(typename Wire::Builder, const T&)) {
  try {
    if (hint <= scratch_segment::words) {
      scratch_segment& scratch = scratch_segment::local();
      std::size_t used = scratch_segment::words;  // all of it, should fill throw
      try {
        capnp::MallocMessageBuilder builder(scratch.get());
        fill(builder.initRoot<Wire>(), m);
        capnp_blob blob = to_blob(T::type, builder);
        used = builder.getSegmentsForOutput()[0].size();
        scratch.release(used);
        return blob;
      } catch (...) {
        scratch.release(used);
        throw;
      }
    }
    capnp::MallocMessageBuilder builder(static_cast<unsigned>(hint));
    fill(builder.initRoot<Wire>(), m);
    return to_blob(T::type, builder);
  } catch (const kj::Exception&) {
    // A list over Cap'n Proto's 2^29 - 1 element limit: documented as an
    // empty blob, which every receiver rejects.
    return capnp_blob{static_cast<std::uint16_t>(T::type), {}, {}};
  }
}

/// Checks the envelope, reads the root with `read` (any callable taking the
/// Wire reader and the limits), then validates.
template <class Wire, class T, class Read>
result<T> decode_using(blob_view b, const decode_limits& limits, Read&& read) {
  if (auto s = check_envelope(T::type, b, limits); !s) return std::move(s).err();
  try {
    aligned_words words{b.bytes};
    capnp::FlatArrayMessageReader reader{words.words(), reader_options(limits.max_bytes(T::type))};
    result<T> out = read(reader.getRoot<Wire>(), limits);
    if (!out) return out;
    if (auto s = messages::validate(*out, limits); !s) return std::move(s).err();
    return out;
  } catch (const kj::Exception& e) {
    return malformed(T::type, e);
  } catch (const std::bad_alloc&) {
    return fail(errc::out_of_memory, std::string{to_string(T::type)} + ": out of memory");
  }
}

/// decode_using with a plain reading function (T deduced from it).
template <class Wire, class T>
result<T> decode_with(blob_view b, const decode_limits& limits,
                      result<T> (*read)(typename Wire::Reader, const decode_limits&)) {
  return decode_using<Wire, T>(b, limits, read);
}

/// True when an enum value is one of the listed ones (senders may cast).
template <class E>
constexpr bool listed(E v, E last) noexcept {
  return static_cast<std::uint16_t>(v) <= static_cast<std::uint16_t>(last);
}

}  // namespace accellm::messages::detail
