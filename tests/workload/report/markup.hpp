// markup: checks on generated SVG and HTML text shared by the report tests.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace accellm::report::testing {

/// "" when every element of `text` is closed in order (<a>..</a> or <a/>),
/// else a description of the first problem. Skips <!DOCTYPE> and comments.
inline std::string unbalanced_tags(std::string_view text) {
  std::vector<std::string> open;
  for (std::size_t pos = text.find('<'); pos != std::string_view::npos;
       pos = text.find('<', pos + 1)) {
    const std::size_t end = text.find('>', pos);
    if (end == std::string_view::npos) return "unterminated tag at " + std::to_string(pos);
    const std::string_view tag = text.substr(pos + 1, end - pos - 1);
    if (tag.starts_with('!')) continue;
    const bool closing = tag.starts_with('/');
    const bool self_closing = tag.ends_with('/');
    const std::string_view body = closing ? tag.substr(1) : tag;
    const std::string name{body.substr(0, body.find_first_of(" \n/"))};
    if (self_closing) continue;
    if (!closing) {
      open.push_back(name);
    } else if (open.empty() || open.back() != name) {
      return "</" + name + "> at " + std::to_string(pos) + " closes " +
             (open.empty() ? std::string{"nothing"} : "<" + open.back() + ">");
    } else {
      open.pop_back();
    }
  }
  return open.empty() ? "" : "<" + open.back() + "> is never closed";
}

/// How often `needle` occurs in `text`.
inline std::size_t count(std::string_view text, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t p = text.find(needle); p != std::string_view::npos;
       p = text.find(needle, p + 1)) {
    ++n;
  }
  return n;
}

}  // namespace accellm::report::testing
