#include "sim/core/neuron_core.h"

#include <fmt/format.h>

#include <cmath>

#include "sim/core/dma_queue.h"
#include "sim/core/scalar_engine.h"
#include "sim/core/tensor_engine.h"
#include "sim/core/vector_engine.h"

namespace infsim::sim {

NeuronCore::NeuronCore(sc_core::sc_module_name name, uint32_t index, const ChipConfig& cfg, CounterRegistry& counters)
    : sc_module(name),
      index_(index),
      cfg_(cfg),
      counters_(counters),
      period_(cfg.period_ps(isa::Engine::tensor), sc_core::SC_PS),
      sbuf_("sbuf", cfg.partitions, cfg.sbuf_partition_bytes),
      psum_("psum", cfg.partitions, cfg.psum_partition_bytes),
      semaphores_(cfg.semaphores, 0) {
  engines_.emplace_back(new TensorEngine("tensor", *this));
  engines_.emplace_back(new VectorEngine("vector", *this));
  engines_.emplace_back(new ScalarEngine("scalar", *this));
  for (uint32_t q = 0; q < cfg.dma_queues; ++q) {
    const auto id = static_cast<isa::Engine>(static_cast<unsigned>(isa::Engine::dma0) + q);
    auto* dq = new DmaQueue(isa::to_string(id), *this, id);
    engines_.emplace_back(dq);
    dma_queues_.push_back(dq);
  }
  SC_METHOD(apply_signals);
  sensitive << signal_due_;
  dont_initialize();
}

NeuronCore::~NeuronCore() = default;

std::vector<tlm::tlm_initiator_socket<>*> NeuronCore::dram_sockets() {
  std::vector<tlm::tlm_initiator_socket<>*> s;
  for (auto* q : dma_queues_) s.push_back(&q->socket);
  return s;
}

std::vector<tlm::tlm_initiator_socket<>*> NeuronCore::fabric_sockets() {
  std::vector<tlm::tlm_initiator_socket<>*> s;
  for (auto* q : dma_queues_) s.push_back(&q->fabric);
  return s;
}

void NeuronCore::load(const isa::Executable& exe, uint32_t image_core, uint64_t image_id, isa::Phase phase) {
  exe_ = &exe;
  image_core_ = image_core;
  image_id_ = image_id;
  phase_ = phase;
  std::vector<int> by_dma(cfg_.semaphores, 0), by_compute(cfg_.semaphores, 0);
  for (const auto& s : exe.streams)
    if (s.core == image_core_ && s.phase == phase_)
      for (const auto& ins : s.instructions)
        if (const uint8_t sem = isa::header_of(ins).signal; sem != isa::kNoSemaphore)
          ++(s.engine >= isa::Engine::dma0 ? by_dma : by_compute)[sem];
  gather_indices_.clear();
  for (const auto& s : exe.streams)
    if (s.core == image_core_ && s.phase == phase_)
      for (const auto& ins : s.instructions)
        if (const auto* g = std::get_if<isa::DmaGather>(&ins)) gather_indices_.push_back(g->index);
  dma_signalled_.assign(cfg_.semaphores, false);
  for (uint32_t i = 0; i < cfg_.semaphores; ++i) dma_signalled_[i] = by_dma[i] && !by_compute[i];
  for (auto& e : engines_) {
    const isa::Stream* mine = nullptr;
    for (const auto& s : exe.streams)
      if (s.core == image_core_ && s.phase == phase_ && s.engine == e->id()) mine = &s;
    e->load(mine);
  }
}

void NeuronCore::reset(bool keep_memory) {
  if (!keep_memory) {
    sbuf_.clear();
    psum_.clear();
  }
  std::fill(semaphores_.begin(), semaphores_.end(), 0);
  pending_signals_.clear();
  psum_port_free_ = sc_core::SC_ZERO_TIME;
  completion_code_.reset();
  completion_time_ = sc_core::SC_ZERO_TIME;
  fault_.reset();
}

void NeuronCore::start() {
  for (auto& e : engines_) e->start();
}

bool NeuronCore::all_finished() const {
  for (const auto& e : engines_)
    if (!e->finished()) return false;
  return true;
}

uint32_t NeuronCore::active_engines() const {
  uint32_t m = 0;
  for (const auto& e : engines_)
    if (!e->finished()) m |= 1u << static_cast<unsigned>(e->id());
  return m;
}

std::vector<std::string> NeuronCore::blocked_engines() const {
  std::vector<std::string> v;
  for (const auto& e : engines_)
    if (!e->finished()) v.push_back(e->describe_wait());
  return v;
}

namespace {
// Byte range [first, end) an access pattern touches inside each partition.
std::pair<int64_t, int64_t> byte_span(const isa::AccessPattern& ap) {
  int64_t lo = 0, hi = 0;
  for (uint32_t i = 0; i < ap.ndim; ++i) {
    const int64_t reach = static_cast<int64_t>(ap.dims[i].num - 1) * ap.dims[i].step;
    (reach < 0 ? lo : hi) += reach;
  }
  const int64_t size = isa::dtype_bytes(ap.dtype);
  return {ap.offset + lo * size, ap.offset + (hi + 1) * size};
}

bool overlap(const isa::AccessPattern& a, const isa::AccessPattern& b) {
  if (a.space != b.space || a.space == isa::Space::none) return false;
  if (a.part_start >= b.part_start + b.part_count || b.part_start >= a.part_start + a.part_count) return false;
  const auto [a0, a1] = byte_span(a);
  const auto [b0, b1] = byte_span(b);
  return a0 < b1 && b0 < a1;
}
}  // namespace

bool NeuronCore::values_needed(const isa::Instruction& ins) const {
  if (!timing_only_) return true;
  bool needed = false;
  isa::for_each_operand(ins, [&](const isa::AccessPattern& ap) {
    for (const auto& g : gather_indices_) needed |= overlap(ap, g);
  });
  return needed;
}

uint64_t NeuronCore::acquire_psum_port(const sc_core::sc_time& period, uint64_t cycles) {
  const sc_core::sc_time now = sc_core::sc_time_stamp();
  uint64_t stall = 0;
  if (psum_port_free_ > now) stall = static_cast<uint64_t>(std::ceil((psum_port_free_ - now) / period));
  psum_port_free_ = now + period * static_cast<double>(stall + cycles);
  return stall;
}

void NeuronCore::signal(uint8_t id, const sc_core::sc_time& delay) {
  if (delay == sc_core::SC_ZERO_TIME) {
    ++semaphores_[id];
    semaphore_changed_.notify(sc_core::SC_ZERO_TIME);
    return;
  }
  pending_signals_.emplace(sc_core::sc_time_stamp() + delay, id);
  signal_due_.notify(pending_signals_.begin()->first - sc_core::sc_time_stamp());
}

void NeuronCore::apply_signals() {
  const sc_core::sc_time now = sc_core::sc_time_stamp();
  while (!pending_signals_.empty() && pending_signals_.begin()->first <= now) {
    ++semaphores_[pending_signals_.begin()->second];
    pending_signals_.erase(pending_signals_.begin());
  }
  semaphore_changed_.notify(sc_core::SC_ZERO_TIME);
  if (!pending_signals_.empty()) signal_due_.notify(pending_signals_.begin()->first - now);
}

void NeuronCore::end_of_program(uint32_t code) {
  if (completion_code_) throw DeviceFault("second end_of_program");
  completion_code_ = code;
  completion_time_ = sc_core::sc_time_stamp();
  if (observer_) observer_->end_of_program(index_, code);
}

void NeuronCore::abandon() {
  if (!fault_) fault_ = "run abandoned";
  fault_event_.notify(sc_core::SC_ZERO_TIME);
}

void NeuronCore::fault(isa::Engine engine, size_t pc, const std::string& what) {
  if (fault_) return;  // report the first fault only
  std::string op = "?";
  for (const auto& s : exe_->streams)
    if (s.core == image_core_ && s.phase == phase_ && s.engine == engine && pc < s.instructions.size()) {
      op = isa::to_string(isa::opcode_of(s.instructions[pc]));
      if (pc < s.source_op.size()) op += ", from " + exe_->source_ops[s.source_op[pc]];
    }
  fault_ = fmt::format("device fault on core {} {} engine, instruction {} ({}): {}", index_, isa::to_string(engine), pc,
                       op, what);
  fault_event_.notify(sc_core::SC_ZERO_TIME);
  if (observer_) observer_->fault(index_, engine, pc);
}

}  // namespace infsim::sim
