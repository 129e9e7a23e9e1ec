// Device DRAM behind a TLM-2.0 target socket. Bandwidth is modelled per
// channel (requests occupy their channel for ceil(bytes/burst) bursts at the
// channel's share of the bandwidth), plus a fixed access latency. The address
// space is split evenly between channels, so each core's slice lies in one
// channel (inf1: cores 0-1 on channel 0, cores 2-3 on channel 1).
#pragma once

#include <systemc>
#include <tlm>
#include <tlm_utils/multi_passthrough_target_socket.h>

#include <memory>
#include <unordered_map>
#include <vector>

#include "sim/config.h"
#include "sim/counters.h"

namespace infsim::sim {

class Dram : public sc_core::sc_module {
 public:
  tlm_utils::multi_passthrough_target_socket<Dram> socket;

  Dram(sc_core::sc_module_name name, const ChipConfig& cfg, CounterRegistry& counters);

  // Host-side access that takes no simulated time (loading weights, inputs).
  void backdoor_write(uint64_t addr, const uint8_t* data, size_t n);
  void backdoor_read(uint64_t addr, uint8_t* data, size_t n);
  // Frees every page (contents read back as zero) and forgets channel state.
  void reset();

 private:
  static constexpr uint64_t kPageBytes = 1u << 20;
  void b_transport(int id, tlm::tlm_generic_payload& trans, sc_core::sc_time& delay);
  uint8_t* page(uint64_t index);
  template <typename Fn>
  void for_pages(uint64_t addr, size_t n, Fn&& fn);

  const ChipConfig& cfg_;
  sc_core::sc_time burst_time_;  // one burst on one channel
  sc_core::sc_time latency_;
  std::vector<sc_core::sc_time> channel_free_;
  std::unordered_map<uint64_t, std::unique_ptr<uint8_t[]>> pages_;  // sparse: 8 GiB is not allocated up front
  struct ChannelCounters {
    uint64_t* read_bytes;
    uint64_t* write_bytes;
    uint64_t* bursts;
  };
  std::vector<ChannelCounters> counters_;
};

}  // namespace infsim::sim
