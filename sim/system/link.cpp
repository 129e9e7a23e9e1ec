#include "sim/system/link.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace infsim::sim {

LinkLane::LinkLane(const LinkParams& p) : p_(p) { reset(); }

void LinkLane::reset() {
  wire_free_ = 0;
  credit_back_.assign(p_.credits, 0);
  next_credit_ = 0;
}

void LinkLane::send(uint64_t n, uint64_t ready, std::vector<uint64_t>& times) {
  const uint64_t count = n == 0 ? 0 : (n + p_.packet_bytes - 1) / p_.packet_bytes;
  times.resize(count, ready);
  for (uint64_t k = 0; k < count; ++k) {
    const uint64_t size = k + 1 < count ? p_.packet_bytes : n - (count - 1) * p_.packet_bytes;
    const uint64_t ser = (size + p_.bytes_per_cycle - 1) / p_.bytes_per_cycle;
    uint64_t& credit = credit_back_[next_credit_];
    next_credit_ = (next_credit_ + 1) % p_.credits;
    const uint64_t can = std::max(times[k], wire_free_);
    const uint64_t start = std::max(can, credit);
    credit_stall_cycles += start - can;
    wire_free_ = start + ser;
    busy_cycles += ser;
    times[k] = wire_free_ + p_.latency_cycles;
    credit = times[k] + p_.latency_cycles;
  }
  bytes += n;
  packets += count;
}

Link::Link(sc_core::sc_module_name name, const LinkParams& p, const std::string& a, const std::string& b,
           CounterRegistry& counters)
    : sc_module(name),
      a_in("a_in"),
      b_in("b_in"),
      to_b("to_b"),
      to_a("to_a"),
      p_(p),
      period_(1e6 / p.clock_mhz, sc_core::SC_PS),
      ab_(p),
      ba_(p) {
  auto reg = [&](const std::string& from, const std::string& to) {
    const std::string path = fmt::format("link.{}-{}", from, to);
    return Counters{&counters.add(path, "bytes", "B", "bytes sent " + from + " to " + to),
                    &counters.add(path, "busy_cycles", "cycles", "link cycles the wire was sending"),
                    &counters.add(path, "credit_stall_cycles", "cycles",
                                  "link cycles a packet was ready and the wire free, but no credit was home")};
  };
  c_ab_ = reg(a, b);
  c_ba_ = reg(b, a);
  a_in.register_b_transport(this, &Link::transport_a);
  b_in.register_b_transport(this, &Link::transport_b);
  a_in.register_transport_dbg(this, &Link::debug_a);
  b_in.register_transport_dbg(this, &Link::debug_b);
}

uint64_t Link::send(bool a_to_b, uint64_t n, uint64_t ready, std::vector<uint64_t>& times) {
  LinkLane& lane = a_to_b ? ab_ : ba_;
  const Counters& c = a_to_b ? c_ab_ : c_ba_;
  const uint64_t busy = lane.busy_cycles, stall = lane.credit_stall_cycles;
  lane.send(n, ready, times);
  *c.bytes += n;
  *c.busy_cycles += lane.busy_cycles - busy;
  *c.credit_stall_cycles += lane.credit_stall_cycles - stall;
  return times.empty() ? ready : *std::max_element(times.begin(), times.end());
}

void Link::transport(bool from_a, tlm::tlm_generic_payload& t, sc_core::sc_time& delay) {
  auto& out = from_a ? to_b : to_a;
  const bool write = t.is_write();
  // The lane the data crosses: the request's direction for a write, the other for a read.
  const bool a_to_b = from_a == write;
  PacketTimes local;
  PacketTimes* pt = t.get_extension<PacketTimes>();
  const bool own = pt == nullptr;
  if (own) {
    pt = &local;
    t.set_extension(pt);
  }
  const sc_core::sc_time now = sc_core::sc_time_stamp();
  auto cycle_of = [&](const sc_core::sc_time& d) {
    return static_cast<uint64_t>(std::ceil((now + d) / period_ - 1e-9));
  };
  auto until = [&](uint64_t cycle) { return period_ * static_cast<double>(cycle) - now; };
  auto record = [&](const sc_core::sc_time& from, const sc_core::sc_time& to) {
    if (recorder_)
      recorder_->record({from.value(), to.value(), a_to_b ? end_a_ : end_b_, a_to_b ? end_b_ : end_a_, 0, 0,
                         traces::EventKind::link_transfer, t.get_data_length()});
  };
  if (write) {
    const sc_core::sc_time ready = now + delay;
    delay = until(send(a_to_b, t.get_data_length(), cycle_of(delay), pt->cycles));
    record(ready, now + delay);
    out->b_transport(t, delay);
  } else {
    delay += period_ * static_cast<double>(p_.latency_cycles);  // the read request crosses first
    pt->cycles.clear();  // an inner hop sets its arrival times; else all ready when the data is
    out->b_transport(t, delay);
    const sc_core::sc_time ready = now + delay;
    delay = until(send(a_to_b, t.get_data_length(), cycle_of(delay), pt->cycles));
    record(ready, now + delay);
  }
  if (own) t.clear_extension(pt);
}

}  // namespace infsim::sim
