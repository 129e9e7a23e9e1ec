// The chip: NeuronCores sharing device DRAM over TLM-2.0, the host interface
// (device registers over TLM-2.0) with its command-processing firmware, and
// the runtime's entry point for running one executable on it. The runtime
// (Chip::run) plays the host: it reaches the device only through the
// HostPort's sockets, i.e. register accesses and bulk DRAM transfers.
//
// SystemC elaborates a design once per process, so a process holds one chip
// (one configuration); it is reused run after run, its state reset between.
#pragma once

#include <systemc>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "isa/executable.h"
#include "sim/config.h"
#include "sim/counters.h"
#include "firmware/command_processor.h"
#include "sim/memory/dram.h"
#include "sim/chip/host_interface.h"
#include "sim/core/neuron_core.h"

namespace infsim::sim {

// A run that could not complete: device fault, deadlock, or bad inputs.
struct RunError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct RunResult {
  std::map<std::string, std::vector<uint8_t>> outputs;  // raw bytes, the tensors' dtypes
  uint64_t total_cycles = 0;                            // core clock cycles to end_of_program
  double simulated_seconds = 0;
  std::vector<Counter> counters;
};

class Chip : public sc_core::sc_module {
 public:
  // The first call creates the process's chip; later calls must ask for the
  // same configuration.
  static Chip& instance(const ChipConfig& cfg);
  // Whether this process's chip (if any) can run `cfg`.
  static bool can_run(const ChipConfig& cfg);

  // Builds a chip. A test process may build its own (SystemC elaborates one
  // design per process). Without `own_host_port` the chip is part of an
  // instance (sim/system/instance.h): its register socket is left for the
  // instance's host and its DMA queues' fabric sockets for the router to
  // bind, and run() cannot be used. A standalone chip refuses fabric addresses.
  Chip(sc_core::sc_module_name name, const ChipConfig& cfg, bool own_host_port = true);
  ~Chip() override;

  const ChipConfig& config() const { return cfg_; }
  HostInterface& host_interface() { return *host_if_; }
  HostPort& host() { return *host_; }
  Dram& dram() { return *dram_; }
  NeuronCore& core(uint32_t c) { return *cores_.at(c); }
  uint32_t num_cores() const { return static_cast<uint32_t>(cores_.size()); }
  CounterRegistry& counters() { return counters_; }
  const CounterRegistry& counter_registry() const { return counters_; }
  // Validates, loads weights and inputs (raw bytes keyed by input name),
  // simulates to completion, reads outputs. Throws isa::FormatError for an
  // invalid executable and RunError for a failed run. A timing-only run gives
  // the same cycles and counters without computing values (outputs are
  // then meaningless); see NeuronCore::set_timing_only.
  RunResult run(const isa::Executable& exe, const std::map<std::string, std::vector<uint8_t>>& inputs,
                bool timing_only = false);

 private:
  // After a failed run: abandons and resets cores [0, n) (command reset_cores).
  void reset_cores(uint32_t n);

  ChipConfig cfg_;
  CounterRegistry counters_;
  std::unique_ptr<Dram> dram_;
  std::vector<std::unique_ptr<NeuronCore>> cores_;
  std::unique_ptr<HostInterface> host_if_;
  std::unique_ptr<firmware::CommandProcessor> firmware_;
  std::unique_ptr<HostPort> host_;
  struct NoFabric;
  std::unique_ptr<NoFabric> no_fabric_;
};

}  // namespace infsim::sim
