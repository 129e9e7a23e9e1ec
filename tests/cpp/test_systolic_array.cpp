// The tensor engine's fast timing (SystolicTiming) and arithmetic
// (systolic_matmul) against a cycle-by-cycle model of the array: a grid of
// processing elements whose moving values shift right and partial sums shift
// down one PE per cycle, operands skewed by row, fed by an in-order front end,
// a weight loader that waits until no moving value of the buffer it refills
// is left anywhere in the array, and an injector. Completion cycles and every
// output bit must agree.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <deque>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "isa/numerics.h"
#include "sim/core/systolic_array.h"

using infsim::isa::Dtype;
using namespace infsim::sim;
using infsim::numerics::bits_of;
using infsim::numerics::float_of;

namespace {

struct Op {
  bool load;  // load_stationary, else multiply_moving
  uint32_t k = 0, m = 0, n = 0;
  Dtype dtype = Dtype::bf16;
  std::vector<float> data;  // weights [k][m] or moving [k][n]
};

struct Outcome {
  std::vector<uint64_t> complete;           // per multiply: the cycle after its last PSUM write
  std::vector<std::vector<float>> results;  // per multiply: column sums [m][n]
};

uint64_t inject_at(Dtype t, uint32_t n) { return t == Dtype::fp32 ? 4ull * n : (t == Dtype::int8 ? n / 2 : n); }

class ReferenceArray {
 public:
  ReferenceArray(uint32_t rows, uint32_t cols, uint32_t min_cycles) : R(rows), C(cols), min_cycles_(min_cycles) {}

