#include "firmware/activation_functions.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace infsim::firmware {

namespace {

struct PolyTable {
  float lo, hi;
  uint32_t segments;
  const float (*coef)[4];
};

#include "firmware/activation_tables.inc"

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Cubic of the segment holding x (clamped to the table), in FP32.
float poly(const PolyTable& t, float x) {
  const float width = (t.hi - t.lo) / static_cast<float>(t.segments);
  float pos = (x - t.lo) / width;
  uint32_t i = pos <= 0.0f ? 0u : static_cast<uint32_t>(pos);
  if (i >= t.segments) i = t.segments - 1;
  const float dx = x - (t.lo + static_cast<float>(i) * width);
  const float* c = t.coef[i];
  const float a = c[3] * dx;
  const float b = (a + c[2]) * dx;
  const float d = (b + c[1]) * dx;
  return d + c[0];
}

// ln 2 split so that n * kLn2Hi is exact for |n| < 2^11 (Cody-Waite).
constexpr float kLn2Hi = 0.693145751953125f;
constexpr float kLn2Lo = 1.42860682030941723212e-6f;
constexpr float kLog2e = 1.44269504088896341f;

float fw_exp(float x) {
  if (std::isnan(x)) return x;
  if (x > 88.7228394f) return kInf;
  if (x < -103.972084f) return 0.0f;
  const float n = std::nearbyint(x * kLog2e);
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  return std::ldexp(poly(k_exp_reduced, r), static_cast<int>(n));
}

float fw_log(float x) {
  if (std::isnan(x) || x < 0.0f) return kNaN;
  if (x == 0.0f) return -kInf;
  if (std::isinf(x)) return kInf;
  int e;
  float m = std::frexp(x, &e);  // x = m 2^e, m in [0.5, 1)
  if (m < 0.70710678f) {
    m *= 2.0f;
    --e;
  }
  // log(m) = 2 atanh(s): m - 1 is exact, so s keeps relative accuracy near m = 1.
  const float s = (m - 1.0f) / (m + 1.0f);
  const float log_m = 2.0f * s * poly(k_log_atanh_ratio, s * s);
  const float fe = static_cast<float>(e);
  return (fe * kLn2Lo + log_m) + fe * kLn2Hi;
}

// x = m 2^e with e even and m in [1, 4).
float even_split(float x, int& e) {
  float m = std::frexp(x, &e);
  m *= 2.0f;
  --e;
  if (e & 1) {
    m *= 2.0f;
    --e;
  }
  return m;
}

float fw_sqrt(float x) {
  if (std::isnan(x) || x < 0.0f) return x == 0.0f ? x : kNaN;
  if (x == 0.0f || std::isinf(x)) return x;
  int e;
  const float m = even_split(x, e);
  return std::ldexp(poly(k_sqrt_mantissa, m), e / 2);
}

float fw_rsqrt(float x) {
  if (std::isnan(x) || x < 0.0f) return kNaN;
  if (x == 0.0f) return kInf;
  if (std::isinf(x)) return 0.0f;
  int e;
  const float m = even_split(x, e);
  return std::ldexp(poly(k_rsqrt_mantissa, m), -e / 2);
}

float fw_reciprocal(float x) {
  if (std::isnan(x)) return x;
  if (x == 0.0f) return std::copysign(kInf, x);
  if (std::isinf(x)) return std::copysign(0.0f, x);
  int e;
  const float m = std::frexp(std::fabs(x), &e) * 2.0f;  // [1, 2)
  return std::copysign(std::ldexp(poly(k_reciprocal_mantissa, m), 1 - e), x);
}

float fw_tanh(float x) {
  if (std::isnan(x)) return x;
  const float a = std::fabs(x);
  const float y = a >= k_tanh_positive.hi ? 1.0f : poly(k_tanh_positive, a);
  return std::copysign(y, x);
}

float fw_erf(float x) {  // odd: the table covers [0, 4)
  if (std::isnan(x)) return x;
  const float a = std::fabs(x);
  const float y = a >= k_erf_positive.hi ? 1.0f : poly(k_erf_positive, a);
  return std::copysign(y, x);
}

float fw_sigmoid(float x) {
  if (std::isnan(x)) return x;
  if (x < k_sigmoid.lo) return fw_exp(x);  // 1/(1+e^-x) = e^x (1 - e^x + ...)
  if (x >= k_sigmoid.hi) return 1.0f;
  return poly(k_sigmoid, x);
}

// x * gate(x) for a gate going 0 -> 1 across the table.
float gated(const PolyTable& gate, float x) {
  if (std::isnan(x)) return x;
  if (x < gate.lo) return 0.0f;
  if (x >= gate.hi) return x;
  return x * poly(gate, x);
}

float fw_softplus(float x) {
  if (std::isnan(x)) return x;
  if (x < k_softplus.lo) return fw_exp(x);  // log(1+e^x) = e^x (1 - e^x/2 + ...)
  if (x >= k_softplus.hi) return x;         // x + log(1+e^-x)
  return poly(k_softplus, x);
}

}  // namespace

