// Synthetic workloads shaped like the Azure LLM inference traces of 2023.
//
// generate() draws a trace: arrival times from a Poisson process or a renewal
// process with gamma gaps (burstier or smoother than Poisson at the same
// rate), and prompt/output lengths from the "code" or "conversation" shape.
// We do not ship the Azure CSVs; each length is drawn from a lognormal whose
// parameters were fitted so that, after clamping to the table's [min, max]
// and rounding, its mean and standard deviation match the table (stats_of()).
//
// Determinism: the same options give the same trace on every platform (no
// std::*_distribution, see workload/sampling.hpp). Arrivals and lengths use
// separate sub-streams of the seed, so changing rate, duration, cv or the
// arrival process leaves the lengths of the i-th request unchanged: two
// loads over the same requests differ only in timing.
//
// Thread contract: pure functions; safe from any thread.
#pragma once

#include "common/result.hpp"
#include "workload/request_spec.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace accellm::workload {

/// Which Azure 2023 trace the lengths follow.
enum class shape : std::uint8_t { code, conversation };

/// How inter-arrival gaps are drawn.
enum class arrival_process : std::uint8_t {
  poisson,  ///< exponential gaps (CV 1)
  gamma,    ///< gamma gaps with generator_options::cv
};

/// Moments and bounds of one length distribution, in tokens.
struct length_stats {
  double mean, stddev;
  std::uint32_t min, max;
};

/// Prompt and output length statistics of one shape.
struct shape_stats {
  length_stats prompt, output;
};

/// The Azure LLM inference trace 2023 statistics (from the docstrings of
/// Splitwise's generate_trace.py):
///   code:         prompt 2048 / 1973 / 3 / 7437,  output 28 / 60 / 6 / 1899
///   conversation: prompt 1155 / 1109 / 2 / 14050, output 211 / 163 / 7 / 1000
/// (mean / stddev / min / max).
const shape_stats& stats_of(shape s) noexcept;

/// "code", "conv" or "conversation"; invalid_argument otherwise, listing the
/// accepted names.
result<shape> parse_shape(std::string_view name);

/// "code" or "conv".
std::string_view to_string(shape s) noexcept;

/// "poisson" or "gamma"; invalid_argument otherwise, listing the accepted names.
result<arrival_process> parse_arrival_process(std::string_view name);

/// "poisson" or "gamma".
std::string_view to_string(arrival_process a) noexcept;

/// What to generate. Every field is checked by generate().
struct generator_options {
  shape kind = shape::conversation;
  double rate = 1.0;                    ///< mean requests per second, finite and > 0
  std::chrono::nanoseconds duration{};  ///< arrivals fall in [0, duration); > 0
  arrival_process arrivals = arrival_process::poisson;
  double cv = 1.0;  ///< coefficient of variation of the gaps (gamma only); finite and > 0
  std::uint64_t seed = 1;
  std::size_t max_requests = 0;  ///< stop after this many; 0 = no cap
};

/// generate() refuses to build a trace of more requests than this.
inline constexpr std::size_t max_generated_requests = 50'000'000;

/// Draws a trace. The first arrival is one gap after t = 0 (a stationary
/// process observed from 0), so a short duration may give an empty trace.
/// Gamma gaps have shape k = 1 / cv^2 and scale 1 / (rate k); with cv == 1
/// they are drawn exactly as Poisson gaps, so both give the same trace.
/// Errors: invalid_argument naming the bad field ("generator_options.rate:
/// ..."); too_large when the run would exceed max_generated_requests
/// (about rate * duration requests) and max_requests does not cap it.
result<trace> generate(const generator_options& options);

}  // namespace accellm::workload
