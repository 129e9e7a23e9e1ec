#include "sim/chip/chip.h"

#include <fmt/format.h>
#include <tlm_utils/multi_passthrough_target_socket.h>

#include <algorithm>
#include <cstdlib>

namespace infsim::sim {

// A standalone chip's answer to fabric addresses: there is no other chip.
struct Chip::NoFabric : sc_core::sc_module {
  tlm_utils::multi_passthrough_target_socket<NoFabric> socket{"socket"};
  explicit NoFabric(sc_core::sc_module_name n) : sc_module(n) {
    socket.register_b_transport(this, &NoFabric::b_transport);
  }
  void b_transport(int, tlm::tlm_generic_payload& t, sc_core::sc_time&) {
    t.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
  }
};

Chip::~Chip() = default;

Chip::Chip(sc_core::sc_module_name name, const ChipConfig& cfg, bool own_host_port) : sc_module(name), cfg_(cfg) {
  dram_ = std::make_unique<Dram>("dram", cfg_, counters_);
  std::vector<NeuronCore*> cores;
  for (uint32_t c = 0; c < cfg_.cores; ++c) {
    cores_.push_back(std::make_unique<NeuronCore>(fmt::format("core{}", c).c_str(), c, cfg_, counters_));
    for (auto* s : cores_.back()->dram_sockets()) s->bind(dram_->socket);
    cores.push_back(cores_.back().get());
  }
  // The DRAM timing restarts when a doorbell wakes an idle device (the
  // runtime also restarts it when a request's first transfer reaches an idle
  // chip), so a run alone takes the same cycles whatever ran before.
  host_if_ = std::make_unique<HostInterface>("host_interface", cfg_, counters_, cores,
                                             [this] { dram_->restart_timing(); });
  firmware_ = std::make_unique<firmware::CommandProcessor>("firmware", *host_if_);
  // The host's ports are not part of the device; they sit in this module
  // only because SystemC sockets need a parent module.
  if (!own_host_port) return;
  no_fabric_ = std::make_unique<NoFabric>("no_fabric");
  for (auto& core : cores_)
    for (auto* s : core->fabric_sockets()) s->bind(no_fabric_->socket);
  host_ = std::make_unique<HostPort>("host");
  host_->registers.bind(host_if_->socket);
  host_->dram.bind(dram_->socket);
}

namespace {
std::unique_ptr<Chip>& the_chip() {
  static std::unique_ptr<Chip> chip;
  return chip;
}
}  // namespace

bool Chip::can_run(const ChipConfig& cfg) {
  return !the_chip() || param_values(the_chip()->cfg_) == param_values(cfg);
}

Chip& Chip::instance(const ChipConfig& cfg) {
  auto& chip = the_chip();
  if (!chip) {
    // Before any sc_time exists: femtoseconds keep clock periods such as
    // 1/2.8 GHz exact to 1e-6.
    setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
    sc_core::sc_set_time_resolution(1, sc_core::SC_FS);
    cfg.check();
    chip.reset(new Chip("chip", cfg));
    // Elaborate and run the initialisation phase now, so every engine thread
    // is waiting for its start event before the first run notifies it.
    sc_core::sc_start(sc_core::SC_ZERO_TIME);
  } else if (param_values(chip->cfg_) != param_values(cfg)) {
    throw RunError("this process already simulates chip configuration '" + chip->cfg_.name +
                   "'; use a new process for another configuration");
  }
  return *chip;
}

namespace {
// The executable stays in host memory while the device uses it.
struct MappedImage {
  HostInterface& hif;
  const uint32_t handle;
  MappedImage(HostInterface& h, const isa::Executable& exe) : hif(h), handle(h.map_image(exe)) {}
  ~MappedImage() { hif.unmap_image(handle); }
};
}  // namespace

void Chip::reset_cores(uint32_t n) {
  host_->post(*host_if_, firmware::Opcode::reset_cores, {0, n});
  host_->wait_idle();
}

RunResult Chip::run(const isa::Executable& exe, const std::map<std::string, std::vector<uint8_t>>& inputs,
                    bool timing_only) {
  if (!host_) throw RunError("this chip is part of an instance: run models through its runtime");
  using firmware::CoreStatus;
  using firmware::Opcode;
  isa::validate(exe, cfg_.limits());
  for (const auto& [name, bytes] : inputs) {
    bool known = false;
    for (const auto& t : exe.tensors) known |= t.kind == isa::TensorKind::input && t.name == name;
    if (!known) throw RunError(fmt::format("unknown input '{}'", name));
  }
  for (const auto& t : exe.tensors) {
    if (t.kind != isa::TensorKind::input) continue;
    auto it = inputs.find(t.name);
    if (it == inputs.end()) throw RunError(fmt::format("missing input '{}'", t.name));
    if (it->second.size() != t.bytes())
      throw RunError(fmt::format("input '{}': got {} bytes, expected {} ({} elements of {})", t.name,
                                 it->second.size(), t.bytes(), t.elements(), isa::to_string(t.dtype)));
  }

  HostInterface& hif = *host_if_;
  HostPort& host = *host_;

  // Bulk transfers: device memory starts from zero, then weights and inputs
  // go to each core's slice.
  dram_->reset();
  const uint64_t slice = cfg_.dram_slice_bytes();
  // Constant values cannot change any timing unless a gather may read its row
  // numbers from them, so a timing-only run without gathers does not load them.
  bool gathers = false;
  for (const auto& s : exe.streams)
    for (const auto& ins : s.instructions) gathers |= std::holds_alternative<isa::DmaGather>(ins);
  if (!timing_only || gathers)
    for (const auto& c : exe.constants) host.write_dram(c.core * slice + c.dram_offset, c.bytes.data(), c.bytes.size());
  for (const auto& t : exe.tensors)
    if (t.kind == isa::TensorKind::input) {
      const auto& bytes = inputs.at(t.name);
      host.write_dram(t.core * slice + t.dram_offset, bytes.data(), bytes.size());
    }

  // Commands: the firmware takes them in order; RUN rings the doorbells of
  // cores 0 .. num_cores-1 in one cycle, which is cycle 0 of the run.
  const uint32_t n = exe.num_cores;
  const MappedImage image(hif, exe);
  host.write32(hif.IRQ_STATUS.address(), ~0u);
  host.post(hif, Opcode::reset_counters, {});
  for (uint32_t c = 0; c < n; ++c) cores_[c]->set_timing_only(timing_only);  // a simulator mode, not a register
  host.post(hif, Opcode::load, {0, n, image.handle});
  host.post(hif, Opcode::run, {0, n});
  host.wait_idle();  // until no event remains: every engine finished or blocked

  // Results, all read through the registers; texts from the device log.
  if (host.read32(hif.IRQ_STATUS.address()) & kIrqCommandError)
    throw RunError(fmt::format("the device rejected a command (CMD_STATUS {})", host.read32(hif.CMD_STATUS.address())));
  std::vector<uint32_t> status(n);
  for (uint32_t c = 0; c < n; ++c) status[c] = host.read32(hif.STATUS.address(c));
  for (uint32_t c = 0; c < n; ++c)
    if (status[c] == static_cast<uint32_t>(CoreStatus::faulted)) {
      const std::string msg = hif.fault_message(c);
      reset_cores(n);  // engines of other cores may still wait
      throw RunError(msg);
    }
  std::vector<std::string> blocked;
  for (uint32_t c = 0; c < n; ++c)
    if (host.read32(hif.ACTIVE_ENGINES.address(c)))
      for (auto& b : hif.blocked_engines(c)) blocked.push_back(b);
  if (!blocked.empty()) {
    std::string msg = "deadlock: no engine can make progress:";
    for (const auto& b : blocked) msg += "\n  " + b;
    // Unwind the blocked engine threads before the next run reuses them.
    reset_cores(n);
    throw RunError(msg);
  }

  RunResult r;
  for (uint32_t c = 0; c < n; ++c) {
    if (status[c] != static_cast<uint32_t>(CoreStatus::done))
      throw RunError(fmt::format("core {} finished without end_of_program", c));
    r.total_cycles = std::max(r.total_cycles, host.read64(hif.CYCLES.address(c)));
  }
  r.simulated_seconds = (hif.period() * static_cast<double>(r.total_cycles)).to_seconds();
  for (const auto& t : exe.tensors) {
    if (t.kind != isa::TensorKind::output) continue;
    auto& out = r.outputs[t.name];
    out.resize(t.bytes());
    host.read_dram(t.core * slice + t.dram_offset, out.data(), out.size());
  }
  // Counter values from the COUNTER registers; names, units and
  // descriptions from the registry (the driver's copy of the counter map).
  const uint32_t count = host.read32(hif.COUNTER_COUNT.address());
  const auto& meta = counters_.all();
  if (count != meta.size()) throw RunError("the device's counter map does not match the driver's");
  r.counters.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    Counter c = meta[i];
    c.value = host.read64(hif.COUNTER.address(i));
    r.counters.push_back(std::move(c));
  }
  return r;
}

}  // namespace infsim::sim
