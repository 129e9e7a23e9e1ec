// Chip configuration: the one schema of every parameter (name, type, default,
// unit, description, source), loaded from YAML files in configs/. Unknown keys
// are errors, so a typo in a what-if study cannot pass silently.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "isa/executable.h"
#include "isa/numerics.h"

namespace infsim::sim {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// X(type, name, default, unit, description). Defaults are the inf1-class chip;
// the description ends with the figure's source, or "assumption".
#define INFSIM_CHIP_PARAMS(X)                                                                                        \
  X(std::string, name, "inf1", "", "configuration name")                                                             \
  X(uint32_t, cores, 4, "", "NeuronCores per chip (public: inf1 has 4)")                                             \
  X(double, tensor_clock_mhz, 976.5625, "MHz",                                                                       \
    "tensor engine clock, the core's reference clock: 128x64 MACs x 2 FLOP x 4 cores x this = 64 TFLOPS, the "         \
    "public inf1 peak (derived)")                                                                                       \
  X(double, vector_clock_mhz, 976.5625, "MHz",                                                                       \
    "vector engine clock: 128 lanes x 2 FLOP x this = 250 GFLOP/s, the public 256 FLOP/cycle (assumption: same clock)") \
  X(double, scalar_clock_mhz, 976.5625, "MHz",                                                                       \
    "scalar engine clock: 128 lanes x 4 FLOP x this, the public 512 FLOP/cycle (assumption: same clock)")              \
  X(double, dma_clock_mhz, 976.5625, "MHz", "DMA queue clock (assumption)")                                          \
  X(uint32_t, partitions, 128, "", "SBUF/PSUM partitions, at least the systolic array rows (public: 128)")                           \
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
  X(uint32_t, dma_max_transfer_bytes, 4096, "B", "largest single transfer a DMA queue issues (assumption)")          \
  X(uint64_t, dram_bytes, 8ull << 30, "B", "device DRAM per chip, split evenly into per-core slices (public: 8 GiB)") \
  X(uint32_t, dram_channels, 2, "", "DRAM channels per chip (public)")                                               \
  X(uint64_t, dram_interleave_bytes, 0, "B",                                                                          \
    "consecutive bytes per channel before the next; 0 = dram_bytes/channels, one channel per core slice (assumption)") \
  X(uint32_t, dram_mt_per_s, 3200, "MT/s",                                                                            \
    "data rate: DDR4-3200, 2 x 64-bit channels = 51.2 GB/s vs the public 50 GiB/s (assumption)")                      \
  X(uint32_t, dram_bus_bytes, 8, "B", "data bus width of a channel (assumption: 64-bit DDR4 channel)")               \
  X(uint32_t, dram_burst_length, 8, "", "transfers per burst (DDR4 BL8)")                                             \
  X(uint32_t, dram_bank_groups, 4, "", "bank groups per channel (DDR4 x8)")                                           \
  X(uint32_t, dram_banks_per_group, 4, "", "banks per bank group (DDR4 x8)")                                          \
  X(uint32_t, dram_row_bytes, 8192, "B", "row (page) size across a channel's devices (DDR4 x8: 1 KiB x 8)")          \
  X(uint32_t, dram_tRCD, 22, "tCK", "ACT to RD/WR (DDR4-3200AA)")                                                    \
  X(uint32_t, dram_tRP, 22, "tCK", "PRE to ACT (DDR4-3200AA)")                                                       \
  X(uint32_t, dram_tCL, 22, "tCK", "RD to data (DDR4-3200AA)")                                                       \
  X(uint32_t, dram_tCWL, 16, "tCK", "WR to data (DDR4-3200)")                                                        \
  X(uint32_t, dram_tRAS, 52, "tCK", "ACT to PRE (DDR4-3200: 32 ns)")                                                 \
  X(uint32_t, dram_tRC, 74, "tCK", "ACT to ACT, same bank (tRAS + tRP)")                                             \
  X(uint32_t, dram_tCCD_S, 4, "tCK", "column to column, other bank group (DDR4)")                                    \
  X(uint32_t, dram_tCCD_L, 8, "tCK", "column to column, same bank group (DDR4-3200)")                                \
  X(uint32_t, dram_tRRD_S, 4, "tCK", "ACT to ACT, other bank group (DDR4-3200, 1 KiB page)")                         \
  X(uint32_t, dram_tRRD_L, 8, "tCK", "ACT to ACT, same bank group (DDR4-3200, 1 KiB page)")                          \
  X(uint32_t, dram_tFAW, 34, "tCK", "window holding at most four ACTs (DDR4-3200, 1 KiB page: 21 ns)")               \
  X(uint32_t, dram_tWR, 24, "tCK", "end of write data to PRE (15 ns)")                                               \
  X(uint32_t, dram_tWTR_S, 4, "tCK", "end of write data to RD, other bank group (2.5 ns)")                           \
  X(uint32_t, dram_tWTR_L, 12, "tCK", "end of write data to RD, same bank group (7.5 ns)")                           \
  X(uint32_t, dram_tRTP, 12, "tCK", "RD to PRE (7.5 ns)")                                                            \
  X(uint32_t, dram_tRTW, 12, "tCK", "RD to WR: CL - CWL + BL/2 + 2")                                                 \
  X(uint32_t, dram_tRFC, 560, "tCK", "REF to ACT (8 Gb device: 350 ns)")                                             \
  X(uint32_t, dram_tREFI, 12480, "tCK", "average refresh interval (7.8 us)")                                         \
  X(double, dram_controller_ns, 15.0, "ns", "controller and interconnect latency, each way (assumption)")          \
  X(uint32_t, fp8, 0, "", "1 = FP8 dtypes (fp8_e4m3, fp8_e5m2) supported, 0 = rejected (public: inf1 has no FP8)")  \
  X(uint32_t, stochastic_rounding, 0, "",                                                                             \
    "1 = narrowing to BF16/FP16/FP8 rounds stochastically, seeded by rounding_seed; 0 = round to nearest even "       \
    "(assumption: off)")                                                                                                \
  X(uint64_t, rounding_seed, 0, "", "seed of the stochastic rounding generators (assumption)")

struct ChipConfig {
#define INFSIM_DECLARE(type, name, def, unit, desc) type name = def;
  INFSIM_CHIP_PARAMS(INFSIM_DECLARE)
#undef INFSIM_DECLARE

