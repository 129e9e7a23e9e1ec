#include "sim/core/systolic_array.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define INFSIM_X86 1
#endif

namespace infsim::sim {

uint64_t inject_cycle(isa::Dtype rate, uint64_t column) {
  if (rate == isa::Dtype::fp32) return 4 * column;
  if (rate == isa::Dtype::int8) return column / 2;
  return column;
}

uint64_t inject_cycles(isa::Dtype rate, uint64_t n) { return n ? inject_cycle(rate, n - 1) + 1 : 0; }

void SystolicTiming::reset() {
  ready_ = {};
  free_from_ = {};
  load_port_free_ = injector_free_ = 0;
  active_ = -1;
  loads_ = 0;
}

SystolicTiming::Load SystolicTiming::load(uint64_t now, uint32_t cols, isa::Dtype dtype) {
  const int b = loads_++ % 2;
  const uint64_t start = std::max({now, load_port_free_, free_from_[b]});
  const uint64_t ready = start + (dtype == isa::Dtype::fp32 ? 4u * cols : cols);
  ready_[b] = load_port_free_ = ready;
  active_ = b;
  return {b, start, ready};
}

SystolicTiming::Multiply SystolicTiming::multiply(uint64_t now, uint64_t n, uint32_t cols, isa::Dtype rate) {
  const int b = active_;
  const uint64_t start = std::max({now, ready_[b], injector_free_});
  injector_free_ = start + std::max<uint64_t>(min_cycles_, inject_cycles(rate, n));
  // Drained once the last column has passed PE(rows-1, cols-1).
  free_from_[b] = start + inject_cycle(rate, n - 1) + rows_ + cols_;
  return {start, injector_free_, start + inject_cycle(rate, n - 1) + rows_ + cols};
}

// --- Arithmetic --------------------------------------------------------------
//
// One kernel source serves every instruction set. V is a GCC vector of W
// floats (a plain float when W = 1, for the last columns); the compiler maps
// it to the registers of the target of the function the kernel is inlined
// into (zmm for AVX-512, ymm for AVX2, SSE or whatever the baseline has).
// Every variant performs, for each output element, exactly the operations of
// the definition in the same order: a sum from +0.0f over k increasing, then
// the PSUM accumulate. Vectorising across n and blocking over m only change
// which elements are computed side by side.
namespace {

// Vector values never cross a call: every kernel function is inlined into the
// ISA-specific entry point below, so GCC's ABI notes do not apply.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#define INFSIM_INLINE inline __attribute__((always_inline))

// (Spelled out: GCC drops a vector_size that depends on a template parameter.)
template <int W>
struct VecOf;
template <>
struct VecOf<16> {
  using type = float __attribute__((vector_size(64)));
};
template <>
struct VecOf<8> {
  using type = float __attribute__((vector_size(32)));
};
template <>
struct VecOf<4> {
  using type = float __attribute__((vector_size(16)));
};
template <>
struct VecOf<1> {
  using type = float;
};

template <typename V>
INFSIM_INLINE void load(V& v, const float* p) {
  __builtin_memcpy(&v, p, sizeof v);
}
template <typename V>
INFSIM_INLINE void store(float* p, const V& v) {
  __builtin_memcpy(p, &v, sizeof v);
}

struct Operands {
  const float *w, *x;
  float* out;
  uint32_t k, m, n;
  size_t out_stride;
  bool accumulate;
};

// acc = acc + x * s. Unfused, the product is rounded first, as the
// definition says. Fused (one rounding) is only used when every product is
// exact in FP32 (see products_exact), and then gives the same bits.
template <bool Fused, typename V>
INFSIM_INLINE void madd(V& acc, const V& x, float s) {
#ifdef INFSIM_X86
  // GCC's builtins rather than the intrinsics: an intrinsic cannot be inlined
  // into this (default-target) template, while a builtin is only expanded
  // after the template has been inlined into its AVX function. s - V{} is s
  // in every lane (GCC broadcasts a scalar operand; s - (+0) is s, -0
  // included, and is folded away).
  if constexpr (Fused) {
    if constexpr (sizeof(V) == 64)
      acc = __builtin_ia32_vfmaddps512_mask(x, s - V{}, acc, -1, _MM_FROUND_CUR_DIRECTION);
    else if constexpr (sizeof(V) == 32)
      acc = __builtin_ia32_vfmaddps256(x, s - V{}, acc);
    else
      acc = __builtin_fmaf(x, s, acc);
    return;
  }
#endif
  acc = acc + x * s;
}

// The Rows x (Cols * W) outputs at (m0, n0): their sums stay in registers for
// the whole k loop, and each row of x loaded serves all Rows.
template <bool Fused, typename V, int Rows, int Cols>
INFSIM_INLINE void tile(const Operands& op, uint32_t m0, uint32_t n0) {
  constexpr int W = sizeof(V) / sizeof(float);
  V acc[Rows][Cols];
#pragma GCC unroll 16
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < Cols; ++c) acc[r][c] = V{};  // +0.0f
  for (uint32_t ki = 0; ki < op.k; ++ki) {
    V xv[Cols];
#pragma GCC unroll 16
    for (int c = 0; c < Cols; ++c) load(xv[c], op.x + size_t{ki} * op.n + n0 + c * W);
    const float* wk = op.w + size_t{ki} * op.m + m0;
#pragma GCC unroll 16
    for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 16
      for (int c = 0; c < Cols; ++c) madd<Fused>(acc[r][c], xv[c], wk[r]);
  }
#pragma GCC unroll 16
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < Cols; ++c) {
      float* o = op.out + (m0 + r) * op.out_stride + n0 + c * W;
      V v = acc[r][c];
      if (op.accumulate) {
        V prev;
        load(prev, o);
        v = prev + v;
      }
      store(o, v);
    }
}

