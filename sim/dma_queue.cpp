#include "sim/dma_queue.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "isa/numerics.h"
#include "sim/neuron_core.h"

namespace infsim::sim {

using sc_core::sc_time;

DmaQueue::DmaQueue(sc_core::sc_module_name name, NeuronCore& core, isa::Engine id)
    : EngineBase(name, core, id),
      socket("socket"),
      bytes_(core.counters().add(path(), "bytes", "B", "bytes read from the source")),
      descriptors_(core.counters().add(path(), "descriptors", "", "DMA descriptors processed")) {}

std::vector<DmaQueue::Piece> DmaQueue::pieces(const isa::DmaEndpoint& e) const {
  std::vector<Piece> out;
  const uint64_t size = isa::dtype_bytes(e.dtype);
  const bool dram = e.loc == isa::Location::dram;
  // Contiguous runs merge, up to the queue's largest transfer.
  const uint64_t cap = core_.cfg().dma_max_transfer_bytes;
  auto add = [&](uint32_t part, uint64_t addr, uint64_t bytes) {
    while (bytes) {
      if (!out.empty() && out.back().partition == part && out.back().address + out.back().bytes == addr &&
          out.back().bytes < cap) {
        const uint64_t take = std::min(bytes, cap - out.back().bytes);
        out.back().bytes += take;
        addr += take;
        bytes -= take;
      } else {
        const uint64_t take = std::min(bytes, cap);
        out.push_back({part, addr, take});
        addr += take;
        bytes -= take;
      }
    }
  };
  for (uint32_t p = 0; p < e.part_count; ++p) {
    const uint64_t base = dram ? core_.dram_base() + e.address + static_cast<int64_t>(p) * e.part_step * int64_t(size)
                               : e.address;
    const uint32_t part = dram ? 0 : e.part_start + p;
    for_each_run(e.ndim, e.dims, [&](int64_t off, uint32_t n, int32_t step) {
      if (step == 1) {
        add(part, base + off * int64_t(size), n * size);
      } else {
        for (uint32_t i = 0; i < n; ++i) add(part, base + (off + int64_t(i) * step) * int64_t(size), size);
      }
    });
  }
  return out;
}

sc_time DmaQueue::access(const isa::DmaEndpoint& e, const std::vector<Piece>& ps, bool write,
                         std::vector<sc_time>& issue) {
  const ChipConfig& cfg = core_.cfg();
  const sc_time now = sc_core::sc_time_stamp();
  sc_time done = now;
  uint8_t* data = staging_.data();
  const bool dram = e.loc == isa::Location::dram;
  for (size_t i = 0; i < ps.size(); ++i) {
    const Piece& pc = ps[i];
    if (dram) {
      tlm::tlm_generic_payload t;
      t.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
      t.set_address(pc.address);
      t.set_data_ptr(data);
      t.set_data_length(static_cast<unsigned>(pc.bytes));
      t.set_streaming_width(static_cast<unsigned>(pc.bytes));
      t.set_byte_enable_ptr(nullptr);
      t.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
      sc_time delay = issue[i] - now;
      socket->b_transport(t, delay);
      if (t.get_response_status() != tlm::TLM_OK_RESPONSE)
        throw DeviceFault(fmt::format("DRAM access at {:#x} (+{} bytes) failed: {}", pc.address, pc.bytes,
                                      t.get_response_string()));
      done = std::max(done, now + delay);
      issue[i] = now + delay;  // data available / written
    } else {
      OnChipMemory& memory = core_.memory(e.loc == isa::Location::psum ? isa::Space::psum : isa::Space::sbuf);
      uint8_t* mem = memory.partition(pc.partition) + pc.address;
      if (write) {
        std::memcpy(mem, data, pc.bytes);
        memory.written(pc.address + pc.bytes);
      } else {
        std::memcpy(data, mem, pc.bytes);
      }
      issue[i] += period_ * static_cast<double>(cfg.sram_latency_cycles);
      done = std::max(done, issue[i]);
    }
    data += pc.bytes;
  }
  return done;
}

std::vector<DmaQueue::Piece> DmaQueue::gathered_rows(const isa::DmaEndpoint& table, const isa::AccessPattern& index) {
  index_.resize(index.part_count);
  core_.memory(index.space).read(index, index_.data());
  isa::DmaEndpoint row = table;
  row.part_count = 1;
  std::vector<Piece> out;
  for (uint32_t p = 0; p < index.part_count; ++p) {
    const float r = index_[p];
    if (!(r >= 0.0f && r < static_cast<float>(table.part_count)))
      throw DeviceFault(fmt::format("gather index {} in partition {} outside the table's {} rows", r,
                                    index.part_start + p, table.part_count));
    row.address = table.address + static_cast<uint64_t>(r) * table.part_step * isa::dtype_bytes(table.dtype);
    for (const Piece& pc : pieces(row)) out.push_back(pc);
  }
  return out;
}

sc_time DmaQueue::transfer(const isa::DmaEndpoint& src_ep, const std::vector<Piece>& src,
                           const isa::DmaEndpoint& dst_ep, sc_time start) {
  const ChipConfig& cfg = core_.cfg();
  const uint64_t n = dst_ep.elements();
  staging_.resize(n * isa::dtype_bytes(src_ep.dtype));
  // Source pieces issue back to back at the queue's rate.
  std::vector<sc_time> issue(src.size());
  sc_time t = start;
  const double ps_per_byte = period_.to_seconds() * 1e12 / cfg.dma_bytes_per_cycle;
  for (size_t i = 0; i < src.size(); ++i) {
    issue[i] = t;
    t += sc_time(static_cast<double>(src[i].bytes) * ps_per_byte, sc_core::SC_PS);
  }
  const sc_time src_done = access(src_ep, src, false, issue);  // issue[i] is now piece i's arrival

  if (src_ep.dtype != dst_ep.dtype) {
    converted_.resize(n * isa::dtype_bytes(dst_ep.dtype));
    for (uint64_t i = 0; i < n; ++i)
      numerics::store(dst_ep.dtype, converted_.data(), static_cast<ptrdiff_t>(i),
                      numerics::load(src_ep.dtype, staging_.data(), static_cast<ptrdiff_t>(i)), rounding_);
    staging_.swap(converted_);
  }
  // Each destination piece issues at the queue's rate once the source data
  // it carries has arrived (the queue streams: writes overlap later reads).
  const std::vector<Piece> dst = pieces(dst_ep);
  std::vector<sc_time> dst_issue(dst.size());
  const uint64_t src_size = isa::dtype_bytes(src_ep.dtype), dst_size = isa::dtype_bytes(dst_ep.dtype);
  size_t si = 0;
  uint64_t src_end = src.empty() ? 0 : src[0].bytes;  // source bytes up to and including piece si
  sc_time arrived = src.empty() ? start : issue[0];
  uint64_t dst_end = 0;
  t = start;
  for (size_t i = 0; i < dst.size(); ++i) {
    dst_end += dst[i].bytes;
    const uint64_t needed = dst_end / dst_size * src_size;  // source bytes this piece's elements come from
    while (src_end < needed && si + 1 < src.size()) {
      src_end += src[++si].bytes;
      arrived = std::max(arrived, issue[si]);
    }
    dst_issue[i] = std::max(t, arrived);
    t = dst_issue[i] + sc_time(static_cast<double>(dst[i].bytes) * ps_per_byte, sc_core::SC_PS);
  }
  const sc_time dst_done = access(dst_ep, dst, true, dst_issue);
  bytes_ += n * isa::dtype_bytes(src_ep.dtype);
  ++descriptors_;
  return std::max({src_done, dst_done, t});
}

EngineBase::Cost DmaQueue::execute(const isa::Instruction& ins) {
  const ChipConfig& cfg = core_.cfg();
  const sc_time fixed = period_ * static_cast<double>(cfg.dma_fixed_cycles);
  const sc_time now = sc_core::sc_time_stamp();
  sc_time t = now;
  if (const auto* x = std::get_if<isa::DmaCopy>(&ins)) {
    for (uint32_t i = 0; i < x->count; ++i) {
      const isa::DmaDescriptor& d = core_.exe().dma[x->desc + i];
      t = transfer(d.src, pieces(d.src), d.dst, t + fixed);
    }
  } else if (const auto* x = std::get_if<isa::DmaGather>(&ins)) {
    const isa::DmaDescriptor& d = core_.exe().dma[x->desc];
    t = transfer(d.src, gathered_rows(d.src, x->index), d.dst, t + fixed);
  } else {
    throw DeviceFault("instruction not implemented by a DMA queue");
  }
  // The queue is busy until its last descriptor completes.
  const uint64_t cycles = static_cast<uint64_t>(std::ceil((t - now) / period_));
  return {std::max<uint64_t>(cycles, 1), 0};
}

}  // namespace infsim::sim
