#include "sim/core/scalar_engine.h"

#include <algorithm>

#include "firmware/activation_functions.h"
#include "sim/core/core_context.h"

namespace infsim::sim {

ScalarEngine::ScalarEngine(sc_core::sc_module_name name, CoreContext& core)
    : EngineBase(name, core, isa::Engine::scalar) {}

EngineBase::Cost ScalarEngine::execute(const isa::Instruction& ins) {
  if (const auto* x = std::get_if<isa::Activation>(&ins)) {
    if (values_) activate(*x);
    return streaming(free_size(x->src), {&x->src});
  }
  if (const auto* x = std::get_if<isa::TensorCopy>(&ins)) {
    if (values_) {
      buf_.resize(size_t{x->src.part_count} * free_size(x->src));
      core_.memory(x->src.space).read(x->src, buf_.data());
      core_.memory(x->dst.space).write(x->dst, buf_.data(), rounding_);
    }
    return streaming(free_size(x->src), {&x->src});
  }
  throw DeviceFault("instruction not implemented by the scalar engine");
}

void ScalarEngine::activate(const isa::Activation& x) {
  const uint32_t p = x.src.part_count;
  const uint64_t n = free_size(x.src);
  buf_.resize(p * n);
  core_.memory(x.src.space).read(x.src, buf_.data());
  const bool has_bias = x.bias.space != isa::Space::none;
  if (has_bias) {
    bias_.resize(p);
    core_.memory(x.bias.space).read(x.bias, bias_.data());
  }
  // Two roundings (multiply, then add), never a fused multiply-add.
  for (uint32_t pi = 0; pi < p; ++pi) {
    float* v = &buf_[pi * n];
    const float b = has_bias ? bias_[pi] : 0.0f;
    for (uint64_t i = 0; i < n; ++i) {
      const float scaled = v[i] * x.scale;
      v[i] = scaled + b;
    }
  }
  firmware::apply_activation(x.func, buf_.data(), buf_.size());
  core_.memory(x.dst.space).write(x.dst, buf_.data(), rounding_);
  if (x.accum.space != isa::Space::none) {
    // Running sum of the FP32 results along the free axis, in order.
    sums_.assign(p, 0.0f);
    for (uint32_t pi = 0; pi < p; ++pi)
      for (uint64_t i = 0; i < n; ++i) sums_[pi] += buf_[pi * n + i];
    core_.memory(x.accum.space).write(x.accum, sums_.data());
  }
}

}  // namespace infsim::sim
