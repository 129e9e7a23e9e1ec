#include "sim/core/engine.h"

#include <fmt/format.h>

#include <algorithm>

#include "sim/core/core_context.h"

namespace infsim::sim {

StreamTiming stream_timing(uint64_t elements, unsigned sbuf_inputs, unsigned psum_inputs, uint64_t min_cycles,
                           uint64_t latency) {
  const uint64_t reads = elements * std::max({1u, sbuf_inputs, psum_inputs});
  const uint64_t occupancy = std::max(min_cycles, reads);
  return {reads, occupancy, std::max(occupancy, reads + latency)};
}

EngineBase::Cost EngineBase::streaming(uint64_t elements, std::initializer_list<const isa::AccessPattern*> inputs) const {
  const ChipConfig& cfg = core_.cfg();
  unsigned sbuf = 0, psum = 0;
  for (const auto* ap : inputs) ++(ap->space == isa::Space::psum ? psum : sbuf);
  const StreamTiming t = stream_timing(elements, sbuf, psum, cfg.min_instruction_cycles, cfg.sram_latency_cycles);
  return {t.occupancy, t.retire - t.occupancy};
}

EngineBase::EngineBase(sc_core::sc_module_name name, CoreContext& core, isa::Engine id)
    : sc_module(name),
      core_(core),
      id_(id),
      period_(core.cfg().period_ps(id), sc_core::SC_PS),
      instructions_(core.counters().add(path(), "instructions", "", "instructions executed")),
      busy_cycles_(core.counters().add(path(), "busy_cycles", "cycles", "cycles occupied by instructions")),
      stall_semaphore_cycles_(core.counters().add(path(), "stall_semaphore_cycles", "cycles",
                                                  "cycles waiting for semaphores signalled by compute engines")),
      stall_dma_cycles_(core.counters().add(path(), "stall_dma_cycles", "cycles",
                                            "cycles waiting for semaphores only DMA queues signal (data not there yet)")),
      stall_port_cycles_(core.counters().add(path(), "stall_port_cycles", "cycles",
                                             "cycles waiting for the PSUM port held by the other engine")) {
  SC_THREAD(thread);
}

std::string EngineBase::path() const { return fmt::format("core{}.{}", core_.index(), isa::to_string(id_)); }

void EngineBase::load(const isa::Stream* stream) {
  ++generation_;
  reloaded_event_.notify(sc_core::SC_ZERO_TIME);
  stream_ = stream;
  pc_ = 0;
  last_completion_ = sc_core::SC_ZERO_TIME;
  rounding_ = core_.cfg().rounding(core_.index(), id_);
  finished_ = stream == nullptr;
  reset_state();
}

bool EngineBase::satisfied(const isa::Header& h) const {
  return (h.wait0 == isa::kNoSemaphore || core_.semaphore(h.wait0) >= h.wait0_value) &&
         (h.wait1 == isa::kNoSemaphore || core_.semaphore(h.wait1) >= h.wait1_value);
}

std::string EngineBase::describe_wait() const {
  if (finished_ || !stream_) return fmt::format("{} finished", path());
  const isa::Instruction& ins = stream_->instructions[pc_];
  const isa::Header& h = isa::header_of(ins);
  std::string s = fmt::format("{} waits at instruction {} ({})", path(), pc_, isa::to_string(isa::opcode_of(ins)));
  for (auto [sem, value] : {std::pair{h.wait0, h.wait0_value}, std::pair{h.wait1, h.wait1_value}})
    if (sem != isa::kNoSemaphore && core_.semaphore(sem) < value)
      s += fmt::format(" for s{} >= {} (now {})", sem, value, core_.semaphore(sem));
  return s;
}

void EngineBase::thread() {
  for (;;) {
    if (!start_pending_) sc_core::wait(start_event_);
    start_pending_ = false;
    // Clock edges count from the run's start, so a run's timing does not
    // depend on what ran before it in this process.
    origin_ = sc_core::sc_time_stamp();
    if (!stream_) continue;
    const uint64_t generation = generation_;
    run_stream(generation);
    if (generation == generation_) finished_ = pc_ == stream_->instructions.size();
  }
}

// Instructions every engine implements the same way.
EngineBase::Cost EngineBase::execute_common(const isa::Instruction& ins) {
  if (std::holds_alternative<isa::Nop>(ins)) return {1, 0};
  if (const auto* x = std::get_if<isa::EndOfProgram>(&ins)) {
    core_.end_of_program(x->code);
    return {1, 0};
  }
  return execute(ins);
}

void EngineBase::run_stream(uint64_t generation) {
  const sc_core::sc_time period = period_;
  const auto reloaded = [&] { return generation != generation_; };  // after every wait
  for (pc_ = 0; pc_ < stream_->instructions.size(); ++pc_) {
    const isa::Instruction& ins = stream_->instructions[pc_];
    const isa::Header& h = isa::header_of(ins);
    if (!satisfied(h)) {
      // A wait only for data that DMA queues bring counts as a DMA stall.
      bool dma_wait = true;
      for (auto [sem, value] : {std::pair{h.wait0, h.wait0_value}, std::pair{h.wait1, h.wait1_value}})
        if (sem != isa::kNoSemaphore && core_.semaphore(sem) < value) dma_wait &= core_.signalled_by_dma(sem);
      const sc_core::sc_time t0 = sc_core::sc_time_stamp();
      while (!satisfied(h) && !core_.faulted() && !reloaded())
        sc_core::wait(core_.semaphore_changed() | core_.fault_event() | reloaded_event_);
      if (reloaded()) return;
      (dma_wait ? stall_dma_cycles_ : stall_semaphore_cycles_) +=
          static_cast<uint64_t>((sc_core::sc_time_stamp() - t0) / period);
      if (auto* r = core_.recorder())
        r->record({t0.value(), sc_core::sc_time_stamp().value(), core_.chip_index(), core_.index(),
                   static_cast<uint32_t>(pc_), static_cast<uint8_t>(id_), traces::EventKind::semaphore_wait, 0,
                   static_cast<uint8_t>(core_.phase())});
    }
    if (core_.faulted()) return;
    // Instructions issue on this engine's clock edges.
    const uint64_t phase = (sc_core::sc_time_stamp() - origin_).value() % period.value();  // time resolution units
    if (phase) sc_core::wait(sc_core::sc_time::from_value(period.value() - phase), reloaded_event_);
    if (reloaded()) return;
    const sc_core::sc_time issued = sc_core::sc_time_stamp();
    Cost cost;
    values_ = id_ >= isa::Engine::dma0 ? core_.values_matter() : core_.values_needed(ins);
    try {
      cost = execute_common(ins);
    } catch (const DeviceFault& e) {
      if (!reloaded()) core_.fault(id_, pc_, e.what());
      return;
    }
    if (reloaded()) return;
    // The vector and scalar engines share one PSUM port: an instruction with
    // a PSUM operand holds it while it streams, and waits while the other holds it.
    bool psum_operand = false;
    isa::for_each_operand(ins, [&](const isa::AccessPattern& ap) { psum_operand |= ap.space == isa::Space::psum; });
    if ((id_ == isa::Engine::vector || id_ == isa::Engine::scalar) && psum_operand) {
      const uint64_t stall = core_.acquire_psum_port(period, cost.occupancy);
      stall_port_cycles_ += stall;
      cost.occupancy += stall;
    }
    ++instructions_;
    busy_cycles_ += cost.busy;
    sc_core::wait(period * static_cast<double>(cost.occupancy), reloaded_event_);
    if (reloaded()) return;
    // Results complete in program order (one pipeline per engine), so a
    // semaphore's count always means "the first n signalling instructions".
    const sc_core::sc_time done = std::max(sc_core::sc_time_stamp() + period * static_cast<double>(cost.latency),
                                           last_completion_);
    last_completion_ = done;
    if (auto* r = core_.recorder())
      r->record({issued.value(), done.value(), core_.chip_index(), core_.index(), static_cast<uint32_t>(pc_),
                 static_cast<uint8_t>(id_), traces::EventKind::instruction, 0, static_cast<uint8_t>(core_.phase())});
    if (h.signal != isa::kNoSemaphore) core_.signal(h.signal, done - sc_core::sc_time_stamp());
  }
}

}  // namespace infsim::sim
