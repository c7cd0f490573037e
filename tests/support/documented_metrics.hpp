// The metric names docs/operations.md promises: the first column of its
// metrics table ("| `accellm_...` | type | labels | meaning |"). Tests hold
// the code and the shipped dashboard to that list.
#pragma once

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

namespace accellm::test {

/// Names in the table of `source_dir`/docs/operations.md; empty when the
/// file cannot be read.
inline std::set<std::string> documented_metrics(const std::filesystem::path& source_dir) {
  std::ifstream in{source_dir / "docs" / "operations.md"};
  std::set<std::string> names;
  const std::string head = "| `accellm_";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(head, 0) != 0) continue;
    const auto end = line.find('`', 3);
    if (end != std::string::npos) names.insert(line.substr(3, end - 3));
  }
  return names;
}

}  // namespace accellm::test
