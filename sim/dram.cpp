#include "sim/dram.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace infsim::sim {

using sc_core::sc_time;
using sc_core::SC_PS;

Dram::Dram(sc_core::sc_module_name name, const ChipConfig& cfg, CounterRegistry& counters)
    : sc_module(name), socket("socket"), cfg_(cfg), channel_free_(cfg.dram_channels, sc_core::SC_ZERO_TIME) {
  socket.register_b_transport(this, &Dram::b_transport);
  const double channel_bytes_per_ps = cfg.dram_gib_per_s * double(1ull << 30) / cfg.dram_channels / 1e12;
  burst_time_ = sc_time(cfg.dram_burst_bytes / channel_bytes_per_ps, SC_PS);
  latency_ = sc_time(cfg.dram_latency_ns * 1000.0, SC_PS);
  for (uint32_t c = 0; c < cfg.dram_channels; ++c) {
    const std::string path = fmt::format("dram.channel{}", c);
    counters_.push_back({&counters.add(path, "read_bytes", "B", "bytes read"),
                         &counters.add(path, "write_bytes", "B", "bytes written"),
                         &counters.add(path, "bursts", "", "bursts transferred (partial bursts count whole)")});
  }
}

uint8_t* Dram::page(uint64_t index) {
  auto& p = pages_[index];
  if (!p) p.reset(new uint8_t[kPageBytes]());
  return p.get();
}

template <typename Fn>
void Dram::for_pages(uint64_t addr, size_t n, Fn&& fn) {
  size_t done = 0;
  while (done < n) {
    const uint64_t a = addr + done;
    const size_t in_page = std::min<uint64_t>(n - done, kPageBytes - a % kPageBytes);
    fn(page(a / kPageBytes) + a % kPageBytes, done, in_page);
    done += in_page;
  }
}

void Dram::backdoor_write(uint64_t addr, const uint8_t* data, size_t n) {
  for_pages(addr, n, [&](uint8_t* p, size_t off, size_t len) { std::memcpy(p, data + off, len); });
}

void Dram::backdoor_read(uint64_t addr, uint8_t* data, size_t n) {
  for_pages(addr, n, [&](uint8_t* p, size_t off, size_t len) { std::memcpy(data + off, p, len); });
}

void Dram::reset() {
  pages_.clear();
  std::fill(channel_free_.begin(), channel_free_.end(), sc_core::SC_ZERO_TIME);
}

void Dram::b_transport(int, tlm::tlm_generic_payload& trans, sc_time& delay) {
  const uint64_t addr = trans.get_address();
  const size_t n = trans.get_data_length();
  if (addr >= cfg_.dram_bytes || n > cfg_.dram_bytes - addr) {
    trans.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return;
  }
  if (trans.is_read())
    backdoor_read(addr, trans.get_data_ptr(), n);
  else if (trans.is_write())
    backdoor_write(addr, trans.get_data_ptr(), n);

  // Bursts touched, counting partial ones whole (unaligned pieces cost extra).
  const uint64_t b = cfg_.dram_burst_bytes;
  const uint64_t bursts = (addr + n + b - 1) / b - addr / b;
  const uint32_t ch = static_cast<uint32_t>(addr / (cfg_.dram_bytes / cfg_.dram_channels));
  const sc_time issue = sc_core::sc_time_stamp() + delay;
  const sc_time start = std::max(issue, channel_free_[ch]);
  channel_free_[ch] = start + burst_time_ * static_cast<double>(bursts);
  delay = channel_free_[ch] + latency_ - sc_core::sc_time_stamp();
  *(trans.is_read() ? counters_[ch].read_bytes : counters_[ch].write_bytes) += n;
  *counters_[ch].bursts += bursts;
  trans.set_response_status(tlm::TLM_OK_RESPONSE);
}

}  // namespace infsim::sim
