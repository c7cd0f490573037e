#include "workload/sampling.hpp"

#include <cmath>
#include <numbers>

namespace accellm::workload {
namespace {

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Uniform in (0, 1]: safe to take the logarithm of.
double uniform_open0(std::mt19937_64& rng) noexcept {
  return 1.0 - uniform01(rng);
}

// Marsaglia and Tsang (2000), "A simple method for generating gamma
// variables", for shape >= 1, unit scale.
double gamma_at_least_one(std::mt19937_64& rng, double shape) noexcept {
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  constexpr int max_tries = 1000;  // each try accepts with probability > 0.95
  for (int i = 0; i < max_tries; ++i) {
    const double x = standard_normal(rng);
    const double base = 1.0 + c * x;
    if (base <= 0.0) continue;
    const double v = base * base * base;
    const double u = uniform_open0(rng);
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
  return d;  // unreachable in practice (probability below 1e-1300)
}

}  // namespace

std::mt19937_64 seeded_engine(std::uint64_t seed, std::uint64_t stream) noexcept {
  std::uint64_t state = seed;
  const std::uint64_t a = splitmix64(state);
  state ^= stream * 0xD1B54A32D192ED03ULL;
  const std::uint64_t b = splitmix64(state);
  return std::mt19937_64{a ^ (b << 1 | b >> 63)};
}

double uniform01(std::mt19937_64& rng) noexcept {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

double exponential(std::mt19937_64& rng, double mean) noexcept {
  return -mean * std::log(uniform_open0(rng));
}

double standard_normal(std::mt19937_64& rng) noexcept {
  const double u1 = uniform_open0(rng);
  const double u2 = uniform01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double gamma(std::mt19937_64& rng, double shape, double scale) noexcept {
  if (shape >= 1.0) return scale * gamma_at_least_one(rng, shape);
  // Gamma(k) = Gamma(k + 1) * U^(1/k) (Marsaglia-Tsang, section 6).
  const double g = gamma_at_least_one(rng, shape + 1.0);
  return scale * g * std::pow(uniform_open0(rng), 1.0 / shape);
}

}  // namespace accellm::workload
