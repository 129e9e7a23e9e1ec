// An instance: its chips, the NeuronLinks between them along the topology,
// and the host with a PCIe link to each chip, elaborated once per process.
//
//   host ─ link.host-chipN (PCIe) ─> chipN DRAM            (inputs, outputs)
//   host ─ chipN registers (host interface)                 (commands, counters)
//   chipN router ─ link.chipN-chipM (NeuronLink) ─> chipM router ─> chipM DRAM
//
// Fabric addresses name memory on any chip: kFabricBase + chip *
// kChipWindow + the chip's DRAM address. A chip's router delivers its own
// window to its DRAM and forwards the others one hop along the topology
// (InstanceConfig::next_hop), so a transfer crosses every link of its route,
// packet by packet (PacketTimes), with each link's timing and counters.
#pragma once

#include <tlm_utils/multi_passthrough_initiator_socket.h>
#include <tlm_utils/multi_passthrough_target_socket.h>
#include <tlm_utils/simple_initiator_socket.h>
#include <systemc>

#include <map>
#include <memory>
#include <vector>

#include "sim/chip/chip.h"
#include "sim/system/instance_config.h"
#include "sim/system/link.h"

namespace infsim::sim {

using isa::kChipWindow;
using isa::kFabricBase;
inline uint64_t fabric_address(uint32_t chip, uint64_t dram_address) {
  return kFabricBase + chip * kChipWindow + dram_address;
}

// A chip's port onto the chip-to-chip fabric.
class Router : public sc_core::sc_module {
 public:
  Router(sc_core::sc_module_name name, uint32_t chip, const InstanceConfig& cfg);

  // From this chip's initiators and incoming links (none on a one-chip instance).
  tlm_utils::multi_passthrough_target_socket<Router, 32, tlm::tlm_base_protocol_types, 0, sc_core::SC_ZERO_OR_MORE_BOUND> in;
  tlm_utils::simple_initiator_socket<Router> to_dram;
  tlm_utils::multi_passthrough_initiator_socket<Router, 32, tlm::tlm_base_protocol_types, 0,
                                                sc_core::SC_ZERO_OR_MORE_BOUND>
      links;  // outgoing links, bound in neighbour order
  void add_neighbour(uint32_t chip) { neighbour_port_[chip] = next_port_++; }

 private:
  void b_transport(int id, tlm::tlm_generic_payload& t, sc_core::sc_time& delay);
  unsigned int transport_dbg(int id, tlm::tlm_generic_payload& t);
  // Which way a fabric address goes: -1 this chip's DRAM (the address made local), else the link port.
  int route(tlm::tlm_generic_payload& t, uint64_t& saved) const;

  const uint32_t chip_;
  const InstanceConfig& cfg_;
  std::map<uint32_t, int> neighbour_port_;
  int next_port_ = 0;
};

class Instance : public sc_core::sc_module {
 public:
  Instance(sc_core::sc_module_name name, const InstanceConfig& icfg, const ChipConfig& ccfg);

  const InstanceConfig& config() const { return icfg_; }
  const ChipConfig& chip_config() const { return ccfg_; }
  uint32_t num_chips() const { return static_cast<uint32_t>(chips_.size()); }
  Chip& chip(uint32_t i) { return *chips_.at(i); }
  Router& router(uint32_t i) { return *routers_.at(i); }
  Link& host_link(uint32_t i) { return *host_links_.at(i); }
  Link* chip_link(uint32_t a, uint32_t b);  // the link between two neighbours, either order; null if none
  // Attaches a trace recorder (null: detaches) to every core and link.
  void set_recorder(traces::Recorder* r);

  // The host's sockets, bound by whoever plays the host (the runtime, a test):
  // host_dram[i] reaches chip i's DRAM over its PCIe link (a_in of host_link(i));
  // chip i's register socket is chip(i).host_interface().socket.
  // Device-initiated traffic to host memory arrives at host_memory.
  tlm_utils::multi_passthrough_target_socket<Instance> host_memory;
  // Chip i's side of its PCIe link (device-initiated transfers to host
  // memory; nothing uses it yet, but TLM sockets are bound at both ends).
  tlm_utils::multi_passthrough_initiator_socket<Instance> device_to_host;

 private:
  void host_memory_transport(int id, tlm::tlm_generic_payload& t, sc_core::sc_time& delay);

  InstanceConfig icfg_;
  ChipConfig ccfg_;
  std::vector<std::unique_ptr<Chip>> chips_;
  std::vector<std::unique_ptr<Router>> routers_;
  std::vector<std::unique_ptr<Link>> host_links_;
  std::map<std::pair<uint32_t, uint32_t>, std::unique_ptr<Link>> chip_links_;
};

LinkParams chip_link_params(const InstanceConfig& c);
LinkParams host_link_params(const InstanceConfig& c);

}  // namespace infsim::sim
