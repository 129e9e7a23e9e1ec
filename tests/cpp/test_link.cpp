// Links: the fast lane model (sim/system/link.h) against a cycle-by-cycle
// reference, and a transfer across the chain of an inf1.6xlarge-shaped
// instance, checked against the link formula and the link counters.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <deque>
#include <random>

#include "sim/system/instance.h"

using namespace infsim;
using sim::LinkLane;
using sim::LinkParams;

namespace {

// Cycle by cycle: each cycle, credits that are home come back first; then a
// wire that is free takes the oldest ready packet if a credit is home, and a
// ready packet without a credit counts a stall cycle.
struct ReferenceLane {
  LinkParams p;
  uint64_t busy = 0, stall = 0;
  std::vector<uint64_t> run(const std::vector<std::pair<uint64_t, uint64_t>>& packets) {  // (ready cycle, bytes)
    std::vector<uint64_t> arrive(packets.size());
    uint32_t credits = p.credits;
    std::deque<uint64_t> returning;  // cycles credits come home, in order
    uint64_t wire_until = 0;         // first cycle the wire is free
    size_t next = 0;
    for (uint64_t cycle = 0; next < packets.size(); ++cycle) {
      while (!returning.empty() && returning.front() <= cycle) {
        returning.pop_front();
        ++credits;
      }
      if (cycle < wire_until) continue;
      if (packets[next].first > cycle) continue;
      if (credits == 0) {
        ++stall;
        continue;
      }
      --credits;
      const uint64_t ser = (packets[next].second + p.bytes_per_cycle - 1) / p.bytes_per_cycle;
      busy += ser;
      wire_until = cycle + ser;
      arrive[next] = wire_until + p.latency_cycles;
      returning.push_back(arrive[next] + p.latency_cycles);
      ++next;
    }
    return arrive;
  }
};

}  // namespace

TEST(LinkLane, MatchesCycleByCycleReference) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    LinkParams p;
    p.bytes_per_cycle = 1 + rng() % 32;
    p.latency_cycles = rng() % 200;
    p.packet_bytes = 16 + rng() % 512;
    p.credits = 1 + rng() % 12;
    LinkLane fast(p);
    ReferenceLane ref{p};
    std::vector<std::pair<uint64_t, uint64_t>> packets;
    std::vector<uint64_t> fast_arrive;
    uint64_t t = 0;
    for (int x = 0; x < 6; ++x) {  // several transfers, some back to back, some after a gap
      t += rng() % 3 == 0 ? rng() % 2000 : 0;
      const uint64_t bytes = 1 + rng() % 3000;
      std::vector<uint64_t> times;
      fast.send(bytes, t, times);
      fast_arrive.insert(fast_arrive.end(), times.begin(), times.end());
      for (uint64_t k = 0; k * p.packet_bytes < bytes; ++k)
        packets.emplace_back(t, std::min<uint64_t>(p.packet_bytes, bytes - k * p.packet_bytes));
    }
    EXPECT_EQ(ref.run(packets), fast_arrive) << "trial " << trial;
    EXPECT_EQ(ref.busy, fast.busy_cycles) << "trial " << trial;
    EXPECT_EQ(ref.stall, fast.credit_stall_cycles) << "trial " << trial;
  }
}

TEST(LinkLane, FormulaOfOneTransfer) {
  // An idle lane with credits for the whole transfer: the last packet arrives
  // at packets x serialisation + latency.
  LinkParams p{1000, 16, 537, 256, 80};
  LinkLane lane(p);
  std::vector<uint64_t> t;
  lane.send(64 * 1024, 0, t);
  EXPECT_EQ(t.size(), 256u);
  EXPECT_EQ(t.back(), 256u * 16 + 537);
  EXPECT_EQ(lane.credit_stall_cycles, 0u);
  // With 4 credits the sender waits for each credit's round trip: packet k
  // (k >= 4) starts when packet k-4's credit is back.
  LinkLane slow({1000, 16, 100, 256, 4});
  t.clear();
  slow.send(8 * 256, 0, t);
  // Packets 0..3 start at 0,16,32,48; packet 4's credit is back at 16+100+100 = 216.
  EXPECT_EQ(t[4], 216u + 16 + 100);
  EXPECT_EQ(slow.credit_stall_cycles, 216u - 64);  // packet 4 only: later credits are back when the wire frees
}

// A test initiator on chip 0's router: writes to chip 3's DRAM go 0-1-2-3.
struct Initiator : sc_core::sc_module {
  tlm_utils::simple_initiator_socket<Initiator> socket{"socket"};
  explicit Initiator(sc_core::sc_module_name n) : sc_module(n) {}
};

