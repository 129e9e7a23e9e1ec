// Base of every instruction-stream engine of a NeuronCore (tensor, vector,
// scalar, DMA queues). Each engine runs its own stream in its own SystemC
// thread: wait for the header's semaphores, execute (values are computed at
// issue), hold the engine for the instruction's occupancy, and increment the
// signal semaphore when the result is complete (occupancy + latency, and never
// before the engine's previous instruction has completed).
// Simulator events are per instruction, never per cycle.
#pragma once

#include <systemc>

#include <initializer_list>
#include <stdexcept>
#include <string>

#include "isa/executable.h"
#include "isa/numerics.h"
#include "sim/counters.h"

namespace infsim::sim {

class CoreContext;

// Timing of a streaming instruction on the vector or scalar engine, in the
// engine's cycles from issue. SBUF and PSUM each deliver one element per
// partition per cycle, so an element costs as many cycles as the busier of
// the two has operands to read (at least one); elements are read back to
// back from issue, and each result is written `latency` cycles after its
// read. The engine can issue again after max(min_cycles, reads) cycles (the
// fixed dispatch cost); the instruction retires when it has both left
// dispatch and written its last result.
struct StreamTiming {
  uint64_t reads;      // cycles of element reads
  uint64_t occupancy;  // cycles until the next issue
  uint64_t retire;     // cycles until complete
};
StreamTiming stream_timing(uint64_t elements, unsigned sbuf_inputs, unsigned psum_inputs, uint64_t min_cycles,
                           uint64_t latency);

// An instruction the hardware would refuse at run time (state the validator
// cannot see, e.g. a matmul before any stationary load).
struct DeviceFault : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class EngineBase : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(EngineBase);
  EngineBase(sc_core::sc_module_name name, CoreContext& core, isa::Engine id);

  // Assigns the stream to run at the next start (nullptr: no stream).
  void load(const isa::Stream* stream);
  void start() {
    start_pending_ = true;
    start_event_.notify(sc_core::SC_ZERO_TIME);
  }
  bool finished() const { return finished_; }
  isa::Engine id() const { return id_; }
  // This engine's clock period: instructions issue on its edges and its
  // counters count its cycles.
  sc_core::sc_time period() const { return period_; }
  // For deadlock reports: where the engine stopped and what it waits for.
  std::string describe_wait() const;

 protected:
  struct Cost {
    Cost() = default;
    Cost(uint64_t occupancy_, uint64_t latency_) : occupancy(occupancy_), latency(latency_), busy(occupancy_) {}
    Cost(uint64_t occupancy_, uint64_t latency_, uint64_t busy_)
        : occupancy(occupancy_), latency(latency_), busy(busy_) {}
    uint64_t occupancy = 0;  // cycles before the engine can issue its next instruction
    uint64_t latency = 0;    // further cycles until the result is complete
    uint64_t busy = 0;       // cycles of work, for the busy counter (pipelined units overlap them)
  };
  // Engine-specific instructions; nop and end_of_program are handled here.
  virtual Cost execute(const isa::Instruction& ins) = 0;
  virtual void reset_state() {}
  // Cost of a streaming instruction over `elements` per partition, with the
  // given input operands (outputs only: none).
  Cost streaming(uint64_t elements, std::initializer_list<const isa::AccessPattern*> inputs) const;
  std::string path() const;  // counter path, e.g. "core0.tensor"

  CoreContext& core_;
  const isa::Engine id_;
  const sc_core::sc_time period_;
  bool values_ = true;  // compute (DMA: move) this instruction's values (false: timing only)
  sc_core::sc_time origin_;  // the current run's start: clock edge 0
  // How this engine rounds narrowing writes (RNE, or its own seeded
  // stochastic stream); set afresh from the configuration by every load(),
  // i.e. at the start of every run.
  numerics::Rounding rounding_;

 private:
  void thread();
  void run_stream(uint64_t generation);
  Cost execute_common(const isa::Instruction& ins);
  bool satisfied(const isa::Header& h) const;

  const isa::Stream* stream_ = nullptr;
  size_t pc_ = 0;
  bool finished_ = true;
  // Every load() starts a generation. A reset can load the core while an
  // instruction of the old stream is still waiting out its cycles; that run
  // then ends where it wakes, without touching the stream (which may be gone).
  uint64_t generation_ = 0;
  bool start_pending_ = false;  // a start() the thread has not taken yet (it may come mid-run)
  sc_core::sc_event start_event_;
  sc_core::sc_event reloaded_event_;  // wakes a thread still in an old stream at once
  uint64_t& instructions_;
  uint64_t& busy_cycles_;
  uint64_t& stall_semaphore_cycles_;
  uint64_t& stall_dma_cycles_;
  uint64_t& stall_port_cycles_;
  sc_core::sc_time last_completion_;
};

}  // namespace infsim::sim
