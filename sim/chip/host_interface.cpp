#include "sim/chip/host_interface.h"

#include <fmt/format.h>

#include <cstring>
#include <stdexcept>

namespace infsim::sim {

using firmware::CommandStatus;
using firmware::CoreStatus;

const char* to_string(Access a) {
  switch (a) {
    case Access::ro:
      return "ro";
    case Access::wo:
      return "wo";
    case Access::rw:
      return "rw";
    case Access::w1c:
      return "w1c";
  }
  return "?";
}

Register::Register(HostInterface& owner, const char* name_, uint64_t offset_, unsigned width_, Access access_,
                   uint64_t reset, const char* description_, uint32_t count, uint64_t stride_)
    : name(name_),
      offset(offset_),
      width(width_),
      access(access_),
      reset_value(reset),
      description(description_),
      stride(stride_),
      count_(count),
      values_(count, reset) {
  owner.registers_.push_back(this);
}

// ------------------------------------------------------------ construction

HostInterface::HostInterface(sc_core::sc_module_name name, const ChipConfig& cfg, CounterRegistry& counters,
                             std::vector<NeuronCore*> cores, std::function<void()> on_device_start)
    : sc_module(name),
      socket("socket"),
      counters_(counters),
      cores_(std::move(cores)),
      on_device_start_(std::move(on_device_start)),
      period_(cores_.at(0)->period()),  // the core clock
      start_time_(cores_.size()),
      cycles_(cores_.size(), 0) {
  socket.register_b_transport(this, &HostInterface::b_transport);
  socket.register_transport_dbg(this, &HostInterface::transport_dbg);
  SC_METHOD(apply_writes);
  sensitive << write_due_;
  dont_initialize();

  const uint32_t n = num_cores();
  for (uint32_t i = 0; i < n; ++i) core_irq_.push_back(std::make_unique<sc_core::sc_event>());
  for (Register* r : {&DOORBELL, &STATUS, &COMPLETION_CODE, &ACTIVE_ENGINES, &CYCLES, &FAULT_ENGINE, &FAULT_PC})
    r->resize(n);
  COUNTER.resize(static_cast<uint32_t>(counters_.all().size()));
  for (NeuronCore* c : cores_) c->set_observer(this);

  // Registers whose value lives elsewhere, and the registers with effects.
  NUM_CORES.on_read = [this](uint32_t) { return num_cores(); };
  COUNTER_COUNT.on_read = [this](uint32_t) { return COUNTER.count(); };
  CMD_PENDING.on_read = [this](uint32_t) { return queue_.size(); };
  ACTIVE_ENGINES.on_read = [this](uint32_t c) { return cores_[c]->active_engines(); };
  CYCLES.on_read = [this](uint32_t c) -> uint64_t {
    if (STATUS.get(c) == static_cast<uint64_t>(CoreStatus::running))
      return static_cast<uint64_t>((sc_core::sc_time_stamp() - start_time_[c]) / period_);
    return cycles_[c];
  };
  COUNTER.on_read = [this](uint32_t i) { return counters_.all()[i].value; };
  IRQ_STATUS.on_write = [this](uint32_t, uint64_t v) { IRQ_STATUS.set(0, IRQ_STATUS.get() & ~v); };
  IRQ_ENABLE.on_write = [this](uint32_t, uint64_t v) {
    const bool was = IRQ_STATUS.get() & IRQ_ENABLE.get();
    IRQ_ENABLE.set(0, v);
    if (!was && (IRQ_STATUS.get() & v)) irq_event_.notify(sc_core::SC_ZERO_TIME);
  };
  CMD_DOORBELL.on_write = [this](uint32_t, uint64_t) {
    if (queue_.size() >= firmware::kCommandQueueDepth) {
      // Dropped; reported like a completed command that failed.
      CMD_STATUS.set(0, static_cast<uint64_t>(CommandStatus::queue_full));
      raise(kIrqCommandError);
      return;
    }
    firmware::Command c;
    c.opcode = static_cast<uint32_t>(CMD_OPCODE.get());
    for (uint32_t i = 0; i < 4; ++i) c.args[i] = static_cast<uint32_t>(CMD_ARG.get(i));
    queue_.push_back({sc_core::sc_time_stamp(), c});
    command_posted_.notify(sc_core::SC_ZERO_TIME);
  };
  DOORBELL.on_write = [this](uint32_t c, uint64_t) {
    if (core_status(c) != CoreStatus::loaded) {
      raise(kIrqDoorbellIgnored);
      return;
    }
    ring_doorbell(c);
  };
}

void HostInterface::end_of_elaboration() {
  // Counters registered by components built after this one.
  COUNTER.resize(static_cast<uint32_t>(counters_.all().size()));
}

void HostInterface::reset() {
  for (Register* r : registers_) r->reset();
  pending_writes_.clear();
  queue_.clear();
  std::fill(cycles_.begin(), cycles_.end(), 0);
}

// ------------------------------------------------------------ TLM target

HostInterface::Decoded HostInterface::decode(uint64_t address) const {
  for (Register* r : registers_) {
    if (address < r->offset) continue;
    const uint64_t rel = address - r->offset;
    if (r->count() <= 1) {
      if (rel == 0 && r->count() == 1) return {r, 0};
      continue;
    }
    if (rel % r->stride == 0 && rel / r->stride < r->count()) return {r, static_cast<uint32_t>(rel / r->stride)};
  }
  return {};
}

void HostInterface::b_transport(tlm::tlm_generic_payload& trans, sc_core::sc_time& delay) {
  // Every access, failed or not, takes kAccessCycles; a write arrives then.
  delay += period_ * static_cast<double>(kAccessCycles);
  const sc_core::sc_time arrival = sc_core::sc_time_stamp() + delay;
  const Decoded d = decode(trans.get_address());
  if (!d.reg || trans.get_data_length() != d.reg->width || trans.get_streaming_width() < trans.get_data_length()) {
    trans.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return;
  }
  if (trans.get_byte_enable_ptr()) {
    trans.set_response_status(tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE);
    return;
  }
  Register& r = *d.reg;
  if (trans.is_read()) {
    if (r.access == Access::wo) {
      trans.set_response_status(tlm::TLM_COMMAND_ERROR_RESPONSE);
      return;
    }
    const uint64_t v = r.on_read ? r.on_read(d.index) : r.get(d.index);
    std::memcpy(trans.get_data_ptr(), &v, r.width);  // little-endian host
  } else if (trans.is_write()) {
    if (r.access == Access::ro) {
      trans.set_response_status(tlm::TLM_COMMAND_ERROR_RESPONSE);
      return;
    }
    uint64_t v = 0;
    std::memcpy(&v, trans.get_data_ptr(), r.width);
    pending_writes_.emplace(arrival, PendingWrite{&r, d.index, v});
    write_due_.notify(pending_writes_.begin()->first - sc_core::sc_time_stamp());
  }
  trans.set_response_status(tlm::TLM_OK_RESPONSE);
}

unsigned int HostInterface::transport_dbg(tlm::tlm_generic_payload& trans) {
  const Decoded d = decode(trans.get_address());
  if (!d.reg || !trans.is_read() || trans.get_data_length() != d.reg->width || d.reg->access == Access::wo) return 0;
  const uint64_t v = d.reg->on_read ? d.reg->on_read(d.index) : d.reg->get(d.index);
  std::memcpy(trans.get_data_ptr(), &v, d.reg->width);
  trans.set_response_status(tlm::TLM_OK_RESPONSE);
  return d.reg->width;
}

void HostInterface::apply_writes() {
  const sc_core::sc_time now = sc_core::sc_time_stamp();
  while (!pending_writes_.empty() && pending_writes_.begin()->first <= now) {
    const PendingWrite w = pending_writes_.begin()->second;
    pending_writes_.erase(pending_writes_.begin());
    if (w.reg->on_write)
      w.reg->on_write(w.index, w.value);
    else
      w.reg->set(w.index, w.value);
  }
  if (!pending_writes_.empty()) write_due_.notify(pending_writes_.begin()->first - now);
}

void HostInterface::raise(uint32_t bits) {
  const uint64_t before = IRQ_STATUS.get() & IRQ_ENABLE.get();
  IRQ_STATUS.set(0, IRQ_STATUS.get() | bits);
  if (!before && (IRQ_STATUS.get() & IRQ_ENABLE.get())) irq_event_.notify(sc_core::SC_ZERO_TIME);
}

// ------------------------------------------------------------ host memory, device log

uint32_t HostInterface::map_image(const isa::Executable& exe) {
  const uint32_t h = next_handle_++;
  images_[h] = &exe;
  return h;
}

void HostInterface::unmap_image(uint32_t handle) {
  images_.erase(handle);
}

std::string HostInterface::fault_message(uint32_t core) const {
  return cores_.at(core)->faulted() ? cores_[core]->fault_message() : std::string();
}

std::vector<std::string> HostInterface::blocked_engines(uint32_t core) const {
  return cores_.at(core)->blocked_engines();
}

// ------------------------------------------------------------ firmware::Device

std::optional<firmware::Command> HostInterface::front_command() const {
  if (queue_.empty() || queue_.front().arrival > sc_core::sc_time_stamp()) return std::nullopt;
  return queue_.front().command;
}

void HostInterface::complete_command(CommandStatus status) {
  if (!queue_.empty()) queue_.pop_front();  // (empty after a reset() during the command)
  CMD_STATUS.set(0, static_cast<uint64_t>(status));
  CMD_COMPLETED.set(0, static_cast<uint32_t>(CMD_COMPLETED.get() + 1));
  raise(status == CommandStatus::ok ? kIrqCommandDone : kIrqCommandDone | kIrqCommandError);
}

const isa::Executable* HostInterface::host_image(uint32_t handle) const {
  auto it = images_.find(handle);
  return it == images_.end() ? nullptr : it->second;
}

CoreStatus HostInterface::core_status(uint32_t core) const {
  return static_cast<CoreStatus>(STATUS.get(core));
}

void HostInterface::set_status(uint32_t core, CoreStatus s) {
  STATUS.set(core, static_cast<uint64_t>(s));
}

void HostInterface::load_core(uint32_t core, const isa::Executable& image, uint32_t image_core, uint32_t handle,
                              isa::Phase phase, bool keep_memory) {
  reset_core(core, keep_memory);
  cores_[core]->load(image, image_core, handle, phase);
  set_status(core, CoreStatus::loaded);
}

void HostInterface::connect_core(uint32_t core, uint32_t next_chip, uint32_t next_core) {
  if (next_chip == firmware::kNotConnected) {
    cores_[core]->connect(std::nullopt);
    return;
  }
  const uint64_t slice = cores_[core]->cfg().dram_slice_bytes();
  cores_[core]->connect(isa::kFabricBase + next_chip * isa::kChipWindow + next_core * slice);
}

void HostInterface::ring_doorbell(uint32_t core) {
  bool any_running = false;
  for (uint32_t c = 0; c < num_cores(); ++c) any_running |= core_status(c) == CoreStatus::running;
  if (!any_running && on_device_start_) on_device_start_();
  start_time_[core] = sc_core::sc_time_stamp();
  set_status(core, CoreStatus::running);
  cores_[core]->start();
}

void HostInterface::abort_core(uint32_t core) {
  cores_[core]->abandon();
}

void HostInterface::reset_core(uint32_t core) {  // (a load resets the core but keeps its connection)
  reset_core(core, false);
  cores_[core]->connect(std::nullopt);
}

void HostInterface::reset_core(uint32_t core, bool keep_memory) {
  static const isa::Executable kNoProgram;  // no streams: every engine finished
  cores_[core]->reset(keep_memory);
  cores_[core]->load(kNoProgram, 0);
  set_status(core, CoreStatus::idle);
  COMPLETION_CODE.set(core, COMPLETION_CODE.reset_value);
  FAULT_ENGINE.set(core, FAULT_ENGINE.reset_value);
  FAULT_PC.set(core, FAULT_PC.reset_value);
  cycles_[core] = 0;
}

void HostInterface::reset_counters() {
  counters_.reset();
}

void HostInterface::end_of_program(uint32_t core, uint32_t code) {
  COMPLETION_CODE.set(core, code);
  cycles_[core] = static_cast<uint64_t>((sc_core::sc_time_stamp() - start_time_[core]) / period_ + 0.5);
  if (core_status(core) == CoreStatus::running) set_status(core, CoreStatus::done);
  raise(kIrqCoreDone);
  core_irq_[core]->notify(sc_core::SC_ZERO_TIME);
}

void HostInterface::fault(uint32_t core, isa::Engine engine, size_t pc) {
  set_status(core, CoreStatus::faulted);
  FAULT_ENGINE.set(core, static_cast<uint32_t>(engine));
  FAULT_PC.set(core, static_cast<uint32_t>(pc));
  raise(kIrqCoreFault);
  core_irq_[core]->notify(sc_core::SC_ZERO_TIME);
}

// ------------------------------------------------------------ host side

HostPort::HostPort(sc_core::sc_module_name name) : sc_module(name), registers("registers"), dram("dram") {}

tlm::tlm_response_status HostPort::access(tlm::tlm_command cmd, uint64_t address, void* data, unsigned len) {
  tlm::tlm_generic_payload t;
  t.set_command(cmd);
  t.set_address(address);
  t.set_data_ptr(static_cast<unsigned char*>(data));
  t.set_data_length(len);
  t.set_streaming_width(len);
  t.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  registers->b_transport(t, delay);
  // Until the access completes, including what is due at that time
  // (sc_start(t) leaves the processes triggered at its end time unrun).
  sc_core::sc_start(delay);
  while (sc_core::sc_pending_activity_at_current_time()) sc_core::sc_start(sc_core::SC_ZERO_TIME);
  return t.get_response_status();
}

namespace {
void check(tlm::tlm_response_status s, const char* what, uint64_t address) {
  if (s == tlm::TLM_OK_RESPONSE) return;
  tlm::tlm_generic_payload p;
  p.set_response_status(s);
  throw std::runtime_error(
      fmt::format("host interface: {} of register 0x{:x} failed: {}", what, address, p.get_response_string()));
}
}  // namespace

uint32_t HostPort::read32(uint64_t address) {
  uint32_t v = 0;
  check(access(tlm::TLM_READ_COMMAND, address, &v, 4), "read", address);
  return v;
}

uint64_t HostPort::read64(uint64_t address) {
  uint64_t v = 0;
  check(access(tlm::TLM_READ_COMMAND, address, &v, 8), "read", address);
  return v;
}

void HostPort::write32(uint64_t address, uint32_t value) {
  check(access(tlm::TLM_WRITE_COMMAND, address, &value, 4), "write", address);
}

void HostPort::post(const HostInterface& hif, firmware::Opcode op, std::initializer_list<uint32_t> args) {
  // Every argument register is written: one left from an earlier command would be read as this one's.
  uint32_t i = 0;
  for (uint32_t a : args) write32(hif.CMD_ARG.address(i++), a);
  for (; i < hif.CMD_ARG.count(); ++i) write32(hif.CMD_ARG.address(i), 0);
  write32(hif.CMD_OPCODE.address(), static_cast<uint32_t>(op));
  write32(hif.CMD_DOORBELL.address(), 1);
}

void HostPort::wait_idle() {
  if (sc_core::sc_pending_activity()) sc_core::sc_start();
}

void HostPort::write_dram(uint64_t address, const uint8_t* data, size_t n) {
  tlm::tlm_generic_payload t;
  t.set_command(tlm::TLM_WRITE_COMMAND);
  t.set_address(address);
  t.set_data_ptr(const_cast<uint8_t*>(data));
  t.set_data_length(static_cast<unsigned>(n));
  t.set_streaming_width(static_cast<unsigned>(n));
  if (n > 0xFFFFFFFFu || dram->transport_dbg(t) != n)
    throw std::runtime_error(fmt::format("host write of {} bytes at DRAM 0x{:x} failed", n, address));
}

void HostPort::read_dram(uint64_t address, uint8_t* data, size_t n) {
  tlm::tlm_generic_payload t;
  t.set_command(tlm::TLM_READ_COMMAND);
  t.set_address(address);
  t.set_data_ptr(data);
  t.set_data_length(static_cast<unsigned>(n));
  t.set_streaming_width(static_cast<unsigned>(n));
  if (n > 0xFFFFFFFFu || dram->transport_dbg(t) != n)
    throw std::runtime_error(fmt::format("host read of {} bytes at DRAM 0x{:x} failed", n, address));
}

}  // namespace infsim::sim
