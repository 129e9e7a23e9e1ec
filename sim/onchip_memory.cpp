#include "sim/onchip_memory.h"

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

template <typename Fn>
void OnChipMemory::runs(const isa::AccessPattern& ap, Fn&& fn) {
  const int64_t size = isa::dtype_bytes(ap.dtype);
  for (uint32_t p = 0; p < ap.part_count; ++p) {
    uint8_t* base = partition(ap.part_start + p) + ap.offset;
    for_each_run(ap.ndim, ap.dims, [&](int64_t off, uint32_t n, int32_t step) { fn(base + off * size, n, step); });
  }
}

void OnChipMemory::read(const isa::AccessPattern& ap, float* out) {
  runs(ap, [&](const uint8_t* q, uint32_t n, int32_t step) {
    if (ap.dtype == isa::Dtype::fp32 && step == 1) {
      std::memcpy(out, q, n * 4u);
      out += n;
      return;
    }
    for (uint32_t i = 0; i < n; ++i) *out++ = numerics::load(ap.dtype, q, static_cast<int64_t>(i) * step);
  });
}

void OnChipMemory::write(const isa::AccessPattern& ap, const float* in) {
  written(pattern_end(ap));
  runs(ap, [&](uint8_t* q, uint32_t n, int32_t step) {
    if (ap.dtype == isa::Dtype::fp32 && step == 1) {
      std::memcpy(q, in, n * 4u);
      in += n;
      return;
    }
    for (uint32_t i = 0; i < n; ++i) numerics::store(ap.dtype, q, static_cast<int64_t>(i) * step, *in++);
  });
}

void OnChipMemory::write(const isa::AccessPattern& ap, const float* in, numerics::Rounding& rounding) {
  if (!rounding.is_stochastic() || !numerics::stochastic_capable(ap.dtype)) return write(ap, in);
  written(pattern_end(ap));
  runs(ap, [&](uint8_t* q, uint32_t n, int32_t step) {
    for (uint32_t i = 0; i < n; ++i)
      numerics::store_stochastic(ap.dtype, q, static_cast<int64_t>(i) * step, *in++, rounding.next());
  });
}

void OnChipMemory::read_raw(const isa::AccessPattern& ap, void* out) {
  const unsigned size = isa::dtype_bytes(ap.dtype);
  auto* o = static_cast<uint8_t*>(out);
  runs(ap, [&](const uint8_t* q, uint32_t n, int32_t step) {
    for (uint32_t i = 0; i < n; ++i, o += size) std::memcpy(o, q + int64_t(i) * step * size, size);
  });
}

void OnChipMemory::write_raw(const isa::AccessPattern& ap, const void* in) {
  written(pattern_end(ap));
  const unsigned size = isa::dtype_bytes(ap.dtype);
  const auto* o = static_cast<const uint8_t*>(in);
  runs(ap, [&](uint8_t* q, uint32_t n, int32_t step) {
    for (uint32_t i = 0; i < n; ++i, o += size) std::memcpy(q + int64_t(i) * step * size, o, size);
  });
}

}  // namespace infsim::sim
