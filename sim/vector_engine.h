// Vector engine: elementwise tensor-tensor operations, FP32 inside.
#pragma once

#include <vector>

#include "sim/engine.h"

namespace infsim::sim {

class VectorEngine : public EngineBase {
 public:
  VectorEngine(sc_core::sc_module_name name, NeuronCore& core);

 private:
  Cost execute(const isa::Instruction& ins) override;
  std::vector<float> a_, b_;
};

}  // namespace infsim::sim
