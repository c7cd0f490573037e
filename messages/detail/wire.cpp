#include "messages/detail/wire.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

namespace accellm::messages::detail {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the segment table is read as little-endian integers");

// Cap'n Proto's FlatArrayMessageReader refuses 512 segments or more.
constexpr std::uint64_t max_segments = 511;

std::uint32_t read_u32(std::span<const std::uint8_t> bytes, std::size_t index) {
  std::uint32_t v = 0;
  std::memcpy(&v, bytes.data() + 4 * index, sizeof v);
  return v;
}

// The framing of a flat array: word count of the segment table plus all
// segments must equal the input; Cap'n Proto itself ignores trailing words.
status check_framing(std::string_view name, std::span<const std::uint8_t> bytes) {
  const std::uint64_t words = bytes.size() / 8;
  const std::uint64_t segments = std::uint64_t{read_u32(bytes, 0)} + 1;
  const std::string n{name};
  if (segments > max_segments) {
    return fail(errc::malformed, n + ": " + std::to_string(segments) + " segments (limit " +
                                     std::to_string(max_segments) + ")");
  }
  const std::uint64_t table_words = (segments + 2) / 2;
  if (table_words > words) {
    return fail(errc::truncated, n + ": segment table needs " + std::to_string(table_words) +
                                     " words, message has " + std::to_string(words));
  }
  std::uint64_t total = table_words;
  for (std::uint64_t i = 0; i < segments; ++i) total += read_u32(bytes, 1 + i);
  if (total > words) {
    return fail(errc::truncated, n + ": segments need " + std::to_string(total) +
                                     " words, message has " + std::to_string(words));
  }
  if (total < words) {
    return fail(errc::malformed,
                n + ": " + std::to_string(8 * (words - total)) + " trailing bytes");
  }
  return {};
}

}  // namespace

std::string describe_type(std::uint16_t raw) {
  const auto t = to_msg_type(raw);
  return std::string{t ? to_string(*t) : "unknown"} + " (" + std::to_string(raw) + ")";
}

status check_envelope(msg_type expected, blob_view b, const decode_limits& limits) {
  const auto raw = static_cast<std::uint16_t>(expected);
  if (b.type != raw) {
    return fail(errc::wrong_type,
                "expected " + describe_type(raw) + ", got " + describe_type(b.type));
  }
  const std::string name{to_string(expected)};
  const std::size_t size = b.bytes.size();
  if (size == 0) return fail(errc::truncated, name + ": empty message");
  const std::size_t max = limits.max_bytes(expected);
  if (size > max) {
    return fail(errc::too_large,
                name + ": " + std::to_string(size) + " bytes (limit " + std::to_string(max) + ")");
  }
  if (size % 8 != 0) {
    return fail(errc::misaligned,
                name + ": " + std::to_string(size) + " bytes is not a whole number of words");
  }
  return check_framing(name, b.bytes);
}

aligned_words::aligned_words(std::span<const std::uint8_t> bytes) {
  const std::size_t n = bytes.size() / sizeof(capnp::word);
  const void* p = bytes.data();
  if (reinterpret_cast<std::uintptr_t>(p) % alignof(std::uint64_t) != 0) {
    copy_.resize(n);
    std::memcpy(copy_.data(), bytes.data(), n * sizeof(capnp::word));
    p = copy_.data();
  }
  words_ = kj::arrayPtr(static_cast<const capnp::word*>(p), n);
}

capnp::ReaderOptions reader_options(std::size_t max_bytes) noexcept {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = max_bytes / sizeof(capnp::word) + 1;
  return options;
}

scratch_segment::scratch_segment() : words_(new capnp::word[words]) {
  std::memset(static_cast<void*>(words_.get()), 0, words * sizeof(capnp::word));
}

scratch_segment& scratch_segment::local() {
  thread_local scratch_segment s;
  return s;
}

void scratch_segment::release(std::size_t used_words) noexcept {
  std::memset(static_cast<void*>(words_.get()), 0,
              std::min(used_words, words) * sizeof(capnp::word));
}

capnp_blob to_blob(msg_type t, capnp::MessageBuilder& builder) {
  const auto segments = builder.getSegmentsForOutput();
  const std::size_t table_words = (segments.size() + 2) / 2;
  std::size_t words = table_words;
  for (const auto& s : segments) words += s.size();

  std::vector<std::uint32_t> table(2 * table_words, 0);
  table[0] = static_cast<std::uint32_t>(segments.size() - 1);
  for (std::size_t i = 0; i < segments.size(); ++i) {
    table[i + 1] = static_cast<std::uint32_t>(segments[i].size());
  }
  capnp_blob blob;
  blob.type = static_cast<std::uint16_t>(t);
  blob.bytes.reserve(words * sizeof(capnp::word));
  const auto* tp = reinterpret_cast<const std::uint8_t*>(table.data());
  blob.bytes.insert(blob.bytes.end(), tp, tp + table.size() * sizeof(std::uint32_t));
  for (const auto& s : segments) {
    const auto* sp = reinterpret_cast<const std::uint8_t*>(s.begin());
    blob.bytes.insert(blob.bytes.end(), sp, sp + s.size() * sizeof(capnp::word));
  }
  return blob;
}

error malformed(msg_type t, const kj::Exception& e) {
  return fail(errc::malformed,
              std::string{to_string(t)} + ": " + std::string{e.getDescription().cStr()});
}

void field_reader::set(errc code, std::string_view field, std::string what) {
  if (failed_) return;
  failed_ = true;
  code_ = code;
  message_ = std::string{msg_} + "." + std::string{field} + ": " + what;
}

bool field_reader::within(std::size_t n, std::size_t max, std::string_view field,
                          std::string_view unit) {
  if (failed_) return false;
  if (n <= max) return true;
  set(errc::too_large, field,
      std::to_string(n) + " " + std::string{unit} + " (limit " + std::to_string(max) + ")");
  return false;
}

void field_reader::tokens(capnp::List<std::int32_t>::Reader in, std::size_t max,
                          std::string_view field, std::vector<token_id>& out) {
  if (!within(in.size(), max, field, "entries")) return;
  out.reserve(in.size());
  for (const std::int32_t t : in) out.push_back(t);
}

void field_reader::ids(capnp::List<std::uint64_t>::Reader in, std::size_t max,
                       std::string_view field, std::vector<request_id>& out) {
  if (!within(in.size(), max, field, "entries")) return;
  out.reserve(in.size());
  for (const std::uint64_t id : in) out.push_back(id);
}

void field_reader::text(capnp::Text::Reader in, std::string_view field, std::string& out) {
  if (!within(in.size(), limits_.max_text_bytes, field, "bytes")) return;
  out.assign(in.cStr(), in.size());
}

void field_reader::data(capnp::Data::Reader in, std::vector<std::byte>& out) {
  if (failed_) return;
  const auto* p = reinterpret_cast<const std::byte*>(in.begin());
  out.assign(p, p + in.size());
}

void field_reader::data(capnp::Data::Reader in, shared_bytes& out) {
  std::vector<std::byte> copy;
  data(in, copy);
  if (!failed_) out = std::move(copy);
}

capnp::Text::Reader text(const std::string& s) noexcept {
  return {s.c_str(), s.size()};
}

kj::ArrayPtr<const kj::byte> bytes(std::span<const std::byte> v) noexcept {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(v.data()), v.size());
}

}  // namespace accellm::messages::detail
