// Host interface tests: a stimulus drives the device registers through its
// own TLM-2.0 initiator socket, in a small design built here (a 2-core inf1
// chip: DRAM, NeuronCores, host interface, firmware). It does not use
// Chip::instance: SystemC elaborates one design per process.
//
// Times are checked in exact core clock cycles: an access takes
// HostInterface::kAccessCycles, a write takes effect when it arrives (that
// many cycles after it is issued), the firmware spends
// firmware::kCommandCycles on each command, and a nop occupies its engine for
// one cycle.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "firmware/command_processor.h"
#include "isa/executable.h"
#include "isa/isa_support.h"
#include "sim/config.h"
#include "sim/counters.h"
#include "sim/memory/dram.h"
#include "sim/chip/host_interface.h"
#include "sim/core/neuron_core.h"

using namespace infsim;
using firmware::CommandStatus;
using firmware::CoreStatus;
using firmware::Opcode;
using sim::HostInterface;

namespace {

constexpr uint64_t kAccess = HostInterface::kAccessCycles;
constexpr uint64_t kCommand = firmware::kCommandCycles;

struct Stimulus : sc_core::sc_module {
  tlm_utils::simple_initiator_socket<Stimulus> regs;  // to the host interface
  tlm_utils::simple_initiator_socket<Stimulus> mem;   // to the DRAM (debug transport only)
  explicit Stimulus(sc_core::sc_module_name n) : sc_module(n), regs("regs"), mem("mem") {}
};

struct Design {
  sim::ChipConfig cfg;
  sim::CounterRegistry counters;
  std::unique_ptr<sim::Dram> dram;
  std::vector<std::unique_ptr<sim::NeuronCore>> cores;
  std::unique_ptr<HostInterface> hif;
  std::unique_ptr<firmware::CommandProcessor> fw;
  std::unique_ptr<Stimulus> host;

