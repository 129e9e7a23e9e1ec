// One NeuronCore: SBUF, PSUM, semaphores, and the engines that run the
// executable's per-engine instruction streams.
#pragma once

#include <systemc>
#include <tlm>

#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "sim/config.h"
#include "sim/core/core_context.h"
#include "sim/core/engine.h"
#include "sim/counters.h"

namespace infsim::sim {

class DmaQueue;

class NeuronCore : public sc_core::sc_module, public CoreContext {
 public:
  SC_HAS_PROCESS(NeuronCore);
  NeuronCore(sc_core::sc_module_name name, uint32_t index, const ChipConfig& cfg, CounterRegistry& counters);
  ~NeuronCore() override;

  // DMA queues' initiator sockets, bound by the chip to the DRAM.
  std::vector<tlm::tlm_initiator_socket<>*> dram_sockets();
  // Their fabric sockets (other chips' DRAM), bound to the chip's router.
  std::vector<tlm::tlm_initiator_socket<>*> fabric_sockets();

  // Assigns the streams of the executable's core `image_core` to this core
  // (a model loads onto any group of cores: image core i runs on the
  // group's i-th core).
  // `image_id` names the host image for as long as it stays mapped (0: not
  // known), so that what is derived from it alone can be kept across loads.
  // `phase` picks which of the core's programs (isa::Phase) runs.
  void load(const isa::Executable& exe, uint32_t image_core, uint64_t image_id = 0,
            isa::Phase phase = isa::Phase::run);
  uint32_t image_core() const override { return image_core_; }
  isa::Phase phase() const override { return phase_; }
  // Where the `next` DMA endpoints of a pipeline stage point: the absolute
  // DRAM address (this chip's) or fabric address (another chip's) of the
  // next stage's core's slice; unset: not connected.
  void connect(std::optional<uint64_t> next_base) { next_base_ = next_base; }
  std::optional<uint64_t> next_stage_base() const override { return next_base_; }
  uint64_t image_id() const override { return image_id_; }

  // Timing-only runs compute cycles but not values. The one way values steer
  // timing is a dma_gather's row indices, so instructions whose operands
  // overlap a gather's index operand still compute, and DMA moves data and
  // stationary loads read it unless the core's program has no gather at all.
  void set_timing_only(bool on) { timing_only_ = on; }
  bool values_needed(const isa::Instruction& ins) const override;
  // Whether any value can matter in this run: false only for timing-only runs without gathers.
  bool values_matter() const override { return !timing_only_ || !gather_indices_.empty(); }
  // Clears semaphores and engine state, and SBUF and PSUM unless `keep_memory`
  // (a pipeline stage's programs after its load program keep its resident weights).
  void reset(bool keep_memory = false);
  void start();
  bool all_finished() const;
  std::vector<std::string> blocked_engines() const;

  // --- used by the engines
  uint32_t index() const override { return index_; }
  traces::Recorder* recorder() const override { return recorder_; }
  uint32_t chip_index() const override { return chip_index_; }
  void set_recorder(traces::Recorder* r, uint32_t chip) {
    recorder_ = r;
    chip_index_ = chip;
  }
  const ChipConfig& cfg() const override { return cfg_; }
  CounterRegistry& counters() override { return counters_; }
  const isa::Executable& exe() const override { return *exe_; }
  // The core's reference clock (the tensor engine's): total_cycles counts it.
  sc_core::sc_time period() const { return period_; }
  uint64_t dram_base() const override { return uint64_t{index_} * cfg_.dram_slice_bytes(); }
  OnChipMemory& memory(isa::Space s) override { return s == isa::Space::psum ? psum_ : sbuf_; }
  OnChipMemory& sbuf() { return sbuf_; }
  OnChipMemory& psum() override { return psum_; }

  // Claims the vector/scalar PSUM port for `cycles` engine cycles from the
  // first free edge; returns the cycles waited for it.
  uint64_t acquire_psum_port(const sc_core::sc_time& period, uint64_t cycles) override;

  uint32_t semaphore(uint8_t id) const override { return semaphores_[id]; }
  // Whether only DMA queues of this core's program signal semaphore `id`.
  bool signalled_by_dma(uint8_t id) const override { return dma_signalled_[id]; }
  const sc_core::sc_event& semaphore_changed() const override { return semaphore_changed_; }
  // Increments semaphore `id` by one after `delay`.
  void signal(uint8_t id, const sc_core::sc_time& delay) override;

  // Told of end_of_program and of the first fault as they happen (the host
  // interface's status registers and interrupt).
  struct Observer {
    virtual ~Observer() = default;
    virtual void end_of_program(uint32_t core, uint32_t code) = 0;
    virtual void fault(uint32_t core, isa::Engine engine, size_t pc) = 0;
  };
  void set_observer(Observer* o) { observer_ = o; }
  // Bit e set: engine e (isa::Engine) has a stream it has not finished.
  uint32_t active_engines() const;

  void end_of_program(uint32_t code) override;
  std::optional<uint32_t> completion_code() const { return completion_code_; }
  sc_core::sc_time completion_time() const { return completion_time_; }

  void fault(isa::Engine engine, size_t pc, const std::string& what) override;
  // After a deadlock: engines still blocked on semaphores give up their
  // streams, so that the next run starts every engine afresh.
  void abandon();
  bool faulted() const override { return fault_.has_value(); }
  const std::string& fault_message() const { return *fault_; }
  const sc_core::sc_event& fault_event() const override { return fault_event_; }

 private:
  void apply_signals();

  const uint32_t index_;
  const ChipConfig& cfg_;
  CounterRegistry& counters_;
  const isa::Executable* exe_ = nullptr;
  uint32_t image_core_ = 0;
  isa::Phase phase_ = isa::Phase::run;
  std::optional<uint64_t> next_base_;
  traces::Recorder* recorder_ = nullptr;
  uint32_t chip_index_ = 0;
  uint64_t image_id_ = 0;
  sc_core::sc_time period_;
  OnChipMemory sbuf_, psum_;
  sc_core::sc_time psum_port_free_;
  std::vector<uint32_t> semaphores_;
  std::vector<bool> dma_signalled_;
  bool timing_only_ = false;
  std::vector<isa::AccessPattern> gather_indices_;  // index operands of this core's dma_gathers
  sc_core::sc_event semaphore_changed_;
  std::multimap<sc_core::sc_time, uint8_t> pending_signals_;
  sc_core::sc_event signal_due_;
  std::optional<uint32_t> completion_code_;
  sc_core::sc_time completion_time_;
  std::optional<std::string> fault_;
  sc_core::sc_event fault_event_;
  std::vector<std::unique_ptr<EngineBase>> engines_;
  std::vector<DmaQueue*> dma_queues_;
  Observer* observer_ = nullptr;
};

}  // namespace infsim::sim
