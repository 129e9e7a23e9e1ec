#define SC_INCLUDE_DYNAMIC_PROCESSES
#include "sim/system/runtime.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <numeric>
#include <random>
#include <set>

#include "sim/system/instance.h"

namespace infsim::sim {

using sc_core::sc_time;
using firmware::CoreStatus;
using firmware::Opcode;

const char* status_name(Status s) {
  switch (s) {
    case Status::success: return "NRT_SUCCESS";
    case Status::bad_input: return "NRT_EXEC_BAD_INPUT";
    case Status::timeout: return "NRT_TIMEOUT";
    case Status::queue_full: return "NRT_QUEUE_FULL";
    case Status::not_enough_cores: return "NRT_LOAD_NOT_ENOUGH_NC";
    case Status::hardware_error: return "NRT_HW_ERROR";
    case Status::numerical_error: return "NRT_EXEC_COMPLETED_WITH_NUM_ERR";
    case Status::unloaded: return "NRT_INVALID_HANDLE";
    case Status::failure: return "NRT_FAILURE";
  }
  return "?";
}

namespace {

double seconds(const sc_time& t) { return t.to_seconds(); }

// Whether a float output holds NaN or Inf.
bool non_finite(isa::Dtype d, const std::vector<uint8_t>& b) {
  const size_t n = b.size() / std::max<size_t>(1, isa::dtype_bytes(d));
  auto u16 = [&](size_t i) { uint16_t v; std::memcpy(&v, b.data() + 2 * i, 2); return v; };
  switch (d) {
    case isa::Dtype::fp32:
      for (size_t i = 0; i < n; ++i) {
        uint32_t v;
        std::memcpy(&v, b.data() + 4 * i, 4);
        if ((v & 0x7F800000u) == 0x7F800000u) return true;
      }
      return false;
    case isa::Dtype::fp16:
      for (size_t i = 0; i < n; ++i) if ((u16(i) & 0x7C00u) == 0x7C00u) return true;
      return false;
    case isa::Dtype::bf16:
      for (size_t i = 0; i < n; ++i) if ((u16(i) & 0x7F80u) == 0x7F80u) return true;
      return false;
    default:
      return false;
  }
}

}  // namespace

// ------------------------------------------------------------------ the host, inside the simulation

struct Request {
  RequestResult r;
  sc_time arrival;  // exact: r.arrival_s is a double, which may read back a femtosecond late
  std::shared_ptr<const Tensors> inputs;
  bool keep_outputs = true;
  std::function<void(RequestResult&)> done;  // called once, on the simulation thread
};

struct Replica {
  uint32_t chip, first, cores;  // chip-local first core (a pipeline's: its first stage's)
  uint32_t global = 0;          // global first core (4 x chip + core on inf1)
};

// What travels down a pipeline replica with a batch: its requests and the
// outputs the stages have produced so far.
struct Batch {
  std::vector<std::unique_ptr<Request>> group;
  Tensors values;
};

// One pipeline replica's stages between themselves: the batch each stage has
// been sent (its inputs are in its core's DRAM), and whether it is busy (it
// holds a batch, or its predecessor is sending one to it).
struct Stages {
  std::vector<std::unique_ptr<Batch>> inbox;
  std::vector<bool> busy, done;  // done: the stage thread has left (the model is closing)
  sc_core::sc_event changed;
};

struct Model {
  int32_t id;
  LoadOptions opt;
  std::shared_ptr<const BundleSpec> spec;  // a plain executable: one device step, no callbacks
  std::vector<uint32_t> core_offset;       // per step: its first core in the group (device steps)
  std::vector<Replica> replicas;
  std::map<std::pair<uint32_t, size_t>, uint32_t> handle;  // (chip, step) -> image handle
  std::deque<std::unique_ptr<Request>> queue;
  sc_core::sc_event queued;
  bool pipeline = false;                     // one pipelined executable: a stage per core
  std::vector<std::unique_ptr<Stages>> stages;  // per replica, pipelines only
  bool closing = false;
  uint32_t workers = 0;
  std::vector<std::function<void()>> on_unloaded;
};

class Host : public sc_core::sc_module {
 public:
  Host(sc_core::sc_module_name name, Instance& inst)
      : sc_module(name), regs("regs"), dram("dram"), inst_(inst), cmd_busy_(inst.num_chips(), false) {
    for (uint32_t c = 0; c < inst.num_chips(); ++c) {
      regs.bind(inst.chip(c).host_interface().socket);
      dram.bind(inst.host_link(c).a_in);
      cmd_free_.push_back(std::make_unique<sc_core::sc_event>());
    }
  }

  tlm_utils::multi_passthrough_initiator_socket<Host> regs;  // chip i's registers
  tlm_utils::multi_passthrough_initiator_socket<Host> dram;  // chip i's DRAM over its PCIe link

  Instance& inst() { return inst_; }
  // The least common multiple of every clock period on the instance (engines,
  // DRAM, links): two workloads that start on multiples of it see the same
  // clock phases, hence the same cycles. Zero where that multiple exceeds a
  // simulated millisecond (a 2^30 Hz NeuronLink clock has no short one).
  sc_time clock_epoch() const {
    const ChipConfig& cc = inst_.chip_config();
    const InstanceConfig& ic = inst_.config();
    std::vector<double> ps = {cc.dram_tck_ps(), 1e6 / ic.host_link_clock_mhz};
    for (unsigned e = 0; e < isa::kNumEngine; ++e) ps.push_back(cc.period_ps(static_cast<isa::Engine>(e)));
    if (inst_.num_chips() > 1) ps.push_back(1e6 / ic.link_clock_mhz);
    const uint64_t limit = sc_time(1, sc_core::SC_MS).value();
    uint64_t l = 1;
    for (double p : ps) {
      const uint64_t v = sc_time(p, sc_core::SC_PS).value();  // in the kernel's resolution, as the modules round it
      if (v == 0) return sc_core::SC_ZERO_TIME;
      const unsigned __int128 m = static_cast<unsigned __int128>(l / std::gcd(l, v)) * v;
      if (m > limit) return sc_core::SC_ZERO_TIME;
      l = static_cast<uint64_t>(m);
    }
    return sc_time::from_value(l);
  }
  std::map<int32_t, std::unique_ptr<Model>> models;
  std::set<uint32_t> used_cores;  // global
  uint64_t next_request = 1;
  std::unique_ptr<traces::Recorder> recorder;  // while a trace is being recorded

