#include "sim/systolic_array.h"

#include <algorithm>

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

void systolic_matmul(const float* w, const float* x, float* out, uint32_t k, uint32_t m, uint32_t n, bool accumulate) {
  std::vector<float> sum(n);
  for (uint32_t mi = 0; mi < m; ++mi) {
    std::fill(sum.begin(), sum.end(), 0.0f);
    for (uint32_t ki = 0; ki < k; ++ki) {
      const float wk = w[size_t{ki} * m + mi];
      const float* row = x + size_t{ki} * n;
      for (uint32_t ni = 0; ni < n; ++ni) sum[ni] += wk * row[ni];
    }
    float* o = out + size_t{mi} * n;
    for (uint32_t ni = 0; ni < n; ++ni) o[ni] = accumulate ? o[ni] + sum[ni] : sum[ni];
  }
}

}  // namespace infsim::sim
