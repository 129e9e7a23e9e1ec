#include "firmware/command_processor.h"

namespace infsim::firmware {

CommandProcessor::CommandProcessor(sc_core::sc_module_name name, Device& device) : sc_module(name), device_(device) {
  SC_THREAD(thread);
}

void CommandProcessor::thread() {
  for (;;) {
    while (!device_.front_command()) sc_core::wait(device_.command_posted());
    const Command c = *device_.front_command();
    // reset_cores aborts at once, so that abandoned engines have unwound
    // (their threads run in the next delta cycle) before the cores are reset.
    if (c.opcode == static_cast<uint32_t>(Opcode::reset_cores) && check_range(c) == CommandStatus::ok)
      for (uint32_t i = 0; i < c.args[1]; ++i) device_.abort_core(c.args[0] + i);
    sc_core::wait(device_.period() * static_cast<double>(kCommandCycles));
    device_.complete_command(execute(c));
  }
}

CommandStatus CommandProcessor::check_range(const Command& c) const {
  const uint64_t first = c.args[0], count = c.args[1];
  return count == 0 || first + count > device_.num_cores() ? CommandStatus::bad_cores : CommandStatus::ok;
}

CommandStatus CommandProcessor::execute(const Command& c) {
  const uint32_t first = c.args[0], count = c.args[1];
  switch (static_cast<Opcode>(c.opcode)) {
    case Opcode::nop:
      return CommandStatus::ok;
    case Opcode::reset_counters:
      device_.reset_counters();
      return CommandStatus::ok;
    case Opcode::load: {
      if (auto s = check_range(c); s != CommandStatus::ok) return s;
      const isa::Executable* image = device_.host_image(c.args[2]);
      const uint32_t phase = c.args[3] & 0xFF, image_core = c.args[3] >> kLoadImageCoreShift;
      if (!image || uint64_t{image_core} + count > image->num_cores || phase >= isa::kNumPhases ||
          (c.args[3] & 0xFE00u))
        return CommandStatus::bad_image;
      for (uint32_t i = first; i < first + count; ++i)
        if (device_.core_status(i) == CoreStatus::running) return CommandStatus::busy;
      for (uint32_t i = 0; i < count; ++i)
        device_.load_core(first + i, *image, image_core + i, c.args[2], static_cast<isa::Phase>(phase),
                          (c.args[3] & kLoadKeepMemory) != 0);
      return CommandStatus::ok;
    }
    case Opcode::run: {
      if (auto s = check_range(c); s != CommandStatus::ok) return s;
      for (uint32_t i = first; i < first + count; ++i)
        if (device_.core_status(i) != CoreStatus::loaded) return CommandStatus::not_loaded;
      for (uint32_t i = first; i < first + count; ++i) device_.ring_doorbell(i);
      return CommandStatus::ok;
    }
    case Opcode::connect: {
      if (auto s = check_range(c); s != CommandStatus::ok || count != 1) return CommandStatus::bad_cores;
      device_.connect_core(first, c.args[2], c.args[3]);
      return CommandStatus::ok;
    }
    case Opcode::reset_cores: {
      if (auto s = check_range(c); s != CommandStatus::ok) return s;
      for (uint32_t i = first; i < first + count; ++i) device_.reset_core(i);
      return CommandStatus::ok;
    }
  }
  return CommandStatus::bad_opcode;
}

}  // namespace infsim::firmware
