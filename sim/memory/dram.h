// Device DRAM behind a TLM-2.0 target socket. Addresses are interleaved over
// the channels every dram_interleave_bytes; each channel is a DRAM device
// model (DramChannelTiming: banks, rows, refresh, command constraints) that
// serves the bursts of a transaction in order. A transaction's delay is the
// controller latency in, the completion of its last burst, and the controller
// latency back.
#pragma once

#include <systemc>
#include <tlm>
#include <tlm_utils/multi_passthrough_target_socket.h>

#include <memory>
#include <unordered_map>
#include <vector>

#include "sim/config.h"
#include "sim/counters.h"
#include "sim/memory/dram_timing.h"
#include "traces/recorder.h"

namespace infsim::sim {

// Marks a transaction that is only to be timed, its bytes not mattering (a
// timing-only run) or moved through the direct memory interface (a DMA
// copy): the DRAM times and counts it but moves no data; the data pointer
// may be null.
struct TimingOnlyAccess : tlm::tlm_extension<TimingOnlyAccess> {
  tlm::tlm_extension_base* clone() const override { return new TimingOnlyAccess; }
  void copy_from(const tlm::tlm_extension_base&) override {}
};

class Dram : public sc_core::sc_module {
 public:
  tlm_utils::multi_passthrough_target_socket<Dram> socket;

  Dram(sc_core::sc_module_name name, const ChipConfig& cfg, CounterRegistry& counters);

  // Access that takes no simulated time and touches no timing state or
  // counter. The host's bulk transfers (weights, inputs, outputs) use it
  // through the socket's debug transport (transport_dbg).
  void backdoor_write(uint64_t addr, const uint8_t* data, size_t n);
  void backdoor_read(uint64_t addr, uint8_t* data, size_t n);
  // Frees every page (contents read back as zero; the memory is kept for
  // the next run), then restart_timing().
  void reset();
  // Bytes [addr, addr + n) read back as zero again (a model unloaded from
  // its cores' slices); no timing state changes.
  void clear(uint64_t addr, uint64_t n);
  // All banks closed, channel statistics zero, DRAM cycle 0 and the refresh
  // schedule restarting now. The host interface calls it when a doorbell
  // starts a core of an idle device, so a run's DRAM timing is measured from
  // its start.
  void restart_timing();
  // Trace recording of each channel's bytes over time (null: off), as the
  // counter tracks "<prefix>.channelC".
  void set_recorder(traces::Recorder* r, const std::string& prefix);

 private:
  static constexpr uint64_t kPageBytes = 1u << 20;
  void b_transport(int id, tlm::tlm_generic_payload& trans, sc_core::sc_time& delay);
  unsigned int transport_dbg(int id, tlm::tlm_generic_payload& trans);
  // Direct memory interface: the page holding the address (allocated, zeroed,
  // if it was not), read and write. Valid until the next reset(); the DMA
  // queues ask again for every transfer instead of keeping it.
  bool get_direct_mem_ptr(int id, tlm::tlm_generic_payload& trans, tlm::tlm_dmi& dmi);
  // Page `index`, allocated on first write: zeroed, unless the writer is about
  // to overwrite all of it (`whole`). Freed pages are kept for reuse.
  uint8_t* page(uint64_t index, bool whole);

  const ChipConfig& cfg_;
  uint64_t burst_bytes_;
  sc_core::sc_time tck_, controller_;
  sc_core::sc_time origin_;  // DRAM cycle 0
  std::vector<DramChannelTiming> channels_;
  std::unordered_map<uint64_t, std::unique_ptr<uint8_t[]>> pages_;  // sparse: 8 GiB is not allocated up front
  std::vector<std::unique_ptr<uint8_t[]>> spare_;                   // freed by reset(), contents stale
  struct ChannelCounters {
    uint64_t *read_bytes, *write_bytes, *reads, *writes, *row_hits, *row_misses, *row_conflicts, *activates,
        *precharges, *refreshes;
  };
  std::vector<ChannelCounters> counters_;
  std::vector<DramChannelStats> seen_;
  traces::Recorder* recorder_ = nullptr;
  std::vector<uint32_t> tracks_;  // per channel  // each channel's statistics when the counters last took them
};

}  // namespace infsim::sim