  int32_t load(std::shared_ptr<const BundleSpec> spec, const LoadOptions& opt, int32_t id) {
    const ChipConfig& cc = inst_.chip_config();
    auto m = std::make_unique<Model>();
    uint32_t n = 0;  // cores per group
    for (const auto& st : spec->steps) {
      m->core_offset.push_back(n);
      if (st.exe) {
        isa::validate(*st.exe, cc.limits());
        n += st.exe->num_cores;
        m->pipeline |= st.exe->pipeline;
      }
    }
    if (m->pipeline && spec->steps.size() != 1)
      throw RunError(fmt::format("{}: a pipelined executable cannot be a step of a bundle", opt.name));
    const uint32_t total = inst_.num_chips() * cc.cores;
    if (opt.groups.empty()) throw RunError("a model needs at least one core group");
    if (n == 0) throw RunError("a model needs at least one device step");
    std::set<uint32_t> mine;
    for (uint32_t g : opt.groups) {
      if (g + n > total)
        throw RunError(fmt::format("{}: NRT_LOAD_NOT_ENOUGH_NC: cores {}-{} asked for, the instance has {}",
                                   opt.name, g, g + n - 1, total));
      if (!m->pipeline && g / cc.cores != (g + n - 1) / cc.cores)
        throw RunError(fmt::format("{}: a {}-core group cannot start at core {}: it would span chips", opt.name, n, g));
      for (uint32_t c = g; c < g + n; ++c)
        if (used_cores.count(c) || !mine.insert(c).second)
          throw RunError(fmt::format("{}: NRT_LOAD_NOT_ENOUGH_NC: core {} is in use", opt.name, c));
      m->replicas.push_back({g / cc.cores, g % cc.cores, n, g});
    }
    m->id = id;
    m->opt = opt;
    m->spec = spec;
    const uint64_t slice = cc.dram_slice_bytes();
    for (const auto& r : m->replicas)
      for (size_t s = 0; s < spec->steps.size(); ++s) {
        const auto& exe = spec->steps[s].exe;
        if (!exe) continue;
        const uint32_t first = r.global + m->core_offset[s];  // global: a pipeline's cores may span chips
        for (uint32_t k = 0; k < exe->num_cores; ++k) {
          const uint32_t chip = (first + k) / cc.cores;
          if (!m->handle.count({chip, s})) m->handle[{chip, s}] = inst_.chip(chip).host_interface().map_image(*exe);
        }
        for (const auto& c : exe->constants) {
          const uint32_t g = first + c.core;
          inst_.chip(g / cc.cores).dram().backdoor_write((g % cc.cores) * slice + c.dram_offset, c.bytes.data(),
                                                         c.bytes.size());
        }
      }
    used_cores.insert(mine.begin(), mine.end());
    Model* mp = m.get();
    models[id] = std::move(m);
    for (size_t i = 0; i < mp->replicas.size(); ++i) {
      if (mp->pipeline) {
        auto st = std::make_unique<Stages>();
        st->inbox.resize(n);
        st->busy.assign(n, false);
        st->done.assign(n, false);
        mp->stages.push_back(std::move(st));
        for (uint32_t k = 0; k < n; ++k) {
          ++mp->workers;
          sc_core::sc_spawn([this, mp, i, k] { serve_stage(*mp, static_cast<int32_t>(i), k); },
                            fmt::format("model{}_replica{}_stage{}", id, i, k).c_str());
        }
        continue;
      }
      ++mp->workers;
      sc_core::sc_spawn([this, mp, i] { serve(*mp, static_cast<int32_t>(i)); },
                        fmt::format("model{}_replica{}", id, i).c_str());
    }
    return id;
  }

  void unload(int32_t id, std::function<void()> done) {
    auto it = models.find(id);
    if (it == models.end()) {
      done();
      return;
    }
    it->second->closing = true;
    it->second->on_unloaded.push_back(std::move(done));
    it->second->queued.notify(sc_core::SC_ZERO_TIME);
  }

  // A request enters its model's queue now.
  void enqueue(int32_t id, std::unique_ptr<Request> q) {
    q->r.id = next_request++;
    q->r.model = id;
    q->arrival = sc_core::sc_time_stamp();
    q->r.arrival_s = seconds(q->arrival);
    auto it = models.find(id);
    if (it == models.end() || it->second->closing) {
      finish(*q, Status::unloaded, fmt::format("model {} is not loaded", id));
      return;
    }
    Model& m = *it->second;
    if (m.queue.size() >= m.opt.queue_depth) {
      finish(*q, Status::queue_full, fmt::format("{} requests already queued", m.queue.size()));
      return;
    }
    m.queue.push_back(std::move(q));
    m.queued.notify(sc_core::SC_ZERO_TIME);
  }

  std::vector<CounterValue> counters() {
    std::vector<CounterValue> out;
    for (uint32_t c = 0; c < inst_.num_chips(); ++c) {
      Chip& chip = inst_.chip(c);
      HostInterface& hif = chip.host_interface();
      const auto& meta = chip.counter_registry().all();
      const uint64_t count = debug_read(c, hif.COUNTER_COUNT.address(), 4);
      if (count != meta.size()) throw RunError("the device's counter map does not match the driver's");
      for (uint32_t i = 0; i < count; ++i) {
        const Counter& k = meta[i];
        const bool link = k.path.rfind("link.", 0) == 0;
        out.push_back({link ? k.path : fmt::format("chip{}.{}", c, k.path), k.name, k.unit, k.description,
                       debug_read(c, hif.COUNTER.address(i), 8)});
      }
    }
    return out;
  }

 private:
  void finish(Request& q, Status s, std::string message = {}) {
    q.r.status = s;
    q.r.message = std::move(message);
    q.r.end_s = seconds(sc_core::sc_time_stamp());
    if (q.done) q.done(q.r);
  }

  uint64_t debug_read(uint32_t chip, uint64_t address, unsigned width) {
    uint64_t v = 0;
    tlm::tlm_generic_payload t;
    t.set_command(tlm::TLM_READ_COMMAND);
    t.set_address(address);
    t.set_data_ptr(reinterpret_cast<unsigned char*>(&v));
    t.set_data_length(width);
    t.set_streaming_width(width);
    if (regs[chip]->transport_dbg(t) != width) throw RunError(fmt::format("chip{}: register {:#x} unreadable", chip, address));
    return v;
  }

