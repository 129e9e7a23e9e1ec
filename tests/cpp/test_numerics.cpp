// Numerics tests: the conversions of isa/numerics.h against references built
// here independently. A narrowing reference enumerates every finite value of
// the target format (computed in double from sign, exponent and mantissa),
// finds the two representable neighbours of the input, and picks the nearer,
// ties to the even encoding; overflow follows IEEE 754 (a value at or beyond
// max + half an ulp becomes infinity), except for FP8 E4M3, which saturates.
// Stochastic rounding is checked against the same enumerated neighbours: it
// only ever gives one of the two, rounds up exactly when the random word is
// below the discarded fraction x 2^32, and is unbiased on average.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "isa/numerics.h"
#include "sim/memory/onchip_memory.h"

using namespace infsim;
using numerics::bits_of;
using numerics::float_of;

namespace {

// A 16-bit floating-point format: `man_bits` stored mantissa bits, exponent
// bias; every non-negative finite encoding 0..max_pattern with its value.
struct Format16 {
  int man_bits, exp_bits, bias;
  std::vector<double> values;  // indexed by pattern, 0 .. max finite pattern
  uint16_t inf_pattern;

  Format16(int m, int e) : man_bits(m), exp_bits(e), bias((1 << (e - 1)) - 1) {
    inf_pattern = static_cast<uint16_t>(((1u << e) - 1) << m);
    for (uint32_t p = 0; p < inf_pattern; ++p) {
      const uint32_t exp = p >> m, man = p & ((1u << m) - 1);
      const double v = exp == 0 ? std::ldexp(double(man), 1 - bias - m)
                                : std::ldexp(double((1u << m) + man), int(exp) - bias - m);
      values.push_back(v);
    }
  }
  // The value one ulp above the largest finite one: infinity's stand-in when rounding.
  double beyond_max() const { return std::ldexp(1.0, (1 << (exp_bits - 1))); }

  // Reference RNE conversion of a non-NaN float.
  uint16_t round(float f) const {
    const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    const double a = std::fabs(double(f));
    if (std::isinf(a)) return sign | inf_pattern;
    // lo = largest pattern with value <= a.
    const auto it = std::upper_bound(values.begin(), values.end(), a);
    const uint32_t lo = static_cast<uint32_t>(it - values.begin()) - 1;
    const double lo_v = values[lo];
    if (lo_v == a) return static_cast<uint16_t>(sign | lo);
    const uint32_t hi = lo + 1;  // inf_pattern when lo is the largest finite
    const double hi_v = hi == inf_pattern ? beyond_max() : values[hi];
    const double dl = a - lo_v, dh = hi_v - a;  // exact: few significant bits
    uint32_t r;
    if (dl < dh)
      r = lo;
    else if (dh < dl)
      r = hi;
    else
      r = (lo & 1u) ? hi : lo;
    return static_cast<uint16_t>(sign | r);
  }
};

const Format16& bf16() {
  static const Format16 f(7, 8);
  return f;
}
const Format16& f16() {
  static const Format16 f(10, 5);
  return f;
}

bool is_nan16(uint16_t h, int man_bits) {
  const uint16_t exp_mask = static_cast<uint16_t>((0x7fff >> man_bits) << man_bits);
  return (h & exp_mask) == exp_mask && (h & ((1u << man_bits) - 1)) != 0;
}

// Floats worth checking: random bit patterns over every exponent, random
// values inside the formats' ranges, and hand-picked edges.
std::vector<float> sample_floats(size_t random_count, uint32_t seed) {
  std::vector<float> v;
  std::mt19937 rng(seed);
  for (size_t i = 0; i < random_count; ++i) v.push_back(float_of(rng()));
  std::uniform_real_distribution<float> small(-70000.0f, 70000.0f);
  std::uniform_real_distribution<float> tiny(-1e-4f, 1e-4f);
  for (size_t i = 0; i < random_count / 4; ++i) {
    v.push_back(small(rng));
    v.push_back(tiny(rng));
  }
  // Exponents near the FP16 range limits, random mantissas.
  for (uint32_t e = 100; e <= 145; ++e)
    for (int k = 0; k < 2000; ++k) v.push_back(float_of((rng() & 0x80000000u) | (e << 23) | (rng() & 0x7fffffu)));
  const float edges[] = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.0f, 65519.996f, 65520.0f, 65536.0f, -65520.0f,
                         5.9604645e-8f /*2^-24*/, 2.9802322e-8f /*2^-25*/, 2.9802326e-8f, 8.940697e-8f /*1.5*2^-24*/,
                         6.097555e-5f /*max f16 subnormal*/, 6.1035156e-5f /*min f16 normal*/,
                         std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min(),
                         -std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max(),
                         -std::numeric_limits<float>::max(), INFINITY, -INFINITY, 3.3895314e38f, 3.3895316e38f,
                         3.4028235e38f};
  v.insert(v.end(), std::begin(edges), std::end(edges));
  return v;
}

// ------------------------------------------------------------------- BF16

TEST(Bf16, MatchesReferenceOnRandomAndEdgeFloats) {
  int n = 0;
  for (float f : sample_floats(1 << 20, 1)) {
    if (std::isnan(f)) continue;
    ASSERT_EQ(numerics::f32_to_bf16(f), bf16().round(f)) << std::hexfloat << f << " bits " << std::hex << bits_of(f);
    ++n;
  }
  EXPECT_GT(n, 1000000);
}

TEST(Bf16, TiesRoundToEven) {
  // Every input exactly halfway between two BF16 values (low 16 bits 0x8000),
  // over every exponent, both signs, and neighbours one ulp either side.
  std::mt19937 rng(2);
  for (uint32_t e = 0; e < 255; ++e) {
    for (int k = 0; k < 256; ++k) {
      const uint32_t upper = (rng() & 0x8000u) | (e << 7) | (k & 0x7f);
      const uint32_t tie = (upper << 16) | 0x8000u;
      const uint16_t expect_even = static_cast<uint16_t>((upper & 1u) ? upper + 1 : upper);
      ASSERT_EQ(numerics::f32_to_bf16(float_of(tie)), expect_even) << std::hex << tie;
      ASSERT_EQ(numerics::f32_to_bf16(float_of(tie - 1)), upper) << std::hex << tie - 1;
      ASSERT_EQ(numerics::f32_to_bf16(float_of(tie + 1)), static_cast<uint16_t>(upper + 1)) << std::hex << tie + 1;
      ASSERT_EQ(bf16().round(float_of(tie)), expect_even);
    }
  }
  EXPECT_EQ(numerics::f32_to_bf16(1.00390625f), 0x3f80);  // 1 + 2^-8: tie, down to even 1.0
  EXPECT_EQ(numerics::f32_to_bf16(1.01171875f), 0x3f82);  // 1 + 3*2^-8: tie, up to even
}

