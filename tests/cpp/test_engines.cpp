// Engine tests: programs built here, run on the SystemC chip, compared bit for
// bit with references computed in plain C++ from the documented numerics
// (BF16/FP16 inputs, FP32 arithmetic, sums in increasing k, RNE narrowing),
// plus the run-time failures and exact cycle counts of tiny programs.
//
// A process holds one chip (SystemC elaborates once), so every test here uses
// the inf1 configuration.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "isa/executable.h"
#include "isa/isa_support.h"
#include "isa/numerics.h"
#include "sim/chip/chip.h"
#include "sim/config.h"
#include "tests/cpp/dma_endpoints.h"

using namespace infsim;
using isa::Dtype;
using isa::Engine;
using isa::Location;

namespace {

const sim::ChipConfig& config() {
  static const sim::ChipConfig c = sim::ChipConfig::named("inf1");
  return c;
}

sim::RunResult run(const isa::Executable& exe, const std::map<std::string, std::vector<uint8_t>>& inputs = {}) {
  return sim::Chip::instance(config()).run(exe, inputs);
}

// ------------------------------------------------------------ program builder

isa::DmaEndpoint dram(uint64_t addr, Dtype dt, uint32_t parts, int64_t part_step, std::vector<isa::FreeDim> dims) {
  return test::dram_ep(addr, dt, parts, part_step, std::move(dims));
}
isa::DmaEndpoint onchip(Location loc, uint32_t p0, uint32_t np, uint64_t offset, Dtype dt,
                        std::vector<isa::FreeDim> dims) {
  return test::onchip_ep(loc, p0, np, offset, dt, std::move(dims));
}
isa::DmaEndpoint sbuf(uint32_t p0, uint32_t np, uint64_t offset, Dtype dt, std::vector<isa::FreeDim> dims) {
  return onchip(Location::sbuf, p0, np, offset, dt, std::move(dims));
}
isa::DmaEndpoint psum(uint32_t p0, uint32_t np, uint64_t offset, Dtype dt, std::vector<isa::FreeDim> dims) {
  return onchip(Location::psum, p0, np, offset, dt, std::move(dims));
}

struct Program {
  isa::Executable exe;
  Program() {
    exe.num_cores = 1;
    exe.source_ops = {"test-op"};
  }
  void input(const std::string& name, Dtype dt, std::vector<int64_t> shape, uint64_t offset) {
    exe.tensors.push_back({name, isa::TensorKind::input, dt, std::move(shape), 0, offset});
  }
  void output(const std::string& name, Dtype dt, std::vector<int64_t> shape, uint64_t offset) {
    exe.tensors.push_back({name, isa::TensorKind::output, dt, std::move(shape), 0, offset});
  }
  uint32_t dma(const isa::DmaEndpoint& src, const isa::DmaEndpoint& dst) {
    exe.dma.push_back({src, dst});
    return static_cast<uint32_t>(exe.dma.size() - 1);
  }
  void emit(Engine e, const std::string& line) {
    isa::Stream* s = nullptr;
    for (auto& x : exe.streams)
      if (x.engine == e) s = &x;
    if (!s) {
      exe.streams.emplace_back();
      s = &exe.streams.back();
      s->engine = e;
    }
    s->instructions.push_back(isa::assemble(line));
    s->source_op.push_back(0);
  }
};

// ----------------------------------------------------------------- data

std::vector<uint8_t> bytes_of(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}
std::vector<float> floats_of(const std::vector<uint8_t>& b) {
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}

std::vector<float> random_floats(size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

float bf16(float f) { return numerics::bf16_to_f32(numerics::f32_to_bf16(f)); }
float fp16(float f) { return numerics::f16_to_f32(numerics::f32_to_f16(f)); }

// Bit-exact, except that any NaN matches any NaN (which NaN x86 propagates
// depends on operand order, which the compiler may choose).
void expect_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool same = numerics::bits_of(got[i]) == numerics::bits_of(want[i]) || (std::isnan(got[i]) && std::isnan(want[i]));
    if (!same && ++bad <= 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << " (0x" << std::hex << numerics::bits_of(got[i])
                    << "), want " << std::dec << want[i] << " (0x" << std::hex << numerics::bits_of(want[i]) << ")";
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size() << " elements differ";
}

// ------------------------------------------------------------------- DMA

TEST(Dma, StridedTransposingCopiesWithCasts) {
  constexpr int A = 2, B = 3, C = 4, D = 5, N = A * B * C * D;
  std::vector<float> x = random_floats(N, -300.0f, 300.0f, 1);
  x[7] = 0.0f;
  x[8] = -0.0f;
  x[9] = 1e-30f;   // flushes to zero in FP16
  x[10] = 1e30f;   // saturates in int8, is inf in FP16
  x[11] = 2.5f;    // int8 tie
  x[12] = -3.5f;
  auto X = [&](int a, int b, int c, int d) { return x[((a * B + b) * C + c) * D + d]; };

  Program p;
  p.input("x", Dtype::fp32, {A, B, C, D}, 0);
  p.output("y1", Dtype::fp32, {D, C, A, B}, 1024);
  p.output("y2", Dtype::fp32, {D, C, B, A}, 2048);
  p.output("y3", Dtype::fp32, {D, 2, A, B, 2}, 3072);
  p.output("y4", Dtype::int32, {N}, 4096);
  // 0: x -> SBUF, partition d holds [a, b, c], cast to bf16 (partitions over the innermost axis).
  p.dma(dram(0, Dtype::fp32, D, 1, {{A, 60}, {B, 20}, {C, 5}}), sbuf(0, D, 64, Dtype::bf16, {{A * B * C, 1}}));
  // 1: SBUF (d, c, a, b) order -> y1 contiguous, bf16 -> fp32.
  p.dma(sbuf(0, D, 64, Dtype::bf16, {{C, 1}, {A, 12}, {B, 4}}), dram(1024, Dtype::fp32, D, 24, {{C, 6}, {A, 3}, {B, 1}}));
  // 2: DRAM -> DRAM, all four axes reversed (4 free dims), rows written bottom-up (negative step).
  p.dma(dram(0, Dtype::fp32, 1, 0, {{D, 1}, {C, 5}, {B, 20}, {A, 60}}),
        dram(2048 + 4 * 24 * 4, Dtype::fp32, 1, 0, {{D, -24}, {24, 1}}));
  // 3: SBUF bf16 -> PSUM fp16 through a 4-dim pattern: (c_lo, a, b, c_hi) with c = 2 c_hi + c_lo.
  p.dma(sbuf(0, D, 64, Dtype::bf16, {{2, 1}, {A, 12}, {B, 4}, {2, 2}}), psum(8, D, 0, Dtype::fp16, {{24, 1}}));
  // 4: PSUM fp16 -> y3 fp32.
  p.dma(psum(8, D, 0, Dtype::fp16, {{24, 1}}), dram(3072, Dtype::fp32, D, 24, {{24, 1}}));
  // 5, 6: x -> SBUF int8 (saturating RNE) -> y4 int32.
  p.dma(dram(0, Dtype::fp32, 1, 0, {{N, 1}}), sbuf(20, 1, 0, Dtype::int8, {{N, 1}}));
  p.dma(sbuf(20, 1, 0, Dtype::int8, {{N, 1}}), dram(4096, Dtype::int32, 1, 0, {{N, 1}}));
  p.emit(Engine::dma0, "dma_copy desc=0 count=1 signal=s0");
  p.emit(Engine::dma1, "dma_copy desc=1 count=1 wait0=s0>=1 signal=s1");
  p.emit(Engine::dma2, "dma_copy desc=2 count=1 signal=s1");
  p.emit(Engine::dma0, "dma_copy desc=3 count=2 signal=s1");
  p.emit(Engine::dma3, "dma_copy desc=5 count=2 signal=s1");
  p.emit(Engine::dma3, "end_of_program code=0 wait0=s1>=4");

  const auto r = run(p.exe, {{"x", bytes_of(x)}});
  std::vector<float> y1, y2(N), y3(N);
  for (int d = 0; d < D; ++d)
    for (int c = 0; c < C; ++c)
      for (int a = 0; a < A; ++a)
        for (int b = 0; b < B; ++b) y1.push_back(bf16(X(a, b, c, d)));
  for (int d = 0; d < D; ++d)
    for (int c = 0; c < C; ++c)
      for (int b = 0; b < B; ++b)
        for (int a = 0; a < A; ++a) y2[(D - 1 - d) * 24 + (c * B + b) * A + a] = X(a, b, c, d);
  for (int d = 0; d < D; ++d)
    for (int clo = 0; clo < 2; ++clo)
      for (int a = 0; a < A; ++a)
        for (int b = 0; b < B; ++b)
          for (int chi = 0; chi < 2; ++chi)
            y3[d * 24 + ((clo * A + a) * B + b) * 2 + chi] = fp16(bf16(X(a, b, 2 * chi + clo, d)));
  expect_bits(floats_of(r.outputs.at("y1")), y1, "y1");
  expect_bits(floats_of(r.outputs.at("y2")), y2, "y2");
  expect_bits(floats_of(r.outputs.at("y3")), y3, "y3");
  std::vector<int32_t> y4(N);
  std::memcpy(y4.data(), r.outputs.at("y4").data(), N * 4);
  for (int i = 0; i < N; ++i) {
    const double v = x[i];
    const int32_t want = v >= 127 ? 127 : v <= -128 ? -128 : static_cast<int32_t>(std::nearbyint(v));
    ASSERT_EQ(y4[i], want) << "y4[" << i << "] from " << x[i];
  }
  EXPECT_EQ(y4[11], 2);
  EXPECT_EQ(y4[12], -4);
  EXPECT_EQ(y4[10], 127);
}

// Same-dtype copies between different memories move memory to memory (DRAM
// pages through the direct memory interface): element-sized strided pieces,
// tensors straddling DRAM page boundaries (1 MiB), SBUF -> PSUM. A
// timing-only run of the program (no gather: no bytes move) gives the same
// cycles and counters.
TEST(Dma, SameDtypeCopiesAcrossDramPagesAndMemories) {
  constexpr uint32_t R = 64, C = 40;
  const uint64_t x_at = (1u << 20) - 6000, y_at = (2u << 20) - 3000;  // both cross a page boundary
  const std::vector<float> x = random_floats(R * C, -5.0f, 5.0f, 3);
  Program p;
  p.input("x", Dtype::fp32, {R, C}, x_at);
  p.output("y", Dtype::fp32, {C, R}, y_at);
  // 0: x transposed into SBUF (partition c holds column c): one 4-byte piece per element.
  p.dma(dram(x_at, Dtype::fp32, C, 1, {{R, C}}), sbuf(0, C, 256, Dtype::fp32, {{R, 1}}));
  // 1: SBUF -> PSUM partitions 8.., on chip.
  p.dma(sbuf(0, C, 256, Dtype::fp32, {{R, 1}}), psum(8, C, 128, Dtype::fp32, {{R, 1}}));
  // 2: PSUM -> y, contiguous.
  p.dma(psum(8, C, 128, Dtype::fp32, {{R, 1}}), dram(y_at, Dtype::fp32, C, R, {{R, 1}}));
  p.emit(Engine::dma0, "dma_copy desc=0 count=1 signal=s0");
  p.emit(Engine::dma1, "dma_copy desc=1 count=1 wait0=s0>=1 signal=s1");
  p.emit(Engine::dma2, "dma_copy desc=2 count=1 wait0=s1>=1 signal=s2");
  p.emit(Engine::dma2, "end_of_program code=0 wait0=s2>=1");
  const auto r = run(p.exe, {{"x", bytes_of(x)}});
  std::vector<float> want(R * C);
  for (uint32_t i = 0; i < R; ++i)
    for (uint32_t c = 0; c < C; ++c) want[c * R + i] = x[i * C + c];
  expect_bits(floats_of(r.outputs.at("y")), want, "y");

  const auto t = sim::Chip::instance(config()).run(p.exe, {{"x", bytes_of(x)}}, true);
  EXPECT_EQ(t.total_cycles, r.total_cycles);
  ASSERT_EQ(t.counters.size(), r.counters.size());
  for (size_t i = 0; i < r.counters.size(); ++i)
    EXPECT_EQ(t.counters[i].value, r.counters[i].value) << r.counters[i].path << "." << r.counters[i].name;
}

// ---------------------------------------------------------------- matmul

struct Matrix {
  int rows, cols;
  std::vector<float> v;
  float at(int r, int c) const { return v[size_t(r) * cols + c]; }
};

Matrix random_matrix(int rows, int cols, uint32_t seed) {
  return {rows, cols, random_floats(size_t(rows) * cols, -2.0f, 2.0f, seed)};
}

// dst[m][n] = init + sum_k w[k][m] * x[k][col(n)], in FP32, increasing k, BF16 operands.
std::vector<float> reference_matmul(const Matrix& w, const Matrix& x, int n, const std::function<int(int)>& col,
                                    const std::vector<float>* init) {
  const int K = w.rows, M = w.cols;
  std::vector<float> out(size_t(M) * n);
  for (int m = 0; m < M; ++m)
    for (int j = 0; j < n; ++j) {
      // The column sum forms down the array from zero; PSUM then adds it to the old value.
      float sum = 0.0f;
      for (int k = 0; k < K; ++k) sum += bf16(w.at(k, m)) * bf16(x.at(k, col(j)));
      out[size_t(m) * n + j] = init ? (*init)[size_t(m) * n + j] + sum : sum;
    }
  return out;
}

// The matmul program: overwrite, accumulate, overwrite-after-use, and a strided moving operand.
Program matmul_program() {
  Program p;
  p.input("w1", Dtype::fp32, {100, 48}, 0x0000);
  p.input("x1", Dtype::fp32, {100, 512}, 0x10000);
  p.input("w2", Dtype::fp32, {60, 48}, 0x80000);
  p.input("x2", Dtype::fp32, {60, 512}, 0x90000);
  p.input("w3", Dtype::fp32, {127, 64}, 0xd0000);
  p.input("x3", Dtype::fp32, {127, 111}, 0xe0000);
  p.output("acc", Dtype::fp32, {48, 512}, 0x200000);
  p.output("ovw", Dtype::fp32, {48, 512}, 0x220000);
  p.output("str", Dtype::fp32, {64, 37}, 0x240000);
  // Loads, fp32 -> bf16 on the way.
  p.dma(dram(0x0000, Dtype::fp32, 100, 48, {{48, 1}}), sbuf(0, 100, 0, Dtype::bf16, {{48, 1}}));
  p.dma(dram(0x10000, Dtype::fp32, 100, 512, {{512, 1}}), sbuf(0, 100, 128, Dtype::bf16, {{512, 1}}));
  p.dma(dram(0x80000, Dtype::fp32, 60, 48, {{48, 1}}), sbuf(0, 60, 1280, Dtype::bf16, {{48, 1}}));
  p.dma(dram(0x90000, Dtype::fp32, 60, 512, {{512, 1}}), sbuf(0, 60, 1408, Dtype::bf16, {{512, 1}}));
  p.dma(dram(0xd0000, Dtype::fp32, 127, 64, {{64, 1}}), sbuf(0, 127, 2432, Dtype::bf16, {{64, 1}}));
  p.dma(dram(0xe0000, Dtype::fp32, 127, 111, {{111, 1}}), sbuf(0, 127, 2560, Dtype::bf16, {{111, 1}}));
  // Stores from PSUM banks 0, 1, 2.
  p.dma(psum(0, 48, 0, Dtype::fp32, {{512, 1}}), dram(0x200000, Dtype::fp32, 48, 512, {{512, 1}}));
  p.dma(psum(0, 48, 2048, Dtype::fp32, {{512, 1}}), dram(0x220000, Dtype::fp32, 48, 512, {{512, 1}}));
  p.dma(psum(0, 64, 4096, Dtype::fp32, {{37, 1}}), dram(0x240000, Dtype::fp32, 64, 37, {{37, 1}}));
  p.emit(Engine::dma0, "dma_copy desc=0 count=4 signal=s0");
  p.emit(Engine::dma1, "dma_copy desc=4 count=2 signal=s3");
  p.emit(Engine::tensor, "load_stationary src=sbuf[0:100]@0:bf16[48:1] wait0=s0>=1");
  p.emit(Engine::tensor, "multiply_moving src=sbuf[0:100]@128:bf16[512:1] dst=psum[0:48]@0:fp32[512:1] accumulate=0");
  p.emit(Engine::tensor, "multiply_moving src=sbuf[0:100]@128:bf16[512:1] dst=psum[0:48]@2048:fp32[512:1] accumulate=0");
  p.emit(Engine::tensor, "load_stationary src=sbuf[0:60]@1280:bf16[48:1]");
  p.emit(Engine::tensor, "multiply_moving src=sbuf[0:60]@1408:bf16[512:1] dst=psum[0:48]@0:fp32[512:1] accumulate=1");
  p.emit(Engine::tensor, "multiply_moving src=sbuf[0:60]@1408:bf16[512:1] dst=psum[0:48]@2048:fp32[512:1] accumulate=0");
  p.emit(Engine::tensor, "load_stationary src=sbuf[0:127]@2432:bf16[64:1] wait0=s3>=1");
  p.emit(Engine::tensor,
         "multiply_moving src=sbuf[0:127]@2560:bf16[37:3] dst=psum[0:64]@4096:fp32[37:1] accumulate=0 signal=s1");
  p.emit(Engine::dma2, "dma_copy desc=6 count=3 wait0=s1>=1 signal=s2");
  p.emit(Engine::dma2, "end_of_program code=5 wait0=s2>=1");
  return p;
}

struct MatmulData {
  Matrix w1 = random_matrix(100, 48, 11), x1 = random_matrix(100, 512, 12), w2 = random_matrix(60, 48, 13),
         x2 = random_matrix(60, 512, 14), w3 = random_matrix(127, 64, 15), x3 = random_matrix(127, 111, 16);
  std::map<std::string, std::vector<uint8_t>> inputs() const {
    return {{"w1", bytes_of(w1.v)}, {"x1", bytes_of(x1.v)}, {"w2", bytes_of(w2.v)},
            {"x2", bytes_of(x2.v)}, {"w3", bytes_of(w3.v)}, {"x3", bytes_of(x3.v)}};
  }
};

TEST(TensorEngine, MatmulOverwriteAccumulateAndStrided) {
  const MatmulData d;
  const auto r = run(matmul_program().exe, d.inputs());
  const auto id = [](int j) { return j; };
  const std::vector<float> first = reference_matmul(d.w1, d.x1, 512, id, nullptr);
  expect_bits(floats_of(r.outputs.at("acc")), reference_matmul(d.w2, d.x2, 512, id, &first), "accumulate");
  expect_bits(floats_of(r.outputs.at("ovw")), reference_matmul(d.w2, d.x2, 512, id, nullptr), "overwrite");
  expect_bits(floats_of(r.outputs.at("str")), reference_matmul(d.w3, d.x3, 37, [](int j) { return 3 * j; }, nullptr),
              "strided");
  // The accumulation really is sequential FP32, not a wider sum rounded once:
  // at least one element differs from the double-precision sum.
  const auto got = floats_of(r.outputs.at("ovw"));
  int differ = 0;
  for (int m = 0; m < 48; ++m)
    for (int n = 0; n < 512; ++n) {
      double s = 0;
      for (int k = 0; k < 60; ++k) s += double(bf16(d.w2.at(k, m))) * bf16(d.x2.at(k, n));
      differ += got[size_t(m) * 512 + n] != static_cast<float>(s);
    }
  EXPECT_GT(differ, 0);
  uint64_t macs = 0;
  for (const auto& c : r.counters)
    if (c.path == "core0.tensor" && c.name == "macs") macs = c.value;
  EXPECT_EQ(macs, uint64_t{100 * 48 * 512} * 2 + uint64_t{60 * 48 * 512} * 2 + uint64_t{127 * 64 * 37});
}

TEST(TensorEngine, RunsAreDeterministic) {
  const MatmulData d;
  const auto a = run(matmul_program().exe, d.inputs());
  const auto b = run(matmul_program().exe, d.inputs());
  EXPECT_EQ(a.total_cycles, b.total_cycles);
  EXPECT_GT(a.total_cycles, 0u);
  EXPECT_EQ(a.simulated_seconds, b.simulated_seconds);
  EXPECT_EQ(a.outputs, b.outputs);
  ASSERT_EQ(a.counters.size(), b.counters.size());
  for (size_t i = 0; i < a.counters.size(); ++i)
    EXPECT_EQ(a.counters[i].value, b.counters[i].value) << a.counters[i].path << "." << a.counters[i].name;
}

// ------------------------------------------------------------ activation

TEST(ScalarEngine, ActivationIdentityAndReluWithScaleAndBias) {
  constexpr int P = 32, N = 100;
  std::vector<float> x = random_floats(P * N, -4.0f, 4.0f, 21);
  const std::vector<float> bias = random_floats(P, -1.0f, 1.0f, 22);
  x[5] = 0.0f;
  x[6] = -0.0f;
  Program p;
  p.input("x", Dtype::fp32, {P, N}, 0);
  p.input("bias", Dtype::fp32, {P}, 0x4000);
  p.output("y", Dtype::fp32, {4, P, N}, 0x8000);
  p.dma(dram(0, Dtype::fp32, P, N, {{N, 1}}), sbuf(0, P, 0, Dtype::fp32, {{N, 1}}));        // 0: x fp32
  p.dma(dram(0, Dtype::fp32, P, N, {{N, 1}}), sbuf(0, P, 512, Dtype::bf16, {{N, 1}}));      // 1: x bf16
  p.dma(dram(0x4000, Dtype::fp32, P, 1, {}), sbuf(0, P, 1024, Dtype::fp32, {}));            // 2: bias column
  p.dma(dram(0, Dtype::fp32, P, N, {{N, 1}}), psum(0, P, 0, Dtype::fp32, {{N, 1}}));        // 3: x in PSUM
  for (int i = 0; i < 4; ++i)  // 4..7: results out, each [P, N] (bf16 ones widened)
    p.dma(sbuf(0, P, 2048 + 512 * i, i % 2 ? Dtype::bf16 : Dtype::fp32, {{N, 1}}),
          dram(0x8000 + uint64_t(i) * P * N * 4, Dtype::fp32, P, N, {{N, 1}}));
  p.emit(Engine::dma0, "dma_copy desc=0 count=4 signal=s0");
  p.emit(Engine::scalar,
         "activation func=identity src=sbuf[0:32]@0:fp32[100:1] dst=sbuf[0:32]@2048:fp32[100:1] "
         "bias=sbuf[0:32]@1024:fp32[1:1] scale=0.75 wait0=s0>=1");
  p.emit(Engine::scalar,
         "activation func=relu src=sbuf[0:32]@512:bf16[100:1] dst=sbuf[0:32]@2560:bf16[100:1] "
         "bias=sbuf[0:32]@1024:fp32[1:1] scale=-1.5");
  p.emit(Engine::scalar,
         "activation func=relu src=psum[0:32]@0:fp32[100:1] dst=sbuf[0:32]@3072:fp32[100:1] scale=2.0000002");
  p.emit(Engine::scalar,
         "activation func=identity src=psum[0:32]@0:fp32[4:25,25:1] dst=sbuf[0:32]@3584:bf16[100:1] "
         "bias=sbuf[0:32]@1024:fp32[1:1] scale=0.1 signal=s1");
  p.emit(Engine::dma1, "dma_copy desc=4 count=4 wait0=s1>=1 signal=s2");
  p.emit(Engine::dma1, "end_of_program code=0 wait0=s2>=1");
  const auto r = run(p.exe, {{"x", bytes_of(x)}, {"bias", bytes_of(bias)}});

  const auto relu = [](float v) { return v > 0.0f ? v : 0.0f; };
  std::vector<float> want;
  for (int i = 0; i < 4; ++i)
    for (int pp = 0; pp < P; ++pp)
      for (int n = 0; n < N; ++n) {
        const float xv = x[pp * N + n], b = bias[pp];
        float v;
        switch (i) {
          case 0: { const float s = xv * 0.75f; v = s + b; break; }
          case 1: { const float s = bf16(xv) * -1.5f; v = bf16(relu(s + b)); break; }
          case 2: { const float s = xv * 2.0000002f; v = relu(s); break; }
          default: { const float s = xv * 0.1f; v = bf16(s + b); break; }
        }
        want.push_back(v);
      }
  expect_bits(floats_of(r.outputs.at("y")), want, "activation");
  // relu maps -0 to +0.
  EXPECT_EQ(numerics::bits_of(floats_of(r.outputs.at("y"))[2 * P * N + 6]), 0u);
}

TEST(ScalarEngine, ActivationAccumSumsTheFp32ResultsInOrder) {
  // accum gets each partition's sum of the FP32 results (before dst's rounding).
  constexpr int P = 8, N = 50;
  const std::vector<float> x = random_floats(P * N, -3.0f, 3.0f, 23);
  Program p;
  p.input("x", Dtype::fp32, {P, N}, 0);
  p.output("y", Dtype::fp32, {P, N}, 0x1000);
  p.output("sum", Dtype::fp32, {P}, 0x2000);
  p.dma(dram(0, Dtype::fp32, P, N, {{N, 1}}), sbuf(0, P, 0, Dtype::fp32, {{N, 1}}));
  p.dma(sbuf(0, P, 256, Dtype::bf16, {{N, 1}}), dram(0x1000, Dtype::fp32, P, N, {{N, 1}}));
  p.dma(sbuf(0, P, 512, Dtype::fp32, {}), dram(0x2000, Dtype::fp32, P, 1, {}));
  p.emit(Engine::dma0, "dma_copy desc=0 count=1 signal=s0");
  p.emit(Engine::scalar,
         "activation func=relu src=sbuf[0:8]@0:fp32[50:1] dst=sbuf[0:8]@256:bf16[50:1] scale=1.1 "
         "accum=sbuf[0:8]@512:fp32[1:1] wait0=s0>=1 signal=s1");
  p.emit(Engine::dma1, "dma_copy desc=1 count=2 wait0=s1>=1 signal=s2");
  p.emit(Engine::dma1, "end_of_program code=0 wait0=s2>=1");
  const auto r = run(p.exe, {{"x", bytes_of(x)}});
  std::vector<float> y, sum;
  for (int pp = 0; pp < P; ++pp) {
    float acc = 0.0f;
    for (int n = 0; n < N; ++n) {
      const float s = x[pp * N + n] * 1.1f;
      const float v = (s + 0.0f) > 0.0f ? s + 0.0f : 0.0f;
      y.push_back(bf16(v));
      acc += v;
    }
    sum.push_back(acc);
  }
  expect_bits(floats_of(r.outputs.at("y")), y, "y");
  expect_bits(floats_of(r.outputs.at("sum")), sum, "accum");
}

// ---------------------------------------------------------- tensor_tensor

TEST(VectorEngine, TensorTensorOpsWithOneOperandInPsum) {
  constexpr int P = 16, N = 64;
  std::vector<float> a = random_floats(P * N, -8.0f, 8.0f, 31), b = random_floats(P * N, -8.0f, 8.0f, 32);
  b[3] = NAN;  // maxNum/minNum: the other operand wins
  b[70] = std::nanf("");
  b[100] = a[100] = 1.5f;
  b[101] = 1e30f;  // mul overflows to inf in bf16
  a[101] = 1e10f;
  const char* ops[] = {"add", "sub", "mul", "max", "min"};
  Program p;
  p.input("a", Dtype::fp32, {P, N}, 0);
  p.input("b", Dtype::fp32, {P, N}, 0x2000);
  p.output("y", Dtype::fp32, {10, P, N}, 0x10000);
  p.dma(dram(0, Dtype::fp32, P, N, {{N, 1}}), sbuf(0, P, 0, Dtype::bf16, {{N, 1}}));          // a bf16 in SBUF
  p.dma(dram(0x2000, Dtype::fp32, P, N, {{N, 1}}), psum(0, P, 0, Dtype::fp32, {{N, 1}}));     // b fp32 in PSUM
  p.dma(dram(0x2000, Dtype::fp32, P, N, {{N, 1}}), sbuf(0, P, 128, Dtype::fp32, {{N, 1}}));   // b fp32 in SBUF
  p.emit(Engine::dma0, "dma_copy desc=0 count=3 signal=s0");
  for (int i = 0; i < 5; ++i) {
    // a (SBUF, bf16) op b (PSUM) -> fp32
    p.emit(Engine::vector, fmt::format("tensor_tensor op={} in0=sbuf[0:16]@0:bf16[64:1] in1=psum[0:16]@0:fp32[64:1] "
                                       "dst=sbuf[0:16]@{}:fp32[64:1]{}",
                                       ops[i], 512 + 256 * i, i == 0 ? " wait0=s0>=1" : ""));
    // b (SBUF) op a (SBUF), 2-dim patterns -> bf16
    p.emit(Engine::vector, fmt::format("tensor_tensor op={} in0=sbuf[0:16]@128:fp32[8:8,8:1] "
                                       "in1=sbuf[0:16]@0:bf16[8:8,8:1] dst=sbuf[0:16]@{}:bf16[64:1]{}",
                                       ops[i], 2048 + 128 * i, i == 4 ? " signal=s1" : ""));
  }
  for (int i = 0; i < 5; ++i) {
    p.dma(sbuf(0, P, 512 + 256 * i, Dtype::fp32, {{N, 1}}), dram(0x10000 + uint64_t(2 * i) * P * N * 4, Dtype::fp32, P, N, {{N, 1}}));
    p.dma(sbuf(0, P, 2048 + 128 * i, Dtype::bf16, {{N, 1}}),
          dram(0x10000 + uint64_t(2 * i + 1) * P * N * 4, Dtype::fp32, P, N, {{N, 1}}));
  }
  p.emit(Engine::dma1, "dma_copy desc=3 count=10 wait0=s1>=1 signal=s2");
  p.emit(Engine::dma1, "end_of_program code=0 wait0=s2>=1");
  const auto r = run(p.exe, {{"a", bytes_of(a)}, {"b", bytes_of(b)}});

  const std::function<float(float, float)> fn[] = {
      [](float x, float y) { return x + y; }, [](float x, float y) { return x - y; },
      [](float x, float y) { return x * y; },
      [](float x, float y) { return std::isnan(x) ? y : std::isnan(y) ? x : (x > y ? x : y); },
      [](float x, float y) { return std::isnan(x) ? y : std::isnan(y) ? x : (x < y ? x : y); }};
  std::vector<float> want;
  for (int i = 0; i < 5; ++i) {
    for (int k = 0; k < P * N; ++k) want.push_back(fn[i](bf16(a[k]), b[k]));
    for (int k = 0; k < P * N; ++k) want.push_back(bf16(fn[i](b[k], bf16(a[k]))));
  }
  const auto got = floats_of(r.outputs.at("y"));
  expect_bits(got, want, "tensor_tensor");
  EXPECT_EQ(got[3 * P * N * 2 + 3], bf16(a[3])) << "max(a, NaN) = a";
  EXPECT_TRUE(std::isinf(got[(2 * 2 + 1) * P * N + 101])) << "bf16 overflow to inf";
}

// -------------------------------------------------------------- failures

Program deadlock_program() {
  Program p;
  p.emit(Engine::dma0, "nop signal=s3");
  p.emit(Engine::vector, "nop wait0=s3>=1");
  p.emit(Engine::vector, "nop wait0=s5>=1");  // nobody signals s5
  p.emit(Engine::vector, "end_of_program code=0");
  return p;
}

// A tiny program that completes: a vector op over zeros.
Program tiny_program(int n, bool psum_operand) {
  Program p;
  p.emit(Engine::vector, fmt::format("tensor_tensor op=add in0=sbuf[0:1]@0:bf16[{0}:1] in1={1}[32:33]@0:bf16[{0}:1] "
                                     "dst=sbuf[64:65]@0:bf16[{0}:1] signal=s0",
                                     n, psum_operand ? "psum" : "sbuf"));
  p.emit(Engine::vector, "end_of_program code=3 wait0=s0>=1");
  return p;
}

uint64_t counter(const sim::RunResult& r, const std::string& path, const std::string& name) {
  for (const auto& c : r.counters)
    if (c.path == path && c.name == name) return c.value;
  ADD_FAILURE() << "no counter " << path << "." << name;
  return 0;
}

TEST(Failures, UnsatisfiableWaitIsADeadlockNamingTheEngine) {
  try {
    run(deadlock_program().exe);
    FAIL() << "ran to completion";
  } catch (const sim::RunError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("deadlock"), std::string::npos) << msg;
    EXPECT_NE(msg.find("vector"), std::string::npos) << msg;
    EXPECT_NE(msg.find("s5 >= 1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("instruction 1"), std::string::npos) << msg;
  }
  // The chip stays usable: the next run starts from a clean state.
  const auto r = run(tiny_program(100, false).exe);
  EXPECT_EQ(r.total_cycles, 260u);
  // And a deadlock again, then a run again.
  EXPECT_THROW(run(deadlock_program().exe), sim::RunError);
  EXPECT_EQ(run(tiny_program(100, false).exe).total_cycles, 260u);
}

Program fault_program() {
  Program p;
  p.emit(Engine::tensor, "multiply_moving src=sbuf[0:8]@0:bf16[16:1] dst=psum[0:8]@0:fp32[16:1] accumulate=0 signal=s0");
  p.emit(Engine::vector, "nop wait0=s0>=1");
  p.emit(Engine::vector, "end_of_program code=0");
  return p;
}

TEST(Failures, MatmulBeforeLoadStationaryIsADeviceFault) {
  // Also after a run that did load a stationary: engine state does not leak between runs.
  const MatmulData d;
  run(matmul_program().exe, d.inputs());
  for (int i = 0; i < 2; ++i) {
    try {
      run(fault_program().exe);
      FAIL() << "ran to completion";
    } catch (const sim::RunError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("device fault"), std::string::npos) << msg;
      EXPECT_NE(msg.find("tensor"), std::string::npos) << msg;
      EXPECT_NE(msg.find("multiply_moving before any load_stationary"), std::string::npos) << msg;
      EXPECT_NE(msg.find("test-op"), std::string::npos) << "names the source op: " << msg;
    }
  }
  EXPECT_EQ(run(tiny_program(100, false).exe).total_cycles, 260u);
}

TEST(Failures, InvalidProgramsAndInputsAreRejected) {
  Program p = tiny_program(100, false);
  p.exe.streams[0].instructions.pop_back();
  p.exe.streams[0].source_op.pop_back();
  EXPECT_THROW(run(p.exe), isa::FormatError);
  Program q = tiny_program(100, false);
  q.input("x", Dtype::fp32, {4}, 0);
  EXPECT_THROW(run(q.exe), sim::RunError);                                    // missing input
  EXPECT_THROW(run(q.exe, {{"x", std::vector<uint8_t>(15)}}), sim::RunError);  // wrong size
  EXPECT_THROW(run(q.exe, {{"x", std::vector<uint8_t>(16)}, {"z", {}}}), sim::RunError);  // unknown input
  EXPECT_NO_THROW(run(q.exe, {{"x", std::vector<uint8_t>(16)}}));
}

// ------------------------------------------------------------------ timing

// Cycle counts derived by hand from the cost formulas in sim/*.cpp and the
// inf1 parameters (min_instruction_cycles 64, sram_latency_cycles 60,
// dma_fixed_cycles 64, dma_bytes_per_cycle 32; the clock period is 1024 ps).
// An instruction occupies its engine for `occupancy` cycles and signals
// `latency` cycles later; end_of_program completes the run when it issues.

TEST(Timing, TensorTensorSbufOperands) {
  // N = 100 bf16, both inputs in SBUF: occupancy max(64, 2N) = 200, latency
  // 60; end_of_program issues when s0 arrives at 260.
  const auto r = run(tiny_program(100, false).exe);
  EXPECT_EQ(r.total_cycles, 260u);
  EXPECT_DOUBLE_EQ(r.simulated_seconds, 260 * 1024e-12);
  EXPECT_EQ(counter(r, "core0.vector", "busy_cycles"), 201u);  // + end_of_program's 1
  EXPECT_EQ(counter(r, "core0.vector", "instructions"), 2u);
  EXPECT_EQ(counter(r, "core0.vector", "stall_semaphore_cycles"), 60u);
}

TEST(Timing, TensorTensorPsumOperandAndFloor) {
  // One operand in PSUM: max(64, N) = 100, + 60.
  EXPECT_EQ(run(tiny_program(100, true).exe).total_cycles, 160u);
  // N = 20, two SBUF operands: 40 cycles of reads, the last result written
  // 60 later (the 64-cycle dispatch floor ends earlier): 100.
  EXPECT_EQ(run(tiny_program(20, false).exe).total_cycles, 100u);
  // N = 2: 4 cycles of reads + 60 = 64, the dispatch floor itself.
  EXPECT_EQ(run(tiny_program(2, false).exe).total_cycles, 64u);
}

TEST(Timing, MatmulStreamsAfterItsStationaryLoad) {
  // load_stationary [K=32, M=16] issues at 0, loaded at 16. multiply_moving
  // issues at 1 and injects columns 0..99 from cycle 16; column 15's sum for
  // the last moving column leaves the 128 rows at 16 + 99 + 128 + 15 and is
  // written then: complete at 16 + 99 + 128 + 16 = 259.
  Program p;
  p.emit(Engine::tensor, "load_stationary src=sbuf[0:32]@0:bf16[16:1]");
  p.emit(Engine::tensor, "multiply_moving src=sbuf[0:32]@64:bf16[100:1] dst=psum[0:16]@0:fp32[100:1] accumulate=0 "
                         "signal=s0");
  p.emit(Engine::tensor, "end_of_program code=0 wait0=s0>=1");
  EXPECT_EQ(run(p.exe).total_cycles, 259u);
}

TEST(Timing, StationaryLoadsHideBehindStreaming) {
  // Three (load [128, 64], multiply N=512) pairs. The first load takes 64
  // cycles; each later load fills the idle buffer while the previous multiply
  // streams, so the array streams 3 x 512 cycles back to back and the last
  // result is written 128 + 64 cycles after its last column entered:
  // 64 + 3 * 512 - 1 + 128 + 64 = 1791.
  Program p;
  for (int i = 0; i < 3; ++i) {
    p.emit(Engine::tensor, "load_stationary src=sbuf[0:128]@0:bf16[64:1]");
    p.emit(Engine::tensor, std::string("multiply_moving src=sbuf[0:128]@128:bf16[512:1] dst=psum[0:64]@0:fp32[512:1] "
                                       "accumulate=0") + (i == 2 ? " signal=s0" : ""));
  }
  p.emit(Engine::tensor, "end_of_program code=0 wait0=s0>=1");
  const auto r = run(p.exe);
  EXPECT_EQ(r.total_cycles, 1791u);
  EXPECT_EQ(counter(r, "core0.tensor", "busy_cycles"), 3u * 64 + 3u * 512 + 1);
}

TEST(Timing, OnChipDmaDescriptor) {
  // SBUF -> SBUF, 2 partitions x 16 fp32 (two 64-byte pieces each side):
  // setup 64; source pieces issue at 64 and 66 (64 B / 32 B per cycle), each
  // lands after the 60-cycle SRAM latency (124, 126); destination pieces issue
  // from the first arrival, 124 and 126, and land at 184 and 186. The queue is
  // busy 186 cycles; end_of_program follows on the same queue.
  Program p;
  p.dma(sbuf(0, 2, 0, Dtype::fp32, {{16, 1}}), sbuf(2, 2, 256, Dtype::fp32, {{16, 1}}));
  p.emit(Engine::dma0, "dma_copy desc=0 count=1");
  p.emit(Engine::dma0, "end_of_program code=0");
  const auto r = run(p.exe);
  EXPECT_EQ(r.total_cycles, 186u);
  EXPECT_EQ(counter(r, "core0.dma0", "bytes"), 128u);
}

}  // namespace
