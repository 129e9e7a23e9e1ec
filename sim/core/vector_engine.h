// Vector engine: elementwise tensor-tensor and tensor-scalar operations,
// reductions along the free axis, copies with cast, 32x32 transposes,
// normalisation statistics, select, memset, iota, reciprocal. FP32 inside.
#pragma once

#include <initializer_list>
#include <vector>

#include "sim/core/engine.h"

namespace infsim::sim {

class VectorEngine : public EngineBase {
 public:
  VectorEngine(sc_core::sc_module_name name, CoreContext& core);

 private:
  Cost execute(const isa::Instruction& ins) override;
  // Timing and values apart: timing-only runs skip compute().
  Cost cost(const isa::Instruction& ins) const;
  void compute(const isa::Instruction& ins);
  std::vector<float> a_, b_, c_;
};

// The vector ALU on FP32 working values (see alu_op in isa.yaml).
float alu(isa::AluOp op, float a, float b);


}  // namespace infsim::sim