TEST(Bf16, SpecialValues) {
  EXPECT_EQ(numerics::f32_to_bf16(0.0f), 0x0000);
  EXPECT_EQ(numerics::f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(numerics::f32_to_bf16(INFINITY), 0x7f80);
  EXPECT_EQ(numerics::f32_to_bf16(-INFINITY), 0xff80);
  EXPECT_EQ(numerics::f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to inf
  EXPECT_EQ(numerics::f32_to_bf16(-std::numeric_limits<float>::max()), 0xff80);
  EXPECT_EQ(numerics::f32_to_bf16(float_of(0x7f7f7fffu)), 0x7f7f);  // just below the overflow midpoint
  EXPECT_EQ(numerics::f32_to_bf16(float_of(0x7f7f8000u)), 0x7f80);  // the midpoint: ties to even = inf
  // Subnormals keep their upper bits.
  EXPECT_EQ(numerics::f32_to_bf16(float_of(0x00010000u)), 0x0001);
  EXPECT_EQ(numerics::f32_to_bf16(float_of(0x00008000u)), 0x0000);  // tie to even zero
  EXPECT_EQ(numerics::f32_to_bf16(float_of(0x00018000u)), 0x0002);
  EXPECT_EQ(numerics::f32_to_bf16(float_of(0x007fffffu)), 0x0080);  // max subnormal rounds to min normal
  EXPECT_EQ(numerics::f32_to_bf16(float_of(0x80000001u)), 0x8000);  // -denorm_min -> -0
}

TEST(Bf16, NanStaysQuietNan) {
  std::mt19937 rng(3);
  std::vector<uint32_t> nans = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu, 0x7f80ffffu, 0x7f810000u};
  for (int i = 0; i < 100000; ++i) nans.push_back((rng() & 0x80000000u) | 0x7f800000u | (1 + rng() % 0x7fffffu));
  for (uint32_t u : nans) {
    const uint16_t h = numerics::f32_to_bf16(float_of(u));
    ASSERT_TRUE(is_nan16(h, 7)) << std::hex << u << " -> " << h;
    ASSERT_TRUE(h & 0x0040) << "quiet bit set: " << std::hex << u;
    ASSERT_EQ(h & 0x8000, (u >> 16) & 0x8000) << "sign kept: " << std::hex << u;
    ASSERT_TRUE(std::isnan(numerics::bf16_to_f32(h)));
  }
}

TEST(Bf16, WidenIsExactForEveryPattern) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = numerics::bf16_to_f32(static_cast<uint16_t>(h));
    ASSERT_EQ(bits_of(f), h << 16);
    if (!std::isnan(f)) {
      ASSERT_EQ(numerics::f32_to_bf16(f), h);
    }
    if (h < bf16().inf_pattern) {
      ASSERT_EQ(double(f), bf16().values[h]);
    }
  }
}

// ------------------------------------------------------------------- FP16

TEST(Fp16, MatchesReferenceOnRandomAndEdgeFloats) {
  int n = 0;
  for (float f : sample_floats(1 << 20, 4)) {
    if (std::isnan(f)) continue;
    ASSERT_EQ(numerics::f32_to_f16(f), f16().round(f)) << std::hexfloat << f << " bits " << std::hex << bits_of(f);
    ++n;
  }
  EXPECT_GT(n, 1000000);
}

TEST(Fp16, TiesRoundToEvenNormalAndSubnormal) {
  // Midpoints between consecutive FP16 values (all are exact floats), and
  // the floats just either side of them.
  const auto& vals = f16().values;
  for (uint32_t p = 0; p + 1 < vals.size(); ++p) {
    const float mid = static_cast<float>((vals[p] + vals[p + 1]) / 2);
    ASSERT_EQ(double(mid), (vals[p] + vals[p + 1]) / 2) << "midpoint is exact";
    const uint16_t even = static_cast<uint16_t>((p & 1u) ? p + 1 : p);
    ASSERT_EQ(numerics::f32_to_f16(mid), even) << std::hexfloat << mid;
    ASSERT_EQ(numerics::f32_to_f16(-mid), even | 0x8000) << std::hexfloat << -mid;
    ASSERT_EQ(numerics::f32_to_f16(std::nextafter(mid, 0.0f)), p) << std::hexfloat << mid;
    ASSERT_EQ(numerics::f32_to_f16(std::nextafter(mid, INFINITY)), p + 1) << std::hexfloat << mid;
  }
}

