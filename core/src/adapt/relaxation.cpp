#include "adapt/relaxation.hpp"

#include <oneadapt/error.hpp>

#include <algorithm>
#include <cmath>

namespace oneadapt::adapt {

Rounding parse_rounding(const std::string& text) {
  if (text == "hq") return Rounding::hq;
  if (text == "nearest") return Rounding::nearest;
  if (text == "stochastic") return Rounding::stochastic;
  throw Error(Errc::invalid_argument,
              "rounding '" + text + "' is not one of hq, nearest, stochastic");
}

const char* rounding_name(Rounding r) {
  switch (r) {
    case Rounding::hq:
      return "hq";
    case Rounding::nearest:
      return "nearest";
    case Rounding::stochastic:
      return "stochastic";
  }
  return "?";
}

double KnobRelaxation::position(double theta) const {
  theta = std::clamp(theta, 0.0, 1.0);
  return (1.0 - theta) * static_cast<double>(values - 1);
}

double KnobRelaxation::theta_of(std::size_t index) const {
  if (values <= 1) return 1.0;
  return 1.0 - static_cast<double>(std::min(index, values - 1)) * delta();
}

std::size_t KnobRelaxation::applied(double theta, Rounding rounding, std::mt19937* rng) const {
  if (values <= 1) return 0;
  const double p = position(theta);
  // A tiny tolerance so that theta_of(i) maps back to i despite rounding in (1 - theta)(N-1).
  const double eps = 1e-9;
  std::size_t lo = static_cast<std::size_t>(std::floor(p + eps));
  lo = std::min(lo, values - 1);
  switch (rounding) {
    case Rounding::hq:
      return lo;
    case Rounding::nearest:
      return std::min(static_cast<std::size_t>(std::lround(p)), values - 1);
    case Rounding::stochastic: {
      double frac = p - static_cast<double>(lo);
      if (lo + 1 >= values || frac <= eps || !rng) return lo;
      std::bernoulli_distribution lq(frac);
      return lq(*rng) ? lo + 1 : lo;
    }
  }
  return lo;
}

std::size_t KnobRelaxation::pair_hq(double theta) const {
  if (values <= 1) return 0;
  std::size_t lo = static_cast<std::size_t>(std::floor(position(theta) + 1e-9));
  return std::min(lo, values - 2);
}

double Adam::step(double g) {
  ++t_;
  m_ = b1_ * m_ + (1 - b1_) * g;
  v_ = b2_ * v_ + (1 - b2_) * g * g;
  double m_hat = m_ / (1 - std::pow(b1_, static_cast<double>(t_)));
  double v_hat = v_ / (1 - std::pow(b2_, static_cast<double>(t_)));
  return lr_ * m_hat / (std::sqrt(v_hat) + eps_);
}

}  // namespace oneadapt::adapt