  // A register access from the host thread of the simulation: takes the
  // access's simulated time.
  uint64_t reg(uint32_t chip, tlm::tlm_command cmd, uint64_t address, unsigned width, uint64_t value = 0) {
    tlm::tlm_generic_payload t;
    t.set_command(cmd);
    t.set_address(address);
    t.set_data_ptr(reinterpret_cast<unsigned char*>(&value));
    t.set_data_length(width);
    t.set_streaming_width(width);
    t.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
    sc_time delay = sc_core::SC_ZERO_TIME;
    regs[chip]->b_transport(t, delay);
    sc_core::wait(delay);
    if (t.get_response_status() != tlm::TLM_OK_RESPONSE)
      throw RunError(fmt::format("chip{}: register access {:#x} failed: {}", chip, address, t.get_response_string()));
    return value;
  }

  // Posts one firmware command; the command registers are one set per chip,
  // so posts from different groups take turns.
  void command(uint32_t chip, Opcode op, std::initializer_list<uint32_t> args) {
    while (cmd_busy_[chip]) sc_core::wait(*cmd_free_[chip]);
    cmd_busy_[chip] = true;
    const HostInterface& hif = inst_.chip(chip).host_interface();
    uint32_t i = 0;
    for (uint32_t a : args) reg(chip, tlm::TLM_WRITE_COMMAND, hif.CMD_ARG.address(i++), 4, a);
    // The registers keep their values: one not written would be an earlier command's.
    for (; i < hif.CMD_ARG.count(); ++i) reg(chip, tlm::TLM_WRITE_COMMAND, hif.CMD_ARG.address(i), 4, 0);
    reg(chip, tlm::TLM_WRITE_COMMAND, hif.CMD_OPCODE.address(), 4, static_cast<uint32_t>(op));
    reg(chip, tlm::TLM_WRITE_COMMAND, hif.CMD_DOORBELL.address(), 4, 1);
    cmd_busy_[chip] = false;
    cmd_free_[chip]->notify(sc_core::SC_ZERO_TIME);
  }

  // Bulk transfer over the chip's PCIe link into or out of its DRAM.
  void transfer(uint32_t chip, bool write, uint64_t address, uint8_t* data, size_t n) {
    tlm::tlm_generic_payload t;
    t.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
    t.set_address(address);
    t.set_data_ptr(data);
    t.set_data_length(static_cast<unsigned>(n));
    t.set_streaming_width(static_cast<unsigned>(n));
    t.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
    sc_time delay = sc_core::SC_ZERO_TIME;
    dram[chip]->b_transport(t, delay);
    sc_core::wait(delay);
    if (t.get_response_status() != tlm::TLM_OK_RESPONSE)
      throw RunError(fmt::format("chip{}: host transfer at DRAM {:#x} failed", chip, address));
  }

  // One replica's server thread: takes its model's requests in order.
  // One replica's server thread: takes its model's requests in order.
  void serve(Model& m, int32_t index) {
    const Replica rep = m.replicas[index];
    Chip& chip = inst_.chip(rep.chip);
    const uint64_t slice = inst_.chip_config().dram_slice_bytes();
    for (;;) {
      while (m.queue.empty() && !m.closing) sc_core::wait(m.queued);
      if (m.queue.empty()) break;
      std::vector<std::unique_ptr<Request>> group = take(m);
      if (group.empty()) continue;  // every one taken had timed out
      std::unique_ptr<Request>& q = group[0];  // carries the batch's inputs, times and outputs
      const sc_time arrival = q->arrival;
      Tensors values = m.opt.batch > 1 ? coalesce(m, group) : *q->inputs;
      Status st = Status::success;
      std::string msg;
      bool first_device = true;
      for (size_t s = 0; s < m.spec->steps.size() && st == Status::success; ++s) {
        const auto& step = m.spec->steps[s];
        try {
          if (!step.exe) {
            Tensors out = m.spec->host(s, values);
            const sc_time t0 = sc_core::sc_time_stamp();
            on_vcpu(step.host_seconds);
            q->r.host_s += seconds(sc_core::sc_time_stamp() - t0);
            for (auto& [k, v] : out) values[k] = std::move(v);
            continue;
          }
          // A plain executable's request carries its inputs as they are; a bundle converts values per step.
          Tensors in = m.spec->device_inputs ? m.spec->device_inputs(s, values) : values;
          Tensors out;
          st = run_device(m, rep, s, in, arrival, *q, first_device, out, msg);
          first_device = false;
          for (auto& [k, v] : out) values[k] = std::move(v);
        } catch (const std::exception& e) {
          st = Status::failure;
          msg = fmt::format("step {}: {}", s, e.what());
        }
      }
      answer(m, index, group, values, st, msg);
    }
    // The model is closing and its queue is empty.
    command(rep.chip, Opcode::reset_cores, {rep.first, rep.cores});
    for (uint32_t c = 0; c < rep.cores; ++c) chip.dram().clear((rep.first + c) * slice, slice);
    if (--m.workers == 0) closed(m.id);
  }

  // Answers a batch's requests: the first carries the batch's times; each
  // gets its own rows of the outputs.
  void answer(const Model& m, int32_t index, std::vector<std::unique_ptr<Request>>& group, Tensors& values, Status st,
              const std::string& msg) {
    const bool answered = st == Status::success || st == Status::numerical_error;
    const Request& q = *group[0];
    const std::vector<uint64_t> stage_cycles = q.r.stage_cycles;  // (finishing q may move its record away)
    for (size_t i = 0; i < group.size(); ++i) {
      Request& r = *group[i];
      r.r.replica = index;
      if (i) {
        r.r.start_s = q.r.start_s, r.r.input_done_s = q.r.input_done_s, r.r.device_done_s = q.r.device_done_s;
        r.r.device_cycles = q.r.device_cycles, r.r.host_s = q.r.host_s, r.r.stage_cycles = stage_cycles;
      }
      if (answered && r.keep_outputs)
        for (const auto& name : m.spec->outputs) {
          auto it = values.find(name);
          if (it == values.end()) continue;
          if (m.opt.batch > 1) {  // request i's rows of the batch
            const size_t part = it->second.size() / m.opt.batch;
            r.r.outputs[name].assign(it->second.begin() + i * part, it->second.begin() + (i + 1) * part);
          } else {
            r.r.outputs[name] = std::move(it->second);
          }
        }
      finish(r, st, msg);
    }
  }

