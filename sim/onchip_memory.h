// SBUF and PSUM: partitioned on-chip SRAM. Engines read and write whole
// access patterns at once, converted to/from FP32 working values.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "isa/numerics.h"
#include "isa_gen.h"

namespace infsim::sim {

class OnChipMemory {
 public:
  OnChipMemory(std::string name, uint32_t partitions, uint64_t partition_bytes)
      : name_(std::move(name)), partitions_(partitions), partition_bytes_(partition_bytes),
        data_(static_cast<size_t>(partitions) * partition_bytes, 0) {}

  const std::string& name() const { return name_; }
  uint32_t partitions() const { return partitions_; }
  uint64_t partition_bytes() const { return partition_bytes_; }
  uint8_t* partition(uint32_t p) { return data_.data() + static_cast<size_t>(p) * partition_bytes_; }
  // Zeroes everything written since the last clear: each partition's bytes
  // below the highest offset any writer reported (see written()).
  void clear();
  // Writers that bypass read()/write() (DMA) report the end of what they wrote.
  void written(uint64_t end_offset) { high_water_ = std::max(high_water_, end_offset); }

  // Gathers an access pattern (already validated to lie inside this memory)
  // into out[p * free + i] as FP32.
  void read(const isa::AccessPattern& ap, float* out);
  // Scatters in[p * free + i], rounding to the pattern's dtype (RNE).
  void write(const isa::AccessPattern& ap, const float* in);
  // The same with the writer's rounding (stochastic rounding draws from
  // `rounding` once per element, in pattern order: partitions, then the free
  // dimensions outermost first).
  void write(const isa::AccessPattern& ap, const float* in, numerics::Rounding& rounding);
  // The same without conversion: elements of the pattern's own dtype, packed.
  void read_raw(const isa::AccessPattern& ap, void* out);
  void write_raw(const isa::AccessPattern& ap, const void* in);

 private:
  // Calls fn(first byte, count, step in elements) for every innermost run of
  // the pattern, partition by partition, in element order.
  template <typename Fn>
  void runs(const isa::AccessPattern& ap, Fn&& fn);

  std::string name_;
  uint32_t partitions_;
  uint64_t partition_bytes_;
  std::vector<uint8_t> data_;
  uint64_t high_water_ = 0;  // bytes per partition that may be non-zero
};

uint64_t free_size(const isa::AccessPattern& ap);

// Calls fn(element_offset, run_length) for each innermost run of the free
// dimensions, in order; runs are contiguous only when the innermost step is 1.
template <typename Fn>
void for_each_run(uint32_t ndim, const std::array<isa::FreeDim, 4>& dims, Fn&& fn) {
  isa::FreeDim d[4] = {{1, 0}, {1, 0}, {1, 0}, {1, 0}};
  for (uint32_t i = 0; i < ndim; ++i) d[4 - ndim + i] = dims[i];  // right-align: d[3] innermost
  for (uint32_t a = 0; a < d[0].num; ++a)
    for (uint32_t b = 0; b < d[1].num; ++b)
      for (uint32_t c = 0; c < d[2].num; ++c)
        fn(static_cast<int64_t>(a) * d[0].step + static_cast<int64_t>(b) * d[1].step +
               static_cast<int64_t>(c) * d[2].step,
           d[3].num, d[3].step);
}

}  // namespace infsim::sim