  Outcome run(const std::vector<Op>& ops) {
    // A moving value in flight; INT8 PEs take two columns per cycle (two lanes).
    struct Token {
      bool valid = false;
      int buffer = 0;
      size_t mult = 0;
      uint32_t lanes = 0;
      float x[2] = {0, 0};
      uint32_t col[2] = {0, 0};
    };
    struct Buffer {
      std::vector<float> w;
      uint32_t k = 0, m = 0;
      bool ready = false;
    };
    std::vector<Token> grid(R * C);  // moving values held by each PE after the last cycle
    std::vector<float> sums(2 * R * C, 0.0f);
    std::vector<std::deque<std::pair<uint64_t, Token>>> skew(R);  // values waiting to enter row k
    Buffer buf[2];
    std::deque<std::pair<int, const Op*>> load_queue;
    std::optional<std::pair<int, uint64_t>> loading;  // buffer, cycles left
    int loads = 0, active = -1;
    struct Stream {
      const Op* op;
      int buffer;
      size_t mult;
      uint64_t start;
      uint32_t next = 0;
    };
    std::optional<Stream> injecting;
    uint64_t injector_free = 0, issue_ok = 0;
    size_t pc = 0;
    Outcome out;
    std::vector<uint32_t> mult_m;

    auto in_flight = [&](int b) {
      if (injecting && injecting->buffer == b) return true;
      for (const Token& t : grid)
        if (t.valid && t.buffer == b) return true;
      for (const auto& q : skew)
        for (const auto& e : q)
          if (e.second.buffer == b) return true;
      return false;
    };
    auto idle = [&] {
      if (pc < ops.size() || injecting || loading || !load_queue.empty()) return false;
      for (const Token& t : grid)
        if (t.valid) return false;
      for (const auto& q : skew)
        if (!q.empty()) return false;
      return true;
    };

    for (uint64_t c = 0; !idle(); ++c) {
      if (c > 10000000) {
        ADD_FAILURE() << "reference did not finish: pc " << pc << " injecting " << bool(injecting) << " loading " << bool(loading) << " queue " << load_queue.size();
        break;
      }
      // Front end, in program order.
      if (pc < ops.size() && c >= issue_ok) {
        const Op& op = ops[pc];
        if (op.load) {
          active = loads++ % 2;
          buf[active].ready = false;
          load_queue.push_back({active, &op});
          ++pc;
          issue_ok = c + 1;
        } else if (c >= injector_free && buf[active].ready) {
          out.complete.push_back(0);
          out.results.emplace_back(size_t{buf[active].m} * op.n, 0.0f);
          mult_m.push_back(buf[active].m);
          injecting = Stream{&op, active, out.results.size() - 1, c};
          const uint64_t cycles = inject_at(op.dtype, op.n - 1) + 1;
          injector_free = c + std::max<uint64_t>(min_cycles_, cycles);
          ++pc;
          issue_ok = c + 1;
        }
      }
      // Loader: one buffer at a time, once nothing in the array still reads it.
      if (!loading && !load_queue.empty() && !in_flight(load_queue.front().first)) {
        auto [b, op] = load_queue.front();
        load_queue.pop_front();
        buf[b].w = op->data;
        buf[b].k = op->k;
        buf[b].m = op->m;
        loading = {b, op->dtype == Dtype::fp32 ? 4ull * op->m : op->m};
      }
      if (loading && --loading->second == 0) {
        buf[loading->first].ready = true;
        loading.reset();
      }
      // Injector: column n enters row k at start + inject(n) + k.
      if (injecting) {
        Stream& s = *injecting;
        const Op& op = *s.op;
        std::vector<Token> entering(R);
        while (s.next < op.n && s.start + inject_at(op.dtype, s.next) == c) {
          for (uint32_t k = 0; k < R; ++k) {
            Token& t = entering[k];
            t.valid = true;
            t.buffer = s.buffer;
            t.mult = s.mult;
            t.x[t.lanes] = k < op.k ? op.data[size_t{k} * op.n + s.next] : 0.0f;
            t.col[t.lanes] = s.next;
            ++t.lanes;
          }
          ++s.next;
        }
        if (entering[0].valid)
          for (uint32_t k = 0; k < R; ++k) skew[k].push_back({c + k, entering[k]});
        if (s.next == op.n) injecting.reset();
      }
      // The array, one cycle.
      std::vector<Token> next_grid(R * C);
      std::vector<float> next_sums(2 * R * C, 0.0f);
      for (uint32_t k = 0; k < R; ++k)
        for (uint32_t m = 0; m < C; ++m) {
          Token t;
          if (m == 0) {
            if (!skew[k].empty() && skew[k].front().first == c) {
              t = skew[k].front().second;
              skew[k].pop_front();
            }
          } else {
            t = grid[k * C + m - 1];
          }
          if (!t.valid) continue;
          const Buffer& b = buf[t.buffer];
          next_grid[k * C + m] = t;
          for (uint32_t lane = 0; lane < t.lanes; ++lane) {
            const float above = k == 0 ? 0.0f : sums[2 * ((k - 1) * C + m) + lane];
            const float s = (k < b.k && m < b.m) ? above + b.w[size_t{k} * b.m + m] * t.x[lane] : above;
            next_sums[2 * (k * C + m) + lane] = s;
            if (k == R - 1 && m < mult_m[t.mult]) {  // leaves the array: written to PSUM next cycle
              const size_t n = out.results[t.mult].size() / mult_m[t.mult];
              out.results[t.mult][m * n + t.col[lane]] = s;
              out.complete[t.mult] = c + 2;  // written at c + 1, complete after that cycle
            }
          }
        }
      grid.swap(next_grid);
      sums.swap(next_sums);
    }
    return out;
  }

