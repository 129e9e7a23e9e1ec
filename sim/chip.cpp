#include "sim/chip.h"

#include <fmt/format.h>

#include <cstdlib>

namespace infsim::sim {

Chip::Chip(sc_core::sc_module_name name, const ChipConfig& cfg) : sc_module(name), cfg_(cfg) {
  dram_ = std::make_unique<Dram>("dram", cfg_, counters_);
  for (uint32_t c = 0; c < cfg_.cores; ++c) {
    cores_.push_back(std::make_unique<NeuronCore>(fmt::format("core{}", c).c_str(), c, cfg_, counters_));
    for (auto* s : cores_.back()->dram_sockets()) s->bind(dram_->socket);
  }
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

RunResult Chip::run(const isa::Executable& exe, const std::map<std::string, std::vector<uint8_t>>& inputs) {
  isa::validate(exe, cfg_.limits());

  // Host side: reset the device, place weights and inputs in each core's slice.
  counters_.reset();
  dram_->reset();
  for (auto& c : cores_) c->reset();
  const uint64_t slice = cfg_.dram_slice_bytes();
  for (const auto& c : exe.constants) dram_->backdoor_write(c.core * slice + c.dram_offset, c.bytes.data(), c.bytes.size());
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
    dram_->backdoor_write(t.core * slice + t.dram_offset, it->second.data(), it->second.size());
  }

  const sc_core::sc_time t0 = sc_core::sc_time_stamp();
  for (uint32_t c = 0; c < exe.num_cores; ++c) {
    cores_[c]->load(exe);
    cores_[c]->start();
  }
  sc_core::sc_start();  // until no events remain: every engine finished or blocked

  for (uint32_t c = 0; c < exe.num_cores; ++c)
    if (cores_[c]->faulted()) throw RunError(cores_[c]->fault_message());
  std::vector<std::string> blocked;
  for (uint32_t c = 0; c < exe.num_cores; ++c)
    for (auto& b : cores_[c]->blocked_engines()) blocked.push_back(b);
  if (!blocked.empty()) {
    std::string msg = "deadlock: no engine can make progress:";
    for (const auto& b : blocked) msg += "\n  " + b;
    // Unwind the blocked engine threads before the next run reuses them.
    for (uint32_t c = 0; c < exe.num_cores; ++c) cores_[c]->abandon();
    sc_core::sc_start();
    throw RunError(msg);
  }

  RunResult r;
  sc_core::sc_time end = t0;
  for (uint32_t c = 0; c < exe.num_cores; ++c) {
    if (!cores_[c]->completion_code())
      throw RunError(fmt::format("core {} finished without end_of_program", c));
    end = std::max(end, cores_[c]->completion_time());
  }
  r.simulated_seconds = (end - t0).to_seconds();
  r.total_cycles = static_cast<uint64_t>((end - t0) / cores_[0]->period() + 0.5);
  for (const auto& t : exe.tensors) {
    if (t.kind != isa::TensorKind::output) continue;
    auto& out = r.outputs[t.name];
    out.resize(t.bytes());
    dram_->backdoor_read(t.core * slice + t.dram_offset, out.data(), out.size());
  }
  r.counters.assign(counters_.all().begin(), counters_.all().end());
  return r;
}

}  // namespace infsim::sim
