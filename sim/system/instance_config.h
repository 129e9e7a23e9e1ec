// Instance configuration: how many chips, which chip configuration each is,
// the chip-to-chip links and their topology, the host link (PCIe) to each
// chip, and what the instance costs. One schema (name, type, default, unit,
// description) as for the chip (sim/config.h); instance files live in
// configs/instances/ and unknown keys are errors.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sim/config.h"

namespace infsim::sim {

// X(type, name, default, unit, description). Defaults are inf1.xlarge; the
// description ends with the figure's source, or "assumption".
#define INFSIM_INSTANCE_PARAMS(X)                                                                                     \
  X(std::string, name, "inf1.xlarge", "", "instance type")                                                           \
  X(std::string, chip, "inf1", "", "chip configuration of every chip: a name in configs/ or a YAML path")            \
  X(uint32_t, chips, 1, "", "Inferentia chips (public: 1, 1, 4, 16 for inf1.xlarge/2xlarge/6xlarge/24xlarge)")      \
  X(std::string, topology, "chain", "",                                                                               \
    "chip-to-chip links: chain (0-1-..-N-1, as neuron-ls shows on inf1.6xlarge) or ring (the chain closed N-1 to 0)") \
  X(uint32_t, vcpus, 4, "", "host vCPUs (public)")                                                                   \
  X(double, price_per_hour, 0.228, "USD/h", "on-demand price (public, as neuronperf's table)")                       \
  X(double, link_clock_mhz, 1073.741824, "MHz",                                                                       \
    "NeuronLink-v1 clock: 16 B/cycle x this = 16 GiB/s per link and direction, 32 GiB/s per chip over its two links " \
    "(public: 32 GiB/s per device; the even split over two links is an assumption)")                                 \
  X(uint32_t, link_bytes_per_cycle, 16, "B/cycle", "NeuronLink-v1 bytes per link clock cycle and direction (assumption)") \
  X(uint32_t, link_latency_cycles, 537, "cycles", "one hop, first byte in to first byte out: 500 ns (assumption)")  \
  X(uint32_t, link_packet_bytes, 256, "B", "largest packet on a link; each packet takes one credit (assumption)")   \
  X(uint32_t, link_credits, 80, "",                                                                                   \
    "packets a sender may have unacknowledged per direction: covers the 1 us credit round trip at full rate "        \
    "(assumption)")                                                                                                   \
  X(double, host_link_clock_mhz, 1000.0, "MHz", "host link (PCIe) clock (assumption)")                             \
  X(uint32_t, host_link_bytes_per_cycle, 12, "B/cycle",                                                               \
    "host link bytes per cycle and direction: 12 GB/s, what PCIe Gen3 x16 sustains of its 15.75 GB/s (assumption)")   \
  X(uint32_t, host_link_latency_cycles, 1000, "cycles", "host link one way, DMA set-up included: 1 us (assumption)") \
  X(uint32_t, host_link_packet_bytes, 256, "B", "PCIe max payload size (assumption)")                               \
  X(uint32_t, host_link_credits, 128, "", "posted-write credits per direction (assumption: enough for full rate)")

struct InstanceConfig {
#define INFSIM_DECLARE(type, name, def, unit, desc) type name = def;
  INFSIM_INSTANCE_PARAMS(INFSIM_DECLARE)
#undef INFSIM_DECLARE

  // A YAML file of overrides on top of the defaults. Throws ConfigError.
  static InstanceConfig from_file(const std::string& path);
  // "inf1.xlarge" .. "inf1.24xlarge" (configs/instances/NAME.yaml) or a path.
  static InstanceConfig named(const std::string& name_or_path);
  // The names of the bundled instance files.
  static std::vector<std::string> bundled();

  // The chip-to-chip links, as (chip a, chip b) with a < b except the ring's closing link (N-1, 0).
  std::vector<std::pair<uint32_t, uint32_t>> links() const;
  // Hops from chip `from` to chip `to` along the topology, and the neighbour the first hop goes to.
  uint32_t hops(uint32_t from, uint32_t to) const;
  uint32_t next_hop(uint32_t from, uint32_t to) const;
  void check() const;  // throws ConfigError
};

const std::vector<ParamInfo>& instance_param_schema();
std::vector<std::pair<std::string, std::string>> param_values(const InstanceConfig& c);

}  // namespace infsim::sim
