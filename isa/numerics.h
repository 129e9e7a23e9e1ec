// Element types and their conversions: the numerics specification of the
// datapaths. Every narrowing rounds to nearest, ties to even (RNE), unless a
// stochastic Rounding is passed to store() (below).
//   FP32 -> BF16/FP16: RNE; overflow gives +-Inf; NaN stays a quiet NaN.
//   FP32 -> FP8 E4M3 (OCP E4M3FN: bias 7, no Inf, max 448, NaN = S.1111.111):
//     RNE; magnitudes above 448 (and +-Inf) SATURATE to +-448; NaN -> S.1111.111.
//   FP32 -> FP8 E5M2 (IEEE-like: bias 15, max 57344): RNE; magnitudes
//     >= 61440 (max + half an ulp) give +-Inf; NaN -> S.11111.10 (quiet).
//   Subnormal results are produced (never flushed) in every float format.
//   float -> INT8/INT32: RNE, saturating at the type's range; NaN gives 0.
//   Every widening (BF16/FP16/FP8/INT8 -> FP32) is exact.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "isa_gen.h"

namespace infsim::numerics {

inline uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  const uint32_t u = bits_of(f);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (u >> 16) | 0x40u;
  // A select rather than an early return, so that loops of it vectorise.
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}
inline float bf16_to_f32(uint16_t h) { return float_of(static_cast<uint32_t>(h) << 16); }

uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);
int8_t f32_to_int8(float f);
int32_t f32_to_int32(float f);

// FP8 (RNE narrowing, exact widening; behaviour at the range limits above).
uint8_t f32_to_e4m3(float f);
uint8_t f32_to_e5m2(float f);

// Exact widening of an 8-bit float with E exponent bits (bias 2^(E-1)-1) and
// 7-E mantissa bits. IEEE-like formats (E5M2) have Inf and NaN in the top
// exponent; E4M3FN uses the top exponent for normal values except the one
// NaN pattern S.1111.111. NaN payload bits are kept, like f16_to_f32.
template <int E, bool Ieee>
inline float fp8_to_f32(uint8_t h) {
  constexpr int M = 7 - E, Bias = (1 << (E - 1)) - 1;
  constexpr uint32_t ExpMax = (1u << E) - 1, ManMask = (1u << M) - 1;
  const uint32_t sign = static_cast<uint32_t>(h & 0x80u) << 24;
  const uint32_t exp = (h >> M) & ExpMax, man = h & ManMask;
  if (Ieee ? exp == ExpMax : (exp == ExpMax && man == ManMask))
    return float_of(sign | 0x7f800000u | (man << (23 - M)) | (Ieee ? 0u : 0x400000u));  // Inf or NaN
  if (exp == 0) {  // subnormal: man * 2^(1 - bias - M), exact
    const float v = static_cast<float>(man) * float_of(static_cast<uint32_t>(127 + 1 - Bias - M) << 23);
    return float_of(bits_of(v) | sign);
  }
  return float_of(sign | ((exp + 127u - Bias) << 23) | (man << (23 - M)));
}
inline float e4m3_to_f32(uint8_t h) { return fp8_to_f32<4, false>(h); }
inline float e5m2_to_f32(uint8_t h) { return fp8_to_f32<5, true>(h); }

// Stochastic rounding of a non-NaN value: with q the distance between the two
// representable neighbours of |f| (the lower one towards zero), the result
// is the upper neighbour (away from zero) with probability
// (|f| - lower) / q, else the lower. `random` is 32 uniformly distributed
// bits; the probability is exact whenever the discarded part of f has at
// most 32 bits (always for normal results) and is rounded up to a multiple
// of 2^-32 otherwise. Beyond the largest finite value, infinity counts as the
// next value up for BF16, FP16 and E5M2 (2^(emax+1)), while E4M3 saturates
// to +-448. Inf and NaN convert as with RNE.
uint16_t f32_to_bf16_sr(float f, uint32_t random);
uint16_t f32_to_f16_sr(float f, uint32_t random);
uint8_t f32_to_e4m3_sr(float f, uint32_t random);
uint8_t f32_to_e5m2_sr(float f, uint32_t random);