  // One stage of a pipeline replica (the stage's core: the replica's first
  // global core + k). It connects its core to the next stage's and runs its
  // load program once; then, per batch: takes it (stage 0: from the model's
  // queue, inputs over the host link; others: from its inbox), runs, reads
  // the outputs on its core back, and, when the next stage is idle, runs its
  // send program (the outputs into the next stage's DRAM) and hands the
  // batch on. The last stage answers it.
  void serve_stage(Model& m, int32_t index, uint32_t k) {
    const Replica rep = m.replicas[index];
    Stages& ps = *m.stages[index];
    const isa::Executable& exe = *m.spec->steps[0].exe;
    const uint32_t per_chip = inst_.chip_config().cores, n = exe.num_cores;
    const uint32_t g = rep.global + k, chip_i = g / per_chip, core = g % per_chip;
    Chip& chip = inst_.chip(chip_i);
    const uint64_t slice = inst_.chip_config().dram_slice_bytes();
    const uint32_t handle = m.handle.at({chip_i, 0});
    const bool has_load = std::any_of(exe.streams.begin(), exe.streams.end(), [&](const isa::Stream& s) {
      return s.core == k && s.phase == isa::Phase::load;
    });
    const sc_time timeout(m.opt.timeout_s, sc_core::SC_SEC);
    // Load time: the connection, then the resident weights (a fault here fails every request the stage gets).
    std::string load_error;
    auto prepare = [&] {
      load_error.clear();
      chip.core(core).set_timing_only(m.opt.timing_only);  // the core's mode is its last model's until set
      if (k + 1 < n)
        command(chip_i, Opcode::connect, {core, 1, (g + 1) / per_chip, (g + 1) % per_chip});
      if (has_load) {
        uint64_t cycles = 0;
        const Status st = run_program(chip_i, core, handle, program_arg(isa::Phase::load, k, false),
                                      sc_core::sc_time_stamp(), sc_time(60.0, sc_core::SC_SEC), load_error, cycles);
        if (st != Status::success) load_error = "the stage's load program failed: " + load_error;
      }
    };
    prepare();
    for (;;) {
      std::unique_ptr<Batch> b;
      if (k == 0) {
        while (m.queue.empty() && !m.closing) sc_core::wait(m.queued);
        if (m.queue.empty()) break;
        b = std::make_unique<Batch>();
        b->group = take(m);
        if (b->group.empty()) continue;
      } else {
        while (!ps.inbox[k] && !ps.done[k - 1]) sc_core::wait(ps.changed);
        if (!ps.inbox[k]) break;
        b = std::move(ps.inbox[k]);
      }
      ps.busy[k] = true;
      Request& q = *b->group[0];
      Status st = load_error.empty() ? Status::success : Status::hardware_error;
      std::string msg = load_error;
      if (k == 0 && st == Status::success) {
        const Tensors values = m.opt.batch > 1 ? coalesce(m, b->group) : *q.inputs;
        if (chip_idle(chip_i)) chip.dram().restart_timing();
        const TransferGuard busy(transfers_[chip_i]);
        for (const auto& t : exe.tensors)
          if (t.kind == isa::TensorKind::input) {
            std::vector<uint8_t> bytes = values.at(t.name);
            transfer(chip_i, true, (core + t.core) * slice + t.dram_offset, bytes.data(), bytes.size());
          }
        q.r.input_done_s = seconds(sc_core::sc_time_stamp());
      }
      if (st == Status::success) {
        if (chip_idle(chip_i)) chip.dram().restart_timing();
        chip.core(core).set_timing_only(m.opt.timing_only);
        uint64_t cycles = 0;
        st = run_program(chip_i, core, handle, program_arg(isa::Phase::run, k, true), q.arrival, timeout, msg, cycles);
        q.r.device_cycles += cycles;
        q.r.stage_cycles.resize(n);
        q.r.stage_cycles[k] = cycles;
        if (k + 1 == n) q.r.device_done_s = seconds(sc_core::sc_time_stamp());
      }
      if (st == Status::success) {
        for (const auto& t : exe.tensors)
          if (t.kind == isa::TensorKind::output && t.core == k) {
            std::vector<uint8_t> bytes(t.bytes());
            const TransferGuard busy(transfers_[chip_i]);
            transfer(chip_i, false, core * slice + t.dram_offset, bytes.data(), bytes.size());
            if (!m.opt.timing_only && non_finite(t.dtype, bytes)) {
              st = Status::numerical_error;
              msg = fmt::format("output '{}' holds NaN or Inf", t.name);
            }
            b->values[t.name] = std::move(bytes);
          }
      }
      if (st == Status::hardware_error || st == Status::timeout) {
        // The core was reset: connect it and reload its resident weights before the next batch.
        answer(m, index, b->group, b->values, st, msg);
        prepare();
      } else if (k + 1 < n) {
        if (st == Status::numerical_error) {  // (answered here; later stages would compute on NaN)
          answer(m, index, b->group, b->values, st, msg);
        } else {
          while (ps.busy[k + 1] || ps.inbox[k + 1]) sc_core::wait(ps.changed);
          ps.busy[k + 1] = true;  // its inputs are being written
          uint64_t cycles = 0;
          const Status sent = run_program(chip_i, core, handle, program_arg(isa::Phase::send, k, true), q.arrival,
                                          timeout, msg, cycles);
          ps.busy[k + 1] = false;
          if (sent != Status::success) {
            answer(m, index, b->group, b->values, sent, msg);
            prepare();
          } else {
            ps.inbox[k + 1] = std::move(b);
          }
        }
      } else {
        answer(m, index, b->group, b->values, st, msg);
      }
      ps.busy[k] = false;
      ps.changed.notify(sc_core::SC_ZERO_TIME);
    }
    // The model is closing and every earlier stage has left.
    ps.done[k] = true;
    ps.changed.notify(sc_core::SC_ZERO_TIME);
    command(chip_i, Opcode::reset_cores, {core, 1});
    chip.dram().clear(core * slice, slice);
    if (--m.workers == 0) closed(m.id);
  }

