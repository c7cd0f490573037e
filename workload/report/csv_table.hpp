// A strict reader for the CSV files `accellm simulate` writes, for reports.
//
// The whole file is read at once; every row must have as many fields as the
// header. Fields may be quoted ("a,b", with "" for a quote), as
// metrics::detail::csv_field writes them. Errors name the file, the line and
// the column, so a user can open the file at the spot:
//   "results/accellm-requests.csv:12: column ttft_ms: 'x' is not a number".
//
// Thread contract: value types and pure functions; read_csv only reads.
#pragma once

#include "common/result.hpp"

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace accellm::report {

/// A parsed CSV file: its header and rows of text fields.
class csv_table {
 public:
  csv_table(std::filesystem::path path, std::vector<std::string> header)
      : path_(std::move(path)), header_(std::move(header)) {}

  const std::filesystem::path& path() const noexcept { return path_; }
  std::size_t rows() const noexcept { return rows_.size(); }

  /// Index of the column called `name`. Errors: errc::malformed naming the
  /// file and the missing column.
  result<std::size_t> column(std::string_view name) const;

  /// The text at (row, column).
  const std::string& text(std::size_t row, std::size_t column) const { return rows_[row][column]; }

  /// The finite number at (row, column). Errors: errc::malformed naming file,
  /// line and column, for an empty or non-numeric field.
  result<double> number(std::size_t row, std::size_t column) const;

  /// As number(), but an empty field is nullopt (a value that does not exist).
  result<std::optional<double>> maybe_number(std::size_t row, std::size_t column) const;

  /// Appends a row read from source line `line` (1-based); used by read_csv.
  void add_row(std::vector<std::string> fields, std::size_t line);

 private:
  error bad_field(std::size_t row, std::size_t column, std::string_view why) const;

  std::filesystem::path path_;
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<std::size_t> lines_;
};

/// Reads `path`. Errors: errc::not_found when it does not exist,
/// errc::io_failure when it cannot be read, errc::malformed (with the line)
/// for an empty file, an unterminated quote or a row whose field count
/// differs from the header's.
result<csv_table> read_csv(const std::filesystem::path& path);

}  // namespace accellm::report