// Whether narrowing to t may round stochastically (BF16, FP16, FP8; never
// integers, which always round to nearest even, nor FP32).
inline bool stochastic_capable(isa::Dtype t) {
  return t == isa::Dtype::bf16 || t == isa::Dtype::fp16 || t == isa::Dtype::fp8_e4m3 || t == isa::Dtype::fp8_e5m2;
}

// How one writer (an engine or a DMA queue) rounds its narrowing conversions.
// Default-constructed: round to nearest even. Stochastic: every narrowing to
// a stochastic-capable dtype draws 32 random bits from a counter-based
// generator, a hash of (seed, stream, counter) with the counter advanced once
// per converted element. Its whole state is the counter, so the same seed,
// stream and sequence of conversions give the same bits on every run and
// machine; reset() returns it to the start of the sequence.
class Rounding {
 public:
  Rounding() = default;
  static Rounding stochastic(uint64_t seed, uint64_t stream) {
    Rounding r;
    r.stochastic_ = true;
    r.seed_ = seed;
    r.stream_ = stream;
    return r;
  }
  bool is_stochastic() const { return stochastic_; }
  void reset() { counter_ = 0; }
  uint64_t counter() const { return counter_; }
  // The next 32 random bits of the stream.
  uint32_t next() { return static_cast<uint32_t>(hash(seed_, stream_, counter_++) >> 32); }

  // SplitMix64's finaliser over the three words: a bijective 64-bit mixer,
  // statistically uniform for consecutive counters.
  static uint64_t hash(uint64_t seed, uint64_t stream, uint64_t counter) {
    uint64_t z = seed ^ mix(stream + 0x9e3779b97f4a7c15ull) ^ (counter * 0xd1b54a32d192ed03ull);
    return mix(z);
  }

 private:
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  bool stochastic_ = false;
  uint64_t seed_ = 0, stream_ = 0, counter_ = 0;
};

// Calls fn(std::integral_constant<isa::Dtype, t>{}): code that handles
// elements one at a time does the switch on the dtype once, outside its loop.
template <typename Fn>
decltype(auto) with_dtype(isa::Dtype t, Fn&& fn) {
  using isa::Dtype;
  switch (t) {
    case Dtype::fp32: return fn(std::integral_constant<Dtype, Dtype::fp32>{});
    case Dtype::bf16: return fn(std::integral_constant<Dtype, Dtype::bf16>{});
    case Dtype::fp16: return fn(std::integral_constant<Dtype, Dtype::fp16>{});
    case Dtype::int8: return fn(std::integral_constant<Dtype, Dtype::int8>{});
    case Dtype::int32: return fn(std::integral_constant<Dtype, Dtype::int32>{});
    case Dtype::fp8_e4m3: return fn(std::integral_constant<Dtype, Dtype::fp8_e4m3>{});
    case Dtype::fp8_e5m2: break;
  }
  return fn(std::integral_constant<Dtype, Dtype::fp8_e5m2>{});
}

// Reads element i of a buffer of type T as FP32 (INT32 values above 2^24 lose precision).
template <isa::Dtype T>
inline float load(const uint8_t* base, ptrdiff_t i) {
  using isa::Dtype;
  if constexpr (T == Dtype::fp32) {
    float f;
    std::memcpy(&f, base + 4 * i, 4);
    return f;
  } else if constexpr (T == Dtype::bf16 || T == Dtype::fp16) {
    uint16_t h;
    std::memcpy(&h, base + 2 * i, 2);
    return T == Dtype::bf16 ? bf16_to_f32(h) : f16_to_f32(h);
  } else if constexpr (T == Dtype::int8) {
    return static_cast<float>(static_cast<int8_t>(base[i]));
  } else if constexpr (T == Dtype::int32) {
    int32_t v;
    std::memcpy(&v, base + 4 * i, 4);
    return static_cast<float>(v);
  } else if constexpr (T == Dtype::fp8_e4m3) {
    return e4m3_to_f32(base[i]);
  } else {
    return e5m2_to_f32(base[i]);
  }
}
inline float load(isa::Dtype t, const uint8_t* base, ptrdiff_t i) {
  return with_dtype(t, [&](auto T) { return load<T>(base, i); });
}