  // The firmware load command's ARG3 for program `phase` of image core `image_core`.
  static uint32_t program_arg(isa::Phase phase, uint32_t image_core, bool keep_memory) {
    return static_cast<uint32_t>(phase) | (keep_memory ? firmware::kLoadKeepMemory : 0u) |
           (image_core << firmware::kLoadImageCoreShift);
  }

  // Loads one program onto one core and runs it to its end_of_program, a
  // fault (the core is reset) or `arrival + timeout` (likewise). `cycles`:
  // the core's CYCLES register after a successful run.
  Status run_program(uint32_t chip_i, uint32_t core, uint32_t handle, uint32_t arg3, const sc_time& arrival,
                     const sc_time& timeout, std::string& msg, uint64_t& cycles) {
    HostInterface& hif = inst_.chip(chip_i).host_interface();
    command(chip_i, Opcode::load, {core, 1, handle, arg3});
    command(chip_i, Opcode::run, {core, 1});
    for (;;) {
      const auto cs = static_cast<CoreStatus>(reg(chip_i, tlm::TLM_READ_COMMAND, hif.STATUS.address(core), 4));
      if (cs == CoreStatus::done) break;
      if (cs == CoreStatus::faulted) {
        msg = fmt::format("chip{}: {}", chip_i, hif.fault_message(core));
        command(chip_i, Opcode::reset_cores, {core, 1});
        return Status::hardware_error;
      }
      const sc_time now = sc_core::sc_time_stamp();
      if (now - arrival >= timeout) {
        msg = fmt::format("timed out on the device after {} s (simulated); engines still waiting:", timeout.to_seconds());
        for (const auto& b : hif.blocked_engines(core)) msg += fmt::format("\n  chip{}: {}", chip_i, b);
        command(chip_i, Opcode::reset_cores, {core, 1});
        return Status::timeout;
      }
      sc_core::wait(arrival + timeout - now, hif.core_irq(core));
    }
    cycles = reg(chip_i, tlm::TLM_READ_COMMAND, hif.CYCLES.address(core), 8);
    return Status::success;
  }

  // The next requests a replica serves: the oldest queued one and, with
  // server-side batching, as many more (up to the batch) as arrive before
  // its max delay is up. Requests past their timeout are answered here.
  std::vector<std::unique_ptr<Request>> take(Model& m) {
    std::vector<std::unique_ptr<Request>> group;
    const sc_time timeout(m.opt.timeout_s, sc_core::SC_SEC);
    for (;;) {
      while (!m.queue.empty() && group.size() < m.opt.batch) {
        std::unique_ptr<Request> q = std::move(m.queue.front());
        m.queue.pop_front();
        q->r.start_s = seconds(sc_core::sc_time_stamp());
        if (sc_core::sc_time_stamp() - q->arrival >= timeout)
          finish(*q, Status::timeout, "timed out in the queue");
        else
          group.push_back(std::move(q));
      }
      if (group.size() == m.opt.batch || (!group.empty() && m.closing)) break;
      if (group.empty()) {
        if (m.closing) break;
        sc_core::wait(m.queued);
        continue;
      }
      const sc_time deadline = group[0]->arrival + sc_time(m.opt.max_delay_s, sc_core::SC_SEC);
      const sc_time now = sc_core::sc_time_stamp();
      if (now >= deadline) break;
      sc_core::wait(deadline - now, m.queued);
    }
    for (auto& q : group) q->r.start_s = seconds(sc_core::sc_time_stamp());
    return group;
  }

  // A batch's inputs: the requests' rows one after another, zero-padded to the compiled batch.
  Tensors coalesce(const Model& m, const std::vector<std::unique_ptr<Request>>& group) {
    Tensors values;
    for (const auto& [name, part] : m.spec->inputs) {
      auto& v = values[name];
      v.assign(part * m.opt.batch, 0);
      for (size_t i = 0; i < group.size(); ++i) {
        const auto& b = group[i]->inputs->at(name);
        std::copy(b.begin(), b.end(), v.begin() + i * part);
      }
    }
    return values;
  }

  // A host step: one of the instance's vCPUs for `s` simulated seconds.
  void on_vcpu(double s) {
    while (vcpus_free_ == 0) sc_core::wait(vcpu_freed_);
    --vcpus_free_;
    sc_core::wait(sc_time(s, sc_core::SC_SEC));
    ++vcpus_free_;
    vcpu_freed_.notify(sc_core::SC_ZERO_TIME);
  }

