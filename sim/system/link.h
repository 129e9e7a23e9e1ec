// Links: the chip-to-chip NeuronLink and the host link (PCIe), both as one
// model. A link joins two ends, A and B, with one lane per direction. A lane
// sends packets of at most packet_bytes, each taking
// ceil(bytes / bytes_per_cycle) cycles of the wire, and each needing one of
// `credits` credits: the receiver frees its buffer when a packet has arrived
// and the credit travels back, so it is usable again latency cycles after
// that. All times are in the link's own clock cycles, counted from time 0.
//
// Policy, shared by the fast model (LinkLane) and the cycle-by-cycle
// reference in tests/cpp/test_link.cpp, which must agree exactly:
//   * packets are sent in the order they are handed to the lane;
//   * packet k starts at max(ready_k, wire free, credit of packet k-credits
//     back); if the credit comes last, the cycles from max(ready_k, wire free)
//     to it are credit-stall cycles;
//   * packet k arrives at the far end at start + serialisation + latency,
//     and its credit is back at the sender latency cycles later.
//
// TLM-2.0: a write that enters at end A (a_in) crosses A->B and goes out of
// to_b; a read entering at A goes out of to_b first and its data comes back
// over B->A (the request itself takes `latency` cycles). An initiator may
// attach PacketTimes to a transaction to carry per-packet times across hops
// (cut-through at packet granularity); without it, every packet is ready
// when the transaction arrives.
#pragma once

#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>
#include <systemc>
#include <tlm>

#include <cstdint>
#include <string>
#include <vector>

#include "sim/counters.h"
#include "traces/recorder.h"

namespace infsim::sim {

struct LinkParams {
  double clock_mhz = 1000;
  uint32_t bytes_per_cycle = 16;
  uint32_t latency_cycles = 500;
  uint32_t packet_bytes = 256;
  uint32_t credits = 64;
};

// One direction of a link: the fast timing model.
class LinkLane {
 public:
  explicit LinkLane(const LinkParams& p);
  // Sends a transfer of `bytes` as ceil(bytes / packet_bytes) packets;
  // `times[k]` is the cycle packet k is ready (resized to the packet count,
  // new entries ready at `ready`) and becomes the cycle it has arrived.
  void send(uint64_t bytes, uint64_t ready, std::vector<uint64_t>& times);
  void reset();  // idle, all credits home, statistics kept

  const LinkParams& params() const { return p_; }
  uint64_t bytes = 0, packets = 0, busy_cycles = 0, credit_stall_cycles = 0;

 private:
  LinkParams p_;
  uint64_t wire_free_ = 0;
  std::vector<uint64_t> credit_back_;  // ring: when each credit is home again, oldest use first
  uint64_t next_credit_ = 0;
};

// Per-packet arrival times of a transaction, in link cycles of the lane that
// set them (the hops of one route share a clock).
struct PacketTimes : tlm::tlm_extension<PacketTimes> {
  std::vector<uint64_t> cycles;
  tlm::tlm_extension_base* clone() const override { return new PacketTimes(*this); }
  void copy_from(const tlm::tlm_extension_base& e) override { cycles = static_cast<const PacketTimes&>(e).cycles; }
};

class Link : public sc_core::sc_module {
 public:
  // `a`, `b`: the ends' names as counters name them ("chip0", "host"); the
  // counters of each direction are registered in `counters` under
  // link.<from>-<to>.
  Link(sc_core::sc_module_name name, const LinkParams& p, const std::string& a, const std::string& b,
       CounterRegistry& counters);

  tlm_utils::simple_target_socket<Link> a_in, b_in;      // transactions entering at end A / B
  tlm_utils::simple_initiator_socket<Link> to_b, to_a;   // ... leaving at the other end

  sc_core::sc_time period() const { return period_; }
  // Trace recording of transfers (null: off); `a`, `b`: the ends as trace
  // events name them (chip numbers, or traces::kHostEnd).
  void set_recorder(traces::Recorder* r, uint32_t a, uint32_t b) {
    recorder_ = r;
    end_a_ = a;
    end_b_ = b;
  }
  const LinkLane& lane(bool a_to_b) const { return a_to_b ? ab_ : ba_; }

 private:
  void transport(bool from_a, tlm::tlm_generic_payload& t, sc_core::sc_time& delay);
  void transport_a(tlm::tlm_generic_payload& t, sc_core::sc_time& d) { transport(true, t, d); }
  void transport_b(tlm::tlm_generic_payload& t, sc_core::sc_time& d) { transport(false, t, d); }
  unsigned int debug_a(tlm::tlm_generic_payload& t) { return to_b->transport_dbg(t); }
  unsigned int debug_b(tlm::tlm_generic_payload& t) { return to_a->transport_dbg(t); }
  // Sends on a lane, adds to its counters; returns the last packet's arrival (link cycles).
  uint64_t send(bool a_to_b, uint64_t bytes, uint64_t ready, std::vector<uint64_t>& times);

  LinkParams p_;
  sc_core::sc_time period_;
  traces::Recorder* recorder_ = nullptr;
  uint32_t end_a_ = 0, end_b_ = 0;
  LinkLane ab_, ba_;
  struct Counters {
    uint64_t *bytes, *busy_cycles, *credit_stall_cycles;
  } c_ab_, c_ba_;
};

}  // namespace infsim::sim
