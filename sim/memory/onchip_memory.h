// SBUF and PSUM: partitioned on-chip SRAM. Engines read and write whole
// access patterns at once, converted to/from FP32 working values.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "isa/numerics.h"
#include "isa_gen.h"

namespace infsim::sim {

class OnChipMemory {
 public:
  OnChipMemory(std::string name, uint32_t partitions, uint64_t partition_bytes)
      : name_(std::move(name)), partitions_(partitions), partition_bytes_(partition_bytes),
        data_(static_cast<uint8_t*>(std::calloc(static_cast<size_t>(partitions) * partition_bytes, 1))) {
    if (!data_) throw std::bad_alloc();
  }

  const std::string& name() const { return name_; }
  uint32_t partitions() const { return partitions_; }
  uint64_t partition_bytes() const { return partition_bytes_; }
  uint8_t* partition(uint32_t p) { return data_.get() + static_cast<size_t>(p) * partition_bytes_; }
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
  // An FP32 pattern whose elements are one contiguous stretch in each
  // partition, as rows to update in place: element (p, i) is at
  // result[p * row_stride + i]. Marks the pattern written. nullptr for any
  // other pattern (or a misaligned one).
  float* fp32_rows(const isa::AccessPattern& ap, size_t& row_stride);

 private:
  // Where the pattern's elements lie from its first one: partitions
  // outermost, then the free dimensions (coalesced), in element order.
  numerics::Layout layout(const isa::AccessPattern& ap) const;

  std::string name_;
  uint32_t partitions_;
  uint64_t partition_bytes_;
  // calloc: the zero pages are mapped on first touch, so the SBUF of a core
  // a program does not use (and the parts of one it does not reach) take no memory.
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> data_;
  uint64_t high_water_ = 0;  // bytes per partition that may be non-zero
};

uint64_t free_size(const isa::AccessPattern& ap);

// The free dimensions right-aligned (d[3] innermost, unused outer ones
// {1, 0}), with dimensions that continue each other (an outer step equal to
// the inner dimension's extent) merged into one, so that a pattern covering
// one stretch of elements has a single dimension. Same elements, same order.
inline std::array<isa::FreeDim, 4> coalesced(uint32_t ndim, const std::array<isa::FreeDim, 4>& dims) {
  std::array<isa::FreeDim, 4> d{{{1, 0}, {1, 0}, {1, 0}, {1, 0}}};
  int inner = 4;  // d[inner..3] hold the dimensions placed so far
  for (uint32_t i = ndim; i-- > 0;) {
    const isa::FreeDim& x = dims[i];
    if (x.num == 1 && ndim > 1) continue;  // contributes nothing
    if (inner < 4) {
      isa::FreeDim& in = d[inner];
      if (x.step == static_cast<int64_t>(in.num) * in.step && static_cast<uint64_t>(x.num) * in.num <= UINT32_MAX) {
        in.num *= x.num;  // x continues `in`: one longer dimension
        continue;
      }
    }
    d[--inner] = x;
  }
  return d;
}

// Calls fn(element_offset, run_length, step) for each innermost run of the
// (coalesced) free dimensions, in order; runs are contiguous only when the
// step is 1.
template <typename Fn>
void for_each_run(uint32_t ndim, const std::array<isa::FreeDim, 4>& dims, Fn&& fn) {
  const std::array<isa::FreeDim, 4> d = coalesced(ndim, dims);
  for (uint32_t a = 0; a < d[0].num; ++a)
    for (uint32_t b = 0; b < d[1].num; ++b)
      for (uint32_t c = 0; c < d[2].num; ++c)
        fn(static_cast<int64_t>(a) * d[0].step + static_cast<int64_t>(b) * d[1].step +
               static_cast<int64_t>(c) * d[2].step,
           d[3].num, d[3].step);
}

}  // namespace infsim::sim
