#include "config/toml_fields.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>

namespace accellm::config::detail {
namespace {

constexpr std::int64_t u32_max = std::numeric_limits<std::uint32_t>::max();

std::string join(std::initializer_list<std::string_view> names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

}  // namespace

std::string where(std::string_view source, const toml::node* node) {
  std::string out{source};
  if (node != nullptr && node->source().begin.line > 0) {
    out += ':' + std::to_string(node->source().begin.line);
  }
  return out + ": ";
}

std::string_view type_name(const toml::node& node) noexcept {
  switch (node.type()) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "floating-point";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
  }
  return "unknown";
}

std::string toml_fields::full(std::string_view key) const {
  std::string out{path_};
  if (!out.empty()) out += '.';
  return out += key;
}

error toml_fields::fail_node(const toml::node* node, std::string_view name,
                             std::string_view what) const {
  return fail(errc::config,
              where(source_, node) + "'" + std::string{name} + "' " + std::string{what});
}

error toml_fields::fail_at(std::string_view key, std::string_view what) const {
  return fail_node(table_.get(key), full(key), what);
}

error toml_fields::fail_at(std::string_view key, std::size_t index, std::string_view what) const {
  const toml::node* node = table_.get(key);
  const toml::array* a = node != nullptr ? node->as_array() : nullptr;
  if (a != nullptr && index < a->size()) node = a->get(index);
  return fail_node(node, full(key) + '[' + std::to_string(index) + ']', what);
}

error toml_fields::wrong_type(std::string_view name, const toml::node& node,
                              std::string_view want) const {
  return fail_node(&node, name,
                   "must be " + std::string{want} + ", got " + std::string{type_name(node)});
}

status toml_fields::only(std::initializer_list<std::string_view> known) const {
  for (auto&& [key, node] : table_) {
    if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
    // The key's own position is the better line; toml++ may leave it unset.
    const bool key_line = key.source().begin.line > 0;
    std::string msg =
        key_line ? std::string{source_} + ':' + std::to_string(key.source().begin.line) + ": "
                 : where(source_, &node);
    msg += node.is_table() ? "unknown table '" : "unknown key '";
    msg += full(key.str()) + "' (known: " + join(known) + ")";
    return fail(errc::config, std::move(msg));
  }
  return {};
}

result<std::uint32_t> toml_fields::to_u32(std::string_view name, const toml::node& node,
                                          std::uint32_t min) const {
  const auto* v = node.as_integer();
  if (v == nullptr) return wrong_type(name, node, "an integer");
  const std::int64_t i = v->get();
  if (i < std::int64_t{min} || i > u32_max) {
    return fail_node(&node, name,
                     "must be between " + std::to_string(min) + " and " + std::to_string(u32_max) +
                         ", got " + std::to_string(i));
  }
  return static_cast<std::uint32_t>(i);
}

status toml_fields::get(std::string_view key, std::uint32_t& out, std::uint32_t min) const {
  const toml::node* node = table_.get(key);
  if (node == nullptr) return {};
  auto v = to_u32(full(key), *node, min);
  if (!v) return std::move(v).err();
  out = *v;
  return {};
}

status toml_fields::get(std::string_view key, double& out) const {
  const toml::node* node = table_.get(key);
  if (node == nullptr) return {};
  double v = 0;
  if (const auto* f = node->as_floating_point()) {
    v = f->get();
  } else if (const auto* i = node->as_integer()) {
    v = static_cast<double>(i->get());
  } else {
    return wrong_type(full(key), *node, "a number");
  }
  if (!std::isfinite(v) || v < 0)
    return fail_at(key, "must be a finite number >= 0, got " + number(v));
  out = v;
  return {};
}

status toml_fields::get(std::string_view key, std::string& out) const {
  const toml::node* node = table_.get(key);
  if (node == nullptr) return {};
  const auto* s = node->as_string();
  if (s == nullptr) return wrong_type(full(key), *node, "a string");
  out = s->get();
  return {};
}

status toml_fields::get(std::string_view key, bool& out) const {
  const toml::node* node = table_.get(key);
  if (node == nullptr) return {};
  const auto* b = node->as_boolean();
  if (b == nullptr) return wrong_type(full(key), *node, "a boolean");
  out = b->get();
  return {};
}

status toml_fields::get(std::string_view key, std::vector<std::uint32_t>& out,
                        std::uint32_t min) const {
  const toml::node* node = table_.get(key);
  if (node == nullptr) return {};
  const auto* a = node->as_array();
  if (a == nullptr) return wrong_type(full(key), *node, "an array of integers");
  std::vector<std::uint32_t> values;
  values.reserve(a->size());
  for (std::size_t i = 0; i < a->size(); ++i) {
    auto v = to_u32(full(key) + '[' + std::to_string(i) + ']', *a->get(i), min);
    if (!v) return std::move(v).err();
    values.push_back(*v);
  }
  out = std::move(values);
  return {};
}

result<const toml::table*> toml_fields::table(std::string_view key) const {
  const toml::node* node = table_.get(key);
  if (node == nullptr) return static_cast<const toml::table*>(nullptr);
  if (const auto* t = node->as_table()) return t;
  return wrong_type(full(key), *node, "a table");
}

// toml++ reports syntax errors by exception or, when built without them, in a
// parse_result; either way they become one error value here.
result<toml::table> parse_toml(std::string_view text, std::string_view source) {
  auto syntax = [source](const toml::parse_error& e) {
    const auto& at = e.source().begin;
    return fail(errc::config, std::string{source} + ':' + std::to_string(at.line) + ':' +
                                  std::to_string(at.column) +
                                  ": TOML syntax error: " + std::string{e.description()});
  };
#if TOML_EXCEPTIONS
  try {
    return toml::parse(text, std::string_view{source});
  } catch (const toml::parse_error& e) {
    return syntax(e);
  }
#else
  toml::parse_result r = toml::parse(text, std::string_view{source});
  if (!r) return syntax(r.error());
  return std::move(r).table();
#endif
}

result<std::string> read_text(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return fail(errc::io_failure, "cannot read " + path.string() + ": no such file");
  }
  if (std::filesystem::is_directory(path, ec)) {
    return fail(errc::io_failure, "cannot read " + path.string() + ": it is a directory");
  }
  std::ifstream in{path, std::ios::binary};
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) return fail(errc::io_failure, "cannot read " + path.string());
  return text.str();
}

}  // namespace accellm::config::detail
