// accellm::error and accellm::result<T>: errors as values.
//
// Every fallible call in accellm returns a result<T> (or status, which is
// result<void>). An error carries one code from accellm::errc and a message
// that names the problem ("execute.items[3].phase: 7 is out of range"), so
// whoever prints it needs no context. Exceptions are not used for logic; code
// that calls a throwing library (Cap'n Proto, toml++) catches at that boundary
// and returns an error.
//
// This header depends on nothing but the standard library (C++17, since
// CUDA sources include it) so that device/ and
// messages/ (which know nothing of CAF) can use it; actors/caf_error.hpp turns
// an accellm::error into a caf::error where it crosses an actor boundary.
//
// Thread contract: value types; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace accellm {

/// The one error-code enumeration of accellm.
enum class errc : std::uint8_t {
  invalid_argument = 1,  ///< a caller passed a value outside the contract
  truncated,             ///< input ended before a complete value
  misaligned,            ///< input is not a whole number of 8-byte words
  wrong_type,            ///< a message of another type than expected
  too_large,             ///< input over a configured size limit
  out_of_range,          ///< a field holds a value outside its domain
  malformed,             ///< input that does not parse
  not_found,             ///< a name or id that is not known
  out_of_memory,         ///< a KV pool or device allocation is exhausted
  unsupported,           ///< valid request this build or backend cannot serve
  device_failure,        ///< a device (CUDA, ...) reported an error
  io_failure,            ///< reading or writing a file or socket failed
  config,                ///< a configuration file or flag is wrong
  in_use,                ///< a name or id that something live already holds
  internal,              ///< a broken invariant: a bug in accellm
};

/// Stable lower-case name of a code, e.g. "out_of_range".
constexpr std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::truncated:
      return "truncated";
    case errc::misaligned:
      return "misaligned";
    case errc::wrong_type:
      return "wrong_type";
    case errc::too_large:
      return "too_large";
    case errc::out_of_range:
      return "out_of_range";
    case errc::malformed:
      return "malformed";
    case errc::not_found:
      return "not_found";
    case errc::out_of_memory:
      return "out_of_memory";
    case errc::unsupported:
      return "unsupported";
    case errc::device_failure:
      return "device_failure";
    case errc::io_failure:
      return "io_failure";
    case errc::config:
      return "config";
    case errc::in_use:
      return "in_use";
    case errc::internal:
      return "internal";
  }
  return "unknown";
}

/// An error code plus a message naming the problem.
class error {
 public:
  error(errc code, std::string message) : code_(code), message_(std::move(message)) {}

  errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  /// "code: message", for logs and command-line output.
  std::string what() const {
    std::string out{to_string(code_)};
    out += ": ";
    out += message_;
    return out;
  }

  /// Prefixes the message with where the error happened ("decode: ...").
  error& context(std::string_view where) {
    message_.insert(0, std::string{where} + ": ");
    return *this;
  }

  // Spelled out (not defaulted) so this header stays C++17 for nvcc.
  friend bool operator==(const error& a, const error& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }
  friend bool operator!=(const error& a, const error& b) { return !(a == b); }

 private:
  errc code_;
  std::string message_;
};

/// Either a T or an error. Accessing the wrong alternative is a bug and
/// terminates (std::get throws std::bad_variant_access, which is not caught).
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  result(error e) : v_(std::in_place_index<1>, std::move(e)) {}

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const error& err() const& { return std::get<1>(v_); }
  error&& err() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, error> v_;
};

/// Success, or an error.
template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error e) : err_(std::move(e)), failed_(true) {}

  bool ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return ok(); }
  const error& err() const& { return err_; }
  error&& err() && { return std::move(err_); }

 private:
  error err_{errc::internal, {}};
  bool failed_ = false;
};

using status = result<void>;

/// Shorthand for `return fail(errc::out_of_range, "...")`.
inline error fail(errc code, std::string message) {
  return error{code, std::move(message)};
}

}  // namespace accellm

// Early return of a failed status or result<T> from a function that itself
// returns a status or result<U>:
//   ACCELLM_TRY(upload(x));                    // passes the error on
//   ACCELLM_TRY_ASSIGN(buf, alloc<float>(n));  // ... or moves the value into buf
#define ACCELLM_TRY(expr)                                     \
  do {                                                        \
    if (auto st_ = (expr); !st_) return std::move(st_).err(); \
  } while (false)

#define ACCELLM_TRY_ASSIGN(dst, expr)    \
  do {                                   \
    auto t_ = (expr);                    \
    if (!t_) return std::move(t_).err(); \
    dst = std::move(*t_);                \
  } while (false)