namespace {

template <isa::ActFunc F>
inline float activation(float x) {
  using isa::ActFunc;
  if constexpr (F == ActFunc::identity) return x;
  // max(x, 0) with NaN propagated and -0 mapped to +0.
  if constexpr (F == ActFunc::relu) return x > 0.0f ? x : (x != x ? x : 0.0f);
  if constexpr (F == ActFunc::gelu) return gated(k_normal_cdf, x);
  if constexpr (F == ActFunc::gelu_tanh) return gated(k_gelu_tanh_gate, x);
  if constexpr (F == ActFunc::sigmoid) return fw_sigmoid(x);
  if constexpr (F == ActFunc::tanh) return fw_tanh(x);
  if constexpr (F == ActFunc::exp) return fw_exp(x);
  if constexpr (F == ActFunc::log) return fw_log(x);
  if constexpr (F == ActFunc::sqrt) return fw_sqrt(x);
  if constexpr (F == ActFunc::rsqrt) return fw_rsqrt(x);
  if constexpr (F == ActFunc::silu) return x == -kInf ? 0.0f : x * fw_sigmoid(x);
  if constexpr (F == ActFunc::softplus) return fw_softplus(x);
  if constexpr (F == ActFunc::square) return x * x;
  if constexpr (F == ActFunc::reciprocal) return fw_reciprocal(x);
  if constexpr (F == ActFunc::erf) return fw_erf(x);
}

// Calls fn(std::integral_constant<isa::ActFunc, f>{}): the switch on the
// function stays outside loops over elements.
template <typename Fn>
decltype(auto) with_func(isa::ActFunc f, Fn&& fn) {
  using isa::ActFunc;
  switch (f) {
#define INFSIM_ACT_CASE(name) \
  case ActFunc::name:         \
    return fn(std::integral_constant<ActFunc, ActFunc::name>{});
    INFSIM_ACT_CASE(identity)
    INFSIM_ACT_CASE(relu)
    INFSIM_ACT_CASE(gelu)
    INFSIM_ACT_CASE(gelu_tanh)
    INFSIM_ACT_CASE(sigmoid)
    INFSIM_ACT_CASE(tanh)
    INFSIM_ACT_CASE(exp)
    INFSIM_ACT_CASE(log)
    INFSIM_ACT_CASE(sqrt)
    INFSIM_ACT_CASE(rsqrt)
    INFSIM_ACT_CASE(silu)
    INFSIM_ACT_CASE(softplus)
    INFSIM_ACT_CASE(square)
    INFSIM_ACT_CASE(reciprocal)
    INFSIM_ACT_CASE(erf)
#undef INFSIM_ACT_CASE
  }
  return fn(std::integral_constant<ActFunc, ActFunc::identity>{});  // not reached: every function has a case
}

}  // namespace

float activation(isa::ActFunc f, float x) {
  return with_func(f, [&](auto F) { return activation<F>(x); });
}

void apply_activation(isa::ActFunc f, float* v, size_t n) {
  with_func(f, [&](auto F) {
    for (size_t i = 0; i < n; ++i) v[i] = activation<F>(v[i]);
  });
}

// Measured by tests/cpp/test_firmware.cpp (which fails if any is exceeded);
// the bounds sit a little above the measured maxima.
const ErrorBound kErrorBounds[isa::kNumActFunc] = {
    {isa::ActFunc::identity, 0.0, 0.0},
    {isa::ActFunc::relu, 0.0, 0.0},
    {isa::ActFunc::gelu, 1e-6, 1e-8},
    {isa::ActFunc::gelu_tanh, 1e-6, 1e-8},
    {isa::ActFunc::sigmoid, 1e-6, 1e-30},
    {isa::ActFunc::tanh, 1e-6, 1e-30},
    {isa::ActFunc::exp, 1e-6, 1e-37},
    {isa::ActFunc::log, 1e-6, 1e-30},
    {isa::ActFunc::sqrt, 1e-6, 1e-30},
    {isa::ActFunc::rsqrt, 1e-6, 1e-30},
    {isa::ActFunc::silu, 1e-6, 1e-37},
    {isa::ActFunc::softplus, 1e-6, 1e-37},
    {isa::ActFunc::square, 6e-8, 1e-37},
    {isa::ActFunc::reciprocal, 1e-6, 1e-37},
    {isa::ActFunc::erf, 1e-6, 1e-37},
};

}  // namespace infsim::firmware
