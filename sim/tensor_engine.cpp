#include "sim/tensor_engine.h"

#include <fmt/format.h>

#include <algorithm>

#include "sim/neuron_core.h"

namespace infsim::sim {

TensorEngine::TensorEngine(sc_core::sc_module_name name, NeuronCore& core)
    : EngineBase(name, core, isa::Engine::tensor),
      macs_(core.counters().add(path(), "macs", "", "multiply-accumulates performed")) {}

EngineBase::Cost TensorEngine::execute(const isa::Instruction& ins) {
  const ChipConfig& cfg = core_.cfg();
  if (const auto* x = std::get_if<isa::LoadStationary>(&ins)) {
    stationary_rows_ = x->src.part_count;
    stationary_cols_ = static_cast<uint32_t>(free_size(x->src));
    stationary_.resize(size_t{stationary_rows_} * stationary_cols_);
    core_.memory(x->src.space).read(x->src, stationary_.data());
    // One stationary column enters the array per cycle.
    return {stationary_cols_, 0};
  }
  if (const auto* x = std::get_if<isa::MultiplyMoving>(&ins)) {
    const uint32_t k = x->src.part_count;
    const uint32_t n = static_cast<uint32_t>(free_size(x->src));
    if (stationary_rows_ == 0) throw DeviceFault("multiply_moving before any load_stationary");
    if (k != stationary_rows_)
      throw DeviceFault(fmt::format("moving has {} partitions, the stationary {} rows", k, stationary_rows_));
    const uint32_t m = stationary_cols_;
    if (x->dst.part_count != m)
      throw DeviceFault(fmt::format("dst has {} partitions, the stationary {} columns", x->dst.part_count, m));
    moving_.resize(size_t{k} * n);
    core_.memory(x->src.space).read(x->src, moving_.data());
    out_.resize(size_t{m} * n);
    if (x->accumulate)
      core_.psum().read(x->dst, out_.data());
    else
      std::fill(out_.begin(), out_.end(), 0.0f);
    // Each output column m sums its products in increasing k, in FP32: the
    // order partial sums flow down the array. Products of BF16/FP16 inputs
    // are exact in FP32.
    for (uint32_t mi = 0; mi < m; ++mi) {
      float* acc = &out_[size_t{mi} * n];
      for (uint32_t ki = 0; ki < k; ++ki) {
        const float w = stationary_[size_t{ki} * m + mi];
        const float* row = &moving_[size_t{ki} * n];
        for (uint32_t ni = 0; ni < n; ++ni) acc[ni] += w * row[ni];
      }
    }
    core_.psum().write(x->dst, out_.data());
    macs_ += uint64_t{k} * m * n;
    // One moving column enters per cycle; the last result leaves the array
    // after the operand skew through K rows and M columns.
    return {std::max<uint64_t>(cfg.min_instruction_cycles, n), uint64_t{k} + m};
  }
  throw DeviceFault("instruction not implemented by the tensor engine");
}

}  // namespace infsim::sim
