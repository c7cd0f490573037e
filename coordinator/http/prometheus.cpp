#include "coordinator/http/prometheus.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace accellm::coordinator::http {
namespace {

void append_labels(std::string& out, std::initializer_list<label> ls, const label* extra) {
  if (ls.size() == 0 && extra == nullptr) return;
  out += '{';
  bool first = true;
  auto one = [&out, &first](const label& l) {
    if (!first) out += ',';
    first = false;
    out += l.name;
    out += "=\"";
    out += escape_label_value(l.value);
    out += '"';
  };
  for (const label& l : ls) one(l);
  if (extra != nullptr) one(*extra);
  out += '}';
}

void append_sample(std::string& out, std::string_view name, std::string_view suffix,
                   std::initializer_list<label> ls, const label* extra, double value) {
  out += name;
  out += suffix;
  append_labels(out, ls, extra);
  out += ' ';
  out += format_value(value);
  out += '\n';
}

// HELP text escapes backslash and newline only (the format's rule).
std::string escape_help(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

histogram::histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void histogram::observe(double x) {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), x);
  ++counts_[static_cast<std::size_t>(it - bounds_.begin())];
  sum_ += x;
  ++count_;
}

void prometheus_writer::add_counter(std::string_view name, std::string_view help, labels ls,
                                    double value) {
  append_sample(family_of(name, "counter", help).lines, name, "", ls, nullptr, value);
}

void prometheus_writer::add_gauge(std::string_view name, std::string_view help, labels ls,
                                  double value) {
  append_sample(family_of(name, "gauge", help).lines, name, "", ls, nullptr, value);
}

void prometheus_writer::add_histogram(std::string_view name, std::string_view help, labels ls,
                                      const histogram& h) {
  std::string& out = family_of(name, "histogram", help).lines;
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= h.bounds().size(); ++i) {
    cumulative += h.counts()[i];
    const std::string le =
        i < h.bounds().size() ? format_value(h.bounds()[i]) : std::string{"+Inf"};
    const label extra{"le", le};
    append_sample(out, name, "_bucket", ls, &extra, static_cast<double>(cumulative));
  }
  append_sample(out, name, "_sum", ls, nullptr, h.sum());
  append_sample(out, name, "_count", ls, nullptr, static_cast<double>(h.count()));
}

std::string prometheus_writer::str() const {
  std::string out;
  for (const std::string& name : order_) {
    const family& f = families_.find(name)->second;
    out += "# HELP " + name + " " + escape_help(f.help) + "\n";
    out += "# TYPE " + name + " " + f.type + "\n";
    out += f.lines;
  }
  return out;
}

prometheus_writer::family& prometheus_writer::family_of(std::string_view name,
                                                        std::string_view type,
                                                        std::string_view help) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    order_.emplace_back(name);
    it = families_.emplace(std::string{name}, family{std::string{type}, std::string{help}, {}})
             .first;
  }
  return it->second;
}

std::string escape_label_value(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  // Whole numbers (counts, bytes) print as integers: "1000000", not "1e+06".
  constexpr double exact = 9007199254740992.0;  // 2^53
  if (std::trunc(v) == v && std::fabs(v) < exact) {
    const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(v));
    return {buf, r.ptr};
  }
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return {buf, r.ptr};
}

}  // namespace accellm::coordinator::http
