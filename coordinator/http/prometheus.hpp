// A small writer of the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/), and the
// histogram value type it renders.
//
// Samples may be added in any order: the writer groups them by family (metric
// name) and prints each family once, in the order families were first seen,
// under one `# HELP` and one `# TYPE` line. The first sample of a family fixes
// its type and help text; later ones only add lines. Label values are escaped
// (backslash, double quote, newline); metric and label names are the
// caller's constants and are not checked. Whole values below 2^53 print as
// integers ("1000000"), others in the shortest form that reads back exactly
// ("0.25", "1e-05"), infinities as "+Inf"/"-Inf", NaN as "NaN".
//
// A histogram family prints, per label set, cumulative `<name>_bucket{le=...}`
// lines ending with le="+Inf", then `<name>_sum` and `<name>_count`.
//
// Thread contract: value types without shared state; one thread at a time
// per object.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace accellm::coordinator::http {

/// A distribution over fixed buckets: counts of observations <= each bound.
class histogram {
 public:
  /// `bounds` are the upper bounds of the buckets, ascending and finite; an
  /// implicit +Inf bucket follows the last.
  explicit histogram(std::vector<double> bounds);

  /// Counts `x` in the first bucket whose bound is >= x (+Inf if none).
  void observe(double x);

  const std::vector<double>& bounds() const noexcept { return bounds_; }
  /// Observations per bucket, not cumulative; bounds().size() + 1 entries,
  /// the last for +Inf.
  const std::vector<std::uint64_t>& counts() const noexcept { return counts_; }
  double sum() const noexcept { return sum_; }
  std::uint64_t count() const noexcept { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

/// One label of a sample: name="value".
struct label {
  std::string_view name;
  std::string_view value;
};

/// Builds one exposition (see the top of this file).
class prometheus_writer {
 public:
  using labels = std::initializer_list<label>;

  /// A monotonically increasing value. By convention `name` ends in _total.
  void add_counter(std::string_view name, std::string_view help, labels ls, double value);
  /// A value that goes up and down.
  void add_gauge(std::string_view name, std::string_view help, labels ls, double value);
  /// A histogram under `name` (without _bucket/_sum/_count).
  void add_histogram(std::string_view name, std::string_view help, labels ls, const histogram& h);

  /// The exposition: every family, each line ending in '\n'.
  std::string str() const;

 private:
  struct family {
    std::string type;
    std::string help;
    std::string lines;
  };

  family& family_of(std::string_view name, std::string_view type, std::string_view help);

  std::vector<std::string> order_;  // family names, first seen first
  std::map<std::string, family, std::less<>> families_;
};

/// `s` escaped for a label value: \ -> \\, " -> \", newline -> \n.
std::string escape_label_value(std::string_view s);

/// `v` as the exposition format writes it.
std::string format_value(double v);

}  // namespace accellm::coordinator::http
