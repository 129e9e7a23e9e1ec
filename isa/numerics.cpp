#include "isa/numerics.h"

#include <algorithm>
#include <cmath>

namespace infsim::numerics {

namespace {

// A binary floating-point storage format narrower than FP32, by its
// magnitude encodings (patterns without the sign bit).
struct Format {
  int man_bits;          // stored mantissa bits M
  int bias;              // exponent bias B; the smallest normal is 2^(1-B)
  uint32_t max_finite;   // pattern of the largest finite magnitude
  uint32_t inf;          // pattern of infinity (unused when saturating)
  bool saturate;         // overflow (and Inf) gives max_finite instead of inf
  uint32_t nan;          // canonical quiet NaN pattern
  int sign_shift;        // where the sign bit goes: 15 or 7
};
constexpr Format kF16{10, 15, 0x7bffu, 0x7c00u, false, 0x7e00u, 15};
constexpr Format kBf16{7, 127, 0x7f7fu, 0x7f80u, false, 0x7fc0u, 15};
constexpr Format kE4m3{3, 7, 0x7eu, 0x7eu, true, 0x7fu, 7};
constexpr Format kE5m2{2, 15, 0x7bu, 0x7cu, false, 0x7eu, 7};

// Magnitude pattern of a finite FP32 magnitude `abs` (bits, sign cleared)
// rounded to the format, before overflow handling: the result may exceed
// max_finite. Works on integers only: |f| = S * 2^sexp exactly, the result's
// quantum is 2^(te - M) with te the exponent of |f|'s binade clamped below at
// the format's smallest normal exponent, and `shift` low bits of S are
// discarded. RNE compares the discarded bits D with half a quantum;
// stochastic rounding rounds up when a uniform draw in [0, 2^shift) is below D.
template <bool Stochastic>
uint32_t round_magnitude(uint32_t abs, const Format& fmt, uint32_t random) {
  if (abs == 0) return 0;
  const uint32_t biased = abs >> 23;
  const uint32_t s = biased ? (abs & 0x7fffffu) | 0x800000u : abs;
  const int sexp = (biased ? static_cast<int>(biased) : 1) - 150;  // weight of S's lowest bit
  const int msb = 31 - __builtin_clz(s);
  const int te = std::max(msb + sexp, 1 - fmt.bias);
  const int shift = te - fmt.man_bits - sexp;  // >= 13 for every format here
  const uint32_t exp_base = static_cast<uint32_t>(te + fmt.bias - 1) << fmt.man_bits;
  if (shift <= 0) return exp_base + (s << -shift);  // exact (not reached for formats narrower than FP32)
  uint64_t k = 0, d = s;  // kept and discarded parts
  if (shift < 32) {
    k = s >> shift;
    d = s & ((1u << shift) - 1);
  }
  bool up;
  if constexpr (Stochastic) {
    if (shift <= 32) {
      up = (random >> (32 - shift)) < d;
    } else if (shift < 64) {
      // Probability rounded up to a multiple of 2^-32.
      const int extra = shift - 32;
      up = uint64_t{random} < ((d + (uint64_t{1} << extra) - 1) >> extra);
    } else {
      up = d != 0 && random == 0;
    }
  } else {
    // D < 2^24 <= half a quantum once shift > 24: round down.
    const uint64_t half = shift <= 25 ? uint64_t{1} << (shift - 1) : uint64_t{1} << 25;
    up = d > half || (d == half && (k & 1u));
  }
  return exp_base + static_cast<uint32_t>(k) + (up ? 1u : 0u);
}

template <bool Stochastic>
uint32_t narrow(float f, const Format& fmt, uint32_t random) {
  const uint32_t u = bits_of(f);
  const uint32_t sign = (u >> 31) << fmt.sign_shift;
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | fmt.nan;
  if (abs == 0x7f800000u) return sign | (fmt.saturate ? fmt.max_finite : fmt.inf);
  const uint32_t mag = round_magnitude<Stochastic>(abs, fmt, random);
  if (mag > fmt.max_finite) return sign | (fmt.saturate ? fmt.max_finite : fmt.inf);
  return sign | mag;
}

}  // namespace

uint8_t f32_to_e4m3(float f) { return static_cast<uint8_t>(narrow<false>(f, kE4m3, 0)); }
uint8_t f32_to_e5m2(float f) { return static_cast<uint8_t>(narrow<false>(f, kE5m2, 0)); }

uint16_t f32_to_bf16_sr(float f, uint32_t random) {
  if (std::isnan(f)) return f32_to_bf16(f);  // quiet NaN, payload kept as with RNE
  return static_cast<uint16_t>(narrow<true>(f, kBf16, random));
}
uint16_t f32_to_f16_sr(float f, uint32_t random) { return static_cast<uint16_t>(narrow<true>(f, kF16, random)); }
uint8_t f32_to_e4m3_sr(float f, uint32_t random) { return static_cast<uint8_t>(narrow<true>(f, kE4m3, random)); }
uint8_t f32_to_e5m2_sr(float f, uint32_t random) { return static_cast<uint8_t>(narrow<true>(f, kE5m2, random)); }

void store_stochastic(isa::Dtype t, uint8_t* base, ptrdiff_t i, float v, uint32_t random) {
  switch (t) {
    case isa::Dtype::bf16: {
      const uint16_t h = f32_to_bf16_sr(v, random);
      std::memcpy(base + 2 * i, &h, 2);
      return;
    }
    case isa::Dtype::fp16: {
      const uint16_t h = f32_to_f16_sr(v, random);
      std::memcpy(base + 2 * i, &h, 2);
      return;
    }
    case isa::Dtype::fp8_e4m3:
      base[i] = f32_to_e4m3_sr(v, random);
      return;
    case isa::Dtype::fp8_e5m2:
      base[i] = f32_to_e5m2_sr(v, random);
      return;
    default:
      store(t, base, i, v);
      return;
  }
}

namespace {
// Runs of n elements `step` elements apart. Loops over plain parameters:
// stores through `base` (bytes) may alias anything in memory, a lambda's
// captures included.
template <isa::Dtype T>
void load_run(const uint8_t* base, ptrdiff_t step, size_t n, float* out) {
  if (T == isa::Dtype::fp32 && step == 1) {
    std::memcpy(out, base, n * 4);
  } else if (step == 1) {
    for (size_t i = 0; i < n; ++i) out[i] = load<T>(base, static_cast<ptrdiff_t>(i));
  } else {
    for (size_t i = 0; i < n; ++i) out[i] = load<T>(base, static_cast<ptrdiff_t>(i) * step);
  }
}
template <isa::Dtype T>
void store_run(uint8_t* base, ptrdiff_t step, size_t n, const float* in) {
  if (T == isa::Dtype::fp32 && step == 1) {
    std::memcpy(base, in, n * 4);
  } else if (step == 1) {
    for (size_t i = 0; i < n; ++i) store<T>(base, static_cast<ptrdiff_t>(i), in[i]);
  } else {
    for (size_t i = 0; i < n; ++i) store<T>(base, static_cast<ptrdiff_t>(i) * step, in[i]);
  }
}

// The innermost step in elements.
ptrdiff_t run_step(isa::Dtype t, const Layout& l) { return l.stride[4] / static_cast<ptrdiff_t>(isa::dtype_bytes(t)); }
}  // namespace

void load_elements(isa::Dtype t, const uint8_t* base, const Layout& l, float* out) {
  const ptrdiff_t step = run_step(t, l);
  const size_t n = l.count[4];
  with_dtype(t, [&](auto T) {
    l.for_each_run([&](int64_t offset) {
      load_run<T>(base + offset, step, n, out);
      out += n;
    });
  });
}

void store_elements(isa::Dtype t, uint8_t* base, const Layout& l, const float* in) {
  const ptrdiff_t step = run_step(t, l);
  const size_t n = l.count[4];
  with_dtype(t, [&](auto T) {
    l.for_each_run([&](int64_t offset) {
      store_run<T>(base + offset, step, n, in);
      in += n;
    });
  });
}

void store_elements(isa::Dtype t, uint8_t* base, const Layout& l, const float* in, Rounding& rounding) {
  if (!rounding.is_stochastic() || !stochastic_capable(t)) return store_elements(t, base, l, in);
  const ptrdiff_t step = run_step(t, l);
  l.for_each_run([&](int64_t offset) {
    for (uint64_t i = 0; i < l.count[4]; ++i)
      store_stochastic(t, base + offset, static_cast<ptrdiff_t>(i) * step, *in++, rounding.next());
  });
}

uint16_t f32_to_f16(float f) {
  const uint32_t u = bits_of(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // quiet NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to Inf
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero) in FP16: value = abs * 2^24 in units of the
    // smallest subnormal; round the integer part RNE.
    const float scaled = float_of(abs) * 16777216.0f;  // exact: power-of-two scale
    const float r = std::nearbyint(scaled);           // default mode is RNE
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(r));
  }
  // Normal: rebias exponent (127 -> 15) and round the 13 dropped mantissa bits.
  const uint32_t rebiased = abs - (112u << 23);
  const uint32_t lsb = (rebiased >> 13) & 1u;
  return static_cast<uint16_t>(sign | ((rebiased + 0xfffu + lsb) >> 13));
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0) {
    const float v = static_cast<float>(man) * (1.0f / 16777216.0f);  // man * 2^-24
    return float_of(bits_of(v) | sign);
  }
  if (exp == 31) return float_of(sign | 0x7f800000u | (man << 13));
  return float_of(sign | ((exp + 112u) << 23) | (man << 13));
}

int8_t f32_to_int8(float f) {
  if (std::isnan(f)) return 0;
  const float r = std::nearbyint(f);
  if (r >= 127.0f) return 127;
  if (r <= -128.0f) return -128;
  return static_cast<int8_t>(r);
}

int32_t f32_to_int32(float f) {
  if (std::isnan(f)) return 0;
  const double r = std::nearbyint(static_cast<double>(f));
  if (r >= 2147483647.0) return INT32_MAX;
  if (r <= -2147483648.0) return INT32_MIN;
  return static_cast<int32_t>(r);
}

}  // namespace infsim::numerics