TEST(Instance, TransferAlongTheChain) {
  sc_core::sc_set_time_resolution(1, sc_core::SC_FS);
  auto icfg = sim::InstanceConfig::named("inf1.6xlarge");
  auto ccfg = sim::ChipConfig::named("inf1");
  sim::Instance inst("instance", icfg, ccfg);
  Initiator init("init");
  init.socket.bind(inst.router(0).in);
  // The host's sockets unused here: bind the host links' A ends to nothing-doing initiators.
  std::vector<std::unique_ptr<Initiator>> hosts;
  for (uint32_t c = 0; c < inst.num_chips(); ++c) {
    hosts.push_back(std::make_unique<Initiator>(fmt::format("host{}", c).c_str()));
    hosts.back()->socket.bind(inst.host_link(c).a_in);
  }
  struct Regs : sc_core::sc_module {
    std::vector<std::unique_ptr<tlm_utils::simple_initiator_socket<Regs>>> s;
    Regs(sc_core::sc_module_name n, sim::Instance& i) : sc_module(n) {
      for (uint32_t c = 0; c < i.num_chips(); ++c) {
        s.push_back(std::make_unique<tlm_utils::simple_initiator_socket<Regs>>(fmt::format("r{}", c).c_str()));
        s.back()->bind(i.chip(c).host_interface().socket);
      }
    }
  } regs("regs", inst);
  sc_core::sc_start(sc_core::SC_ZERO_TIME);

  const uint64_t bytes = 32 * 1024;
  std::vector<uint8_t> data(bytes);
  for (size_t i = 0; i < bytes; ++i) data[i] = static_cast<uint8_t>(i * 7);
  tlm::tlm_generic_payload t;
  t.set_command(tlm::TLM_WRITE_COMMAND);
  t.set_address(sim::fabric_address(3, 0x1000));
  t.set_data_ptr(data.data());
  t.set_data_length(bytes);
  t.set_streaming_width(bytes);
  sim::PacketTimes arrivals;  // the initiator's own: it reads the last hop's arrival times
  t.set_extension(&arrivals);
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  init.socket->b_transport(t, delay);
  t.clear_extension(&arrivals);
  ASSERT_EQ(t.get_response_status(), tlm::TLM_OK_RESPONSE);

  // Cut-through per packet over three equal hops: the last packet leaves
  // chip 0 after all 128 serialisations, then crosses two more wires and
  // three latencies (the wires of later hops are free by then).
  const auto& p = icfg;
  const uint64_t packets = bytes / p.link_packet_bytes, ser = p.link_packet_bytes / p.link_bytes_per_cycle;
  const uint64_t last = packets * ser + 3 * p.link_latency_cycles + 2 * ser;
  const sc_core::sc_time period(1e6 / p.link_clock_mhz, sc_core::SC_PS);
  EXPECT_EQ(arrivals.cycles.size(), packets);
  EXPECT_EQ(arrivals.cycles.back(), last);
  // Then chip 3's DRAM write.
  EXPECT_GE(delay, period * static_cast<double>(last));
  EXPECT_LT(delay, period * static_cast<double>(last) + sc_core::sc_time(2, sc_core::SC_US));
  for (auto [a, b] : {std::pair{0u, 1u}, {1u, 2u}, {2u, 3u}}) {
    const auto& lane = inst.chip_link(a, b)->lane(true);
    EXPECT_EQ(lane.bytes, bytes);
    EXPECT_EQ(lane.busy_cycles, packets * ser);
    EXPECT_EQ(lane.credit_stall_cycles, 0u);
    EXPECT_EQ(inst.chip_link(a, b)->lane(false).bytes, 0u);
  }
  // The counters, as the host reads them, in chip 0's registry (link.chip0-chip1) etc.
  auto counter = [&](uint32_t chip, const std::string& path, const std::string& name) {
    for (const auto& c : inst.chip(chip).counter_registry().all())
      if (c.path == path && c.name == name) return c.value;
    return ~uint64_t{0};
  };
  EXPECT_EQ(counter(0, "link.chip0-chip1", "bytes"), bytes);
  EXPECT_EQ(counter(1, "link.chip1-chip2", "busy_cycles"), packets * ser);
  EXPECT_EQ(counter(2, "link.chip3-chip2", "bytes"), 0u);
  // The bytes landed in chip 3's DRAM, and only there.
  std::vector<uint8_t> back(bytes);
  inst.chip(3).dram().backdoor_read(0x1000, back.data(), bytes);
  EXPECT_EQ(back, data);
  inst.chip(2).dram().backdoor_read(0x1000, back.data(), bytes);
  EXPECT_EQ(back, std::vector<uint8_t>(bytes, 0));
}