// Writes FP32 value v as element i of type T, rounding as specified above (RNE).
template <isa::Dtype T>
inline void store(uint8_t* base, ptrdiff_t i, float v) {
  using isa::Dtype;
  if constexpr (T == Dtype::fp32) {
    std::memcpy(base + 4 * i, &v, 4);
  } else if constexpr (T == Dtype::bf16 || T == Dtype::fp16) {
    const uint16_t h = T == Dtype::bf16 ? f32_to_bf16(v) : f32_to_f16(v);
    std::memcpy(base + 2 * i, &h, 2);
  } else if constexpr (T == Dtype::int8) {
    base[i] = static_cast<uint8_t>(f32_to_int8(v));
  } else if constexpr (T == Dtype::int32) {
    const int32_t x = f32_to_int32(v);
    std::memcpy(base + 4 * i, &x, 4);
  } else if constexpr (T == Dtype::fp8_e4m3) {
    base[i] = f32_to_e4m3(v);
  } else {
    base[i] = f32_to_e5m2(v);
  }
}
inline void store(isa::Dtype t, uint8_t* base, ptrdiff_t i, float v) {
  with_dtype(t, [&](auto T) { store<T>(base, i, v); });
}

// The same with the writer's rounding: stochastic rounding applies to BF16,
// FP16 and FP8 destinations and draws one random word per element stored;
// everything else (and a round-to-nearest-even Rounding) is store() above.
void store_stochastic(isa::Dtype t, uint8_t* base, ptrdiff_t i, float v, uint32_t random);
inline void store(isa::Dtype t, uint8_t* base, ptrdiff_t i, float v, Rounding& r) {
  if (!r.is_stochastic() || !stochastic_capable(t)) return store(t, base, i, v);
  store_stochastic(t, base, i, v, r.next());
}

// Where a block of elements lies: five nested dimensions, outermost first
// (unused ones of count 1). Element (i0, ..., i4) is at byte offset
// i0 * stride[0] + ... + i4 * stride[4], and the elements are visited in that
// order, i4 innermost; a run is the innermost dimension.
struct Layout {
  std::array<uint64_t, 5> count{1, 1, 1, 1, 1};
  std::array<int64_t, 5> stride{0, 0, 0, 0, 0};

  // n elements of `size` bytes, one after another.
  static Layout packed(uint64_t n, unsigned size) {
    Layout l;
    l.count[4] = n;
    l.stride[4] = size;
    return l;
  }
  // Calls fn(byte offset of the run's first element) for every run, in order.
  template <typename Fn>
  void for_each_run(Fn&& fn) const {
    for (uint64_t a = 0; a < count[0]; ++a)
      for (uint64_t b = 0; b < count[1]; ++b)
        for (uint64_t c = 0; c < count[2]; ++c)
          for (uint64_t d = 0; d < count[3]; ++d)
            fn(static_cast<int64_t>(a) * stride[0] + static_cast<int64_t>(b) * stride[1] +
               static_cast<int64_t>(c) * stride[2] + static_cast<int64_t>(d) * stride[3]);
  }
};

// The elements of type t laid out as l from base, to or from FP32 values
// packed in visiting order: the element functions above, applied in that
// order (so a stochastic Rounding draws in it), with the dtype switch outside
// the loops and contiguous runs in loops the compiler vectorises.
void load_elements(isa::Dtype t, const uint8_t* base, const Layout& l, float* out);
void store_elements(isa::Dtype t, uint8_t* base, const Layout& l, const float* in);
void store_elements(isa::Dtype t, uint8_t* base, const Layout& l, const float* in, Rounding& r);

}  // namespace infsim::numerics
