// The systolic array's timing and arithmetic, free of SystemC so that the
// cycle-by-cycle reference model (tests/cpp/test_systolic_array.cpp) can be
// checked against them exactly.
//
// Timing, in tensor engine cycles:
//   * load_stationary fills the idle one of two weight buffers, one column
//     per cycle (a quarter of that for FP32), starting when the load port is
//     free and the last multiply that read the buffer has drained from the
//     array (its last moving column has passed the last row and column); the
//     instruction issues at once.
//   * multiply_moving starts injecting when its weights are loaded and the
//     injector is free; moving column n enters row k, column m at
//     start + inject(n) + k + m, where inject(n) = n (BF16/FP16), 4n (FP32) or
//     floor(n/2) (INT8). The injector stays busy max(min_cycles, inject(N))
//     cycles. Column m's sum for moving column n is written to PSUM as it
//     leaves the last row, at start + inject(n) + rows + m; the instruction
//     completes with its last write, start + inject(N-1) + rows + M.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "isa_gen.h"

namespace infsim::sim {

// Cycles from the first to the last moving column entering the array.
uint64_t inject_cycle(isa::Dtype rate, uint64_t column);
// Cycles the injector needs for n columns.
uint64_t inject_cycles(isa::Dtype rate, uint64_t n);

class SystolicTiming {
 public:
  SystolicTiming(uint32_t rows, uint32_t cols, uint32_t min_cycles) : rows_(rows), cols_(cols), min_cycles_(min_cycles) {}
  void reset();

  struct Load {
    int buffer;
    uint64_t start, ready;
  };
  // A load issued at `now`: which buffer, when it starts and when it is ready.
  Load load(uint64_t now, uint32_t cols, isa::Dtype dtype);

  struct Multiply {
    uint64_t start;     // first column enters the array
    uint64_t injected;  // injector free again
    uint64_t complete;  // last result written to PSUM
  };
  // A multiply issued at `now` through the active (last loaded) buffer.
  Multiply multiply(uint64_t now, uint64_t n, uint32_t cols, isa::Dtype rate);
  int active() const { return active_; }

 private:
  uint32_t rows_, cols_, min_cycles_;
  std::array<uint64_t, 2> ready_{}, free_from_{};
  uint64_t load_port_free_ = 0, injector_free_ = 0;
  int active_ = -1;
  int loads_ = 0;
};

// s[m][n] = sum_k w[k][m] * x[k][n], summed down the array in increasing k in
// FP32 from zero (each product rounded to FP32: exact for BF16/FP16 inputs);
// then PSUM's read-accumulate-write: out = accumulate ? out + s : s.
// w is [k][m] and x [k][n], packed; out row mi starts at out + mi * out_stride
// (0: n, packed).
void systolic_matmul(const float* w, const float* x, float* out, uint32_t k, uint32_t m, uint32_t n, bool accumulate,
                     size_t out_stride = 0);

// The implementations systolic_matmul chooses from (the widest this CPU
// runs). Each computes exactly the sums above, bit for bit; they differ only
// in how many outputs they work on at once. Exposed so that tests can compare
// every one the CPU supports against the reference loop.
enum class MatmulIsa { portable, avx2, avx512 };
bool matmul_isa_supported(MatmulIsa isa);
void systolic_matmul(MatmulIsa isa, const float* w, const float* x, float* out, uint32_t k, uint32_t m, uint32_t n,
                     bool accumulate, size_t out_stride = 0);

}  // namespace infsim::sim
