// Random variates drawn from std::mt19937_64 alone, so that a seed names the
// same workload on every platform.
//
// The standard fixes the output of std::mt19937_64 but not of its
// distributions: std::normal_distribution and friends give different numbers
// for the same engine under libstdc++ and libc++. The generators therefore use
// only the functions below: a 53-bit uniform, the inverse-CDF exponential,
// Box-Muller for the normal and Marsaglia-Tsang for the gamma. Each consumes a
// fixed or an accept/reject number of engine outputs, documented per function,
// and never caches state between calls.
//
// Thread contract: pure functions of the engine passed in; an engine must not
// be shared between threads without a lock.
#pragma once

#include <cstdint>
#include <random>

namespace accellm::workload {

/// An engine for sub-stream `stream` of `seed`. Seed and stream are mixed
/// through splitmix64, so nearby seeds (1, 2, 3) and the streams of one seed
/// give unrelated sequences.
std::mt19937_64 seeded_engine(std::uint64_t seed, std::uint64_t stream) noexcept;

/// Uniform in [0, 1), from the top 53 bits of one engine output.
double uniform01(std::mt19937_64& rng) noexcept;

/// Exponential with the given mean (> 0), by inversion: one engine output.
double exponential(std::mt19937_64& rng, double mean) noexcept;

/// Standard normal by Box-Muller; uses two engine outputs and returns the
/// cosine branch only (no cached second value, so calls are independent).
double standard_normal(std::mt19937_64& rng) noexcept;

/// Gamma with shape k > 0 and the given scale (mean k * scale), by
/// Marsaglia-Tsang; for k < 1 it draws Gamma(k + 1) and multiplies by
/// U^(1/k). The accept/reject loop is bounded (acceptance is above 95% per
/// try, so the bound is never reached in practice).
double gamma(std::mt19937_64& rng, double shape, double scale) noexcept;

}  // namespace accellm::workload
