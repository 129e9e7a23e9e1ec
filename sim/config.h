// Chip configuration: the one schema of every parameter (name, type, default,
// unit, description, source), loaded from YAML files in configs/. Unknown keys
// are errors, so a typo in a what-if study cannot pass silently.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "isa/executable.h"

namespace infsim::sim {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// X(type, name, default, unit, description). Defaults are the inf1-class chip;
// the description ends with the figure's source, or "assumption".
#define INFSIM_CHIP_PARAMS(X)                                                                                        \
  X(std::string, name, "inf1", "", "configuration name")                                                             \
  X(uint32_t, cores, 4, "", "NeuronCores per chip (public: inf1 has 4)")                                             \
  X(double, core_clock_mhz, 976.5625, "MHz",                                                                         \
    "engine clock; 128x64 MACs x 2 FLOP x 4 cores x this = 64 TFLOPS, the public inf1 peak (derived)")               \
  X(uint32_t, partitions, 128, "", "SBUF/PSUM partitions = systolic array rows (public)")                           \
  X(uint32_t, array_rows, 128, "", "systolic array rows = contraction size per matmul (public)")                    \
  X(uint32_t, array_cols, 64, "", "systolic array columns = stationary free size (assumption, fits 64 TFLOPS)")     \
  X(uint64_t, sbuf_partition_bytes, 98304, "B", "SBUF bytes per partition, 12 MiB per core (assumption)")          \
  X(uint64_t, psum_partition_bytes, 16384, "B", "PSUM bytes per partition (assumption, as NeuronCore-v2)")         \
  X(uint32_t, psum_bank_bytes, 2048, "B", "PSUM bank size per partition: 512 FP32 accumulators (assumption)")      \
  X(uint32_t, semaphores, 32, "", "hardware semaphores per core (assumption)")                                       \
  X(uint32_t, dma_queues, 4, "", "DMA queues per core (assumption)")                                                 \
  X(uint32_t, min_instruction_cycles, 64, "cycles", "fixed cost floor of an engine instruction (published hint)")   \
  X(uint32_t, sram_latency_cycles, 60, "cycles", "fixed latency of an SBUF/PSUM access request (published hint)")    \
  X(uint32_t, dma_bytes_per_cycle, 32, "B/cycle", "peak rate of one DMA queue (assumption)")                        \
  X(uint32_t, dma_fixed_cycles, 64, "cycles", "per-descriptor setup cost of a DMA queue (assumption)")             \
  X(uint64_t, dram_bytes, 8ull << 30, "B", "device DRAM per chip, split evenly into per-core slices (public: 8 GiB)") \
  X(uint32_t, dram_channels, 2, "", "DRAM channels per chip (public)")                                               \
  X(double, dram_gib_per_s, 50.0, "GiB/s", "total DRAM bandwidth per chip (public: 50 GiB/s)")                      \
  X(double, dram_latency_ns, 100.0, "ns", "DRAM access latency, request to data (assumption)")                       \
  X(uint32_t, dram_burst_bytes, 64, "B", "DRAM access granularity: smaller or unaligned pieces cost a full burst (assumption)")

struct ChipConfig {
#define INFSIM_DECLARE(type, name, def, unit, desc) type name = def;
  INFSIM_CHIP_PARAMS(INFSIM_DECLARE)
#undef INFSIM_DECLARE

  // Loads a YAML file of overrides on top of the defaults. Throws ConfigError.
  static ChipConfig from_file(const std::string& path);
  // "inf1", "inf2" or a path to a YAML file.
  static ChipConfig named(const std::string& name_or_path);

  uint64_t dram_slice_bytes() const { return dram_bytes / cores; }
  double core_period_ps() const { return 1e6 / core_clock_mhz; }
  isa::DeviceLimits limits() const;
  void check() const;  // throws ConfigError on inconsistent values
};

struct ParamInfo {
  std::string name, type, unit, description, default_value;
};
const std::vector<ParamInfo>& param_schema();
// name -> value as text, for reports.
std::vector<std::pair<std::string, std::string>> param_values(const ChipConfig& c);

}  // namespace infsim::sim
