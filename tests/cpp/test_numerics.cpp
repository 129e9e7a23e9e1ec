// Numerics tests: the conversions of isa/numerics.h against references built
// here independently. A narrowing reference enumerates every finite value of
// the target format (computed in double from sign, exponent and mantissa),
// finds the two representable neighbours of the input, and picks the nearer,
// ties to the even encoding; overflow follows IEEE 754 (a value at or beyond
// max + half an ulp becomes infinity).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "isa/numerics.h"

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
  }
}

}  // namespace
