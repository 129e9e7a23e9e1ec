// The host interface: the device registers the host reaches through a
// TLM-2.0 target socket (a PCIe BAR on real hardware), the command queue the
// device firmware (firmware/command_processor.h) serves, and the host's
// side of both (HostPort).
//
// Registers are member objects (name, offset, width, access, reset value,
// read/write callbacks) declared below in address order; that declaration
// is the register map's one definition (docs/architecture.md section 5.1
// copies it, and tests/cpp/test_host_interface.cpp checks the copy). The
// firmware's command and status codes are in firmware/command_processor.h.
//
// Access rules. Little-endian data; one access reads or writes one whole
// register: an address that is not a register's, or a length other than the
// register's width, gives TLM_ADDRESS_ERROR_RESPONSE; byte enables give
// TLM_BYTE_ENABLE_ERROR_RESPONSE; a write to a read-only register or a read
// of a write-only one gives TLM_COMMAND_ERROR_RESPONSE. Nothing changes on
// an error.
//
// Timing. Every access, failed or not, takes kAccessCycles core clock
// cycles, added to the b_transport delay. A read returns the register's
// value at the time of the call (loosely timed: HostPort calls with a zero
// incoming delay); a write takes effect when it arrives, at sc_time_stamp()
// + the incoming delay + kAccessCycles. transport_dbg reads any register in
// zero time without side effects; it does not write.
#pragma once

#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>
#include <systemc>
#include <tlm>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "firmware/command_processor.h"
#include "sim/config.h"
#include "sim/counters.h"
#include "sim/core/neuron_core.h"

namespace infsim::sim {

class HostInterface;

enum class Access { ro, wo, rw, w1c };  // w1c: reads the value, a write clears the bits written as 1
const char* to_string(Access a);

// One register, or an array of `count` registers `stride` bytes apart (one
// per core, one per counter).
class Register {
 public:
  Register(HostInterface& owner, const char* name, uint64_t offset, unsigned width, Access access, uint64_t reset,
           const char* description, uint32_t count = 1, uint64_t stride = 0);

  const char* const name;
  const uint64_t offset;  // of element 0
  const unsigned width;   // bytes: 4 or 8
  const Access access;
  const uint64_t reset_value;
  const char* const description;
  const uint64_t stride;
  uint32_t count() const { return count_; }
  uint64_t address(uint32_t i = 0) const { return offset + i * stride; }

  // Behaviour: by default a read returns the stored value and a write
  // stores it (w1c: clears the bits written as 1).
  std::function<uint64_t(uint32_t i)> on_read;
  std::function<void(uint32_t i, uint64_t v)> on_write;

  uint64_t get(uint32_t i = 0) const { return values_[i]; }
  void set(uint32_t i, uint64_t v) { values_[i] = v; }
  void reset() { values_.assign(count_, reset_value); }
  void resize(uint32_t count) {
    count_ = count;
    reset();
  }

 private:
  uint32_t count_;
  std::vector<uint64_t> values_;
};

// IRQ_STATUS bits.
enum IrqBit : uint32_t {
  kIrqCommandDone = 1u << 0,      // a command completed
  kIrqCommandError = 1u << 1,     // a command completed with CMD_STATUS != ok
  kIrqDoorbellIgnored = 1u << 2,  // a DOORBELL write to a core that was not loaded
  kIrqCoreDone = 1u << 3,         // a core executed end_of_program
  kIrqCoreFault = 1u << 4,        // a core faulted
};

class HostInterface : public sc_core::sc_module, public firmware::Device, private NeuronCore::Observer {
 public:
  SC_HAS_PROCESS(HostInterface);

  // Core clock cycles per register access (a posted PCIe write or a read
  // round trip is of this order; the value is an assumption).
  static constexpr uint64_t kAccessCycles = 64;
  static constexpr uint32_t kIdValue = 0x494E4653;  // "INFS"
  static constexpr uint32_t kVersion = 1;

  tlm_utils::simple_target_socket<HostInterface> socket;

  // `on_device_start` runs when a doorbell starts a core while no core is
  // running (the chip restarts the DRAM controller's timing there).
  HostInterface(sc_core::sc_module_name name, const ChipConfig& cfg, CounterRegistry& counters,
                std::vector<NeuronCore*> cores, std::function<void()> on_device_start = {});

