#include "sim/core/dma_queue.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>

#include "isa/numerics.h"
#include "sim/memory/dram.h"
#include "sim/core/core_context.h"

namespace infsim::sim {

using sc_core::sc_time;

DmaQueue::DmaQueue(sc_core::sc_module_name name, CoreContext& core, isa::Engine id)
    : EngineBase(name, core, id),
      socket("socket"),
      fabric("fabric"),
      bytes_(core.counters().add(path(), "bytes", "B", "bytes read from the source")),
      descriptors_(core.counters().add(path(), "descriptors", "", "DMA descriptors processed")) {}

void DmaQueue::pieces(const isa::DmaEndpoint& e, std::vector<Piece>& out) const {
  const size_t first = out.size();
  const uint64_t size = isa::dtype_bytes(e.dtype);
  const bool dram = e.loc == isa::Location::dram;
  // Contiguous runs merge, up to the queue's largest transfer.
  const uint64_t cap = core_.cfg().dma_max_transfer_bytes;
  auto add = [&](uint32_t part, uint64_t addr, uint64_t bytes) {
    while (bytes) {
      if (out.size() > first && out.back().partition == part && out.back().address + out.back().bytes == addr &&
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
    // A fabric address is absolute; any other DRAM address is in this core's slice.
    const uint64_t origin = e.address >= isa::kFabricBase ? 0 : core_.dram_base();
    const uint64_t base = dram ? origin + e.address + static_cast<int64_t>(p) * e.part_step * int64_t(size)
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
}

sc_time DmaQueue::access(const isa::DmaEndpoint& e, const std::vector<Piece>& ps, bool write,
                         std::vector<sc_time>& issue, uint8_t* data) {
  const ChipConfig& cfg = core_.cfg();
  const sc_time now = sc_core::sc_time_stamp();
  sc_time done = now;
  const bool dram = e.loc == isa::Location::dram;
  // One payload serves every piece. Without data it carries a stack
  // extension, which it must not free when it goes.
  struct Payload : tlm::tlm_generic_payload {
    ~Payload() override { clear_extension<TimingOnlyAccess>(); }
  } t;
  TimingOnlyAccess no_data;
  if (!data) t.set_extension(&no_data);
  for (size_t i = 0; i < ps.size(); ++i) {
    const Piece& pc = ps[i];
    if (dram) {
      t.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
      t.set_address(pc.address);
      t.set_data_ptr(data);
      t.set_data_length(static_cast<unsigned>(pc.bytes));
      t.set_streaming_width(static_cast<unsigned>(pc.bytes));
      t.set_byte_enable_ptr(nullptr);
      t.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
      sc_time delay = issue[i] - now;
      (pc.address >= isa::kFabricBase ? fabric : socket)->b_transport(t, delay);
      if (t.get_response_status() != tlm::TLM_OK_RESPONSE)
        throw DeviceFault(fmt::format("DRAM access at {:#x} (+{} bytes) failed: {}", pc.address, pc.bytes,
                                      t.get_response_string()));
      done = std::max(done, now + delay);
      issue[i] = now + delay;  // data available / written
    } else {
      OnChipMemory& memory = core_.memory(e.loc == isa::Location::psum ? isa::Space::psum : isa::Space::sbuf);
      uint8_t* mem = memory.partition(pc.partition) + pc.address;
      if (data && write) {
        std::memcpy(mem, data, pc.bytes);
        memory.written(pc.address + pc.bytes);
      } else if (data) {
        std::memcpy(data, mem, pc.bytes);
      }
      issue[i] += period_ * static_cast<double>(cfg.sram_latency_cycles);
      done = std::max(done, issue[i]);
    }
    if (data) data += pc.bytes;
  }
  return done;
}

void DmaQueue::copy_direct(const isa::DmaEndpoint& src_ep, const std::vector<Piece>& src,
                           const isa::DmaEndpoint& dst_ep, const std::vector<Piece>& dst) {
  // The host bytes at `offset` into piece pc, and how many follow contiguously
  // (to the piece's end, or the end of the DRAM page holding them).
  struct Side {
    DmaQueue& q;
    const isa::DmaEndpoint& ep;
    bool write;
    tlm::tlm_dmi dmi{};  // the DRAM page last granted
    bool granted = false;
    std::pair<uint8_t*, uint64_t> at(const Piece& pc, uint64_t offset) {
      const uint64_t left = pc.bytes - offset;
      if (ep.loc != isa::Location::dram) {
        OnChipMemory& m = q.core_.memory(ep.loc == isa::Location::psum ? isa::Space::psum : isa::Space::sbuf);
        if (write) m.written(pc.address + pc.bytes);
        return {m.partition(pc.partition) + pc.address + offset, left};
      }
      const uint64_t a = pc.address + offset;
      if (!granted || a < dmi.get_start_address() || a > dmi.get_end_address()) {
        tlm::tlm_generic_payload t;
        t.set_address(a);
        t.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
        granted = q.socket->get_direct_mem_ptr(t, dmi);
        if (!granted) throw DeviceFault(fmt::format("no direct access to DRAM at {:#x}", a));
      }
      return {dmi.get_dmi_ptr() + (a - dmi.get_start_address()), std::min<uint64_t>(left, dmi.get_end_address() - a + 1)};
    }
  } from{*this, src_ep, false}, to{*this, dst_ep, true};
  uint64_t so = 0, d_off = 0;  // bytes done of the current source and destination pieces
  for (size_t si = 0, di = 0; si < src.size() && di < dst.size();) {
    const auto [s, s_len] = from.at(src[si], so);
    const auto [d, d_len] = to.at(dst[di], d_off);
    const uint64_t len = std::min(s_len, d_len);
    std::memcpy(d, s, len);
    if ((so += len) == src[si].bytes) ++si, so = 0;
    if ((d_off += len) == dst[di].bytes) ++di, d_off = 0;
  }
}

void DmaQueue::gathered_rows(const isa::DmaEndpoint& table, const isa::AccessPattern& index, std::vector<Piece>& out) {
  index_.resize(index.part_count);
  core_.memory(index.space).read(index, index_.data());
  isa::DmaEndpoint row = table;
  row.part_count = 1;
  for (uint32_t p = 0; p < index.part_count; ++p) {
    const float r = index_[p];
    if (!(r >= 0.0f && r < static_cast<float>(table.part_count)))
      throw DeviceFault(fmt::format("gather index {} in partition {} outside the table's {} rows", r,
                                    index.part_start + p, table.part_count));
    row.address = table.address + static_cast<uint64_t>(r) * table.part_step * isa::dtype_bytes(table.dtype);
    pieces(row, out);  // each row's pieces on their own: rows never merge
  }
}

isa::DmaEndpoint DmaQueue::resolved(const isa::DmaEndpoint& e) const {
  if (e.loc != isa::Location::next) return e;
  const auto base = core_.next_stage_base();
  if (!base) throw DeviceFault("a DMA to the next pipeline stage, but this core is connected to none");
  isa::DmaEndpoint r = e;
  r.loc = isa::Location::dram;
  r.address = *base + e.address;  // a fabric address: the router delivers it on this chip or across the links
  return r;
}

const DmaQueue::DescriptorPieces& DmaQueue::descriptor_pieces(uint32_t index) {
  const uint64_t next = core_.next_stage_base().value_or(0);
  if (core_.image_id() == 0 || core_.image_id() != cache_image_ || core_.image_core() != cache_core_ ||
      next != cache_next_ || cache_.size() != core_.exe().dma.size()) {
    cache_.assign(core_.exe().dma.size(), {});
    cache_image_ = core_.image_id();
    cache_core_ = core_.image_core();
    cache_next_ = next;
  }
  DescriptorPieces& p = cache_.at(index);
  if (!p.known) {
    const isa::DmaDescriptor& d = core_.exe().dma[index];
    pieces(resolved(d.src), p.src);
    pieces(resolved(d.dst), p.dst);
    p.known = true;
  }
  return p;
}

sc_time DmaQueue::transfer(const isa::DmaEndpoint& src_ep, const std::vector<Piece>& src,
                           const isa::DmaEndpoint& dst_ep, sc_time start, const std::vector<Piece>* dst_pieces) {
  const ChipConfig& cfg = core_.cfg();
  const uint64_t n = dst_ep.elements();
  // The data: between different memories without a conversion it moves once,
  // memory to memory, after the timing below; otherwise through `staging_`.
  // (Another chip's memory has no direct interface here: its bytes are staged.)
  const bool remote = src_ep.address >= isa::kFabricBase || dst_ep.address >= isa::kFabricBase;
  const bool direct = values_ && src_ep.dtype == dst_ep.dtype && src_ep.loc != dst_ep.loc && !remote;
  const bool staged = values_ && !direct;
  if (staged) staging_.resize(n * isa::dtype_bytes(src_ep.dtype));
  // Source pieces issue back to back at the queue's rate.
  std::vector<sc_time>& issue = src_issue_;
  issue.resize(src.size());
  sc_time t = start;
  const double ps_per_byte = period_.to_seconds() * 1e12 / cfg.dma_bytes_per_cycle;
  for (size_t i = 0; i < src.size(); ++i) {
    issue[i] = t;
    t += sc_time(static_cast<double>(src[i].bytes) * ps_per_byte, sc_core::SC_PS);
  }
  // issue[i] becomes piece i's arrival
  const sc_time src_done = access(src_ep, src, false, issue, staged ? staging_.data() : nullptr);

  if (staged && src_ep.dtype != dst_ep.dtype) {
    // Through FP32 in chunks that stay in cache; stochastic rounding draws in element order.
    converted_.resize(n * isa::dtype_bytes(dst_ep.dtype));
    const unsigned ss = isa::dtype_bytes(src_ep.dtype), ds = isa::dtype_bytes(dst_ep.dtype);
    float chunk[2048];
    for (uint64_t i = 0; i < n; i += std::size(chunk)) {
      const size_t c = std::min<uint64_t>(std::size(chunk), n - i);
      numerics::load_elements(src_ep.dtype, staging_.data() + i * ss, numerics::Layout::packed(c, ss), chunk);
      numerics::store_elements(dst_ep.dtype, converted_.data() + i * ds, numerics::Layout::packed(c, ds), chunk,
                               rounding_);
    }
    staging_.swap(converted_);
  }
  // Each destination piece issues at the queue's rate once the source data
  // it carries has arrived (the queue streams: writes overlap later reads).
  if (!dst_pieces) {
    dst_pieces_.clear();
    pieces(dst_ep, dst_pieces_);
    dst_pieces = &dst_pieces_;
  }
  const std::vector<Piece>& dst = *dst_pieces;
  std::vector<sc_time>& dst_issue = dst_issue_;
  dst_issue.resize(dst.size());
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
  const sc_time dst_done = access(dst_ep, dst, true, dst_issue, staged ? staging_.data() : nullptr);
  if (direct) copy_direct(src_ep, src, dst_ep, dst);
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
      const DescriptorPieces& p = descriptor_pieces(x->desc + i);
      if (d.dst.loc == isa::Location::next)
        t = transfer(d.src, p.src, resolved(d.dst), t + fixed, &p.dst);
      else
        t = transfer(d.src, p.src, d.dst, t + fixed, &p.dst);
    }
  } else if (const auto* x = std::get_if<isa::DmaGather>(&ins)) {
    const isa::DmaDescriptor& d = core_.exe().dma[x->desc];
    src_pieces_.clear();
    gathered_rows(d.src, x->index, src_pieces_);
    t = transfer(d.src, src_pieces_, d.dst, t + fixed);
  } else {
    throw DeviceFault("instruction not implemented by a DMA queue");
  }
  // The queue is busy until its last descriptor completes.
  const uint64_t cycles = static_cast<uint64_t>(std::ceil((t - now) / period_));
  return {std::max<uint64_t>(cycles, 1), 0};
}

}  // namespace infsim::sim
