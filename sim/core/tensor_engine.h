// Tensor engine: the systolic array (array_rows x array_cols processing
// elements) with two stationary buffers; timing and arithmetic in
// sim/core/systolic_array.h.
#pragma once

#include <array>
#include <vector>

#include "sim/core/engine.h"
#include "sim/core/systolic_array.h"

namespace infsim::sim {

class TensorEngine : public EngineBase {
 public:
  TensorEngine(sc_core::sc_module_name name, CoreContext& core);

 private:
  struct Stationary {
    std::vector<float> values;  // [K][M]; FP32 holds BF16/FP16/INT8 exactly
    uint32_t rows = 0, cols = 0;
    isa::Dtype dtype = isa::Dtype::bf16;
  };
  Cost execute(const isa::Instruction& ins) override;
  void reset_state() override { timing_.reset(); }
  uint64_t now_cycles() const;
  // Background load into the idle buffer; returns the engine's cost.
  Cost load(const isa::AccessPattern& src);
  // Streams n moving columns through the active buffer.
  Cost stream(uint64_t n, isa::Dtype rate);
  void multiply(const isa::MultiplyMoving& x, const Stationary& s);
  const Stationary& active() const { return buffers_[timing_.active()]; }

  SystolicTiming timing_;
  std::array<Stationary, 2> buffers_;
  std::vector<float> moving_, out_;
  uint64_t& macs_;
};

}  // namespace infsim::sim