  // ---- the register map, in address order (docs/architecture.md 5.1)
 private:
  std::vector<Register*> registers_;  // filled by the Register constructors below, in declaration order

 public:
  // clang-format off
  //                              name               offset  bytes access      reset       description                                         count stride
  Register ID             {*this, "ID",              0x000,   4, Access::ro,  kIdValue,   "identifies the device: 0x494E4653 (\"INFS\")"};
  Register VERSION        {*this, "VERSION",         0x004,   4, Access::ro,  kVersion,   "register map version"};
  Register NUM_CORES      {*this, "NUM_CORES",       0x008,   4, Access::ro,  0,          "NeuronCores on the device"};
  Register COUNTER_COUNT  {*this, "COUNTER_COUNT",   0x00C,   4, Access::ro,  0,          "performance counters in the COUNTER block"};
  Register IRQ_STATUS     {*this, "IRQ_STATUS",      0x010,   4, Access::w1c, 0,          "interrupt causes (IrqBit)"};
  Register IRQ_ENABLE     {*this, "IRQ_ENABLE",      0x014,   4, Access::rw,  0,          "causes that raise the interrupt"};
  Register CMD_OPCODE     {*this, "CMD_OPCODE",      0x020,   4, Access::rw,  0,          "opcode of the next command (firmware::Opcode)"};
  Register CMD_ARG        {*this, "CMD_ARG",         0x024,   4, Access::rw,  0,          "arguments of the next command, CMD_ARG0..3",       4,    4};
  Register CMD_DOORBELL   {*this, "CMD_DOORBELL",    0x034,   4, Access::wo,  0,          "a write posts CMD_OPCODE and CMD_ARG0..3"};
  Register CMD_PENDING    {*this, "CMD_PENDING",     0x038,   4, Access::ro,  0,          "commands posted and not completed"};
  Register CMD_COMPLETED  {*this, "CMD_COMPLETED",   0x03C,   4, Access::ro,  0,          "commands completed since power-on"};
  Register CMD_STATUS     {*this, "CMD_STATUS",      0x040,   4, Access::ro,  0,          "last completed command (firmware::CommandStatus)"};
  // Per core c (count: the cores), at 0x1000 + 0x40 * c.
  Register DOORBELL       {*this, "DOORBELL",        0x1000,  4, Access::wo,  0,          "a write starts the loaded program",               1,    0x40};
  Register STATUS         {*this, "STATUS",          0x1004,  4, Access::ro,  0,          "firmware::CoreStatus",                            1,    0x40};
  Register COMPLETION_CODE{*this, "COMPLETION_CODE", 0x1008,  4, Access::ro,  0,          "code of the end_of_program",                      1,    0x40};
  Register ACTIVE_ENGINES {*this, "ACTIVE_ENGINES",  0x100C,  4, Access::ro,  0,          "bit e: engine e is still in its stream",          1,    0x40};
  Register CYCLES         {*this, "CYCLES",          0x1010,  8, Access::ro,  0,          "cycles from the doorbell to end_of_program",      1,    0x40};
  Register FAULT_ENGINE   {*this, "FAULT_ENGINE",    0x1018,  4, Access::ro,  0xFFFFFFFF, "engine of the first fault (0xFFFFFFFF: none)",    1,    0x40};
  Register FAULT_PC       {*this, "FAULT_PC",        0x101C,  4, Access::ro,  0,          "instruction index of the first fault",            1,    0x40};
  // Counter i (count: the registry's counters), at 0x10000 + 8 * i.
  Register COUNTER        {*this, "COUNTER",         0x10000, 8, Access::ro,  0,          "performance counter i, in registry order",        1,    8};
  // clang-format on

  const std::vector<Register*>& registers() const { return registers_; }
  // Back to the reset values, the command queue emptied, with the device
  // idle (tests). The registry's counters are the components'; the
  // reset_counters command clears them.
  void reset();

  // ---- host memory the device reads (the executable stays there)
  uint32_t map_image(const isa::Executable& exe);  // returns the handle for LOAD's ARG2
  void unmap_image(uint32_t handle);

  // ---- the device log: what the firmware records for the driver beyond
  // the registers (texts). Valid while the core's state is (until reset).
  std::string fault_message(uint32_t core) const;
  std::vector<std::string> blocked_engines(uint32_t core) const;