 private:
  uint32_t R, C, min_cycles_;
};

float rand_value(std::mt19937& rng, Dtype t) {
  if (t == Dtype::int8) return static_cast<float>(static_cast<int>(rng() % 256) - 128);
  // Values exact in BF16 (8 significant bits) unless FP32 is asked for.
  const float v = std::uniform_real_distribution<float>(-4, 4)(rng);
  if (t == Dtype::fp32) return v;
  return float_of(bits_of(v) & 0xffff0000u);
}

std::vector<Op> random_program(std::mt19937& rng, uint32_t rows, uint32_t cols, int pairs) {
  std::vector<Op> ops;
  for (int i = 0; i < pairs; ++i) {
    const Dtype t = std::array<Dtype, 4>{Dtype::bf16, Dtype::bf16, Dtype::fp32, Dtype::int8}[rng() % 4];
    Op load{true, 1 + static_cast<uint32_t>(rng() % rows), 1 + static_cast<uint32_t>(rng() % cols), 0, t, {}};
    for (uint32_t j = 0; j < load.k * load.m; ++j) load.data.push_back(rand_value(rng, t));
    ops.push_back(load);
    const int mults = 1 + static_cast<int>(rng() % 3);
    for (int j = 0; j < mults; ++j) {
      Op mm{false, load.k, load.m, 1 + static_cast<uint32_t>(rng() % 90), t, {}};
      for (uint32_t e = 0; e < mm.k * mm.n; ++e) mm.data.push_back(rand_value(rng, t));
      ops.push_back(mm);
    }
  }
  return ops;
}

// The fast model over the same program: completion cycles and column sums.
Outcome fast_model(const std::vector<Op>& ops, uint32_t rows, uint32_t cols, uint32_t min_cycles) {
  SystolicTiming timing(rows, cols, min_cycles);
  Outcome out;
  uint64_t now = 0;
  const Op* stationary = nullptr;
  for (const Op& op : ops) {
    if (op.load) {
      timing.load(now, op.m, op.dtype);
      stationary = &op;
      now += 1;  // the next instruction issues a cycle later
    } else {
      const auto m = timing.multiply(now, op.n, stationary->m, op.dtype);
      out.complete.push_back(m.complete);
      std::vector<float> sums(size_t{stationary->m} * op.n, 0.0f);
      systolic_matmul(stationary->data.data(), op.data.data(), sums.data(), op.k, stationary->m, op.n, false);
      out.results.push_back(sums);
      now = m.start + 1;
    }
  }
  return out;
}

void expect_agreement(uint32_t rows, uint32_t cols, uint32_t seed, int pairs) {
  std::mt19937 rng(seed);
  const auto ops = random_program(rng, rows, cols, pairs);
  const Outcome ref = ReferenceArray(rows, cols, 64).run(ops);
  const Outcome fast = fast_model(ops, rows, cols, 64);
  ASSERT_EQ(ref.complete.size(), fast.complete.size());
  for (size_t i = 0; i < ref.complete.size(); ++i) {
    EXPECT_EQ(fast.complete[i], ref.complete[i]) << "multiply " << i << " seed " << seed;
    ASSERT_EQ(fast.results[i].size(), ref.results[i].size());
    for (size_t e = 0; e < ref.results[i].size(); ++e)
      ASSERT_EQ(fast.results[i][e], ref.results[i][e]) << "multiply " << i << " element " << e;
  }
}

}  // namespace

TEST(SystolicArray, FastTimingAndSumsMatchTheCycleModelSmallArray) {
  for (uint32_t seed = 1; seed <= 12; ++seed) expect_agreement(8, 4, seed, 6);
}

TEST(SystolicArray, FastTimingAndSumsMatchTheCycleModelFullArray) {
  expect_agreement(128, 64, 99, 3);
}

TEST(SystolicArray, BackToBackLargeMatmulsKeepTheArrayBusy) {
  // Loads of [128, 64] hide behind 512-column multiplies: one column per cycle.
  SystolicTiming t(128, 64, 64);
  uint64_t now = 0, first = 0, last = 0;
  for (int i = 0; i < 4; ++i) {
    t.load(now, 64, Dtype::bf16);
    const auto m = t.multiply(now + 1, 512, 64, Dtype::bf16);
    if (i == 0) first = m.start;
    last = m.start;
    now = m.start + 1;
  }
  EXPECT_EQ(last - first, 3u * 512);
}

// --- systolic_matmul's vectorised implementations against the definition ----

namespace {

// The definition, element by element: a sum from +0 over k increasing, each
// product rounded, then the PSUM accumulate.
void reference_matmul(const std::vector<float>& w, const std::vector<float>& x, std::vector<float>& out, uint32_t k,
                      uint32_t m, uint32_t n, bool accumulate, size_t stride) {
  for (uint32_t mi = 0; mi < m; ++mi)
    for (uint32_t ni = 0; ni < n; ++ni) {
      float s = 0.0f;
      for (uint32_t ki = 0; ki < k; ++ki) {
        const float p = w[size_t{ki} * m + mi] * x[size_t{ki} * n + ni];
        s = s + p;
      }
      float& o = out[mi * stride + ni];
      o = accumulate ? o + s : s;
    }
}


// Bit-identical, except that any NaN matches any NaN: which NaN payload wins
// when two meet depends on operand order, which the compiler may swap.
void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) && std::isnan(want[i])) continue;
    ASSERT_EQ(bits_of(got[i]), bits_of(want[i])) << what << " element " << i << ": " << got[i] << " vs " << want[i];
  }
}