  // One device step of a request on the replica's cores: inputs over the
  // host link, firmware load and run, completion, outputs back.
  Status run_device(Model& m, const Replica& rep, size_t s, Tensors& in, const sc_time& arrival, Request& q,
                    bool first, Tensors& out, std::string& msg) {
    const isa::Executable& exe = *m.spec->steps[s].exe;
    Chip& chip = inst_.chip(rep.chip);
    HostInterface& hif = chip.host_interface();
    const uint64_t slice = inst_.chip_config().dram_slice_bytes();
    const uint32_t first_core = rep.first + m.core_offset[s], cores = exe.num_cores;
    const sc_time timeout = sc_time(m.opt.timeout_s, sc_core::SC_SEC);
    // An idle chip's DRAM starts from closed banks and a fresh refresh
    // schedule, so a request alone takes the same cycles whatever ran before.
    if (chip_idle(rep.chip)) chip.dram().restart_timing();
    {
      const TransferGuard busy(transfers_[rep.chip]);
      for (const auto& t : exe.tensors)
        if (t.kind == isa::TensorKind::input) {
          auto it = in.find(t.name);
          if (it == in.end() || it->second.size() != t.bytes())
            throw RunError(fmt::format("device step input '{}' missing or of the wrong size", t.name));
          transfer(rep.chip, true, (first_core + t.core) * slice + t.dram_offset, it->second.data(), it->second.size());
        }
    }
    if (first) q.r.input_done_s = seconds(sc_core::sc_time_stamp());
    for (uint32_t c = 0; c < cores; ++c) chip.core(first_core + c).set_timing_only(m.opt.timing_only);
    command(rep.chip, Opcode::load, {first_core, cores, m.handle.at({rep.chip, s})});
    command(rep.chip, Opcode::run, {first_core, cores});
    sc_core::sc_event_or_list irqs;
    for (uint32_t c = 0; c < cores; ++c) irqs |= hif.core_irq(first_core + c);
    // Until every core of the group is done or one faulted, or the deadline.
    Status st = Status::success;
    for (;;) {
      bool all_done = true, faulted = false;
      for (uint32_t c = 0; c < cores; ++c) {
        const auto cs = static_cast<CoreStatus>(reg(rep.chip, tlm::TLM_READ_COMMAND, hif.STATUS.address(first_core + c), 4));
        all_done &= cs == CoreStatus::done;
        if (cs == CoreStatus::faulted) {
          faulted = true;
          msg = fmt::format("chip{}: {}", rep.chip, hif.fault_message(first_core + c));
        }
      }
      if (faulted) {
        st = Status::hardware_error;
        break;
      }
      if (all_done) break;
      const sc_time now = sc_core::sc_time_stamp();
      if (now - arrival >= timeout) {
        st = Status::timeout;
        msg = fmt::format("timed out on the device after {} s (simulated); engines still waiting:", m.opt.timeout_s);
        for (uint32_t c = 0; c < cores; ++c)
          for (const auto& b : hif.blocked_engines(first_core + c)) msg += fmt::format("\n  chip{}: {}", rep.chip, b);
        break;
      }
      sc_core::wait(arrival + timeout - now, irqs);
    }
    q.r.device_done_s = seconds(sc_core::sc_time_stamp());
    if (st != Status::success) {
      command(rep.chip, Opcode::reset_cores, {first_core, cores});
      return st;
    }
    uint64_t cycles = 0;
    for (uint32_t c = 0; c < cores; ++c)
      cycles = std::max(cycles, reg(rep.chip, tlm::TLM_READ_COMMAND, hif.CYCLES.address(first_core + c), 8));
    q.r.device_cycles += cycles;
    for (const auto& t : exe.tensors)
      if (t.kind == isa::TensorKind::output) {
        std::vector<uint8_t> bytes(t.bytes());
        const TransferGuard busy(transfers_[rep.chip]);
        transfer(rep.chip, false, (first_core + t.core) * slice + t.dram_offset, bytes.data(), bytes.size());
        if (!m.opt.timing_only && non_finite(t.dtype, bytes)) {
          st = Status::numerical_error;
          msg = fmt::format("output '{}' holds NaN or Inf", t.name);
        }
        out[t.name] = std::move(bytes);
      }
    return st;
  }

  void closed(int32_t id) {
    auto it = models.find(id);
    Model& m = *it->second;
    // Wait for the reset commands to have been performed before the image goes.
    for (const auto& [key, h] : m.handle) {
      const uint32_t c = key.first;
      const HostInterface& hif = inst_.chip(c).host_interface();
      while (reg(c, tlm::TLM_READ_COMMAND, hif.CMD_PENDING.address(), 4)) sc_core::wait(inst_.chip(c).host_interface().period() * 64.0);
      inst_.chip(c).host_interface().unmap_image(h);
    }
    for (const auto& r : m.replicas)
      for (uint32_t c = 0; c < r.cores; ++c) used_cores.erase(r.global + c);
    auto callbacks = std::move(m.on_unloaded);
    models.erase(it);
    for (auto& f : callbacks) f();
  }

  // Whether no core of the chip is running and no host transfer to it is in flight.
  bool chip_idle(uint32_t chip) {
    if (transfers_[chip]) return false;
    const HostInterface& hif = inst_.chip(chip).host_interface();
    for (uint32_t c = 0; c < hif.num_cores(); ++c)
      if (hif.core_status(c) == CoreStatus::running) return false;
    return true;
  }
  struct TransferGuard {
    uint32_t& n;
    explicit TransferGuard(uint32_t& count) : n(++count) {}
    ~TransferGuard() { --n; }
  };

  Instance& inst_;
  uint32_t vcpus_free_ = inst_.config().vcpus;
  sc_core::sc_event vcpu_freed_;
  std::vector<uint32_t> transfers_ = std::vector<uint32_t>(inst_.num_chips(), 0);  // host transfers in flight, per chip
  std::vector<bool> cmd_busy_;
  std::vector<std::unique_ptr<sc_core::sc_event>> cmd_free_;
};

// ------------------------------------------------------------------ the runtime service

namespace {
// Never destroyed: at process exit the simulation thread is left blocked on
// its condition variable, and the Python callables a bundle holds are not
// released into a finalising interpreter.
std::unique_ptr<Runtime>& the_runtime() {
  static auto* r = new std::unique_ptr<Runtime>;
  return *r;
}
std::mutex& the_runtime_mutex() {
  static std::mutex m;
  return m;
}
bool same(const InstanceConfig& a, const ChipConfig& ac, const InstanceConfig& b, const ChipConfig& bc) {
  return param_values(a) == param_values(b) && param_values(ac) == param_values(bc);
}
}  // namespace

bool Runtime::can_run(const InstanceConfig& icfg, const ChipConfig& ccfg) {
  std::lock_guard<std::mutex> g(the_runtime_mutex());
  auto& r = the_runtime();
  return !r || same(r->icfg_, r->ccfg_, icfg, ccfg);
}

Runtime& Runtime::get(const InstanceConfig& icfg, const ChipConfig& ccfg) {
  std::lock_guard<std::mutex> g(the_runtime_mutex());
  auto& r = the_runtime();
  if (!r) {
    r.reset(new Runtime(icfg, ccfg));
  } else if (!same(r->icfg_, r->ccfg_, icfg, ccfg)) {
    throw RunError(fmt::format("this process already simulates instance '{}' with chip '{}'; use a new process for "
                               "another instance or chip configuration",
                               r->icfg_.name, r->ccfg_.name));
  }
  return *r;
}

Runtime::Runtime(const InstanceConfig& icfg, const ChipConfig& ccfg) : icfg_(icfg), ccfg_(ccfg) {
  icfg_.check();
  ccfg_.check();
  std::promise<void> ready;
  auto started = ready.get_future();
  thread_ = std::thread([this, &ready] {
    try {
      setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
      // Femtoseconds keep clock periods such as 1/2.8 GHz exact to 1e-6.
      sc_core::sc_set_time_resolution(1, sc_core::SC_FS);
      static Instance* instance = new Instance("instance", icfg_, ccfg_);  // lives as long as the process's kernel
      host_.reset(new Host("host", *instance));
      sc_core::sc_start(sc_core::SC_ZERO_TIME);
      ready.set_value();
    } catch (...) {
      ready.set_exception(std::current_exception());
      return;
    }
    loop();
  });
  try {
    started.get();
  } catch (...) {
    thread_.join();
    throw;
  }
}

Runtime::~Runtime() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  host_.release();  // SystemC modules are not destroyed after elaboration
}