// Rows m0.. of one column block: tiles of Rows, then halves for what is left.
template <bool Fused, typename V, int Rows, int Cols>
INFSIM_INLINE void rows_from(const Operands& op, uint32_t m0, uint32_t n0) {
  for (; m0 + Rows <= op.m; m0 += Rows) tile<Fused, V, Rows, Cols>(op, m0, n0);
  if constexpr (Rows > 1) rows_from<Fused, V, Rows / 2, Cols>(op, m0, n0);
}

// Column blocks of Cols vectors (their x rows stay in L1 across all m), then
// single vectors, then single columns.
template <bool Fused, int W, int Rows, int Cols>
INFSIM_INLINE void blocks(const Operands& op) {
  using V = typename VecOf<W>::type;
  uint32_t n0 = 0;
  for (; n0 + W * Cols <= op.n; n0 += W * Cols) rows_from<Fused, V, Rows, Cols>(op, 0, n0);
  for (; n0 + W <= op.n; n0 += W) rows_from<Fused, V, Rows, 1>(op, 0, n0);
  for (; n0 < op.n; ++n0) rows_from<Fused, float, Rows, 1>(op, 0, n0);
}

// Exponent range and low significand bits of a set of values.
struct Range {
  uint32_t emin = 255, emax = 0;  // biased exponents of the non-zero values
  uint32_t low = 0;               // OR of the 12 lowest significand bits
};

INFSIM_INLINE Range range_of(const float* v, size_t n) {
  uint32_t emin = 255, emax = 0, low = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t u;
    __builtin_memcpy(&u, v + i, 4);
    u &= 0x7fffffffu;
    const uint32_t e = u >> 23;
    emin = std::min(emin, u ? e : 255u);
    emax = std::max(emax, e);
    low |= u;
  }
  return {emin, emax, low & 0xfffu};
}

// Whether every product w[k][m] * x[k][n] is exact in FP32, so that a fused
// multiply-add rounds like the product-then-sum of the definition. True when
// all values are finite and normal (or zero), have at most 12 significant
// bits (BF16, FP16 and FP8 values do), and every product of non-zero values
// lies in FP32's normal range: |w x| >= 2^(ew + ex) >= 2^-126 and
// |w x| < 2^(ew + ex + 2) <= 2^128. BF16 shares FP32's exponent range, so
// tiny or huge BF16 operands fail this and take the unfused path.
INFSIM_INLINE bool products_exact(const Operands& op) {
  const Range w = range_of(op.w, size_t{op.k} * op.m), x = range_of(op.x, size_t{op.k} * op.n);
  return !w.low && !x.low && w.emin >= 1 && x.emin >= 1 && w.emax < 255 && x.emax < 255 &&
         w.emin + x.emin >= 127 + 127 - 126 && w.emax + x.emax + 2 <= 127 + 127 + 128;
}

template <bool HasFma, int W, int Rows, int Cols>
INFSIM_INLINE void matmul(const Operands& op) {
  if (HasFma && products_exact(op))
    blocks<HasFma, W, Rows, Cols>(op);
  else
    blocks<false, W, Rows, Cols>(op);
}

void matmul_portable(const Operands& op) { matmul<false, 4, 4, 2>(op); }
#ifdef INFSIM_X86
// 16 zmm sums per tile (of 32 registers); 8 ymm sums (of 16) for AVX2.
__attribute__((target("avx2,fma"))) void matmul_avx2(const Operands& op) { matmul<true, 8, 4, 2>(op); }
__attribute__((target("avx512f,fma"))) void matmul_avx512(const Operands& op) { matmul<true, 16, 4, 4>(op); }
#endif
#pragma GCC diagnostic pop

MatmulIsa best_isa() {
#ifdef INFSIM_X86
  if (matmul_isa_supported(MatmulIsa::avx512)) return MatmulIsa::avx512;
  if (matmul_isa_supported(MatmulIsa::avx2)) return MatmulIsa::avx2;
#endif
  return MatmulIsa::portable;
}

}  // namespace

bool matmul_isa_supported(MatmulIsa isa) {
  switch (isa) {
    case MatmulIsa::portable:
      return true;
#ifdef INFSIM_X86
    case MatmulIsa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case MatmulIsa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#endif
    default:
      return false;
  }
}

void systolic_matmul(MatmulIsa isa, const float* w, const float* x, float* out, uint32_t k, uint32_t m, uint32_t n,
                     bool accumulate, size_t out_stride) {
  const Operands op{w, x, out, k, m, n, out_stride ? out_stride : n, accumulate};
  switch (isa) {
#ifdef INFSIM_X86
    case MatmulIsa::avx512:
      return matmul_avx512(op);
    case MatmulIsa::avx2:
      return matmul_avx2(op);
#endif
    default:
      return matmul_portable(op);
  }
}

void systolic_matmul(const float* w, const float* x, float* out, uint32_t k, uint32_t m, uint32_t n, bool accumulate,
                     size_t out_stride) {
  static const MatmulIsa isa = best_isa();
  systolic_matmul(isa, w, x, out, k, m, n, accumulate, out_stride);
}

}  // namespace infsim::sim