TEST(Fp16, OverflowUnderflowAndSpecials) {
  EXPECT_EQ(numerics::f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(numerics::f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(numerics::f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(numerics::f32_to_f16(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(numerics::f32_to_f16(65520.0f), 0x7c00);  // midpoint to 2^16: ties to even = inf
  EXPECT_EQ(numerics::f32_to_f16(-65520.0f), 0xfc00);
  EXPECT_EQ(numerics::f32_to_f16(1e6f), 0x7c00);
  EXPECT_EQ(numerics::f32_to_f16(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_EQ(numerics::f32_to_f16(INFINITY), 0x7c00);
  EXPECT_EQ(numerics::f32_to_f16(-INFINITY), 0xfc00);
  EXPECT_EQ(numerics::f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(numerics::f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even zero
  EXPECT_EQ(numerics::f32_to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(numerics::f32_to_f16(-std::ldexp(1.0f, -25)), 0x8000);
  EXPECT_EQ(numerics::f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 ulp: tie to even 2
  EXPECT_EQ(numerics::f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);  // min normal
  EXPECT_EQ(numerics::f32_to_f16(std::ldexp(1023.5f, -24)), 0x0400);  // max subnormal + half: to even (min normal)
  EXPECT_EQ(numerics::f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(numerics::f32_to_f16(-std::numeric_limits<float>::min()), 0x8000);
  EXPECT_EQ(numerics::f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(numerics::f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie, to even
  EXPECT_EQ(numerics::f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie, to even
}

TEST(Fp16, NanStaysNan) {
  std::mt19937 rng(5);
  std::vector<uint32_t> nans = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu, 0x7f801fffu};
  for (int i = 0; i < 100000; ++i) nans.push_back((rng() & 0x80000000u) | 0x7f800000u | (1 + rng() % 0x7fffffu));
  for (uint32_t u : nans) {
    const uint16_t h = numerics::f32_to_f16(float_of(u));
    ASSERT_TRUE(is_nan16(h, 10)) << std::hex << u << " -> " << h;
    ASSERT_TRUE(h & 0x0200) << "quiet bit set: " << std::hex << u;
    ASSERT_EQ(h & 0x8000, (u >> 16) & 0x8000) << "sign kept: " << std::hex << u;
  }
}

TEST(Fp16, WidenExhaustive) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = numerics::f16_to_f32(static_cast<uint16_t>(h));
    const bool neg = h & 0x8000;
    const uint32_t mag = h & 0x7fff;
    if (mag > 0x7c00) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      ASSERT_EQ(std::signbit(f), neg) << std::hex << h;
      ASSERT_TRUE(is_nan16(numerics::f32_to_f16(f), 10)) << std::hex << h;
      continue;
    }
    const double ref = mag == 0x7c00 ? INFINITY : f16().values[mag];
    ASSERT_EQ(bits_of(f), bits_of(static_cast<float>(neg ? -ref : ref))) << std::hex << h;
    ASSERT_EQ(numerics::f32_to_f16(f), h) << "round trip " << std::hex << h;
  }
}

// -------------------------------------------------------------- integers

// Reference RNE of a float to an integer in [lo, hi], NaN to 0, in double.
int64_t ref_int(float f, int64_t lo, int64_t hi) {
  if (std::isnan(f)) return 0;
  const double d = f;
  if (d >= double(hi)) return hi;
  if (d <= double(lo)) return lo;
  const double fl = std::floor(d), frac = d - fl;
  int64_t r = static_cast<int64_t>(fl);
  if (frac > 0.5 || (frac == 0.5 && (r & 1))) ++r;
  return std::clamp<int64_t>(r, lo, hi);
}

TEST(Int8, RoundsToNearestEvenAndSaturates) {
  EXPECT_EQ(numerics::f32_to_int8(2.5f), 2);
  EXPECT_EQ(numerics::f32_to_int8(3.5f), 4);
  EXPECT_EQ(numerics::f32_to_int8(-2.5f), -2);
  EXPECT_EQ(numerics::f32_to_int8(-3.5f), -4);
  EXPECT_EQ(numerics::f32_to_int8(0.5f), 0);
  EXPECT_EQ(numerics::f32_to_int8(-0.5f), 0);
  EXPECT_EQ(numerics::f32_to_int8(1.5f), 2);
  EXPECT_EQ(numerics::f32_to_int8(2.4999998f), 2);
  EXPECT_EQ(numerics::f32_to_int8(2.5000002f), 3);
  EXPECT_EQ(numerics::f32_to_int8(126.5f), 126);
  EXPECT_EQ(numerics::f32_to_int8(127.4f), 127);
  EXPECT_EQ(numerics::f32_to_int8(127.5f), 127);
  EXPECT_EQ(numerics::f32_to_int8(128.0f), 127);
  EXPECT_EQ(numerics::f32_to_int8(1e10f), 127);
  EXPECT_EQ(numerics::f32_to_int8(INFINITY), 127);
  EXPECT_EQ(numerics::f32_to_int8(-128.0f), -128);
  EXPECT_EQ(numerics::f32_to_int8(-128.5f), -128);
  EXPECT_EQ(numerics::f32_to_int8(-129.0f), -128);
  EXPECT_EQ(numerics::f32_to_int8(-1e10f), -128);
  EXPECT_EQ(numerics::f32_to_int8(-INFINITY), -128);
  EXPECT_EQ(numerics::f32_to_int8(NAN), 0);
  EXPECT_EQ(numerics::f32_to_int8(-NAN), 0);
  std::mt19937 rng(6);
  std::uniform_real_distribution<float> d(-200.0f, 200.0f);
  for (int i = 0; i < 200000; ++i) {
    const float f = i % 2 ? d(rng) : std::round(d(rng) * 2) / 2;  // half of them on .5 ties
    ASSERT_EQ(numerics::f32_to_int8(f), ref_int(f, -128, 127)) << f;
  }
  for (int i = 0; i < 200000; ++i) {
    const float f = float_of(rng());
    ASSERT_EQ(numerics::f32_to_int8(f), ref_int(f, -128, 127)) << f;
  }
}

TEST(Int32, RoundsToNearestEvenAndSaturates) {
  EXPECT_EQ(numerics::f32_to_int32(2.5f), 2);
  EXPECT_EQ(numerics::f32_to_int32(3.5f), 4);
  EXPECT_EQ(numerics::f32_to_int32(-2.5f), -2);
  EXPECT_EQ(numerics::f32_to_int32(-3.5f), -4);
  EXPECT_EQ(numerics::f32_to_int32(1e10f), INT32_MAX);
  EXPECT_EQ(numerics::f32_to_int32(-1e10f), INT32_MIN);
  EXPECT_EQ(numerics::f32_to_int32(2147483648.0f), INT32_MAX);  // 2^31
  EXPECT_EQ(numerics::f32_to_int32(2147483520.0f), 2147483520);  // largest float below 2^31
  EXPECT_EQ(numerics::f32_to_int32(-2147483648.0f), INT32_MIN);
  EXPECT_EQ(numerics::f32_to_int32(-2147483904.0f), INT32_MIN);
  EXPECT_EQ(numerics::f32_to_int32(16777217.0f), 16777216);  // the float itself is 2^24
  EXPECT_EQ(numerics::f32_to_int32(INFINITY), INT32_MAX);
  EXPECT_EQ(numerics::f32_to_int32(-INFINITY), INT32_MIN);
  EXPECT_EQ(numerics::f32_to_int32(NAN), 0);
  EXPECT_EQ(numerics::f32_to_int32(-0.0f), 0);
  std::mt19937 rng(7);
  for (int i = 0; i < 400000; ++i) {
    float f = float_of(rng());
    if (i % 2) f = std::ldexp(static_cast<float>(static_cast<int32_t>(rng())), -static_cast<int>(rng() % 4));
    ASSERT_EQ(numerics::f32_to_int32(f), ref_int(f, INT32_MIN, INT32_MAX)) << f;
  }
}

// -------------------------------------------------------------------- FP8

// An 8-bit float format enumerated from its definition: magnitude patterns
// 0..max_pattern (finite) with their values in double.
struct Format8 {
  int man_bits, exp_bits, bias;
  bool ieee;                    // E5M2: top exponent is Inf/NaN; E4M3FN: only S.1111.111 is NaN
  std::vector<double> values;   // indexed by magnitude pattern, finite ones only
  uint8_t max_pattern;

  Format8(int e, bool ieee_) : man_bits(7 - e), exp_bits(e), bias((1 << (e - 1)) - 1), ieee(ieee_) {
    max_pattern = ieee ? static_cast<uint8_t>(((1u << e) - 1) << man_bits) - 1 : 0x7e;
    for (uint32_t p = 0; p <= max_pattern; ++p) {
      const uint32_t exp = p >> man_bits, man = p & ((1u << man_bits) - 1);
      values.push_back(exp == 0 ? std::ldexp(double(man), 1 - bias - man_bits)
                                : std::ldexp(double((1u << man_bits) + man), int(exp) - bias - man_bits));
    }
  }
  double max() const { return values.back(); }
  bool is_nan(uint8_t h) const {
    const uint8_t m = h & 0x7f;
    return ieee ? m > max_pattern + 1 : m == 0x7f;
  }
  // Reference RNE of a non-NaN float.
  uint8_t round(float f) const {
    const uint8_t sign = std::signbit(f) ? 0x80 : 0;
    const double a = std::fabs(double(f));
    const uint8_t inf = static_cast<uint8_t>(max_pattern + 1);
    if (!ieee && a > max()) return sign | max_pattern;  // saturation, Inf included
    if (std::isinf(a)) return sign | inf;
    const auto it = std::upper_bound(values.begin(), values.end(), a);
    const uint32_t lo = static_cast<uint32_t>(it - values.begin()) - 1;
    if (values[lo] == a) return static_cast<uint8_t>(sign | lo);
    const uint32_t hi = lo + 1;
    // IEEE overflow: infinity stands at the next binade's first value.
    const double hi_v = hi > max_pattern ? std::ldexp(1.0, (1 << (exp_bits - 1))) : values[hi];
    const double dl = a - values[lo], dh = hi_v - a;
    const uint32_t r = dl < dh ? lo : dh < dl ? hi : (lo & 1u) ? hi : lo;
    return static_cast<uint8_t>(sign | r);
  }
};

const Format8& e4m3() {
  static const Format8 f(4, false);
  return f;
}
const Format8& e5m2() {
  static const Format8 f(5, true);
  return f;
}

TEST(Fp8, EnumeratedFormatsHaveTheDocumentedRange) {
  EXPECT_EQ(e4m3().values.size(), 127u);  // 0x00..0x7e
  EXPECT_EQ(e4m3().max(), 448.0);
  EXPECT_EQ(e4m3().values[1], std::ldexp(1.0, -9));
  EXPECT_EQ(e4m3().values[8], std::ldexp(1.0, -6));  // smallest normal
  EXPECT_EQ(e5m2().values.size(), 124u);  // 0x00..0x7b
  EXPECT_EQ(e5m2().max(), 57344.0);
  EXPECT_EQ(e5m2().values[1], std::ldexp(1.0, -16));
  EXPECT_EQ(e5m2().values[4], std::ldexp(1.0, -14));
}

// Every one of the 256 patterns: widening is exact (the enumerated value,
// sign included), NaN patterns widen to NaN, and narrowing the widened value
// gives the pattern back (NaN: a NaN of the same sign).
void check_fp8_exhaustive(const Format8& fmt, float (*widen)(uint8_t), uint8_t (*narrow)(float)) {
  int finite = 0;
  for (uint32_t h = 0; h < 256; ++h) {
    const float f = widen(static_cast<uint8_t>(h));
    const bool neg = h & 0x80;
    const uint8_t mag = h & 0x7f;
    if (fmt.is_nan(static_cast<uint8_t>(h))) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      ASSERT_EQ(std::signbit(f), neg) << std::hex << h;
      const uint8_t back = narrow(f);
      ASSERT_TRUE(fmt.is_nan(back)) << std::hex << h << " -> " << int(back);
      ASSERT_EQ(back & 0x80, h & 0x80);
      continue;
    }
    const double ref = mag > fmt.max_pattern ? INFINITY : fmt.values[mag];
    ASSERT_EQ(bits_of(f), bits_of(static_cast<float>(neg ? -ref : ref))) << std::hex << h;
    ASSERT_EQ(narrow(f), h) << "round trip " << std::hex << h;
    finite += std::isfinite(f);
  }
  EXPECT_EQ(finite, 2 * (fmt.max_pattern + 1));
}

TEST(Fp8, E4m3ExhaustiveRoundTrip) { check_fp8_exhaustive(e4m3(), numerics::e4m3_to_f32, numerics::f32_to_e4m3); }
TEST(Fp8, E5m2ExhaustiveRoundTrip) { check_fp8_exhaustive(e5m2(), numerics::e5m2_to_f32, numerics::f32_to_e5m2); }

TEST(Fp8, MatchesReferenceOnRandomAndEdgeFloats) {
  std::vector<float> v = sample_floats(1 << 18, 9);
  for (const float edge : {448.0f, 464.0f, 463.99997f, 480.0f, 512.0f, 57344.0f, 61440.0f, 61439.996f, 65536.0f,
                           0.001953125f /*2^-9*/, 0.0009765625f /*2^-10*/, 0.015625f /*2^-6*/, 1.52587890625e-05f,
                           7.62939453125e-06f, 6.103515625e-05f})
    for (const float s : {1.0f, -1.0f}) v.push_back(s * edge);
  int n = 0;
  for (float f : v) {
    if (std::isnan(f)) continue;
    ASSERT_EQ(numerics::f32_to_e4m3(f), e4m3().round(f)) << std::hexfloat << f << " bits " << std::hex << bits_of(f);
    ASSERT_EQ(numerics::f32_to_e5m2(f), e5m2().round(f)) << std::hexfloat << f << " bits " << std::hex << bits_of(f);
    ++n;
  }
  EXPECT_GT(n, 300000);
}

// Midpoints between consecutive values (normal and subnormal; all exact
// floats) go to the even pattern; the floats either side go to the nearer.
void check_fp8_ties(const Format8& fmt, uint8_t (*narrow)(float)) {
  const auto& vals = fmt.values;
  for (uint32_t p = 0; p + 1 < vals.size(); ++p) {
    const float mid = static_cast<float>((vals[p] + vals[p + 1]) / 2);
    ASSERT_EQ(double(mid), (vals[p] + vals[p + 1]) / 2);
    const uint8_t even = static_cast<uint8_t>((p & 1u) ? p + 1 : p);
    ASSERT_EQ(narrow(mid), even) << std::hexfloat << mid;
    ASSERT_EQ(narrow(-mid), even | 0x80) << std::hexfloat << -mid;
    ASSERT_EQ(narrow(std::nextafter(mid, 0.0f)), p) << std::hexfloat << mid;
    ASSERT_EQ(narrow(std::nextafter(mid, INFINITY)), p + 1) << std::hexfloat << mid;
  }
}

TEST(Fp8, TiesRoundToEvenNormalAndSubnormal) {
  check_fp8_ties(e4m3(), numerics::f32_to_e4m3);
  check_fp8_ties(e5m2(), numerics::f32_to_e5m2);
  EXPECT_EQ(numerics::f32_to_e4m3(std::ldexp(1.0f, -10)), 0x00);  // half the smallest subnormal: to even zero
  EXPECT_EQ(numerics::f32_to_e4m3(std::ldexp(3.0f, -10)), 0x02);  // 1.5 subnormal steps: to even 2
  EXPECT_EQ(numerics::f32_to_e4m3(std::ldexp(15.0f, -10)), 0x08);  // max subnormal + half: to even (min normal)
  EXPECT_EQ(numerics::f32_to_e4m3(1.0625f), 0x38);  // 1 + 2^-4: tie, down to even 1.0
  EXPECT_EQ(numerics::f32_to_e4m3(1.1875f), 0x3a);  // 1 + 3*2^-4: tie, up to even
  EXPECT_EQ(numerics::f32_to_e5m2(std::ldexp(1.0f, -17)), 0x00);
  EXPECT_EQ(numerics::f32_to_e5m2(std::ldexp(3.0f, -17)), 0x02);
  EXPECT_EQ(numerics::f32_to_e5m2(1.125f), 0x3c);  // 1 + 2^-3: tie, down to even 1.0
  EXPECT_EQ(numerics::f32_to_e5m2(1.375f), 0x3e);
}

TEST(Fp8, E4m3SaturatesAndHasOneNan) {
  EXPECT_EQ(numerics::f32_to_e4m3(0.0f), 0x00);
  EXPECT_EQ(numerics::f32_to_e4m3(-0.0f), 0x80);
  EXPECT_EQ(numerics::f32_to_e4m3(448.0f), 0x7e);
  EXPECT_EQ(numerics::f32_to_e4m3(449.0f), 0x7e);
  EXPECT_EQ(numerics::f32_to_e4m3(464.0f), 0x7e);  // RNE would reach 512: saturates
  EXPECT_EQ(numerics::f32_to_e4m3(1e6f), 0x7e);
  EXPECT_EQ(numerics::f32_to_e4m3(std::numeric_limits<float>::max()), 0x7e);
  EXPECT_EQ(numerics::f32_to_e4m3(INFINITY), 0x7e);
  EXPECT_EQ(numerics::f32_to_e4m3(-INFINITY), 0xfe);
  EXPECT_EQ(numerics::f32_to_e4m3(-1e6f), 0xfe);
  EXPECT_EQ(numerics::f32_to_e4m3(NAN), 0x7f);
  EXPECT_EQ(numerics::f32_to_e4m3(-NAN), 0xff);
  EXPECT_EQ(numerics::f32_to_e4m3(float_of(0x7f800001u)), 0x7f);  // signalling NaN in, NaN out
  EXPECT_EQ(numerics::f32_to_e4m3(std::numeric_limits<float>::denorm_min()), 0x00);
  EXPECT_EQ(numerics::f32_to_e4m3(-std::numeric_limits<float>::denorm_min()), 0x80);
  EXPECT_EQ(numerics::f32_to_e4m3(std::ldexp(1.0f, -9)), 0x01);
  EXPECT_EQ(numerics::f32_to_e4m3(std::ldexp(7.0f, -9)), 0x07);  // largest subnormal
  EXPECT_EQ(numerics::f32_to_e4m3(256.0f), 0x78);  // exponent field 15 is a normal binade
  EXPECT_EQ(numerics::e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(numerics::e4m3_to_f32(0x78), 256.0f);
  EXPECT_EQ(numerics::e4m3_to_f32(0x81), -std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(numerics::e4m3_to_f32(0x7f)));
}

TEST(Fp8, E5m2OverflowsToInfinity) {
  EXPECT_EQ(numerics::f32_to_e5m2(57344.0f), 0x7b);
  EXPECT_EQ(numerics::f32_to_e5m2(std::nextafter(61440.0f, 0.0f)), 0x7b);
  EXPECT_EQ(numerics::f32_to_e5m2(61440.0f), 0x7c);  // max + half an ulp: ties to even = Inf
  EXPECT_EQ(numerics::f32_to_e5m2(-61440.0f), 0xfc);
  EXPECT_EQ(numerics::f32_to_e5m2(1e10f), 0x7c);
  EXPECT_EQ(numerics::f32_to_e5m2(INFINITY), 0x7c);
  EXPECT_EQ(numerics::f32_to_e5m2(-INFINITY), 0xfc);
  EXPECT_EQ(numerics::f32_to_e5m2(NAN), 0x7e);
  EXPECT_EQ(numerics::f32_to_e5m2(-NAN), 0xfe);
  EXPECT_EQ(numerics::f32_to_e5m2(-0.0f), 0x80);
  EXPECT_EQ(numerics::f32_to_e5m2(std::ldexp(1.0f, -16)), 0x01);
  EXPECT_EQ(numerics::f32_to_e5m2(std::ldexp(3.0f, -16)), 0x03);  // largest subnormal
  EXPECT_EQ(numerics::f32_to_e5m2(std::ldexp(1.0f, -14)), 0x04);  // smallest normal
  EXPECT_EQ(numerics::e5m2_to_f32(0x7c), INFINITY);
  EXPECT_EQ(numerics::e5m2_to_f32(0xfc), -INFINITY);
  EXPECT_TRUE(std::isnan(numerics::e5m2_to_f32(0x7d)));
  // E5M2 is the upper byte of FP16: widening agrees with FP16's.
  for (uint32_t h = 0; h < 256; ++h) {
    const float a = numerics::e5m2_to_f32(static_cast<uint8_t>(h)), b = numerics::f16_to_f32(static_cast<uint16_t>(h << 8));
    if (std::isnan(a)) {
      ASSERT_TRUE(std::isnan(b));
    } else {
      ASSERT_EQ(bits_of(a), bits_of(b)) << std::hex << h;
    }
  }
}

// ---------------------------------------------------- stochastic rounding

// A narrowing format under test: RNE and stochastic conversions, widening,
// and the enumerated finite magnitudes (for the neighbours of a value).
struct SrCase {
  const char* name;
  std::function<uint32_t(float, uint32_t)> sr;
  std::function<float(uint32_t)> widen;
  std::vector<double> values;  // finite magnitudes, increasing
  bool saturate;
};

std::vector<SrCase> sr_cases() {
  auto widen16 = [](const Format16& f) {
    std::vector<double> v(f.values.begin(), f.values.end());
    return v;
  };
  return {
      {"bf16", [](float f, uint32_t r) { return numerics::f32_to_bf16_sr(f, r); },
       [](uint32_t h) { return numerics::bf16_to_f32(static_cast<uint16_t>(h)); }, widen16(bf16()), false},
      {"fp16", [](float f, uint32_t r) { return numerics::f32_to_f16_sr(f, r); },
       [](uint32_t h) { return numerics::f16_to_f32(static_cast<uint16_t>(h)); }, widen16(f16()), false},
      {"fp8_e4m3", [](float f, uint32_t r) { return numerics::f32_to_e4m3_sr(f, r); },
       [](uint32_t h) { return numerics::e4m3_to_f32(static_cast<uint8_t>(h)); }, e4m3().values, true},
      {"fp8_e5m2", [](float f, uint32_t r) { return numerics::f32_to_e5m2_sr(f, r); },
       [](uint32_t h) { return numerics::e5m2_to_f32(static_cast<uint8_t>(h)); }, e5m2().values, false},
  };
}

// The representable neighbours lo <= |x| < hi of a finite |x| inside the
// finite range, and the fraction (|x| - lo) / (hi - lo), exact in double.
struct Neighbours {
  double lo, hi, frac;
};
Neighbours neighbours(const std::vector<double>& vals, double a) {
  const auto it = std::upper_bound(vals.begin(), vals.end(), a);
  const size_t lo = static_cast<size_t>(it - vals.begin()) - 1;
  if (vals[lo] == a) return {a, a, 0.0};
  return {vals[lo], vals[lo + 1], (a - vals[lo]) / (vals[lo + 1] - vals[lo])};
}

// Values strictly inside each format's finite range, over every binade and
// the subnormals, with random low bits.
std::vector<float> sr_samples(const std::vector<double>& vals, size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  const int lo_exp = std::ilogb(vals[1]) - 8, hi_exp = std::ilogb(vals.back());
  std::vector<float> v;
  while (v.size() < count) {
    const int e = lo_exp + static_cast<int>(rng() % static_cast<uint32_t>(hi_exp - lo_exp + 1));
    const float f = std::ldexp(1.0f + static_cast<float>(rng() & 0x7fffffu) * 0x1p-23f, e);
    if (double(f) >= vals.back()) continue;
    v.push_back(rng() & 1 ? -f : f);
  }
  return v;
}

TEST(StochasticRounding, RoundsUpExactlyBelowTheDiscardedFraction) {
  // Rounds away from zero iff random < frac * 2^32, i.e. with probability
  // frac (exact here: every sample's discarded part has at most 32 bits
  // except deep below the subnormals, where the threshold rounds up).
  for (const auto& c : sr_cases()) {
    for (float x : sr_samples(c.values, 20000, 11)) {
      const Neighbours nb = neighbours(c.values, std::fabs(double(x)));
      const double t = std::ceil(std::ldexp(nb.frac, 32));  // first random word that rounds down
      const double sgn = std::signbit(x) ? -1.0 : 1.0;
      auto got = [&](uint32_t r) { return double(c.widen(c.sr(x, r))); };
      if (nb.frac == 0) {
        ASSERT_EQ(got(0), double(x)) << c.name;
        ASSERT_EQ(got(0xffffffffu), double(x)) << c.name;
        continue;
      }
      ASSERT_EQ(got(0), sgn * nb.hi) << c.name << " " << std::hexfloat << x;
      ASSERT_EQ(got(static_cast<uint32_t>(t - 1)), sgn * nb.hi) << c.name << " " << std::hexfloat << x;
      if (t < 4294967296.0) {
        ASSERT_EQ(got(static_cast<uint32_t>(t)), sgn * nb.lo) << c.name << " " << std::hexfloat << x;
        ASSERT_EQ(got(0xffffffffu), sgn * nb.lo) << c.name << " " << std::hexfloat << x;
      }
    }
  }
}

TEST(StochasticRounding, OnlyEverGivesOneOfTheTwoNeighbours) {
  numerics::Rounding r = numerics::Rounding::stochastic(1234, 5);
  for (const auto& c : sr_cases()) {
    for (float x : sr_samples(c.values, 2000, 12)) {
      const Neighbours nb = neighbours(c.values, std::fabs(double(x)));
      for (int k = 0; k < 50; ++k) {
        const double v = std::fabs(double(c.widen(c.sr(x, r.next()))));
        ASSERT_TRUE(v == nb.lo || v == nb.hi) << c.name << " " << std::hexfloat << x << " -> " << v;
      }
    }
  }
}

TEST(StochasticRounding, UnbiasedOnAverage) {
  // The mean of n roundings of x estimates x with standard deviation
  // sqrt((hi - x)(x - lo) / n); require it within 5 of them.
  const int n = 20000;
  for (const auto& c : sr_cases()) {
    numerics::Rounding r = numerics::Rounding::stochastic(42, 7);
    for (float x : sr_samples(c.values, 40, 14)) {
      const double a = std::fabs(double(x));
      const Neighbours nb = neighbours(c.values, a);
      double sum = 0;
      for (int k = 0; k < n; ++k) sum += std::fabs(double(c.widen(c.sr(x, r.next()))));
      const double mean = sum / n;
      const double sd = std::sqrt((nb.hi - a) * (a - nb.lo) / n);
      EXPECT_LE(std::fabs(mean - a), 5 * sd + 1e-12 * a) << c.name << " " << std::hexfloat << x;
    }
    // A fixed value a quarter of the way between 1 and its successor.
    const auto one = std::lower_bound(c.values.begin(), c.values.end(), 1.0);
    const double step = *(one + 1) - 1.0;
    const float x = static_cast<float>(1.0 + step / 4);
    int ups = 0;
    for (int k = 0; k < n; ++k) ups += double(c.widen(c.sr(x, r.next()))) != 1.0;
    EXPECT_NEAR(ups / double(n), 0.25, 5 * std::sqrt(0.25 * 0.75 / n)) << c.name;
  }
}

TEST(StochasticRounding, RangeLimitsInfAndNan) {
  const uint32_t all = 0xffffffffu, none = 0;  // never / always rounds up
  // Exact values, zeros, Inf and NaN ignore the random word.
  for (uint32_t r : {none, all, 0x80000000u}) {
    EXPECT_EQ(numerics::f32_to_bf16_sr(1.0f, r), 0x3f80);
    EXPECT_EQ(numerics::f32_to_bf16_sr(-0.0f, r), 0x8000);
    EXPECT_EQ(numerics::f32_to_bf16_sr(INFINITY, r), 0x7f80);
    EXPECT_EQ(numerics::f32_to_bf16_sr(float_of(0x7f800001u), r), numerics::f32_to_bf16(float_of(0x7f800001u)));
    EXPECT_EQ(numerics::f32_to_f16_sr(-INFINITY, r), 0xfc00);
    EXPECT_EQ(numerics::f32_to_f16_sr(NAN, r), 0x7e00);
    EXPECT_EQ(numerics::f32_to_e4m3_sr(INFINITY, r), 0x7e);
    EXPECT_EQ(numerics::f32_to_e4m3_sr(-NAN, r), 0xff);
    EXPECT_EQ(numerics::f32_to_e5m2_sr(NAN, r), 0x7e);
    EXPECT_EQ(numerics::f32_to_e5m2_sr(-INFINITY, r), 0xfc);
  }
  // Beyond the largest finite value: infinity is the next value up (BF16,
  // FP16, E5M2); E4M3 saturates whatever the draw.
  EXPECT_EQ(numerics::f32_to_f16_sr(65520.0f, none), 0x7c00);
  EXPECT_EQ(numerics::f32_to_f16_sr(65520.0f, all), 0x7bff);
  EXPECT_EQ(numerics::f32_to_f16_sr(1e6f, all), 0x7c00);
  EXPECT_EQ(numerics::f32_to_e5m2_sr(60000.0f, all), 0x7b);
  EXPECT_EQ(numerics::f32_to_e5m2_sr(60000.0f, none), 0x7c);
  EXPECT_EQ(numerics::f32_to_bf16_sr(std::numeric_limits<float>::max(), none), 0x7f80);
  EXPECT_EQ(numerics::f32_to_bf16_sr(std::numeric_limits<float>::max(), all), 0x7f7f);
  for (uint32_t r : {none, all}) {
    EXPECT_EQ(numerics::f32_to_e4m3_sr(460.0f, r), 0x7e);
    EXPECT_EQ(numerics::f32_to_e4m3_sr(-1e9f, r), 0xfe);
  }
  // Subnormal results: between 0 and the smallest subnormal.
  EXPECT_EQ(numerics::f32_to_e4m3_sr(std::ldexp(1.0f, -11), none), 0x01);
  EXPECT_EQ(numerics::f32_to_e4m3_sr(std::ldexp(1.0f, -11), 0x40000000u), 0x00);  // a quarter: rounds up below 2^30
  EXPECT_EQ(numerics::f32_to_e4m3_sr(std::ldexp(1.0f, -11), 0x3fffffffu), 0x01);
  EXPECT_EQ(numerics::f32_to_f16_sr(std::numeric_limits<float>::denorm_min(), none), 0x0001);  // tiny, but not never
  EXPECT_EQ(numerics::f32_to_f16_sr(std::numeric_limits<float>::denorm_min(), 1), 0x0000);
  EXPECT_EQ(numerics::f32_to_bf16_sr(float_of(0x00008000u), 0x7fffffffu), 0x0001);  // bf16 subnormal, half
  EXPECT_EQ(numerics::f32_to_bf16_sr(float_of(0x00008000u), 0x80000000u), 0x0000);
}

TEST(StochasticRounding, GeneratorIsDeterministicPerSeedAndStream) {
  auto draw = [](numerics::Rounding r, int n) {
    std::vector<uint32_t> v;
    for (int i = 0; i < n; ++i) v.push_back(r.next());
    return v;
  };
  const auto a = draw(numerics::Rounding::stochastic(1, 2), 1000);
  EXPECT_EQ(a, draw(numerics::Rounding::stochastic(1, 2), 1000));
  EXPECT_NE(a, draw(numerics::Rounding::stochastic(2, 2), 1000));
  EXPECT_NE(a, draw(numerics::Rounding::stochastic(1, 3), 1000));
  // Fixed values: the generator is part of the numerics specification.
  EXPECT_EQ(numerics::Rounding::hash(0, 0, 0), numerics::Rounding::hash(0, 0, 0));
  numerics::Rounding r = numerics::Rounding::stochastic(1, 2);
  for (int i = 0; i < 10; ++i) r.next();
  EXPECT_EQ(r.counter(), 10u);
  r.reset();
  EXPECT_EQ(r.next(), a[0]);
  // Bits look uniform: each of the 32 bits set about half the time.
  std::vector<int> ones(32, 0);
  numerics::Rounding u = numerics::Rounding::stochastic(99, 0);
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const uint32_t w = u.next();
    for (int b = 0; b < 32; ++b) ones[b] += (w >> b) & 1;
  }
  for (int b = 0; b < 32; ++b) EXPECT_NEAR(ones[b] / double(n), 0.5, 0.01) << "bit " << b;
}

TEST(StochasticRounding, StoreUsesTheWritersStream) {
  // RNE writers and integer destinations never draw; stochastic writes draw
  // one word per element and repeat exactly after reset().
  numerics::Rounding rne;
  uint8_t a[4];
  numerics::store(isa::Dtype::bf16, a, 0, 1.00390625f, rne);
  EXPECT_EQ(numerics::load(isa::Dtype::bf16, a, 0), 1.0f);
  numerics::Rounding sr = numerics::Rounding::stochastic(5, 1);
  numerics::store(isa::Dtype::int8, a, 0, 2.5f, sr);
  numerics::store(isa::Dtype::int32, a, 0, 2.5f, sr);
  numerics::store(isa::Dtype::fp32, a, 0, 2.5f, sr);
  EXPECT_EQ(sr.counter(), 0u);
  for (isa::Dtype t : {isa::Dtype::bf16, isa::Dtype::fp16, isa::Dtype::fp8_e4m3, isa::Dtype::fp8_e5m2})
    numerics::store(t, a, 0, 1.1f, sr);
  EXPECT_EQ(sr.counter(), 4u);

  // Through OnChipMemory::write: same bits for the same stream, and some
  // elements of a tie-free constant row round each way.
  sim::OnChipMemory m1("m1", 4, 4096), m2("m2", 4, 4096);
  isa::AccessPattern ap;
  ap.space = isa::Space::sbuf;
  ap.dtype = isa::Dtype::bf16;
  ap.part_start = 0;
  ap.part_count = 4;
  ap.ndim = 2;
  ap.dims[0] = {8, 16};
  ap.dims[1] = {16, 1};
  std::vector<float> in(4 * 128, 1.0f + 0x1p-9f);  // a quarter of the way to the next BF16
  numerics::Rounding w = numerics::Rounding::stochastic(77, 3);
  m1.write(ap, in.data(), w);
  EXPECT_EQ(w.counter(), in.size());
  w.reset();
  m2.write(ap, in.data(), w);
  std::vector<float> o1(in.size()), o2(in.size());
  m1.read(ap, o1.data());
  m2.read(ap, o2.data());
  EXPECT_EQ(o1, o2);
  const auto up = std::count(o1.begin(), o1.end(), 1.0078125f);
  const auto down = std::count(o1.begin(), o1.end(), 1.0f);
  EXPECT_EQ(up + down, static_cast<long>(in.size()));
  EXPECT_NEAR(up / double(in.size()), 0.25, 0.1);
  // An RNE writer gives RNE bits.
  m1.write(ap, in.data(), rne);
  m1.read(ap, o1.data());
  EXPECT_EQ(std::count(o1.begin(), o1.end(), 1.0f), static_cast<long>(in.size()));
}

// ------------------------------------------------------ load / store by dtype

TEST(LoadStore, EveryDtypeRoundsAsSpecified) {
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> d(-300.0f, 300.0f);
  uint8_t buf[4 * 8];
  for (int i = 0; i < 20000; ++i) {
    const float v = i % 3 ? d(rng) : float_of(rng());
    if (std::isnan(v)) continue;
    const ptrdiff_t k = i % 8;
    numerics::store(isa::Dtype::fp32, buf, k, v);
    ASSERT_EQ(bits_of(numerics::load(isa::Dtype::fp32, buf, k)), bits_of(v));
    numerics::store(isa::Dtype::bf16, buf, k, v);
    ASSERT_EQ(bits_of(numerics::load(isa::Dtype::bf16, buf, k)), uint32_t{bf16().round(v)} << 16);
    numerics::store(isa::Dtype::fp16, buf, k, v);
    uint16_t h;
    std::memcpy(&h, buf + 2 * k, 2);
    ASSERT_EQ(h, f16().round(v));
    numerics::store(isa::Dtype::int8, buf, k, v);
    ASSERT_EQ(numerics::load(isa::Dtype::int8, buf, k), float(ref_int(v, -128, 127)));
    numerics::store(isa::Dtype::int32, buf, k, v);
    int32_t x;
    std::memcpy(&x, buf + 4 * k, 4);
    ASSERT_EQ(x, ref_int(v, INT32_MIN, INT32_MAX));
    ASSERT_EQ(numerics::load(isa::Dtype::int32, buf, k), float(x));
    numerics::store(isa::Dtype::fp8_e4m3, buf, k, v);
    ASSERT_EQ(buf[k], e4m3().round(v));
    ASSERT_EQ(bits_of(numerics::load(isa::Dtype::fp8_e4m3, buf, k)), bits_of(numerics::e4m3_to_f32(buf[k])));
    numerics::store(isa::Dtype::fp8_e5m2, buf, k, v);
    ASSERT_EQ(buf[k], e5m2().round(v));
    ASSERT_EQ(bits_of(numerics::load(isa::Dtype::fp8_e5m2, buf, k)), bits_of(numerics::e5m2_to_f32(buf[k])));
  }
}

}  // namespace