void Runtime::loop() {
  // Simulated time per slice between looks at the task queue: a live
  // submission waits about this long (in simulated time) to be taken, at most
  // until the next event when none is due sooner.
  const sc_time slice(100, sc_core::SC_US);
  for (;;) {
    std::vector<std::function<void()>> todo;
    {
      std::unique_lock<std::mutex> g(mu_);
      cv_.wait(g, [&] { return stop_ || !tasks_.empty() || sc_core::sc_pending_activity(); });
      if (stop_) return;
      todo.swap(tasks_);
    }
    for (auto& t : todo) t();
    // At least up to the next event: a slice with none in it would not move the clock.
    try {
      if (sc_core::sc_pending_activity())
        sc_core::sc_start(std::max(slice, sc_core::sc_time_to_pending_activity()), sc_core::SC_EXIT_ON_STARVATION);
    } catch (const std::exception& e) {
      // A simulation process failed outside any request's own checks: say so
      // rather than end the process; its requests stay unanswered.
      std::fprintf(stderr, "infsim runtime: simulation error: %s\n", e.what());
    }
  }
}

void Runtime::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> g(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_all();
}

template <typename F>
auto Runtime::call(F f) -> decltype(f()) {
  using R = decltype(f());
  auto p = std::make_shared<std::promise<R>>();
  auto fut = p->get_future();
  post([p, f]() mutable {
    try {
      if constexpr (std::is_void_v<R>) {
        f();
        p->set_value();
      } else {
        p->set_value(f());
      }
    } catch (...) {
      p->set_exception(std::current_exception());
    }
  });
  return fut.get();
}

int32_t Runtime::load(const isa::Executable& exe, const LoadOptions& opt) {
  auto spec = std::make_shared<BundleSpec>();
  spec->steps.push_back({std::make_shared<const isa::Executable>(exe), 0});
  if (opt.batch < 1) throw RunError("batch must be at least 1");
  for (const auto& t : exe.tensors) {
    if (opt.batch > 1 && (t.shape.empty() || t.shape[0] % opt.batch))
      throw RunError(fmt::format("server-side batching: tensor '{}' has no leading batch dimension of {}", t.name,
                                 opt.batch));
    if (t.kind == isa::TensorKind::input)
      spec->inputs[t.name] = t.bytes() / opt.batch;  // what one request carries
    else
      spec->outputs.push_back(t.name);
  }
  return add(std::move(spec), opt);
}

int32_t Runtime::load_bundle(BundleSpec spec, const LoadOptions& opt) {
  if (!spec.host || !spec.device_inputs) throw RunError("a bundle needs its host and device_inputs callbacks");
  if (opt.batch != 1) throw RunError("server-side batching of bundles is not supported");
  return add(std::make_shared<BundleSpec>(std::move(spec)), opt);
}

int32_t Runtime::add(std::shared_ptr<const BundleSpec> spec, const LoadOptions& opt) {
  int32_t id;
  {
    std::lock_guard<std::mutex> g(mu_);
    id = static_cast<int32_t>(specs_.size());
    specs_[id] = spec;
    alias_[id] = id;
  }
  call([&] { return host_->load(spec, opt, id); });
  return id;
}

void Runtime::unload(int32_t id) {
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  post([this, id, done] { host_->unload(id, [done] { done->set_value(); }); });
  fut.get();
}

void Runtime::swap(int32_t old_id, int32_t new_id) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!specs_.count(old_id) || !specs_.count(new_id)) throw RunError("swap: no such model");
    for (auto& [from, to] : alias_)
      if (to == old_id) to = new_id;
  }
  unload(old_id);
}

std::unique_ptr<Request> Runtime::prepare(int32_t id, Tensors inputs, bool keep_outputs,
                                          std::shared_future<RequestResult>& fut, int32_t& target) {
  auto p = std::make_shared<std::promise<RequestResult>>();
  fut = p->get_future().share();
  std::shared_ptr<const BundleSpec> spec;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto a = alias_.find(id);
    if (a == alias_.end()) throw RunError(fmt::format("no model {}", id));
    target = a->second;
    spec = specs_.at(target);
  }
  // Names and sizes, before anything reaches the simulation.
  std::string bad;
  for (const auto& [name, bytes] : inputs)
    if (!spec->inputs.count(name)) bad = fmt::format("unknown input '{}'", name);
  for (const auto& [name, size] : spec->inputs) {
    if (!bad.empty()) break;
    auto it = inputs.find(name);
    if (it == inputs.end())
      bad = fmt::format("missing input '{}'", name);
    else if (it->second.size() != size)
      bad = fmt::format("input '{}': got {} bytes, expected {}", name, it->second.size(), size);
  }
  if (!bad.empty()) {
    RequestResult r;
    r.model = id;
    r.status = Status::bad_input;
    r.message = bad;
    p->set_value(std::move(r));
    return nullptr;
  }
  auto q = std::make_unique<Request>();
  q->inputs = std::make_shared<const Tensors>(std::move(inputs));
  q->keep_outputs = keep_outputs;
  q->done = [p](RequestResult& r) { p->set_value(std::move(r)); };
  return q;
}

std::shared_future<RequestResult> Runtime::submit(int32_t id, Tensors inputs, bool keep_outputs) {
  return submit_all(id, {std::move(inputs)}, keep_outputs).at(0);
}

std::vector<std::shared_future<RequestResult>> Runtime::submit_all(int32_t id, std::vector<Tensors> inputs,
                                                                   bool keep_outputs) {
  std::vector<std::shared_future<RequestResult>> futs(inputs.size());
  auto batch = std::make_shared<std::vector<std::pair<int32_t, std::unique_ptr<Request>>>>();
  for (size_t i = 0; i < inputs.size(); ++i) {
    int32_t target = id;
    if (auto q = prepare(id, std::move(inputs[i]), keep_outputs, futs[i], target)) batch->emplace_back(target, std::move(q));
  }
  if (!batch->empty())
    post([this, batch] {
      for (auto& [target, q] : *batch) host_->enqueue(target, std::move(q));
    });
  return futs;
}

