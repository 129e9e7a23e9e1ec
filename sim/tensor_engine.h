// Tensor engine: the systolic array (array_rows x array_cols processing
// elements). Two stationary buffers let a load proceed in the background
// while multiplies stream through the other buffer; multiplies stream one
// moving column per cycle (two for INT8, one per four for FP32), and each
// result leaves the array rows + columns cycles after its last column entered.
#pragma once

#include <array>
#include <vector>

#include "sim/engine.h"

namespace infsim::sim {

class TensorEngine : public EngineBase {
 public:
  TensorEngine(sc_core::sc_module_name name, NeuronCore& core);

 private:
  struct Stationary {
    std::vector<float> values;  // [K][M]; FP32 holds BF16/FP16/INT8 exactly
    uint32_t rows = 0, cols = 0;
    isa::Dtype dtype = isa::Dtype::bf16;
    sc_core::sc_time ready;      // when the load completes
    sc_core::sc_time free_from;  // when the last multiply using it has streamed
  };
  Cost execute(const isa::Instruction& ins) override;
  void reset_state() override;
  // Background load into the idle buffer; returns the engine's cost.
  Cost load(const isa::AccessPattern& src, bool for_transpose);
  // Streams `columns` moving columns at `per_column` cycles each through the active buffer.
  Cost stream(uint64_t columns_cycles);
  void multiply(const isa::MultiplyMoving& x, const Stationary& s);

  std::array<Stationary, 2> buffers_;
  int active_ = -1;  // buffer the next multiply uses; -1 before any load
  int loads_ = 0;
  sc_core::sc_time load_port_free_, moving_port_free_;
  std::vector<float> moving_, out_;
  uint64_t& macs_;
};

}  // namespace infsim::sim