  // Notified when IRQ_STATUS & IRQ_ENABLE becomes non-zero.
  const sc_core::sc_event& irq() const { return irq_event_; }
  // Core c's own interrupt vector (an MSI-X vector per core on PCIe):
  // notified when the core executes end_of_program or faults, so that the
  // runtime's per-group waits do not share IRQ_STATUS.
  const sc_core::sc_event& core_irq(uint32_t c) const { return *core_irq_[c]; }

  // ---- firmware::Device
  uint32_t num_cores() const override { return static_cast<uint32_t>(cores_.size()); }
  sc_core::sc_time period() const override { return period_; }
  const sc_core::sc_event& command_posted() const override { return command_posted_; }
  std::optional<firmware::Command> front_command() const override;
  void complete_command(firmware::CommandStatus status) override;
  const isa::Executable* host_image(uint32_t handle) const override;
  firmware::CoreStatus core_status(uint32_t core) const override;
  void load_core(uint32_t core, const isa::Executable& image, uint32_t image_core, uint32_t handle,
                 isa::Phase phase, bool keep_memory) override;
  void connect_core(uint32_t core, uint32_t next_chip, uint32_t next_core) override;
  void ring_doorbell(uint32_t core) override;
  void abort_core(uint32_t core) override;
  void reset_core(uint32_t core) override;
  void reset_counters() override;

 private:
  friend class Register;
  struct Decoded {
    Register* reg = nullptr;
    uint32_t index = 0;
  };
  Decoded decode(uint64_t address) const;
  void b_transport(tlm::tlm_generic_payload& trans, sc_core::sc_time& delay);
  unsigned int transport_dbg(tlm::tlm_generic_payload& trans);
  void apply_writes();
  void raise(uint32_t bits);
  void set_status(uint32_t core, firmware::CoreStatus s);
  void reset_core(uint32_t core, bool keep_memory);
  void end_of_elaboration() override;
  // NeuronCore::Observer
  void end_of_program(uint32_t core, uint32_t code) override;
  void fault(uint32_t core, isa::Engine engine, size_t pc) override;

  CounterRegistry& counters_;
  std::vector<NeuronCore*> cores_;
  std::function<void()> on_device_start_;
  sc_core::sc_time period_;
  std::vector<sc_core::sc_time> start_time_;
  std::vector<uint64_t> cycles_;  // at end_of_program

  struct PendingWrite {
    Register* reg;
    uint32_t index;
    uint64_t value;
  };
  std::multimap<sc_core::sc_time, PendingWrite> pending_writes_;  // by arrival; equal times in issue order
  sc_core::sc_event write_due_;

  struct QueuedCommand {
    sc_core::sc_time arrival;
    firmware::Command command;
  };
  std::deque<QueuedCommand> queue_;
  sc_core::sc_event command_posted_;
  sc_core::sc_event irq_event_;
  std::vector<std::unique_ptr<sc_core::sc_event>> core_irq_;
  std::map<uint32_t, const isa::Executable*> images_;
  uint32_t next_handle_ = 1;
};

// The host's side: blocking register accesses and bulk DRAM transfers, for a
// host program outside the simulation (the runtime; tests). Each register
// access runs the simulation (sc_start) for the access's delay, so it
// returns when the access has completed in simulated time. Bulk transfers
// use the DRAM's debug transport: no simulated time, no DRAM timing or
// counters (the host's DMA over PCIe is not modelled).
class HostPort : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<HostPort> registers;  // to HostInterface::socket
  tlm_utils::simple_initiator_socket<HostPort> dram;       // to the DRAM target socket

  explicit HostPort(sc_core::sc_module_name name);

  // One access of `len` bytes; returns the response status (no throw).
  tlm::tlm_response_status access(tlm::tlm_command cmd, uint64_t address, void* data, unsigned len);
  // These throw std::runtime_error on an error response.
  uint32_t read32(uint64_t address);
  uint64_t read64(uint64_t address);
  void write32(uint64_t address, uint32_t value);
  // Posts one command: CMD_ARG0..3 (those not given are 0), CMD_OPCODE, CMD_DOORBELL.
  void post(const HostInterface& hif, firmware::Opcode op, std::initializer_list<uint32_t> args);
  // Runs the simulation until no event remains (every engine finished or
  // blocked, every command done).
  void wait_idle();

  void write_dram(uint64_t address, const uint8_t* data, size_t n);
  void read_dram(uint64_t address, uint8_t* data, size_t n);
};

}  // namespace infsim::sim
