// Element types and their conversions: the numerics specification of the
// datapaths. Every narrowing rounds to nearest, ties to even (RNE).
//   FP32 -> BF16/FP16: RNE; overflow gives +-Inf; NaN stays a quiet NaN.
//   float -> INT8/INT32: RNE, saturating at the type's range; NaN gives 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

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
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  const uint32_t lsb = (u >> 16) & 1u;
  return static_cast<uint16_t>((u + 0x7fffu + lsb) >> 16);
}
inline float bf16_to_f32(uint16_t h) { return float_of(static_cast<uint32_t>(h) << 16); }

uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);
int8_t f32_to_int8(float f);
int32_t f32_to_int32(float f);

// Reads element i of a buffer of type t as FP32 (INT32 values above 2^24 lose precision).
inline float load(isa::Dtype t, const uint8_t* base, ptrdiff_t i) {
  switch (t) {
    case isa::Dtype::fp32: {
      float f;
      std::memcpy(&f, base + 4 * i, 4);
      return f;
    }
    case isa::Dtype::bf16: {
      uint16_t h;
      std::memcpy(&h, base + 2 * i, 2);
      return bf16_to_f32(h);
    }
    case isa::Dtype::fp16: {
      uint16_t h;
      std::memcpy(&h, base + 2 * i, 2);
      return f16_to_f32(h);
    }
    case isa::Dtype::int8:
      return static_cast<float>(static_cast<int8_t>(base[i]));
    case isa::Dtype::int32: {
      int32_t v;
      std::memcpy(&v, base + 4 * i, 4);
      return static_cast<float>(v);
    }
  }
  return 0.0f;
}

// Writes FP32 value v as element i of type t, rounding as specified above.
inline void store(isa::Dtype t, uint8_t* base, ptrdiff_t i, float v) {
  switch (t) {
    case isa::Dtype::fp32:
      std::memcpy(base + 4 * i, &v, 4);
      return;
    case isa::Dtype::bf16: {
      const uint16_t h = f32_to_bf16(v);
      std::memcpy(base + 2 * i, &h, 2);
      return;
    }
    case isa::Dtype::fp16: {
      const uint16_t h = f32_to_f16(v);
      std::memcpy(base + 2 * i, &h, 2);
      return;
    }
    case isa::Dtype::int8:
      base[i] = static_cast<uint8_t>(f32_to_int8(v));
      return;
    case isa::Dtype::int32: {
      const int32_t x = f32_to_int32(v);
      std::memcpy(base + 4 * i, &x, 4);
      return;
    }
  }
}

}  // namespace infsim::numerics
