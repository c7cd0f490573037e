// messages::detail::checker: collects the first rule a message breaks, with
// the field path, for the validate() overloads. Private to messages/.
//
//   detail::checker c{"execute"};
//   c.instance(m.instance, "instance").limit(m.items.size(), l.max_execute_items, "items");
//   return c.done();
//
// Messages are only formatted on failure. Value type; one thread.
#pragma once

#include "common/result.hpp"
#include "common/types.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace accellm::messages::detail {

class checker {
 public:
  /// `where` prefixes every path: "execute" or "execute.items[3]".
  explicit checker(std::string where) : where_(std::move(where)) {}

  /// out_of_range "where.field: value (rule)" unless `ok`.
  checker& check(bool ok, std::string_view field, std::uint64_t value, std::string_view rule);
  /// The same for signed values.
  checker& check_signed(bool ok, std::string_view field, std::int64_t value, std::string_view rule);
  /// Request ids must not be 0.
  checker& request(request_id v, std::string_view field);
  /// A required instance must not be no_instance.
  checker& instance(instance_id v, std::string_view field);
  /// An optional instance (`other`'s partner) must differ from `self`.
  checker& not_self(instance_id other, instance_id self, std::string_view field);
  /// too_large when `size` exceeds `max`.
  checker& limit(std::size_t size, std::size_t max, std::string_view field);
  /// Size limit, then every token >= `min` (no_token allowed when min is -1).
  checker& tokens(const std::vector<token_id>& v, std::size_t max, std::string_view field,
                  token_id min = 0);
  /// A list that is empty (simulated devices) or holds exactly `len` entries.
  checker& empty_or_len(std::size_t size, std::uint64_t len, std::string_view field);
  /// A text that must not be empty.
  checker& required(const std::string& s, std::string_view field);
  /// Text size limit.
  checker& text(const std::string& s, std::size_t max, std::string_view field);
  /// Records an error found elsewhere (e.g. by a nested checker).
  checker& merge(status s);

  bool ok() const noexcept { return !failed_; }
  /// The first error, or success.
  status done() &&;

 private:
  std::string path(std::string_view field) const;
  checker& set(errc code, std::string_view field, std::string what);

  // The first error as parts (see field_reader in wire.hpp for why).
  std::string where_;
  bool failed_ = false;
  errc code_ = errc::internal;
  std::string message_;
};

}  // namespace accellm::messages::detail
