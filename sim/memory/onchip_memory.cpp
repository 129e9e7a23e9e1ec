#include "sim/memory/onchip_memory.h"

#include <cstring>

#include "isa/numerics.h"

namespace infsim::sim {

uint64_t free_size(const isa::AccessPattern& ap) {
  uint64_t n = 1;
  for (uint32_t i = 0; i < ap.ndim; ++i) n *= ap.dims[i].num;
  return n;
}

void OnChipMemory::clear() {
  if (high_water_ == 0) return;
  for (uint32_t p = 0; p < partitions_; ++p) std::memset(partition(p), 0, high_water_);
  high_water_ = 0;
}

namespace {
// One past the last byte of a pattern inside its partition (patterns are validated, so it is in range).
uint64_t pattern_end(const isa::AccessPattern& ap) {
  int64_t hi = 0;
  for (uint32_t i = 0; i < ap.ndim; ++i)
    if (ap.dims[i].step > 0) hi += static_cast<int64_t>(ap.dims[i].num - 1) * ap.dims[i].step;
  return ap.offset + static_cast<uint64_t>(hi + 1) * isa::dtype_bytes(ap.dtype);
}
}  // namespace

numerics::Layout OnChipMemory::layout(const isa::AccessPattern& ap) const {
  const int64_t size = isa::dtype_bytes(ap.dtype);
  const auto d = coalesced(ap.ndim, ap.dims);
  numerics::Layout l;
  l.count[0] = ap.part_count;
  l.stride[0] = static_cast<int64_t>(partition_bytes_);
  for (int i = 0; i < 4; ++i) {
    l.count[i + 1] = d[i].num;
    l.stride[i + 1] = d[i].step * size;
  }
  return l;
}

void OnChipMemory::read(const isa::AccessPattern& ap, float* out) {
  numerics::load_elements(ap.dtype, partition(ap.part_start) + ap.offset, layout(ap), out);
}

void OnChipMemory::write(const isa::AccessPattern& ap, const float* in) {
  written(pattern_end(ap));
  numerics::store_elements(ap.dtype, partition(ap.part_start) + ap.offset, layout(ap), in);
}

void OnChipMemory::write(const isa::AccessPattern& ap, const float* in, numerics::Rounding& rounding) {
  written(pattern_end(ap));
  numerics::store_elements(ap.dtype, partition(ap.part_start) + ap.offset, layout(ap), in, rounding);
}

float* OnChipMemory::fp32_rows(const isa::AccessPattern& ap, size_t& row_stride) {
  if (ap.dtype != isa::Dtype::fp32 || ap.offset % 4 || partition_bytes_ % 4) return nullptr;
  const numerics::Layout l = layout(ap);
  if (l.count[1] * l.count[2] * l.count[3] != 1 || (l.stride[4] != 4 && l.count[4] > 1)) return nullptr;
  written(pattern_end(ap));
  row_stride = partition_bytes_ / 4;
  return reinterpret_cast<float*>(partition(ap.part_start) + ap.offset);
}

void OnChipMemory::read_raw(const isa::AccessPattern& ap, void* out) {
  const unsigned size = isa::dtype_bytes(ap.dtype);
  const numerics::Layout l = layout(ap);
  const uint8_t* base = partition(ap.part_start) + ap.offset;
  auto* o = static_cast<uint8_t*>(out);
  l.for_each_run([&](int64_t offset) {
    for (uint64_t i = 0; i < l.count[4]; ++i, o += size) std::memcpy(o, base + offset + int64_t(i) * l.stride[4], size);
  });
}

void OnChipMemory::write_raw(const isa::AccessPattern& ap, const void* in) {
  written(pattern_end(ap));
  const unsigned size = isa::dtype_bytes(ap.dtype);
  const numerics::Layout l = layout(ap);
  uint8_t* base = partition(ap.part_start) + ap.offset;
  const auto* o = static_cast<const uint8_t*>(in);
  l.for_each_run([&](int64_t offset) {
    for (uint64_t i = 0; i < l.count[4]; ++i, o += size) std::memcpy(base + offset + int64_t(i) * l.stride[4], o, size);
  });
}

}  // namespace infsim::sim
