// Knob relaxation (method.md section 3): each knob's ladder v_0 (most expensive) ... v_{N-1}
// becomes a continuous state theta in [0, 1], theta = 1 at v_0. Position p = (1 - theta)(N - 1)
// lies between the HQ neighbour floor(p) and the LQ neighbour floor(p) + 1; delta = 1/(N - 1).
#pragma once

#include <cstddef>
#include <random>
#include <string>

namespace oneadapt::adapt {

enum class Rounding { hq, nearest, stochastic };
Rounding parse_rounding(const std::string& text);  ///< throws Error naming the value
const char* rounding_name(Rounding r);

struct KnobRelaxation {
  std::size_t values = 1;  ///< ladder length N

  double delta() const { return values > 1 ? 1.0 / static_cast<double>(values - 1) : 1.0; }
  /// Position on the ladder, 0 = most expensive.
  double position(double theta) const;
  /// theta of ladder index i (the inverse of position).
  double theta_of(std::size_t index) const;
  /// The index applied at theta: hq rounds up in quality (floor of the position; theta = 0
  /// gives the cheapest value), nearest rounds to the nearest index, stochastic picks the LQ
  /// neighbour with probability frac(position).
  std::size_t applied(double theta, Rounding rounding, std::mt19937* rng = nullptr) const;
  /// The neighbouring pair (hq, hq + 1) whose finite difference estimates the gradient at
  /// theta; at theta = 0 it is the last two values. Meaningless when values == 1.
  std::size_t pair_hq(double theta) const;
};

/// Adam, one step per interval. With betas (0.5, 0.5) it behaves like sign-SGD: each step
/// moves about lr (method.md section 3).
class Adam {
 public:
  Adam(double lr = 0.3, double beta1 = 0.5, double beta2 = 0.5, double eps = 1e-8)
      : lr_(lr), b1_(beta1), b2_(beta2), eps_(eps) {}
  /// Returns the step to subtract from the parameter for gradient g.
  double step(double g);
  double m() const { return m_; }
  double v() const { return v_; }
  long t() const { return t_; }
  void restore(double m, double v, long t) { m_ = m, v_ = v, t_ = t; }

 private:
  double lr_, b1_, b2_, eps_;
  double m_ = 0, v_ = 0;
  long t_ = 0;
};

}  // namespace oneadapt::adapt
