// GoogleTest printers for workload types, so a failed EXPECT_EQ on traces
// shows the fields instead of bytes.
#pragma once

#include "workload/request_spec.hpp"

#include <ostream>

namespace accellm::workload {

inline void PrintTo(const request_spec& r, std::ostream* os) {
  *os << "{id " << r.id << ", arrival " << r.arrival.count() << " ns, prompt " << r.prompt_tokens
      << ", output " << r.output_tokens << "}";
}

}  // namespace accellm::workload
