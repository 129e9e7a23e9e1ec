// Scalar engine: activation dst = func(src * scale + bias) with the firmware's
// function tables, and tensor_copy; FP32 inside.
#pragma once

#include <vector>

#include "sim/core/engine.h"

namespace infsim::sim {

class ScalarEngine : public EngineBase {
 public:
  ScalarEngine(sc_core::sc_module_name name, CoreContext& core);

 private:
  Cost execute(const isa::Instruction& ins) override;
  void activate(const isa::Activation& x);  // the values; timing-only runs skip it
  std::vector<float> buf_, bias_, sums_;
};

}  // namespace infsim::sim
