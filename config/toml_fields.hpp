// toml_fields: typed, checked reads of the keys of one TOML table, with error
// messages that name the file, the line and the full key path. Internal to
// accellm_config (toml++ is a private dependency; do not include this from a
// public header).
//
//   toml_fields f{*root.get_as<toml::table>("cluster"), "cluster", "h100.toml"};
//   if (auto ok = f.only({"name", "tp"}); !ok) return ok.err();
//   if (auto ok = f.get("tp", cfg.tp, 1); !ok) return ok.err();
//
// Reads leave `out` untouched when the key is absent, so callers preload
// defaults. Every error is errc::config.
//
// Thread contract: a view of a table it does not own; use on one thread while
// the table lives.
#pragma once

#include "common/result.hpp"

#include <toml++/toml.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace accellm::config::detail {

/// The whole file at `path`; errc::io_failure naming it when it is missing,
/// a directory or unreadable.
result<std::string> read_text(const std::filesystem::path& path);

/// Parses TOML text; a syntax error becomes errc::config
/// "source:line:column: TOML syntax error: ...".
result<toml::table> parse_toml(std::string_view text, std::string_view source);

/// "file:line: " for a node with a known line, "file: " otherwise.
std::string where(std::string_view source, const toml::node* node);

/// The toml++ name of a node's type ("string", "integer", "floating-point", ...).
std::string_view type_name(const toml::node& node) noexcept;

class toml_fields {
 public:
  /// `path` is the table's key path ("policy.vllm"; empty for the root),
  /// `source` the file name used in messages. Both must outlive this.
  toml_fields(const toml::table& table, std::string_view path, std::string_view source)
      : table_(table), path_(path), source_(source) {}

  /// Fails on the first key not in `known` ("unknown key" or "unknown table").
  status only(std::initializer_list<std::string_view> known) const;

  /// Whether the table has `key` at all (for a default that depends on
  /// other keys).
  bool has(std::string_view key) const { return table_.contains(key); }

  /// Integer in [min, 2^32 - 1].
  status get(std::string_view key, std::uint32_t& out, std::uint32_t min) const;
  /// Finite number >= 0; integers are accepted.
  status get(std::string_view key, double& out) const;
  status get(std::string_view key, std::string& out) const;
  status get(std::string_view key, bool& out) const;
  /// Array of integers, each in [min, 2^32 - 1].
  status get(std::string_view key, std::vector<std::uint32_t>& out, std::uint32_t min) const;

  /// The sub-table at `key`: nullptr when absent, an error when `key` holds
  /// something else.
  result<const toml::table*> table(std::string_view key) const;

  /// "file:line: 'path.key' <what>", the line being that of `key` when present.
  error fail_at(std::string_view key, std::string_view what) const;
  /// As fail_at() for element `index` of the array at `key`: "'path.key[index]' <what>".
  error fail_at(std::string_view key, std::size_t index, std::string_view what) const;

  /// "path.key".
  std::string full(std::string_view key) const;

 private:
  error fail_node(const toml::node* node, std::string_view name, std::string_view what) const;
  error wrong_type(std::string_view name, const toml::node& node, std::string_view want) const;
  result<std::uint32_t> to_u32(std::string_view name, const toml::node& node,
                               std::uint32_t min) const;

  const toml::table& table_;
  std::string_view path_;
  std::string_view source_;
};

}  // namespace accellm::config::detail
