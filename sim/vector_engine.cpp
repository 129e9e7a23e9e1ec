#include "sim/vector_engine.h"

#include <algorithm>
#include <cmath>

#include "sim/neuron_core.h"

namespace infsim::sim {

VectorEngine::VectorEngine(sc_core::sc_module_name name, NeuronCore& core)
    : EngineBase(name, core, isa::Engine::vector) {}

namespace {
template <typename Op>
void combine(float* a, const float* b, size_t n, Op op) {
  for (size_t i = 0; i < n; ++i) a[i] = op(a[i], b[i]);
}
}  // namespace

EngineBase::Cost VectorEngine::execute(const isa::Instruction& ins) {
  const ChipConfig& cfg = core_.cfg();
  if (const auto* x = std::get_if<isa::TensorTensor>(&ins)) {
    const size_t total = size_t{x->in0.part_count} * free_size(x->in0);
    a_.resize(total);
    b_.resize(total);
    core_.memory(x->in0.space).read(x->in0, a_.data());
    core_.memory(x->in1.space).read(x->in1, b_.data());
    switch (x->op) {
      case isa::AluOp::add: combine(a_.data(), b_.data(), total, [](float p, float q) { return p + q; }); break;
      case isa::AluOp::sub: combine(a_.data(), b_.data(), total, [](float p, float q) { return p - q; }); break;
      case isa::AluOp::mul: combine(a_.data(), b_.data(), total, [](float p, float q) { return p * q; }); break;
      // IEEE maxNum/minNum: a NaN operand yields the other operand.
      case isa::AluOp::max: combine(a_.data(), b_.data(), total, [](float p, float q) { return std::fmax(p, q); }); break;
      case isa::AluOp::min: combine(a_.data(), b_.data(), total, [](float p, float q) { return std::fmin(p, q); }); break;
    }
    core_.memory(x->dst.space).write(x->dst, a_.data());
    // Two SBUF operands share the read port (2 cycles per element); reading
    // one of them from PSUM halves that.
    const uint64_t n = free_size(x->in0);
    const bool one_in_psum = x->in0.space == isa::Space::psum || x->in1.space == isa::Space::psum;
    return {std::max<uint64_t>(cfg.min_instruction_cycles, one_in_psum ? n : 2 * n), cfg.sram_latency_cycles};
  }
  throw DeviceFault("instruction not implemented by the vector engine");
}

}  // namespace infsim::sim
