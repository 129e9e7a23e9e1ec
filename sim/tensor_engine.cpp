#include "sim/tensor_engine.h"

#include <fmt/format.h>

#include <algorithm>

#include "sim/neuron_core.h"

namespace infsim::sim {

using sc_core::sc_time;

TensorEngine::TensorEngine(sc_core::sc_module_name name, NeuronCore& core)
    : EngineBase(name, core, isa::Engine::tensor),
      macs_(core.counters().add(path(), "macs", "", "multiply-accumulates performed")) {}

void TensorEngine::reset_state() {
  for (auto& b : buffers_) b = Stationary{};
  active_ = -1;
  loads_ = 0;
  load_port_free_ = moving_port_free_ = sc_core::SC_ZERO_TIME;
}

namespace {
// Moving columns per cycle by operand type: FP32 a quarter, INT8 double.
uint64_t column_cycles(isa::Dtype t, uint64_t columns) {
  if (t == isa::Dtype::fp32) return 4 * columns;
  if (t == isa::Dtype::int8) return (columns + 1) / 2;
  return columns;
}
uint64_t cycles_between(const sc_time& from, const sc_time& to, const sc_time& period) {
  return to > from ? static_cast<uint64_t>((to - from) / period + 0.5) : 0;
}
}  // namespace

EngineBase::Cost TensorEngine::load(const isa::AccessPattern& src, bool for_transpose) {
  const sc_time now = sc_core::sc_time_stamp(), period = period_;
  const int b = loads_++ % 2;
  Stationary& s = buffers_[b];
  // The buffer is reloaded once the multiplies using its old contents have streamed.
  const sc_time start = std::max({now, load_port_free_, s.free_from});
  s.rows = src.part_count;
  s.cols = static_cast<uint32_t>(free_size(src));
  s.dtype = src.dtype;
  s.values.resize(size_t{s.rows} * s.cols);
  core_.memory(src.space).read(src, s.values.data());
  // One stationary column enters per cycle (a quarter of that for FP32).
  const uint64_t load_cycles = column_cycles(s.dtype == isa::Dtype::int8 ? isa::Dtype::bf16 : s.dtype, s.cols);
  s.ready = start + period * static_cast<double>(load_cycles);
  s.free_from = s.ready;
  load_port_free_ = s.ready;
  active_ = b;
  if (for_transpose) return {0, 0};
  // Issues at once; complete when loaded.
  return {1, cycles_between(now + period, s.ready, period), load_cycles};
}

EngineBase::Cost TensorEngine::stream(uint64_t cycles) {
  const ChipConfig& cfg = core_.cfg();
  const sc_time now = sc_core::sc_time_stamp(), period = period_;
  Stationary& s = buffers_[active_];
  const sc_time start = std::max({now, s.ready, moving_port_free_});
  const uint64_t busy = std::max<uint64_t>(cfg.min_instruction_cycles, cycles);
  moving_port_free_ = start + period * static_cast<double>(busy);
  s.free_from = moving_port_free_;
  // The engine issues its next instruction once this one has started
  // streaming; the last result leaves after the array's depth.
  const uint64_t wait = cycles_between(now, start, period) + 1;
  return {wait, busy - 1 + cfg.array_rows + cfg.array_cols, busy};
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
  out_.resize(size_t{m} * n);
  if (x.accumulate)
    core_.psum().read(x.dst, out_.data());
  else
    std::fill(out_.begin(), out_.end(), 0.0f);
  // Each output column m sums its products in increasing k, in FP32: the
  // order partial sums flow down the array.
  for (uint32_t mi = 0; mi < m; ++mi) {
    float* acc = &out_[size_t{mi} * n];
    for (uint32_t ki = 0; ki < k; ++ki) {
      const float w = s.values[size_t{ki} * m + mi];
      const float* row = &moving_[size_t{ki} * n];
      for (uint32_t ni = 0; ni < n; ++ni) acc[ni] += w * row[ni];
    }
  }
  core_.psum().write(x.dst, out_.data());
}

EngineBase::Cost TensorEngine::execute(const isa::Instruction& ins) {
  if (const auto* x = std::get_if<isa::LoadStationary>(&ins)) return load(x->src, false);
  if (const auto* x = std::get_if<isa::MultiplyMoving>(&ins)) {
    if (active_ < 0) throw DeviceFault("multiply_moving before any load_stationary");
    const Stationary& s = buffers_[active_];
    const uint32_t k = x->src.part_count;
    if (k != s.rows) throw DeviceFault(fmt::format("moving has {} partitions, the stationary {} rows", k, s.rows));
    if (x->dst.part_count != s.cols)
      throw DeviceFault(fmt::format("dst has {} partitions, the stationary {} columns", x->dst.part_count, s.cols));
    const bool int8 = s.dtype == isa::Dtype::int8;
    if (int8 != (x->src.dtype == isa::Dtype::int8) || int8 != (x->dst.dtype == isa::Dtype::int32))
      throw DeviceFault(fmt::format("operand types {} x {} -> {}: int8 operands go together and accumulate in int32",
                                    isa::to_string(s.dtype), isa::to_string(x->src.dtype),
                                    isa::to_string(x->dst.dtype)));
    multiply(*x, s);
    const uint64_t n = free_size(x->src);
    macs_ += uint64_t{k} * s.cols * n;
    // The slower operand type sets the streaming rate.
    const isa::Dtype rate = s.dtype == isa::Dtype::fp32 || x->src.dtype == isa::Dtype::fp32 ? isa::Dtype::fp32 : x->src.dtype;
    return stream(column_cycles(rate, n));
  }
  if (const auto* x = std::get_if<isa::PeTranspose>(&ins)) {
    load(x->src, true);
    const uint32_t k = x->src.part_count, m = static_cast<uint32_t>(free_size(x->src));
    const Stationary& s = buffers_[active_];
    out_.resize(size_t{m} * k);
    for (uint32_t ki = 0; ki < k; ++ki)
      for (uint32_t mi = 0; mi < m; ++mi) out_[size_t{mi} * k + ki] = s.values[size_t{ki} * m + mi];
    core_.psum().write(x->dst, out_.data());
    return stream(column_cycles(x->src.dtype == isa::Dtype::fp32 ? isa::Dtype::fp32 : isa::Dtype::bf16, k));
  }
  throw DeviceFault("instruction not implemented by the tensor engine");
}

}  // namespace infsim::sim
