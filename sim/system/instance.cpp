#include "sim/system/instance.h"

#include <fmt/format.h>

namespace infsim::sim {

LinkParams chip_link_params(const InstanceConfig& c) {
  return {c.link_clock_mhz, c.link_bytes_per_cycle, c.link_latency_cycles, c.link_packet_bytes, c.link_credits};
}

LinkParams host_link_params(const InstanceConfig& c) {
  return {c.host_link_clock_mhz, c.host_link_bytes_per_cycle, c.host_link_latency_cycles, c.host_link_packet_bytes,
          c.host_link_credits};
}

Router::Router(sc_core::sc_module_name name, uint32_t chip, const InstanceConfig& cfg)
    : sc_module(name), in("in"), to_dram("to_dram"), links("links"), chip_(chip), cfg_(cfg) {
  in.register_b_transport(this, &Router::b_transport);
  in.register_transport_dbg(this, &Router::transport_dbg);
}

int Router::route(tlm::tlm_generic_payload& t, uint64_t& saved) const {
  saved = t.get_address();
  const uint64_t a = t.get_address();
  if (a < kFabricBase) return -1;  // already a local DRAM address
  const uint64_t dest = (a - kFabricBase) / kChipWindow;
  if (dest >= cfg_.chips) return -2;
  if (dest == chip_) {
    t.set_address((a - kFabricBase) % kChipWindow);
    return -1;
  }
  return neighbour_port_.at(cfg_.next_hop(chip_, static_cast<uint32_t>(dest)));
}

void Router::b_transport(int, tlm::tlm_generic_payload& t, sc_core::sc_time& delay) {
  uint64_t saved;
  const int port = route(t, saved);
  if (port == -2) {
    t.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return;
  }
  if (port == -1)
    to_dram->b_transport(t, delay);
  else
    links[port]->b_transport(t, delay);
  t.set_address(saved);
}

unsigned int Router::transport_dbg(int, tlm::tlm_generic_payload& t) {
  uint64_t saved;
  const int port = route(t, saved);
  if (port == -2) return 0;
  const unsigned n = port == -1 ? to_dram->transport_dbg(t) : links[port]->transport_dbg(t);
  t.set_address(saved);
  return n;
}

Instance::Instance(sc_core::sc_module_name name, const InstanceConfig& icfg, const ChipConfig& ccfg)
    : sc_module(name), host_memory("host_memory"), device_to_host("device_to_host"), icfg_(icfg), ccfg_(ccfg) {
  icfg_.check();
  ccfg_.check();
  host_memory.register_b_transport(this, &Instance::host_memory_transport);
  for (uint32_t i = 0; i < icfg_.chips; ++i) {
    const std::string chip = fmt::format("chip{}", i);
    chips_.push_back(std::make_unique<Chip>(chip.c_str(), ccfg_, false));
    routers_.push_back(std::make_unique<Router>(fmt::format("router{}", i).c_str(), i, icfg_));
    routers_.back()->to_dram.bind(chips_.back()->dram().socket);
    for (uint32_t k = 0; k < chips_.back()->num_cores(); ++k)
      for (auto* s : chips_.back()->core(k).fabric_sockets()) s->bind(routers_.back()->in);
    // The link's counters live in the chip's registry, so the host reads them
    // through that chip's COUNTER registers.
    host_links_.push_back(std::make_unique<Link>(fmt::format("host_link{}", i).c_str(), host_link_params(icfg_), "host",
                                                 chip, chips_.back()->counters()));
    host_links_.back()->to_b.bind(chips_.back()->dram().socket);
    host_links_.back()->to_a.bind(host_memory);
    device_to_host.bind(host_links_.back()->b_in);
  }
  for (const auto& [a, b] : icfg_.links()) {
    auto link = std::make_unique<Link>(fmt::format("link_chip{}_chip{}", a, b).c_str(), chip_link_params(icfg_),
                                       fmt::format("chip{}", a), fmt::format("chip{}", b), chips_[a]->counters());
    routers_[a]->links.bind(link->a_in);
    routers_[a]->add_neighbour(b);
    link->to_b.bind(routers_[b]->in);
    routers_[b]->links.bind(link->b_in);
    routers_[b]->add_neighbour(a);
    link->to_a.bind(routers_[a]->in);
    chip_links_[{a, b}] = std::move(link);
  }
}

Link* Instance::chip_link(uint32_t a, uint32_t b) {
  auto it = chip_links_.find({a, b});
  if (it == chip_links_.end()) it = chip_links_.find({b, a});
  return it == chip_links_.end() ? nullptr : it->second.get();
}

void Instance::set_recorder(traces::Recorder* r) {
  for (uint32_t c = 0; c < num_chips(); ++c) {
    for (uint32_t k = 0; k < chips_[c]->num_cores(); ++k) chips_[c]->core(k).set_recorder(r, c);
    chips_[c]->dram().set_recorder(r, fmt::format("chip{}.dram", c));
    host_links_[c]->set_recorder(r, traces::kHostEnd, c);
  }
  for (auto& [ends, link] : chip_links_) link->set_recorder(r, ends.first, ends.second);
}

void Instance::host_memory_transport(int, tlm::tlm_generic_payload& t, sc_core::sc_time&) {
  // Host memory is not modelled beyond its link: accesses succeed at once.
  t.set_response_status(tlm::TLM_OK_RESPONSE);
}

}  // namespace infsim::sim
