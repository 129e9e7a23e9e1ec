// Tensor engine: the systolic array. LoadStationary latches a [K, M] operand
// (K <= array rows, M <= array columns); MultiplyMoving streams a [K, N]
// operand through it and writes [M, N] FP32 sums into one PSUM bank.
#pragma once

#include <vector>

#include "sim/engine.h"

namespace infsim::sim {

class TensorEngine : public EngineBase {
 public:
  TensorEngine(sc_core::sc_module_name name, NeuronCore& core);

 private:
  Cost execute(const isa::Instruction& ins) override;
  void reset_state() override { stationary_rows_ = 0; }

  std::vector<float> stationary_;  // [K][M], as loaded (FP32 holds BF16/FP16 exactly)
  std::vector<float> moving_, out_;
  uint32_t stationary_rows_ = 0, stationary_cols_ = 0;
  uint64_t& macs_;
};

}  // namespace infsim::sim
