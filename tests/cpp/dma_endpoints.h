// DMA endpoint builders shared by the C++ tests.
#pragma once

#include <cstdint>
#include <vector>

#include "isa/executable.h"

namespace infsim::test {

inline isa::DmaEndpoint dram_ep(uint64_t addr, isa::Dtype dt, uint32_t parts, int64_t part_step,
                                std::vector<isa::FreeDim> dims) {
  isa::DmaEndpoint e;
  e.loc = isa::Location::dram;
  e.dtype = dt;
  e.address = addr;
  e.part_count = parts;
  e.part_step = part_step;
  e.ndim = static_cast<uint32_t>(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) e.dims[i] = dims[i];
  return e;
}

inline isa::DmaEndpoint onchip_ep(isa::Location loc, uint32_t p0, uint32_t np, uint64_t offset, isa::Dtype dt,
                                  std::vector<isa::FreeDim> dims) {
  isa::DmaEndpoint e;
  e.loc = loc;
  e.dtype = dt;
  e.address = offset;
  e.part_start = p0;
  e.part_count = np;
  e.ndim = static_cast<uint32_t>(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) e.dims[i] = dims[i];
  return e;
}

}  // namespace infsim::test