Workload Runtime::run_workload(Workload w) {
  auto p = std::make_shared<std::promise<Workload>>();
  auto fut = p->get_future();
  post([this, p, w = std::move(w)]() mutable {
    struct State {
      Workload w;
      std::shared_ptr<std::promise<Workload>> p;
      uint64_t active = 0;  // generators running plus requests outstanding
      bool finished = false;
      std::vector<uint64_t> issued;
      std::vector<std::shared_ptr<const Tensors>> inputs;
      void release() {
        if (--active == 0) {
          finished = true;
          p->set_value(std::move(w));
        }
      }
    };
    auto s = std::make_shared<State>();
    s->w = std::move(w);
    s->p = p;
    // The load starts on the next clock epoch, so that the same workload sees the same cycles
    // whenever it runs in the process.
    const sc_time epoch = host_->clock_epoch();
    sc_time start = sc_core::sc_time_stamp();
    if (epoch != sc_core::SC_ZERO_TIME) start = epoch * std::ceil(start / epoch);
    s->w.start_s = seconds(start);
    auto until_start = [start] {
      if (start > sc_core::sc_time_stamp()) sc_core::wait(start - sc_core::sc_time_stamp());
    };
    s->issued.assign(s->w.loads.size(), 0);
    for (const auto& l : s->w.loads) s->inputs.push_back(std::make_shared<const Tensors>(l.inputs));
    Host* host = host_.get();
    // One request of load `li`; `waiter` is notified when it is answered.
    auto issue = [s, host](size_t li, sc_core::sc_event* waiter) {
      const Load& l = s->w.loads[li];
      ++s->issued[li];
      ++s->active;
      auto q = std::make_unique<Request>();
      q->inputs = s->inputs[li];
      q->keep_outputs = l.keep_outputs;
      q->done = [s, waiter](RequestResult& r) {
        s->w.results.push_back(std::move(r));
        s->w.end_s = std::max(s->w.end_s, s->w.results.back().end_s);
        if (waiter) waiter->notify(sc_core::SC_ZERO_TIME);
        s->release();
      };
      host->enqueue(l.model, std::move(q));
    };
    auto more = [s, start](size_t li) {
      const Load& l = s->w.loads[li];
      if (l.requests && s->issued[li] >= l.requests) return false;
      if (l.duration_s > 0 && sc_core::sc_time_stamp() - start >= sc_time(l.duration_s, sc_core::SC_SEC)) return false;
      return l.requests || l.duration_s > 0;
    };
    if (s->w.sample_period_s > 0)
      // The monitor's sampler: every counter, each period, until the load is done.
      sc_core::sc_spawn([s, host, until_start] {
        until_start();
        const sc_time period(s->w.sample_period_s, sc_core::SC_SEC);
        for (;;) {
          sc_core::wait(period);
          if (s->finished) break;
          std::vector<uint64_t> values;
          for (const auto& c : host->counters()) values.push_back(c.value);
          s->w.samples.emplace_back(seconds(sc_core::sc_time_stamp()), std::move(values));
        }
      });
    ++s->active;  // the set-up itself, released below
    for (size_t li = 0; li < s->w.loads.size(); ++li) {
      const Load& l = s->w.loads[li];
      if (l.workers) {
        for (uint32_t k = 0; k < l.workers; ++k) {
          ++s->active;
          sc_core::sc_spawn([s, li, issue, more, until_start] {
            until_start();
            sc_core::sc_event answered;
            while (more(li)) {
              issue(li, &answered);
              sc_core::wait(answered);
            }
            s->release();
          });
        }
      } else if (l.rate > 0 || !l.trace.empty()) {
        ++s->active;
        sc_core::sc_spawn([s, li, issue, more, start] {
          const Load& l = s->w.loads[li];
          std::mt19937_64 rng(l.seed);
          sc_time next = start;
          for (size_t k = 0;; ++k) {
            if (l.trace.empty()) {
              // Exponential gaps from the engine's raw bits (portable across standard libraries).
              const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
              next += sc_time(-std::log1p(-u) / l.rate, sc_core::SC_SEC);
            } else {
              if (k >= l.trace.size()) break;
              next = start + sc_time(l.trace[k], sc_core::SC_SEC);
            }
            if (next > sc_core::sc_time_stamp()) sc_core::wait(next - sc_core::sc_time_stamp());
            if (!more(li) && !(l.trace.size() && !l.requests && l.duration_s == 0)) break;
            issue(li, nullptr);
          }
          s->release();
        });
      }
    }
    s->release();
  });
  return fut.get();
}

std::vector<CounterValue> Runtime::counters() {
  return call([this] { return host_->counters(); });
}

double Runtime::now_s() {
  return call([] { return sc_core::sc_time_stamp().to_seconds(); });
}

Runtime::Solo Runtime::run_solo(const isa::Executable& exe, Tensors inputs, bool timing_only, uint32_t first_core) {
  LoadOptions opt;
  opt.name = "solo";
  opt.groups = {first_core};
  opt.timing_only = timing_only;
  opt.timeout_s = 10.0;
  const auto before = counters();
  const int32_t id = load(exe, opt);
  RequestResult r = submit(id, std::move(inputs)).get();
  unload(id);
  Solo s{std::move(r), counters()};
  for (size_t i = 0; i < s.counters.size(); ++i) s.counters[i].value -= before[i].value;
  if (s.result.status != Status::success && s.result.status != Status::numerical_error)
    throw RunError(s.result.message);
  return s;
}

void Runtime::start_trace(uint64_t limit) {
  call([this, limit] {
    host_->recorder = std::make_unique<traces::Recorder>(limit);
    host_->inst().set_recorder(host_->recorder.get());
  });
}

std::unique_ptr<traces::Recorder> Runtime::stop_trace() {
  auto* r = call([this] {
    host_->inst().set_recorder(nullptr);
    return host_->recorder.release();
  });
  return std::unique_ptr<traces::Recorder>(r ? r : new traces::Recorder(0));
}

std::vector<uint32_t> Runtime::used_cores() {
  return call([this] { return std::vector<uint32_t>(host_->used_cores.begin(), host_->used_cores.end()); });
}

std::map<int32_t, std::string> Runtime::models() {
  return call([this] {
    std::map<int32_t, std::string> m;
    for (const auto& [id, model] : host_->models) m[id] = model->opt.name;
    return m;
  });
}

}  // namespace infsim::sim