  Design() : cfg(sim::ChipConfig::named("inf1")) {
    cfg.cores = 2;
    cfg.check();
    dram = std::make_unique<sim::Dram>("dram", cfg, counters);
    std::vector<sim::NeuronCore*> ptrs;
    for (uint32_t c = 0; c < cfg.cores; ++c) {
      cores.push_back(std::make_unique<sim::NeuronCore>(fmt::format("core{}", c).c_str(), c, cfg, counters));
      for (auto* s : cores.back()->dram_sockets()) s->bind(dram->socket);
      // No other chips here: fabric addresses reach the DRAM, which refuses them as out of range.
      for (auto* s : cores.back()->fabric_sockets()) s->bind(dram->socket);
      ptrs.push_back(cores.back().get());
    }
    hif = std::make_unique<HostInterface>("host_interface", cfg, counters, ptrs, [this] { dram->restart_timing(); });
    fw = std::make_unique<firmware::CommandProcessor>("firmware", *hif);
    host = std::make_unique<Stimulus>("host");
    host->regs.bind(hif->socket);
    host->mem.bind(dram->socket);
  }
};

Design& design() {
  static Design* d = [] {
    setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
    sc_core::sc_set_time_resolution(1, sc_core::SC_FS);
    auto* x = new Design;
    sc_core::sc_start(sc_core::SC_ZERO_TIME);
    return x;
  }();
  return *d;
}

HostInterface& hif() {
  return *design().hif;
}

sc_core::sc_time period() {
  return hif().period();
}
uint64_t now_cycles() {
  return static_cast<uint64_t>(sc_core::sc_time_stamp() / period());
}
// Runs the simulation for `t`, including everything due at its end time
// (sc_start(t) leaves the processes triggered at the end time unrun).
void run_for(const sc_core::sc_time& t) {
  sc_core::sc_start(t);
  while (sc_core::sc_pending_activity_at_current_time()) sc_core::sc_start(sc_core::SC_ZERO_TIME);
}
void run_cycles(uint64_t n) {
  run_for(period() * static_cast<double>(n));
}
// Until no event remains.
void run_idle() {
  if (sc_core::sc_pending_activity()) sc_core::sc_start();
}

// The device back to its power-on state (tests may run in one process).
void reset_device() {
  auto& d = design();
  run_idle();  // nothing left over
  for (uint32_t c = 0; c < d.cfg.cores; ++c) {
    d.cores[c]->abandon();
    run_idle();
    hif().reset_core(c);
  }
  hif().reset();
  d.counters.reset();
}

// One b_transport issued now; `delay` returns the access's delay.
tlm::tlm_response_status transport(tlm::tlm_command cmd, uint64_t addr, void* data, unsigned len,
                                   sc_core::sc_time& delay, unsigned char* byte_enable = nullptr) {
  tlm::tlm_generic_payload t;
  t.set_command(cmd);
  t.set_address(addr);
  t.set_data_ptr(static_cast<unsigned char*>(data));
  t.set_data_length(len);
  t.set_streaming_width(len);
  if (byte_enable) {
    t.set_byte_enable_ptr(byte_enable);
    t.set_byte_enable_length(len);
  }
  t.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  design().host->regs->b_transport(t, delay);
  return t.get_response_status();
}

// Blocking accesses: issue now, run the simulation for the access's delay.
tlm::tlm_response_status access(tlm::tlm_command cmd, uint64_t addr, void* data, unsigned len) {
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  const auto s = transport(cmd, addr, data, len, delay);
  run_for(delay);
  return s;
}
uint64_t rd(uint64_t addr, unsigned len = 4) {
  uint64_t v = 0;
  EXPECT_EQ(access(tlm::TLM_READ_COMMAND, addr, &v, len), tlm::TLM_OK_RESPONSE) << std::hex << addr;
  return v;
}
void wr(uint64_t addr, uint64_t v, unsigned len = 4) {
  EXPECT_EQ(access(tlm::TLM_WRITE_COMMAND, addr, &v, len), tlm::TLM_OK_RESPONSE) << std::hex << addr;
}
// Zero-time, side-effect-free read (debug transport).
uint64_t peek(const sim::Register& r, uint32_t i = 0) {
  uint64_t v = 0;
  tlm::tlm_generic_payload t;
  t.set_command(tlm::TLM_READ_COMMAND);
  t.set_address(r.address(i));
  t.set_data_ptr(reinterpret_cast<unsigned char*>(&v));
  t.set_data_length(r.width);
  EXPECT_EQ(design().host->regs->transport_dbg(t), r.width) << r.name;
  return v;
}
uint32_t status(uint32_t core) {
  return static_cast<uint32_t>(peek(hif().STATUS, core));
}
constexpr uint32_t S(CoreStatus s) {
  return static_cast<uint32_t>(s);
}

// Posts a command: the arguments, CMD_OPCODE, CMD_DOORBELL (2 + args
// accesses). Returns when the doorbell write has arrived.
void post(Opcode op, std::vector<uint32_t> args = {}) {
  for (uint32_t i = 0; i < args.size(); ++i) wr(hif().CMD_ARG.address(i), args[i]);
  wr(hif().CMD_OPCODE.address(), static_cast<uint32_t>(op));
  wr(hif().CMD_DOORBELL.address(), 1);
}

// ----------------------------------------------------------------- programs

struct Program {
  isa::Executable exe;
  explicit Program(uint32_t cores = 1) {
    exe.num_cores = cores;
    exe.source_ops = {"test-op"};
  }
  void emit(uint32_t core, isa::Engine e, const std::string& line) {
    isa::Stream* s = nullptr;
    for (auto& x : exe.streams)
      if (x.core == core && x.engine == e) s = &x;
    if (!s) {
      exe.streams.emplace_back();
      s = &exe.streams.back();
      s->core = core;
      s->engine = e;
    }
    s->instructions.push_back(isa::assemble(line));
    s->source_op.push_back(0);
  }
};

// `nops` nops on the vector engine, then end_of_program: it issues `nops`
// cycles after the start.
Program nop_program(uint32_t cores, int nops, uint32_t code) {
  Program p(cores);
  for (uint32_t c = 0; c < cores; ++c) {
    for (int i = 0; i < nops + int(c); ++i) p.emit(c, isa::Engine::vector, "nop");
    p.emit(c, isa::Engine::vector, fmt::format("end_of_program code={}", code + c));
  }
  return p;
}

// Loads `p` on cores [0, cores) through the LOAD command and waits for it.
void load(const Program& p, uint32_t cores) {
  const uint32_t h = hif().map_image(p.exe);
  post(Opcode::load, {0, cores, h});
  run_cycles(kCommand);
  ASSERT_EQ(peek(hif().CMD_STATUS), uint64_t(CommandStatus::ok));
  for (uint32_t c = 0; c < cores; ++c) ASSERT_EQ(status(c), S(CoreStatus::loaded));
}

// ----------------------------------------------------------------- tests

TEST(HostInterface, ResetValues) {
  reset_device();
  for (const sim::Register* r : hif().registers()) {
    if (r->access == sim::Access::wo) continue;
    for (uint32_t i = 0; i < r->count(); ++i) {
      uint64_t want = r->reset_value;
      if (r == &hif().NUM_CORES) want = 2;
      if (r == &hif().COUNTER_COUNT) want = design().counters.all().size();
      EXPECT_EQ(rd(r->address(i), r->width), want) << r->name << "[" << i << "]";
    }
  }
  EXPECT_EQ(rd(hif().ID.address()), 0x494E4653u);
  EXPECT_EQ(rd(hif().STATUS.address(1)), S(CoreStatus::idle));
  EXPECT_EQ(rd(hif().FAULT_ENGINE.address(0)), 0xFFFFFFFFu);
  EXPECT_GT(hif().COUNTER.count(), 0u);
  EXPECT_EQ(hif().COUNTER.count(), design().counters.all().size());
}

TEST(HostInterface, RegisterMapHasNoOverlapsAndFitsTheCores) {
  std::vector<std::pair<uint64_t, uint64_t>> spans;  // [begin, end) of every element
  for (const sim::Register* r : hif().registers()) {
    EXPECT_TRUE(r->width == 4 || r->width == 8) << r->name;
    EXPECT_EQ(r->offset % r->width, 0u) << r->name;
    for (uint32_t i = 0; i < r->count(); ++i) spans.emplace_back(r->address(i), r->address(i) + r->width);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    EXPECT_LE(spans[i - 1].second, spans[i].first) << std::hex << spans[i].first;
  // 64 cores (the configuration's limit) of 0x40 bytes fit below the counter block.
  EXPECT_LE(hif().DOORBELL.offset + 64 * hif().DOORBELL.stride, hif().COUNTER.offset);
}

TEST(HostInterface, AccessesTakeTheDocumentedCycles) {
  reset_device();
  // A read's delay is kAccessCycles; it returns the value at issue.
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  uint32_t v = 0;
  EXPECT_EQ(transport(tlm::TLM_READ_COMMAND, hif().VERSION.address(), &v, 4, delay), tlm::TLM_OK_RESPONSE);
  EXPECT_EQ(delay, period() * double(kAccess));
  EXPECT_EQ(v, 1u);
  // A write takes effect when it arrives, kAccessCycles after issue.
  const uint64_t t0 = now_cycles();
  delay = sc_core::SC_ZERO_TIME;
  uint32_t mask = 0x1F;
  EXPECT_EQ(transport(tlm::TLM_WRITE_COMMAND, hif().IRQ_ENABLE.address(), &mask, 4, delay), tlm::TLM_OK_RESPONSE);
  EXPECT_EQ(delay, period() * double(kAccess));
  EXPECT_EQ(peek(hif().IRQ_ENABLE), 0u);
  run_cycles(kAccess - 1);
  EXPECT_EQ(peek(hif().IRQ_ENABLE), 0u);
  run_cycles(1);
  EXPECT_EQ(now_cycles(), t0 + kAccess);
  EXPECT_EQ(peek(hif().IRQ_ENABLE), 0x1Fu);
  // A blocking access returns kAccessCycles later.
  const uint64_t t1 = now_cycles();
  rd(hif().ID.address());
  EXPECT_EQ(now_cycles(), t1 + kAccess);
  // A host ahead of the simulation (temporal decoupling): the write arrives
  // at issue + its incoming delay + kAccessCycles.
  delay = period() * 10.0;
  mask = 0x3;
  transport(tlm::TLM_WRITE_COMMAND, hif().IRQ_ENABLE.address(), &mask, 4, delay);
  EXPECT_EQ(delay, period() * double(10 + kAccess));
  run_cycles(10 + kAccess - 1);
  EXPECT_EQ(peek(hif().IRQ_ENABLE), 0x1Fu);
  run_cycles(1);
  EXPECT_EQ(peek(hif().IRQ_ENABLE), 0x3u);
}

TEST(HostInterface, BadOffsetsSizesAndCommandsAreRejected) {
  reset_device();
  auto status_of = [](tlm::tlm_command cmd, uint64_t addr, unsigned len, unsigned char* be = nullptr) {
    uint64_t buf[2] = {0, 0};
    sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
    const auto s = transport(cmd, addr, buf, len, delay, be);
    EXPECT_EQ(delay, period() * double(kAccess)) << "a failed access takes the time of one";
    return s;
  };
  const auto R = tlm::TLM_READ_COMMAND, W = tlm::TLM_WRITE_COMMAND;
  const auto kAddr = tlm::TLM_ADDRESS_ERROR_RESPONSE;
  // Offsets that are no register's.
  for (uint64_t a :
       {uint64_t{0x018}, uint64_t{0x044}, uint64_t{0x0FFC}, uint64_t{0x1001}, uint64_t{0x1020}, hif().STATUS.address(2),
        hif().COUNTER.address(0) + 4, hif().COUNTER.address(hif().COUNTER.count()), uint64_t{0x10000000}}) {
    EXPECT_EQ(status_of(R, a, 4), kAddr) << std::hex << a;
    EXPECT_EQ(status_of(R, a, 8), kAddr) << std::hex << a;
  }
  // Wrong sizes.
  EXPECT_EQ(status_of(R, hif().STATUS.address(0), 8), kAddr);
  EXPECT_EQ(status_of(R, hif().STATUS.address(0), 2), kAddr);
  EXPECT_EQ(status_of(R, hif().STATUS.address(0), 1), kAddr);
  EXPECT_EQ(status_of(R, hif().CYCLES.address(0), 4), kAddr);
  EXPECT_EQ(status_of(R, hif().COUNTER.address(0), 4), kAddr);
  EXPECT_EQ(status_of(W, hif().IRQ_ENABLE.address(), 8), kAddr);
  // Byte enables are not supported.
  unsigned char be[4] = {0xFF, 0xFF, 0, 0};
  EXPECT_EQ(status_of(W, hif().IRQ_ENABLE.address(), 4, be), tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE);
  // Writes to read-only registers, reads of write-only ones.
  EXPECT_EQ(status_of(W, hif().STATUS.address(0), 4), tlm::TLM_COMMAND_ERROR_RESPONSE);
  EXPECT_EQ(status_of(W, hif().COUNTER.address(0), 8), tlm::TLM_COMMAND_ERROR_RESPONSE);
  EXPECT_EQ(status_of(R, hif().DOORBELL.address(0), 4), tlm::TLM_COMMAND_ERROR_RESPONSE);
  EXPECT_EQ(status_of(R, hif().CMD_DOORBELL.address(), 4), tlm::TLM_COMMAND_ERROR_RESPONSE);
  run_idle();
  // Nothing changed.
  EXPECT_EQ(peek(hif().IRQ_ENABLE), 0u);
  EXPECT_EQ(status(0), S(CoreStatus::idle));
  EXPECT_EQ(peek(hif().IRQ_STATUS), 0u);
}

TEST(HostInterface, LoadThenDoorbellRunsToDoneWithTheCompletionCode) {
  reset_device();
  const Program p = nop_program(1, 100, 42);
  const uint32_t h = hif().map_image(p.exe);
  // LOAD: 3 arguments, opcode, doorbell; the doorbell arrives at t0 + 5 accesses.
  const uint64_t t0 = now_cycles();
  post(Opcode::load, {0, 1, h});
  EXPECT_EQ(now_cycles(), t0 + 5 * kAccess);
  EXPECT_EQ(peek(hif().CMD_PENDING), 1u);
  run_cycles(kCommand - 1);
  EXPECT_EQ(status(0), S(CoreStatus::idle));
  run_cycles(1);  // the firmware completes the command kCommandCycles after it arrived
  EXPECT_EQ(status(0), S(CoreStatus::loaded));
  EXPECT_EQ(peek(hif().CMD_STATUS), uint64_t(CommandStatus::ok));
  EXPECT_EQ(peek(hif().CMD_COMPLETED), 1u);
  EXPECT_EQ(peek(hif().CMD_PENDING), 0u);
  EXPECT_EQ(peek(hif().IRQ_STATUS), uint64_t{sim::kIrqCommandDone});
  EXPECT_EQ(peek(hif().ACTIVE_ENGINES, 0), 1u << unsigned(isa::Engine::vector));
  wr(hif().IRQ_STATUS.address(), sim::kIrqCommandDone);  // write 1 to clear
  EXPECT_EQ(peek(hif().IRQ_STATUS), 0u);

  // DOORBELL: the core runs from the write's arrival.
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  uint32_t one = 1;
  const uint64_t t1 = now_cycles();
  ASSERT_EQ(transport(tlm::TLM_WRITE_COMMAND, hif().DOORBELL.address(0), &one, 4, delay), tlm::TLM_OK_RESPONSE);
  run_cycles(kAccess - 1);
  EXPECT_EQ(status(0), S(CoreStatus::loaded));
  run_cycles(1);
  EXPECT_EQ(status(0), S(CoreStatus::running));
  const uint64_t start = now_cycles();
  EXPECT_EQ(start, t1 + kAccess);
  run_cycles(40);
  EXPECT_EQ(peek(hif().CYCLES, 0), 40u);  // counts while running
  run_cycles(59);
  EXPECT_EQ(status(0), S(CoreStatus::running));
  EXPECT_EQ(peek(hif().IRQ_STATUS), 0u);
  run_cycles(1);  // 100 nops, then end_of_program issues at cycle 100
  EXPECT_EQ(status(0), S(CoreStatus::done));
  EXPECT_EQ(peek(hif().COMPLETION_CODE, 0), 42u);
  EXPECT_EQ(peek(hif().CYCLES, 0), 100u);
  EXPECT_EQ(peek(hif().IRQ_STATUS), uint64_t{sim::kIrqCoreDone});
  run_idle();
  EXPECT_EQ(peek(hif().ACTIVE_ENGINES, 0), 0u);
  EXPECT_EQ(rd(hif().CYCLES.address(0), 8), 100u);
  EXPECT_EQ(rd(hif().COMPLETION_CODE.address(0)), 42u);
  // A second doorbell: the core is done, not loaded; ignored.
  wr(hif().DOORBELL.address(0), 1);
  EXPECT_EQ(status(0), S(CoreStatus::done));
  EXPECT_NE(peek(hif().IRQ_STATUS) & sim::kIrqDoorbellIgnored, 0u);
  hif().unmap_image(h);
}

TEST(HostInterface, RunCommandStartsCoresInTheSameCycle) {
  reset_device();
  const Program p = nop_program(2, 50, 7);  // core 1 runs one nop more
  load(p, 2);
  wr(hif().IRQ_ENABLE.address(), sim::kIrqCoreDone);
  const uint64_t t0 = now_cycles();
  post(Opcode::run, {0, 2});  // 2 arguments, opcode, doorbell
  EXPECT_EQ(now_cycles(), t0 + 4 * kAccess);
  run_cycles(kCommand - 1);
  EXPECT_EQ(status(0), S(CoreStatus::loaded));
  EXPECT_EQ(status(1), S(CoreStatus::loaded));
  run_cycles(1);
  EXPECT_EQ(status(0), S(CoreStatus::running));
  EXPECT_EQ(status(1), S(CoreStatus::running));
  run_cycles(50);
  EXPECT_EQ(status(0), S(CoreStatus::done));
  EXPECT_EQ(status(1), S(CoreStatus::running));
  run_cycles(1);
  EXPECT_EQ(status(1), S(CoreStatus::done));
  run_idle();
  EXPECT_EQ(rd(hif().CYCLES.address(0), 8), 50u);
  EXPECT_EQ(rd(hif().CYCLES.address(1), 8), 51u);
  EXPECT_EQ(rd(hif().COMPLETION_CODE.address(0)), 7u);
  EXPECT_EQ(rd(hif().COMPLETION_CODE.address(1)), 8u);
  EXPECT_EQ(rd(hif().CMD_COMPLETED.address()), 2u);
}

TEST(HostInterface, CountersAreReadableAsRegisters) {
  reset_device();
  const Program p = nop_program(2, 30, 0);
  load(p, 2);
  post(Opcode::run, {0, 2});
  run_idle();
  const auto& reg = design().counters.all();
  ASSERT_EQ(rd(hif().COUNTER_COUNT.address()), reg.size());
  uint64_t nonzero = 0;
  for (uint32_t i = 0; i < reg.size(); ++i) {
    const uint64_t v = rd(hif().COUNTER.address(i), 8);
    EXPECT_EQ(v, reg[i].value) << reg[i].path << "." << reg[i].name;
    nonzero += v != 0;
    if (reg[i].path == "core1.vector" && reg[i].name == "instructions") {
      EXPECT_EQ(v, 32u);
    }
  }
  EXPECT_GT(nonzero, 0u);
  // RESET_COUNTERS clears them all.
  post(Opcode::reset_counters);
  run_idle();
  for (uint32_t i = 0; i < reg.size(); ++i) EXPECT_EQ(rd(hif().COUNTER.address(i), 8), 0u) << reg[i].name;
}

TEST(HostInterface, FaultSetsStatusEngineAndInterrupt) {
  reset_device();
  Program p;
  p.emit(0, isa::Engine::tensor, "nop");
  p.emit(0, isa::Engine::tensor, "multiply_moving src=sbuf[0:8]@0:bf16[16:1] dst=psum[0:8]@0:fp32[16:1] accumulate=0");
  p.emit(0, isa::Engine::vector, "end_of_program code=0");
  load(p, 1);
  wr(hif().IRQ_STATUS.address(), ~0u);
  post(Opcode::run, {0, 1});
  run_idle();
  EXPECT_EQ(rd(hif().STATUS.address(0)), S(CoreStatus::faulted));
  EXPECT_EQ(rd(hif().FAULT_ENGINE.address(0)), uint32_t(isa::Engine::tensor));
  EXPECT_EQ(rd(hif().FAULT_PC.address(0)), 1u);
  EXPECT_NE(rd(hif().IRQ_STATUS.address()) & sim::kIrqCoreFault, 0u);
  const std::string msg = hif().fault_message(0);
  EXPECT_NE(msg.find("device fault on core 0 tensor engine, instruction 1"), std::string::npos) << msg;
  // Loading again clears the fault.
  load(p, 1);
  EXPECT_EQ(peek(hif().FAULT_ENGINE, 0), 0xFFFFFFFFu);
}

TEST(HostInterface, ResetCoresUnwindsABlockedCore) {
  reset_device();
  Program p;
  p.emit(0, isa::Engine::vector, "nop");
  p.emit(0, isa::Engine::vector, "end_of_program code=0 wait0=s5>=1");
  load(p, 1);
  post(Opcode::run, {0, 1});
  run_idle();  // runs out of events: the vector engine waits forever
  EXPECT_EQ(rd(hif().STATUS.address(0)), S(CoreStatus::running));
  EXPECT_EQ(rd(hif().ACTIVE_ENGINES.address(0)), 1u << unsigned(isa::Engine::vector));
  const auto blocked = hif().blocked_engines(0);
  ASSERT_EQ(blocked.size(), 1u);
  EXPECT_NE(blocked[0].find("s5 >= 1"), std::string::npos) << blocked[0];
  // LOAD refuses a running core.
  const uint32_t h = hif().map_image(p.exe);
  post(Opcode::load, {0, 1, h});
  run_idle();
  EXPECT_EQ(rd(hif().CMD_STATUS.address()), uint32_t(CommandStatus::busy));
  post(Opcode::reset_cores, {0, 1});
  run_idle();
  EXPECT_EQ(rd(hif().CMD_STATUS.address()), uint32_t(CommandStatus::ok));
  EXPECT_EQ(rd(hif().STATUS.address(0)), S(CoreStatus::idle));
  EXPECT_EQ(rd(hif().ACTIVE_ENGINES.address(0)), 0u);
  // And the core runs again.
  const Program q = nop_program(1, 10, 5);
  load(q, 1);
  post(Opcode::run, {0, 1});
  run_idle();
  EXPECT_EQ(rd(hif().STATUS.address(0)), S(CoreStatus::done));
  EXPECT_EQ(rd(hif().CYCLES.address(0), 8), 10u);
  hif().unmap_image(h);
}

TEST(HostInterface, ResetCoresDuringALongInstructionLeavesItsStreamAlone) {
  // A reset lands while the vector engine waits out an 8192-cycle copy; the
  // executable is then freed. The engine must not go back to that stream
  // when it wakes, and the core must run the next program.
  reset_device();
  {
    auto p = std::make_unique<Program>();
    p->emit(0, isa::Engine::vector, "tensor_copy src=sbuf[0:128]@0:fp32[8192:1] dst=sbuf[0:128]@32768:fp32[8192:1]");
    p->emit(0, isa::Engine::vector, "end_of_program code=0");
    load(*p, 1);
    post(Opcode::run, {0, 1});
    run_cycles(300);  // inside the copy
    EXPECT_EQ(rd(hif().STATUS.address(0)), S(CoreStatus::running));
    post(Opcode::reset_cores, {0, 1});
    run_cycles(kCommand + 200);
    EXPECT_EQ(rd(hif().STATUS.address(0)), S(CoreStatus::idle));
  }  // the executable is gone
  const Program q = nop_program(1, 10, 5);
  load(q, 1);
  post(Opcode::run, {0, 1});
  run_idle();
  EXPECT_EQ(rd(hif().STATUS.address(0)), S(CoreStatus::done));
  EXPECT_EQ(rd(hif().COMPLETION_CODE.address(0)), 5u);
  EXPECT_EQ(rd(hif().CYCLES.address(0), 8), 10u);
}

TEST(HostInterface, CommandErrorsAreReported) {
  reset_device();
  auto expect = [](Opcode op, std::vector<uint32_t> args, CommandStatus want) {
    wr(hif().IRQ_STATUS.address(), ~0u);
    post(op, args);
    run_idle();
    EXPECT_EQ(rd(hif().CMD_STATUS.address()), uint32_t(want)) << uint32_t(op);
    const uint32_t irq = static_cast<uint32_t>(rd(hif().IRQ_STATUS.address()));
    EXPECT_NE(irq & sim::kIrqCommandDone, 0u);
    EXPECT_EQ((irq & sim::kIrqCommandError) != 0, want != CommandStatus::ok);
  };
  expect(static_cast<Opcode>(99), {}, CommandStatus::bad_opcode);
  expect(Opcode::nop, {}, CommandStatus::ok);
  expect(Opcode::run, {0, 1}, CommandStatus::not_loaded);
  expect(Opcode::run, {1, 2}, CommandStatus::bad_cores);
  expect(Opcode::run, {0, 0}, CommandStatus::bad_cores);
  expect(Opcode::load, {0, 1, 12345}, CommandStatus::bad_image);
  const Program p = nop_program(1, 1, 0);  // one core's image
  const uint32_t h = hif().map_image(p.exe);
  expect(Opcode::load, {0, 2, h}, CommandStatus::bad_image);
  expect(Opcode::load, {0, 1, h}, CommandStatus::ok);
  hif().unmap_image(h);
}

TEST(HostInterface, CommandQueueOverflowDropsCommands) {
  reset_device();
  // A host ahead of the simulation posts 40 nops, one CMD_DOORBELL write per
  // access (64 cycles apart); the firmware takes 128 cycles per command.
  wr(hif().CMD_OPCODE.address(), uint32_t(Opcode::nop));
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  uint32_t one = 1;
  for (int i = 0; i < 40; ++i) transport(tlm::TLM_WRITE_COMMAND, hif().CMD_DOORBELL.address(), &one, 4, delay);
  run_idle();
  const uint64_t done = rd(hif().CMD_COMPLETED.address());
  EXPECT_LT(done, 40u);
  EXPECT_GE(done, firmware::kCommandQueueDepth);
  EXPECT_NE(rd(hif().IRQ_STATUS.address()) & sim::kIrqCommandError, 0u);
}

TEST(HostInterface, InterruptEventFollowsEnabledCauses) {
  reset_device();
  static int fired;  // the spawned method outlives this test; spawned once per process
  static const bool spawned = [] {
    sc_core::sc_spawn_options o;
    o.spawn_method();
    o.set_sensitivity(&hif().irq());
    o.dont_initialize();
    sc_core::sc_spawn([] { ++fired; }, "irq_watch", &o);
    return true;
  }();
  (void)spawned;
  fired = 0;
  post(Opcode::nop);  // not enabled: no interrupt
  run_idle();
  EXPECT_EQ(fired, 0);
  wr(hif().IRQ_ENABLE.address(), sim::kIrqCommandDone);  // a pending enabled cause raises it
  run_idle();
  EXPECT_EQ(fired, 1);
  wr(hif().IRQ_STATUS.address(), ~0u);
  post(Opcode::nop);
  run_idle();
  EXPECT_EQ(fired, 2);
}

TEST(HostInterface, DramDebugTransportMovesBytesWithoutTimeOrCounters) {
  reset_device();
  auto& d = design();
  std::vector<uint8_t> in(3000), out(3000);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>(i * 7);
  auto dbg = [&](tlm::tlm_command cmd, uint64_t addr, uint8_t* p, size_t n) {
    tlm::tlm_generic_payload t;
    t.set_command(cmd);
    t.set_address(addr);
    t.set_data_ptr(p);
    t.set_data_length(static_cast<unsigned>(n));
    t.set_streaming_width(static_cast<unsigned>(n));
    return d.host->mem->transport_dbg(t);
  };
  const auto t0 = sc_core::sc_time_stamp();
  EXPECT_EQ(dbg(tlm::TLM_WRITE_COMMAND, (1u << 20) - 100, in.data(), in.size()), in.size());  // across a page
  EXPECT_EQ(dbg(tlm::TLM_READ_COMMAND, (1u << 20) - 100, out.data(), out.size()), out.size());
  EXPECT_EQ(in, out);
  EXPECT_EQ(dbg(tlm::TLM_READ_COMMAND, d.cfg.dram_bytes - 10, out.data(), 20), 0u);
  EXPECT_EQ(sc_core::sc_time_stamp(), t0);
  for (const auto& c : d.counters.all()) EXPECT_EQ(c.value, 0u) << c.path << "." << c.name;
}

// docs/architecture.md's register table is a copy of the map: same names,
// offsets, strides, widths and access, in the same order.
TEST(HostInterface, RegisterMapMatchesTheArchitectureDocument) {
  std::ifstream f(std::string(INFSIM_SOURCE_DIR) + "/docs/architecture.md");
  ASSERT_TRUE(f) << "docs/architecture.md";
  // | `0x1000 + 0x40·c` | `STATUS[c]` | 4 | ro | ...
  const std::regex row(
      R"(^\| `(0x[0-9A-Fa-f]+)(?: \+ (0x[0-9A-Fa-f]+|\d+)·\w)?` \| `(\w+)(?:\[\w\])?` \| (\d) \| (\w+) \|)");
  std::vector<std::string> doc, code;
  for (std::string line; std::getline(f, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, row)) continue;
    const uint64_t stride = m[2].matched ? std::stoull(m[2].str(), nullptr, 0) : 0;
    doc.push_back(fmt::format("{} 0x{:x} stride {} width {} {}", m[3].str(), std::stoull(m[1].str(), nullptr, 16),
                              stride, m[4].str(), m[5].str()));
  }
  for (const sim::Register* r : hif().registers())
    code.push_back(fmt::format("{} 0x{:x} stride {} width {} {}", r->name, r->offset, r->stride, r->width,
                               sim::to_string(r->access)));
  EXPECT_EQ(doc, code);
}

}  // namespace
