#include "messages/detail/checker.hpp"

#include <utility>

namespace accellm::messages::detail {

std::string checker::path(std::string_view field) const {
  std::string p = where_;
  if (!field.empty()) {
    p += '.';
    p += field;
  }
  return p;
}

checker& checker::set(errc code, std::string_view field, std::string what) {
  if (failed_) return *this;
  failed_ = true;
  code_ = code;
  message_ = path(field) + ": " + what;
  return *this;
}

checker& checker::check(bool ok, std::string_view field, std::uint64_t value,
                        std::string_view rule) {
  if (ok || failed_) return *this;
  return set(errc::out_of_range, field, std::to_string(value) + " (" + std::string{rule} + ")");
}

checker& checker::check_signed(bool ok, std::string_view field, std::int64_t value,
                               std::string_view rule) {
  if (ok || failed_) return *this;
  return set(errc::out_of_range, field, std::to_string(value) + " (" + std::string{rule} + ")");
}

checker& checker::request(request_id v, std::string_view field) {
  return check(v != 0, field, v, "a request id is never 0");
}

checker& checker::instance(instance_id v, std::string_view field) {
  return check(v != no_instance, field, v, "an instance is required");
}

checker& checker::not_self(instance_id other, instance_id self, std::string_view field) {
  return check(other == no_instance || other != self, field, other,
               "must differ from the instance itself");
}

checker& checker::limit(std::size_t size, std::size_t max, std::string_view field) {
  if (size <= max || failed_) return *this;
  return set(errc::too_large, field,
             std::to_string(size) + " entries (limit " + std::to_string(max) + ")");
}

checker& checker::tokens(const std::vector<token_id>& v, std::size_t max, std::string_view field,
                         token_id min) {
  limit(v.size(), max, field);
  if (failed_) return *this;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] < min) {
      std::string f{field};
      f += '[' + std::to_string(i) + ']';
      return check_signed(false, f, v[i],
                          min == 0 ? "token ids are >= 0" : "token ids are >= -1 (no token)");
    }
  }
  return *this;
}

checker& checker::empty_or_len(std::size_t size, std::uint64_t len, std::string_view field) {
  if (size == 0 || size == len || failed_) return *this;
  return set(errc::out_of_range, field,
             std::to_string(size) + " entries (must be empty or " + std::to_string(len) + ")");
}

checker& checker::required(const std::string& s, std::string_view field) {
  if (!s.empty() || failed_) return *this;
  return set(errc::out_of_range, field, "empty (required)");
}

checker& checker::text(const std::string& s, std::size_t max, std::string_view field) {
  if (s.size() <= max || failed_) return *this;
  return set(errc::too_large, field,
             std::to_string(s.size()) + " bytes (limit " + std::to_string(max) + ")");
}

checker& checker::merge(status s) {
  if (s.ok() || failed_) return *this;
  failed_ = true;
  code_ = s.err().code();
  message_ = s.err().message();
  return *this;
}

status checker::done() && {
  if (failed_) return error{code_, std::move(message_)};
  return {};
}

}  // namespace accellm::messages::detail
