#include "sim/memory/dram.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace infsim::sim {

using sc_core::sc_time;
using sc_core::SC_PS;

namespace {
DramTimingParams timing_params(const ChipConfig& c) {
  DramTimingParams p;
  p.bank_groups = c.dram_bank_groups;
  p.banks_per_group = c.dram_banks_per_group;
  p.row_bytes = c.dram_row_bytes;
  p.burst_bytes = c.dram_bus_bytes * c.dram_burst_length;
  p.burst_cycles = c.dram_burst_length / 2;
  p.tRCD = c.dram_tRCD, p.tRP = c.dram_tRP, p.tCL = c.dram_tCL, p.tCWL = c.dram_tCWL, p.tRAS = c.dram_tRAS;
  p.tRC = c.dram_tRC, p.tCCD_S = c.dram_tCCD_S, p.tCCD_L = c.dram_tCCD_L, p.tRRD_S = c.dram_tRRD_S;
  p.tRRD_L = c.dram_tRRD_L, p.tFAW = c.dram_tFAW, p.tWR = c.dram_tWR, p.tWTR_S = c.dram_tWTR_S;
  p.tWTR_L = c.dram_tWTR_L, p.tRTP = c.dram_tRTP, p.tRTW = c.dram_tRTW, p.tRFC = c.dram_tRFC, p.tREFI = c.dram_tREFI;
  return p;
}
}  // namespace

Dram::Dram(sc_core::sc_module_name name, const ChipConfig& cfg, CounterRegistry& counters)
    : sc_module(name),
      socket("socket"),
      cfg_(cfg),
      burst_bytes_(uint64_t{cfg.dram_bus_bytes} * cfg.dram_burst_length),
      tck_(cfg.dram_tck_ps(), SC_PS),
      controller_(cfg.dram_controller_ns * 1000.0, SC_PS),
      channels_(cfg.dram_channels, DramChannelTiming(timing_params(cfg))),
      seen_(cfg.dram_channels) {
  socket.register_b_transport(this, &Dram::b_transport);
  socket.register_transport_dbg(this, &Dram::transport_dbg);
  socket.register_get_direct_mem_ptr(this, &Dram::get_direct_mem_ptr);
  for (uint32_t c = 0; c < cfg.dram_channels; ++c) {
    const std::string path = fmt::format("dram.channel{}", c);
    auto add = [&](const char* name, const char* unit, const char* desc) { return &counters.add(path, name, unit, desc); };
    counters_.push_back({add("read_bytes", "B", "bytes read"), add("write_bytes", "B", "bytes written"),
                         add("reads", "", "read bursts"), add("writes", "", "write bursts"),
                         add("row_hits", "", "bursts to the open row of their bank"),
                         add("row_misses", "", "bursts to a closed bank (ACT needed)"),
                         add("row_conflicts", "", "bursts to a bank with another row open (PRE and ACT needed)"),
                         add("activates", "", "ACT commands"), add("precharges", "", "PRE commands"),
                         add("refreshes", "", "REF commands")});
  }
}

uint8_t* Dram::page(uint64_t index, bool whole) {
  auto& p = pages_[index];
  if (!p) {
    if (spare_.empty()) {
      p.reset(new uint8_t[kPageBytes]);
    } else {
      p = std::move(spare_.back());
      spare_.pop_back();
    }
    if (!whole) std::memset(p.get(), 0, kPageBytes);
  }
  return p.get();
}

void Dram::backdoor_write(uint64_t addr, const uint8_t* data, size_t n) {
  size_t done = 0;
  while (done < n) {
    const uint64_t a = addr + done;
    const size_t len = std::min<uint64_t>(n - done, kPageBytes - a % kPageBytes);
    std::memcpy(page(a / kPageBytes, len == kPageBytes) + a % kPageBytes, data + done, len);
    done += len;
  }
}

void Dram::backdoor_read(uint64_t addr, uint8_t* data, size_t n) {
  // Never-written pages read as zero without being allocated.
  size_t done = 0;
  while (done < n) {
    const uint64_t a = addr + done;
    const size_t len = std::min<uint64_t>(n - done, kPageBytes - a % kPageBytes);
    auto it = pages_.find(a / kPageBytes);
    if (it == pages_.end())
      std::memset(data + done, 0, len);
    else
      std::memcpy(data + done, it->second.get() + a % kPageBytes, len);
    done += len;
  }
}

void Dram::reset() {
  for (auto& [index, p] : pages_) spare_.push_back(std::move(p));
  pages_.clear();
  restart_timing();
}

void Dram::set_recorder(traces::Recorder* r, const std::string& prefix) {
  recorder_ = r;
  tracks_.clear();
  if (r)
    for (uint32_t c = 0; c < channels_.size(); ++c) tracks_.push_back(r->track(fmt::format("{}.channel{}", prefix, c)));
}

