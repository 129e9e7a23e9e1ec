// Device firmware: the command processor.
//
// The host posts commands through the host interface's command registers
// (CMD_OPCODE, CMD_ARG0..3, then CMD_DOORBELL; see sim/chip/host_interface.h).
// The firmware is a SystemC thread on the device. It takes the posted
// commands in order, spends kCommandCycles on each, performs it, and reports
// its completion (CMD_STATUS, CMD_COMPLETED, IRQ_STATUS). It reaches the
// hardware only through the Device interface below, which the host interface
// implements. The values of the enums below are the register interface's
// (the host writes and reads them), so they never change meaning.
#pragma once

#include <systemc>

#include <array>
#include <cstdint>
#include <optional>

#include "isa/executable.h"

namespace infsim::firmware {

// CMD_OPCODE values. Cores are named by a range: ARG0 = first core,
// ARG1 = number of cores.
enum class Opcode : uint32_t {
  nop = 0,
  // ARG0 first core, ARG1 cores, ARG2 host image handle, ARG3 = phase (isa::Phase, bits 0-7) | keep (bit 8)
  // | first image core j (bits 16-31): image core j+i's program of that phase becomes core ARG0+i's;
  // keep: SBUF and PSUM keep their contents (a pipeline stage's resident weights)
  load = 1,
  run = 2,   // ARG0 first core, ARG1 cores: rings their doorbells, all in the same cycle
  reset_counters = 3,  // every performance counter to 0
  reset_cores = 4,     // ARG0 first core, ARG1 cores: running engines abandon their streams; cores to idle
  // ARG0 core (ARG1 = 1, a range of one), ARG2 chip, ARG3 core on that chip: the core's `next` DMA endpoints
  // (a pipeline stage's successor) reach that core's DRAM slice; ARG2 = kNotConnected disconnects it
  connect = 5,
};
constexpr uint32_t kLoadKeepMemory = 1u << 8;
constexpr unsigned kLoadImageCoreShift = 16;
constexpr uint32_t kNotConnected = 0xFFFFFFFFu;

// CMD_STATUS values: the outcome of the last completed command.
enum class CommandStatus : uint32_t {
  ok = 0,
  bad_opcode = 1,
  bad_cores = 2,   // empty range, or beyond the device's cores
  bad_image = 3,   // no host image with that handle, it is for fewer cores than the range, or a bad phase
  not_loaded = 4,  // run: a core of the range has no program loaded (nothing started)
  busy = 5,        // load: a core of the range is running
  queue_full = 6,  // CMD_DOORBELL while kCommandQueueDepth commands were pending (the command is dropped)
};

// STATUS register values of a core.
enum class CoreStatus : uint32_t {
  idle = 0,     // no program loaded (after reset)
  loaded = 1,   // a program is loaded; the doorbell starts it
  running = 2,  // started, no end_of_program yet
  done = 3,     // end_of_program executed (COMPLETION_CODE holds its code)
  faulted = 4,  // a device fault stopped the core
};

struct Command {
  uint32_t opcode = 0;
  std::array<uint32_t, 4> args{};
};

// Firmware time per command, in core clock cycles: from taking the command
// off the queue to performing it and reporting its completion.
constexpr uint64_t kCommandCycles = 128;
// Commands posted and not yet completed, at most.
constexpr uint32_t kCommandQueueDepth = 16;

// The device as the firmware sees it.
class Device {
 public:
  virtual ~Device() = default;
  virtual uint32_t num_cores() const = 0;
  virtual sc_core::sc_time period() const = 0;  // the core clock

  // The command queue: notified when a command arrives.
  virtual const sc_core::sc_event& command_posted() const = 0;
  // The oldest command that has arrived and is not completed, if any.
  virtual std::optional<Command> front_command() const = 0;
  // Completes the front command: removes it, reports `status`.
  virtual void complete_command(CommandStatus status) = 0;

  // Host memory the device may read: an executable image the host placed
  // there, by handle (nullptr: none).
  virtual const isa::Executable* host_image(uint32_t handle) const = 0;

  virtual CoreStatus core_status(uint32_t core) const = 0;
  // Clears the core's state and gives it image core `image_core`'s program
  // from the host image `handle`; -> loaded.
  // `keep_memory`: SBUF and PSUM keep their contents (a pipeline stage's resident weights).
  virtual void load_core(uint32_t core, const isa::Executable& image, uint32_t image_core, uint32_t handle,
                         isa::Phase phase, bool keep_memory) = 0;
  // The core's `next` endpoints go to core `next_core` of chip `next_chip` (kNotConnected: nowhere).
  virtual void connect_core(uint32_t core, uint32_t next_chip, uint32_t next_core) = 0;
  virtual void ring_doorbell(uint32_t core) = 0;                            // loaded -> running
  virtual void abort_core(uint32_t core) = 0;  // engines still in a stream give it up at once
  virtual void reset_core(uint32_t core) = 0;  // clears the core's state; -> idle
  virtual void reset_counters() = 0;
};

class CommandProcessor : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(CommandProcessor);
  CommandProcessor(sc_core::sc_module_name name, Device& device);

 private:
  void thread();
  CommandStatus check_range(const Command& c) const;
  CommandStatus execute(const Command& c);

  Device& device_;
};

}  // namespace infsim::firmware
