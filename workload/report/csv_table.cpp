#include "workload/report/csv_table.hpp"

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

namespace accellm::report {
namespace {

// Splits one line into fields; quoted fields may hold commas and "".
result<std::vector<std::string>> split(std::string_view line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c != '"') {
        fields.back() += c;
      } else if (i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else {
        quoted = false;
      }
    } else if (c == '"' && fields.back().empty()) {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  if (quoted) return fail(errc::malformed, "unterminated quoted field");
  return fields;
}

}  // namespace

result<std::size_t> csv_table::column(std::string_view name) const {
  for (std::size_t i = 0; i < header_.size(); ++i) {
    if (header_[i] == name) return i;
  }
  return fail(errc::malformed,
              path_.string() + ":1: no column " + std::string{name} + " in the header");
}

error csv_table::bad_field(std::size_t row, std::size_t column, std::string_view why) const {
  return fail(errc::malformed, path_.string() + ":" + std::to_string(lines_[row]) + ": column " +
                                   header_[column] + ": '" + rows_[row][column] + "' " +
                                   std::string{why});
}

result<double> csv_table::number(std::size_t row, std::size_t column) const {
  const std::string& s = rows_[row][column];
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(v)) {
    return bad_field(row, column, "is not a number");
  }
  return v;
}

result<std::optional<double>> csv_table::maybe_number(std::size_t row, std::size_t column) const {
  if (rows_[row][column].empty()) return std::optional<double>{};
  auto v = number(row, column);
  if (!v) return std::move(v).err();
  return std::optional<double>{*v};
}

void csv_table::add_row(std::vector<std::string> fields, std::size_t line) {
  rows_.push_back(std::move(fields));
  lines_.push_back(line);
}

result<csv_table> read_csv(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return fail(errc::not_found, path.string() + ": no such file");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (!in) return fail(errc::io_failure, path.string() + ": cannot read");
  const std::string text = buf.str();

  std::optional<csv_table> table;
  std::size_t header_fields = 0;
  std::size_t line_no = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line{text.data() + pos, eol - pos};
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string where = path.string() + ":" + std::to_string(line_no);
    auto fields = split(line);
    if (!fields) return fail(errc::malformed, where + ": " + fields.err().message());
    if (!table) {
      header_fields = fields->size();
      table.emplace(path, std::move(*fields));
      continue;
    }
    if (line.empty() && pos >= text.size()) break;  // a trailing blank line
    if (fields->size() != header_fields) {
      return fail(errc::malformed, where + ": " + std::to_string(fields->size()) +
                                       " fields, the header has " + std::to_string(header_fields));
    }
    table->add_row(std::move(*fields), line_no);
  }
  if (!table) return fail(errc::malformed, path.string() + ":1: empty file, no header");
  return std::move(*table);
}

}  // namespace accellm::report