struct Kind {
  const char* name;
  std::function<float(std::mt19937&)> value;
};

void compare_with_reference(MatmulIsa isa, const Kind& kind, std::mt19937& rng, uint32_t k, uint32_t m, uint32_t n) {
  std::vector<float> w(size_t{k} * m), x(size_t{k} * n);
  for (float& v : w) v = kind.value(rng);
  for (float& v : x) v = kind.value(rng);
  const size_t stride = n + rng() % 3;  // rows of out may be further apart than n
  std::vector<float> init(m * stride);
  for (float& v : init) v = kind.value(rng);
  for (bool accumulate : {false, true}) {
    std::vector<float> want = init, got = init;
    reference_matmul(w, x, want, k, m, n, accumulate, stride);
    systolic_matmul(isa, w.data(), x.data(), got.data(), k, m, n, accumulate, stride);
    expect_same_bits(got, want,
                     fmt::format("isa {} {} k={} m={} n={} accumulate={}", static_cast<int>(isa), kind.name, k, m, n,
                                 accumulate));
  }
}

float bf16_uniform(std::mt19937& rng) {
  return float_of(bits_of(std::uniform_real_distribution<float>(-4, 4)(rng)) & 0xffff0000u);
}

// BF16 values over the whole exponent range: products that underflow into
// FP32 subnormals or overflow, BF16 subnormals, zeros of both signs, infinities.
float bf16_extreme(std::mt19937& rng) {
  switch (rng() % 16) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return std::numeric_limits<float>::infinity();
    case 3: return float_of((rng() & 0x807fu) << 16);  // BF16 subnormal
    default: return float_of((rng() & 0xffffu) << 16 & 0xff7fffffu);  // finite, any exponent
  }
}

const Kind kKinds[] = {
    {"bf16", bf16_uniform},
    {"fp32", [](std::mt19937& rng) { return std::uniform_real_distribution<float>(-4, 4)(rng); }},
    {"fp16-like", [](std::mt19937& rng) {  // 11 significant bits, exponents -14..15
       return std::ldexp(static_cast<float>(static_cast<int>(rng() % 4096) - 2048), static_cast<int>(rng() % 30) - 25);
     }},
    {"bf16-extreme", bf16_extreme},
    {"bf16-nan", [](std::mt19937& rng) { return rng() % 64 ? bf16_uniform(rng) : std::nanf(""); }},
};

}  // namespace

TEST(SystolicMatmul, EveryImplementationMatchesTheDefinitionBitForBit) {
  std::mt19937 rng(7);
  for (MatmulIsa isa : {MatmulIsa::portable, MatmulIsa::avx2, MatmulIsa::avx512}) {
    if (!matmul_isa_supported(isa)) continue;
    for (const Kind& kind : kKinds) {
      // Shapes below, at and above every block size, and random awkward ones.
      for (uint32_t s : {1u, 2u, 3u, 4u, 5u, 7u, 8u, 9u, 15u, 16u, 17u, 31u, 33u, 63u, 64u, 65u, 127u, 128u})
        compare_with_reference(isa, kind, rng, 1 + rng() % 128, s, s);
      for (int i = 0; i < 12; ++i)
        compare_with_reference(isa, kind, rng, 1 + rng() % 128, 1 + rng() % 128, 1 + rng() % 512);
    }
  }
}

TEST(SystolicMatmul, FullSizeBf16Tile) {
  std::mt19937 rng(8);
  for (MatmulIsa isa : {MatmulIsa::portable, MatmulIsa::avx2, MatmulIsa::avx512})
    if (matmul_isa_supported(isa)) compare_with_reference(isa, kKinds[0], rng, 128, 64, 512);
}