void Dram::clear(uint64_t addr, uint64_t n) {
  for (auto it = pages_.begin(); it != pages_.end();) {
    const uint64_t lo = it->first * kPageBytes, hi = lo + kPageBytes;
    if (hi <= addr || lo >= addr + n) {
      ++it;
    } else if (lo >= addr && hi <= addr + n) {
      spare_.push_back(std::move(it->second));
      it = pages_.erase(it);
    } else {
      const uint64_t a = std::max(lo, addr), b = std::min(hi, addr + n);
      std::memset(it->second.get() + (a - lo), 0, b - a);
      ++it;
    }
  }
}

void Dram::restart_timing() {
  // DRAM cycles count from here, so a run's timing does not depend on when it starts.
  origin_ = sc_core::sc_time_stamp();
  for (auto& c : channels_) c.reset();
  seen_.assign(channels_.size(), DramChannelStats{});
}

unsigned int Dram::transport_dbg(int, tlm::tlm_generic_payload& trans) {
  const uint64_t addr = trans.get_address();
  const size_t n = trans.get_data_length();
  if (addr >= cfg_.dram_bytes || n > cfg_.dram_bytes - addr || trans.get_byte_enable_ptr()) {
    trans.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return 0;
  }
  if (trans.is_write())
    backdoor_write(addr, trans.get_data_ptr(), n);
  else if (trans.is_read())
    backdoor_read(addr, trans.get_data_ptr(), n);
  trans.set_response_status(tlm::TLM_OK_RESPONSE);
  return static_cast<unsigned int>(n);
}

bool Dram::get_direct_mem_ptr(int, tlm::tlm_generic_payload& trans, tlm::tlm_dmi& dmi) {
  const uint64_t addr = trans.get_address();
  if (addr >= cfg_.dram_bytes) return false;
  const uint64_t index = addr / kPageBytes;
  dmi.set_dmi_ptr(page(index, false));
  dmi.set_start_address(index * kPageBytes);
  dmi.set_end_address(std::min<uint64_t>(cfg_.dram_bytes, (index + 1) * kPageBytes) - 1);
  dmi.allow_read_write();
  return true;
}

void Dram::b_transport(int, tlm::tlm_generic_payload& trans, sc_time& delay) {
  const uint64_t addr = trans.get_address();
  const size_t n = trans.get_data_length();
  if (addr >= cfg_.dram_bytes || n > cfg_.dram_bytes - addr) {
    trans.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return;
  }
  const bool write = trans.is_write();
  if (trans.get_extension<TimingOnlyAccess>() == nullptr) {
    if (write)
      backdoor_write(addr, trans.get_data_ptr(), n);
    else
      backdoor_read(addr, trans.get_data_ptr(), n);
  }

  // Every burst the bytes touch, partial ones whole, each in its channel.
  const sc_time arrive = sc_core::sc_time_stamp() + delay + controller_;
  const int64_t arrival = static_cast<int64_t>(std::ceil((arrive - origin_) / tck_));
  // The bursts starting in one interleave stripe are consecutive in one channel: one run each.
  const uint64_t interleave = cfg_.dram_interleave();
  const uint64_t end = addr + n;
  int64_t done = arrival;
  for (uint64_t b = addr / burst_bytes_ * burst_bytes_; b < end;) {
    const uint64_t stripe = b / interleave;
    const uint32_t ch = static_cast<uint32_t>(stripe % cfg_.dram_channels);
    const uint64_t offset = stripe / cfg_.dram_channels * interleave + b % interleave;
    const uint64_t run_end = std::min(end, (stripe + 1) * interleave);  // bursts start below this
    const uint64_t bursts = (run_end - b + burst_bytes_ - 1) / burst_bytes_;
    done = std::max(done, channels_[ch].access_run(arrival, offset, bursts, write));
    const uint64_t next = b + bursts * burst_bytes_;
    *(write ? counters_[ch].write_bytes : counters_[ch].read_bytes) += std::min(next, end) - std::max(b, addr);
    if (recorder_) recorder_->add(tracks_[ch], arrive.value(), std::min(next, end) - std::max(b, addr));
    b = next;
  }
  // The counters add what the channels counted since the last look (the
  // channels' own statistics restart with their timing; the counters run on).
  for (uint32_t ch = 0; ch < channels_.size(); ++ch) {
    const DramChannelStats& s = channels_[ch].stats();
    DramChannelStats& seen = seen_[ch];
    const ChannelCounters& c = counters_[ch];
    *c.reads += s.reads - seen.reads, *c.writes += s.writes - seen.writes;
    *c.row_hits += s.row_hits - seen.row_hits, *c.row_misses += s.row_misses - seen.row_misses;
    *c.row_conflicts += s.row_conflicts - seen.row_conflicts, *c.activates += s.activates - seen.activates;
    *c.precharges += s.precharges - seen.precharges, *c.refreshes += s.refreshes - seen.refreshes;
    seen = s;
  }
  delay = origin_ + tck_ * static_cast<double>(done) + controller_ - sc_core::sc_time_stamp();
  trans.set_response_status(tlm::TLM_OK_RESPONSE);
}

}  // namespace infsim::sim
