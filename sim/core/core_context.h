// What an engine of a NeuronCore may reach of its core: the narrow interface
// the tensor, vector and scalar engines and the DMA queues are written
// against (NeuronCore implements it). Engines see their core's memories,
// semaphores, program and fault reporting, and nothing of the chip above.
#pragma once

#include <systemc>

#include <cstdint>
#include <optional>
#include <string>

#include "isa/executable.h"
#include "sim/config.h"
#include "sim/counters.h"
#include "sim/memory/onchip_memory.h"
#include "traces/recorder.h"

namespace infsim::sim {

class CoreContext {
 public:
  virtual ~CoreContext() = default;

  // ---- identity and configuration
  virtual uint32_t index() const = 0;  // the core on its chip
  virtual const ChipConfig& cfg() const = 0;
  virtual CounterRegistry& counters() = 0;

  // ---- the program this core runs
  virtual const isa::Executable& exe() const = 0;
  virtual uint32_t image_core() const = 0;  // which of the executable's cores
  virtual uint64_t image_id() const = 0;    // the host image it came from (0: not known)
  // Timing-only runs: whether this instruction's values must still be computed,
  // and whether any value can matter in this run.
  virtual bool values_needed(const isa::Instruction& ins) const = 0;
  virtual bool values_matter() const = 0;

  // ---- memories
  virtual OnChipMemory& memory(isa::Space s) = 0;
  virtual OnChipMemory& psum() = 0;
  virtual uint64_t dram_base() const = 0;  // this core's DRAM slice
  // A pipeline stage's successor's slice (NeuronCore::connect); unset: none.
  virtual std::optional<uint64_t> next_stage_base() const = 0;
  // Claims the vector/scalar PSUM port for `cycles` engine cycles from the
  // first free edge; returns the cycles waited for it.
  virtual uint64_t acquire_psum_port(const sc_core::sc_time& period, uint64_t cycles) = 0;

  // ---- semaphores
  virtual uint32_t semaphore(uint8_t id) const = 0;
  virtual bool signalled_by_dma(uint8_t id) const = 0;  // only DMA queues of the program signal it
  virtual const sc_core::sc_event& semaphore_changed() const = 0;
  virtual void signal(uint8_t id, const sc_core::sc_time& delay) = 0;  // +1 after `delay`

  // ---- trace recording (null: off) and the chip this core is on, for its events
  virtual traces::Recorder* recorder() const = 0;
  virtual uint32_t chip_index() const = 0;
  virtual isa::Phase phase() const = 0;  // the loaded program's (run, load, send)

  // ---- completion and faults
  virtual void end_of_program(uint32_t code) = 0;
  virtual void fault(isa::Engine engine, size_t pc, const std::string& what) = 0;
  virtual bool faulted() const = 0;
  virtual const sc_core::sc_event& fault_event() const = 0;
};

}  // namespace infsim::sim
