#include "sim/config.h"

#include <set>

#include "sim/config_file.h"

namespace infsim::sim {

const std::vector<ParamInfo>& param_schema() {
  static const std::vector<ParamInfo> schema = [] {
    std::vector<ParamInfo> s;
#define INFSIM_SCHEMA(type, name, def, unit, desc) s.push_back({#name, #type, unit, desc, text_of<type>(def)});
    INFSIM_CHIP_PARAMS(INFSIM_SCHEMA)
#undef INFSIM_SCHEMA
    return s;
  }();
  return schema;
}

std::vector<std::pair<std::string, std::string>> param_values(const ChipConfig& c) {
  std::vector<std::pair<std::string, std::string>> v;
#define INFSIM_VALUE(type, name, def, unit, desc) v.emplace_back(#name, text_of(c.name));
  INFSIM_CHIP_PARAMS(INFSIM_VALUE)
#undef INFSIM_VALUE
  return v;
}

ChipConfig ChipConfig::from_file(const std::string& path) {
  std::set<std::string> known;
#define INFSIM_KNOWN(type, name, def, unit, desc) known.insert(#name);
  INFSIM_CHIP_PARAMS(INFSIM_KNOWN)
#undef INFSIM_KNOWN
  const YAML::Node root = read_config_file(path, known, "configuration");
  ChipConfig c;
#define INFSIM_READ(type, name, def, unit, desc) \
  if (root[#name]) c.name = parse_value<type>(root[#name], #name, path);
  INFSIM_CHIP_PARAMS(INFSIM_READ)
#undef INFSIM_READ
  try {
    c.check();
  } catch (const ConfigError& e) {
    throw ConfigError(path + ": " + e.what());
  }
  return c;
}

ChipConfig ChipConfig::named(const std::string& name_or_path) {
  if (name_or_path.find('/') == std::string::npos && name_or_path.find('.') == std::string::npos)
    return from_file(config_dir() + "/" + name_or_path + ".yaml");
  return from_file(name_or_path);
}

void ChipConfig::check() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw ConfigError(what);
  };
  need(cores >= 1 && cores <= 64, "cores must be 1..64");
  need(partitions >= 1 && partitions <= 128, "partitions must be 1..128 (the ISA encodes partition numbers in 8 bits)");
  need(array_rows >= 1 && array_rows <= partitions, "array_rows must be 1..partitions");
  need(array_cols >= 1 && array_cols <= partitions, "array_cols must be 1..partitions");
  need(tensor_clock_mhz > 0 && vector_clock_mhz > 0 && scalar_clock_mhz > 0 && dma_clock_mhz > 0,
       "clock frequencies must be positive");
  need(psum_bank_bytes >= 4 && psum_partition_bytes % psum_bank_bytes == 0,
       "psum_partition_bytes must be a multiple of psum_bank_bytes");
  need(sbuf_partition_bytes > 0 && sbuf_partition_bytes < (1u << 24), "sbuf_partition_bytes must be 1 B .. 16 MiB - 1 (24-bit offsets)");
  need(semaphores >= 1 && semaphores < isa::kNoSemaphore, "semaphores must be 1..254");
  need(dma_queues >= 1 && dma_queues <= isa::kNumEngine - static_cast<unsigned>(isa::Engine::dma0),
       "dma_queues exceeds the DMA engines the ISA names");
  need(dram_channels >= 1 && dram_mt_per_s > 0 && dram_bytes % cores == 0, "bad DRAM parameters");
  need(dram_bus_bytes >= 1 && dram_burst_length >= 2 && dram_burst_length % 2 == 0,
       "dram_burst_length must be even (two transfers per clock)");
  need(dram_row_bytes % (dram_bus_bytes * dram_burst_length) == 0, "dram_row_bytes must hold whole bursts");
  need(dram_interleave() % (dram_bus_bytes * dram_burst_length) == 0 && dram_bytes % (dram_interleave() * dram_channels) == 0,
       "dram_interleave_bytes must be whole bursts and divide the DRAM evenly between channels");
  need(dram_bank_groups >= 1 && dram_banks_per_group >= 1 && dram_tREFI > dram_tRFC, "bad DRAM geometry or refresh");
  need(dma_bytes_per_cycle >= 1 && dma_max_transfer_bytes >= 64, "bad DMA parameters");
  need(fp8 <= 1 && stochastic_rounding <= 1, "fp8 and stochastic_rounding must be 0 or 1");
}

double ChipConfig::period_ps(isa::Engine e) const {
  switch (e) {
    case isa::Engine::tensor: return 1e6 / tensor_clock_mhz;
    case isa::Engine::vector: return 1e6 / vector_clock_mhz;
    case isa::Engine::scalar: return 1e6 / scalar_clock_mhz;
    default: return 1e6 / dma_clock_mhz;
  }
}

isa::DeviceLimits ChipConfig::limits() const {
  isa::DeviceLimits l;
  l.cores = cores;
  l.partitions = partitions;
  l.sbuf_partition_bytes = sbuf_partition_bytes;
  l.psum_partition_bytes = psum_partition_bytes;
  l.dram_slice_bytes = dram_slice_bytes();
  l.dram_bytes = dram_bytes;
  l.semaphores = semaphores;
  l.array_rows = array_rows;
  l.array_cols = array_cols;
  l.psum_bank_bytes = psum_bank_bytes;
  l.dma_queues = dma_queues;
  l.fp8 = fp8 != 0;
  return l;
}

numerics::Rounding ChipConfig::rounding(uint32_t core, isa::Engine e) const {
  if (!stochastic_rounding) return {};
  return numerics::Rounding::stochastic(rounding_seed, (uint64_t{core} << 8) | static_cast<unsigned>(e));
}

}  // namespace infsim::sim