  // Loads a YAML file of overrides on top of the defaults. Throws ConfigError.
  static ChipConfig from_file(const std::string& path);
  // "inf1", "inf2" or a path to a YAML file.
  static ChipConfig named(const std::string& name_or_path);

  uint64_t dram_slice_bytes() const { return dram_bytes / cores; }
  uint64_t dram_interleave() const { return dram_interleave_bytes ? dram_interleave_bytes : dram_bytes / dram_channels; }
  double dram_tck_ps() const { return 2e6 / dram_mt_per_s; }  // double data rate: two transfers per clock
  double dram_peak_bytes_per_s() const { return double(dram_channels) * dram_bus_bytes * dram_mt_per_s * 1e6; }
  // Clock period of an engine, in picoseconds.
  double period_ps(isa::Engine e) const;
  isa::DeviceLimits limits() const;
  // How engine `e` of core `core` rounds its narrowing writes: RNE, or a
  // stochastic stream of its own (seed rounding_seed, stream id from core and engine).
  numerics::Rounding rounding(uint32_t core, isa::Engine e) const;
  void check() const;  // throws ConfigError on inconsistent values
};

struct ParamInfo {
  std::string name, type, unit, description, default_value;
};
const std::vector<ParamInfo>& param_schema();
// name -> value as text, for reports.
std::vector<std::pair<std::string, std::string>> param_values(const ChipConfig& c);

}  // namespace infsim::sim
