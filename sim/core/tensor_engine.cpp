#include "sim/core/tensor_engine.h"

#include <fmt/format.h>

#include <algorithm>

#include "sim/core/core_context.h"

namespace infsim::sim {

using sc_core::sc_time;

TensorEngine::TensorEngine(sc_core::sc_module_name name, CoreContext& core)
    : EngineBase(name, core, isa::Engine::tensor),
      timing_(core.cfg().array_rows, core.cfg().array_cols, core.cfg().min_instruction_cycles),
      macs_(core.counters().add(path(), "macs", "", "multiply-accumulates performed")) {}

uint64_t TensorEngine::now_cycles() const {
  // Issue is on clock edges, counted from the run's start.
  return static_cast<uint64_t>((sc_core::sc_time_stamp() - origin_).value() / period_.value());
}

EngineBase::Cost TensorEngine::load(const isa::AccessPattern& src) {
  const uint64_t now = now_cycles();
  const uint32_t cols = static_cast<uint32_t>(free_size(src));
  const SystolicTiming::Load l = timing_.load(now, cols, src.dtype);
  Stationary& s = buffers_[l.buffer];
  s.rows = src.part_count;
  s.cols = cols;
  s.dtype = src.dtype;
  // Read even in timing-only runs (it is small) if a later multiply may need values.
  s.values.resize(size_t{s.rows} * s.cols);
  if (core_.values_matter()) core_.memory(src.space).read(src, s.values.data());
  // Issues at once; complete when loaded.
  return {1, l.ready - now - 1, l.ready - l.start};
}

EngineBase::Cost TensorEngine::stream(uint64_t n, isa::Dtype rate) {
  const uint64_t now = now_cycles();
  const SystolicTiming::Multiply m = timing_.multiply(now, n, active().cols, rate);
  // The engine issues its next instruction once this one has started streaming.
  const uint64_t issue = m.start - now + 1;
  return {issue, m.complete - now - issue, m.injected - m.start};
}

void TensorEngine::multiply(const isa::MultiplyMoving& x, const Stationary& s) {
  const uint32_t k = s.rows, m = s.cols;
  const uint32_t n = static_cast<uint32_t>(free_size(x.src));
  moving_.resize(size_t{k} * n);
  core_.memory(x.src.space).read(x.src, moving_.data());
  if (s.dtype == isa::Dtype::int8) {
    // Exact integer products, INT32 accumulation with wrap-around.
    std::vector<int32_t> acc(size_t{m} * n, 0);
    if (x.accumulate) core_.psum().read_raw(x.dst, acc.data());
    for (uint32_t mi = 0; mi < m; ++mi)
      for (uint32_t ki = 0; ki < k; ++ki) {
        const int32_t w = static_cast<int32_t>(s.values[size_t{ki} * m + mi]);
        const float* row = &moving_[size_t{ki} * n];
        int32_t* a = &acc[size_t{mi} * n];
        for (uint32_t ni = 0; ni < n; ++ni)
          a[ni] = static_cast<int32_t>(static_cast<uint32_t>(a[ni]) +
                                       static_cast<uint32_t>(w * static_cast<int32_t>(row[ni])));
      }
    core_.psum().write_raw(x.dst, acc.data());
    return;
  }
  // FP32 rows of PSUM are updated in place; other destinations go through a copy.
  size_t stride = 0;
  if (float* rows = free_size(x.dst) == n ? core_.psum().fp32_rows(x.dst, stride) : nullptr) {
    systolic_matmul(s.values.data(), moving_.data(), rows, k, m, n, x.accumulate, stride);
    return;
  }
  out_.resize(size_t{m} * n);
  if (x.accumulate) core_.psum().read(x.dst, out_.data());
  systolic_matmul(s.values.data(), moving_.data(), out_.data(), k, m, n, x.accumulate);
  core_.psum().write(x.dst, out_.data());
}

EngineBase::Cost TensorEngine::execute(const isa::Instruction& ins) {
  if (const auto* x = std::get_if<isa::LoadStationary>(&ins)) return load(x->src);
  if (const auto* x = std::get_if<isa::MultiplyMoving>(&ins)) {
    if (timing_.active() < 0) throw DeviceFault("multiply_moving before any load_stationary");
    const Stationary& s = active();
    const uint32_t k = x->src.part_count;
    if (k != s.rows) throw DeviceFault(fmt::format("moving has {} partitions, the stationary {} rows", k, s.rows));
    if (x->dst.part_count != s.cols)
      throw DeviceFault(fmt::format("dst has {} partitions, the stationary {} columns", x->dst.part_count, s.cols));
    const bool int8 = s.dtype == isa::Dtype::int8;
    if (int8 != (x->src.dtype == isa::Dtype::int8) || int8 != (x->dst.dtype == isa::Dtype::int32))
      throw DeviceFault(fmt::format("operand types {} x {} -> {}: int8 operands go together and accumulate in int32",
                                    isa::to_string(s.dtype), isa::to_string(x->src.dtype),
                                    isa::to_string(x->dst.dtype)));
    if (values_) multiply(*x, s);
    const uint64_t n = free_size(x->src);
    macs_ += uint64_t{k} * s.cols * n;
    // The slower operand type sets the streaming rate.
    const isa::Dtype rate = s.dtype == isa::Dtype::fp32 || x->src.dtype == isa::Dtype::fp32 ? isa::Dtype::fp32 : x->src.dtype;
    return stream(n, rate);
  }
  if (const auto* x = std::get_if<isa::PeTranspose>(&ins)) {
    // A background load of src, then an identity of K columns streamed past it.
    const Cost loaded = load(x->src);
    const uint32_t k = x->src.part_count, m = static_cast<uint32_t>(free_size(x->src));
    const Stationary& s = active();
    if (values_) {
      out_.resize(size_t{m} * k);
      for (uint32_t ki = 0; ki < k; ++ki)
        for (uint32_t mi = 0; mi < m; ++mi) out_[size_t{mi} * k + ki] = s.values[size_t{ki} * m + mi];
      core_.psum().write(x->dst, out_.data());
    }
    Cost c = stream(k, x->src.dtype == isa::Dtype::fp32 ? isa::Dtype::fp32 : isa::Dtype::bf16);
    c.busy += loaded.busy;
    return c;
  }
  throw DeviceFault("instruction not implemented by the tensor engine");
}

}  // namespace infsim::sim
