// The scalar engine's function tables against FP64 references: every
// function stays inside its documented error bound (firmware::kErrorBounds)
// over dense and random FP32 inputs, and special values behave as specified.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "firmware/activation_functions.h"

using infsim::firmware::activation;
using infsim::firmware::kErrorBounds;
using infsim::isa::ActFunc;

namespace {

double reference(ActFunc f, double x) {
  switch (f) {
    case ActFunc::identity: return x;
    case ActFunc::relu: return x > 0 ? x : 0;
    case ActFunc::gelu: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case ActFunc::gelu_tanh: return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case ActFunc::sigmoid: return 1 / (1 + std::exp(-x));
    case ActFunc::tanh: return std::tanh(x);
    case ActFunc::exp: return std::exp(x);
    case ActFunc::log: return std::log(x);
    case ActFunc::sqrt: return std::sqrt(x);
    case ActFunc::rsqrt: return 1 / std::sqrt(x);
    case ActFunc::silu: return x / (1 + std::exp(-x));
    case ActFunc::softplus: return x > 30 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
    case ActFunc::square: return x * x;
    case ActFunc::reciprocal: return 1 / x;
    case ActFunc::erf: return std::erf(x);
  }
  return NAN;
}

class FunctionTable : public ::testing::TestWithParam<unsigned> {};

TEST_P(FunctionTable, WithinDocumentedErrorBound) {
  const auto bound = kErrorBounds[GetParam()];
  const ActFunc f = bound.func;
  ASSERT_EQ(static_cast<unsigned>(f), GetParam()) << "kErrorBounds must be in enum order";
  std::mt19937 rng(7);
  double worst = 0;
  float worst_x = 0;
  auto check = [&](float x) {
    const double ref = reference(f, x);
    const float y = activation(f, x);
    if (std::isnan(ref)) {
      EXPECT_TRUE(std::isnan(y)) << to_string(f) << "(" << x << ")";
      return;
    }
    const float ref32 = static_cast<float>(ref);
    if (std::isinf(ref32)) {
      EXPECT_EQ(y, ref32) << to_string(f) << "(" << x << ")";
      return;
    }
    const double err = std::fabs(static_cast<double>(y) - ref);
    const double allowed = std::max(bound.max_rel_error * std::fabs(ref), bound.max_abs_error);
    // Rounding the exact value to FP32 is always allowed.
    const double excess = err - std::fabs(static_cast<double>(ref32) - ref);
    if (excess > allowed && excess / allowed > worst) {
      worst = excess / allowed;
      worst_x = x;
    }
  };
  for (int i = 0; i < 400000; ++i) check(std::uniform_real_distribution<float>(-40, 40)(rng));
  for (int i = 0; i < 400000; ++i) check(std::uniform_real_distribution<float>(-1, 1)(rng));
  for (int i = 0; i < 400000; ++i) {
    const uint32_t u = rng();
    float x;
    std::memcpy(&x, &u, 4);
    if (std::isfinite(x)) check(x);
  }
  EXPECT_EQ(worst, 0) << to_string(f) << " exceeds its bound by x" << worst << " at x=" << worst_x;
}

INSTANTIATE_TEST_SUITE_P(AllFunctions, FunctionTable, ::testing::Range(0u, infsim::isa::kNumActFunc),
                         [](const auto& info) { return std::string(to_string(static_cast<ActFunc>(info.param))); });

TEST(FunctionTable, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (unsigned i = 0; i < infsim::isa::kNumActFunc; ++i)
    EXPECT_TRUE(std::isnan(activation(static_cast<ActFunc>(i), nan))) << to_string(static_cast<ActFunc>(i));
  EXPECT_EQ(activation(ActFunc::exp, inf), inf);
  EXPECT_EQ(activation(ActFunc::exp, -inf), 0.0f);
  EXPECT_EQ(activation(ActFunc::exp, 0.0f), 1.0f);
  EXPECT_EQ(activation(ActFunc::log, 0.0f), -inf);
  EXPECT_EQ(activation(ActFunc::log, 1.0f), 0.0f);
  EXPECT_TRUE(std::isnan(activation(ActFunc::log, -1.0f)));
  EXPECT_TRUE(std::isnan(activation(ActFunc::sqrt, -1.0f)));
  EXPECT_TRUE(std::signbit(activation(ActFunc::sqrt, -0.0f)));
  EXPECT_EQ(activation(ActFunc::rsqrt, 0.0f), inf);
  EXPECT_EQ(activation(ActFunc::reciprocal, -0.0f), -inf);
  EXPECT_EQ(activation(ActFunc::reciprocal, inf), 0.0f);
  EXPECT_EQ(activation(ActFunc::tanh, -inf), -1.0f);
  EXPECT_EQ(activation(ActFunc::sigmoid, inf), 1.0f);
  EXPECT_EQ(activation(ActFunc::sigmoid, -inf), 0.0f);
  EXPECT_EQ(activation(ActFunc::gelu, inf), inf);
  EXPECT_EQ(activation(ActFunc::relu, -0.0f), 0.0f);
  EXPECT_FALSE(std::signbit(activation(ActFunc::relu, -0.0f)));
}

}  // namespace
