// The runtime: the host-side software that plays libnrt on a simulated
// instance. It loads models onto core groups (constants into the group's
// DRAM slices, once), queues requests per model in simulated time, moves
// each request's inputs and outputs over the chip's PCIe link, drives the
// chip's firmware through its registers, and answers every request exactly
// once with a Neuron-style status.
//
// Threads. SystemC runs on one thread: the runtime's simulation thread,
// started by Runtime::get, elaborates the instance and is the only thread
// that ever touches it. Host threads call load/submit/unload/... at any
// time; each call is a task the simulation thread takes from a queue
// between simulation slices. A request submitted from a live host thread
// arrives at the simulated time at which the simulation thread takes it
// from the queue. Load generators (run_workload) run inside the simulation,
// so their requests arrive at exact simulated times and give the same
// cycles run after run.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "isa/executable.h"
#include "sim/counters.h"
#include "sim/system/instance_config.h"
#include "traces/recorder.h"

namespace infsim::sim {

// Request statuses, named after the Neuron runtime's (nrt_status).
enum class Status : uint32_t {
  success = 0,           // NRT_SUCCESS
  bad_input = 1,         // NRT_EXEC_BAD_INPUT
  timeout = 2,           // NRT_TIMEOUT
  queue_full = 3,        // NRT_QUEUE_FULL
  not_enough_cores = 4,  // NRT_LOAD_NOT_ENOUGH_NC
  hardware_error = 5,    // NRT_HW_ERROR
  numerical_error = 6,   // NRT_EXEC_COMPLETED_WITH_NUM_ERR: NaN or Inf in an output
  unloaded = 7,          // NRT_INVALID_HANDLE: the model was unloaded
  failure = 8,           // NRT_FAILURE: a host step failed
};
const char* status_name(Status s);  // "NRT_SUCCESS", ...

using Tensors = std::map<std::string, std::vector<uint8_t>>;

// One request's life, in simulated seconds from the simulation's start.
struct RequestResult {
  uint64_t id = 0;
  int32_t model = -1, replica = -1;
  Status status = Status::success;
  std::string message;
  double arrival_s = 0, start_s = 0, input_done_s = 0, device_done_s = 0, end_s = 0;
  uint64_t device_cycles = 0;  // the group's CYCLES registers: doorbell to end_of_program (max over its cores,
                               // summed over a bundle's device steps)
  double host_s = 0;           // simulated time its host steps took on the vCPUs, waits for a vCPU included
  std::vector<uint64_t> stage_cycles;  // a pipeline's: each stage's run program, its core's CYCLES
  Tensors outputs;
};

struct LoadOptions {
  std::string name;             // for reports
  std::vector<uint32_t> groups; // first global core of each replica (global core = 4 x chip + core)
  bool timing_only = false;     // same cycles and counters, values not computed
  double timeout_s = 1.0;       // simulated; from arrival
  uint32_t queue_depth = 4096;  // requests waiting, at most; more get queue_full
  // Server-side batching: with batch > 1 (the compiled batch), each request
  // carries 1/batch of every input's rows, and a replica coalesces up to
  // `batch` queued requests, waiting at most max_delay_s after the oldest's
  // arrival for more; the batch is zero-padded and run once.
  uint32_t batch = 1;
  double max_delay_s = 0;
};

// A model whose ops do not all run on the device (a bundle): device
// executables and host steps, run in order on one core group (the device
// steps on consecutive cores) and the instance's vCPUs. Values pass between
// steps by name.
struct BundleSpec {
  struct Step {
    std::shared_ptr<const isa::Executable> exe;  // a device step; null: a host step
    double host_seconds = 0;                     // a host step's CPU time on one vCPU, simulated
  };
  std::vector<Step> steps;
  std::map<std::string, uint64_t> inputs;  // the bundle's inputs: name -> bytes
  std::vector<std::string> outputs;
  // Called on the simulation thread. `host` computes a host step's outputs
  // from the values so far; `device_inputs` gives a device step's inputs as
  // its input tensors' bytes. Both may throw (the request fails with NRT_FAILURE).
  std::function<Tensors(size_t step, const Tensors& values)> host, device_inputs;
};

// Load generated inside the simulation, for one model.
struct Load {
  int32_t model = -1;
  Tensors inputs;               // every request's inputs
  uint32_t workers = 0;         // closed loop: clients each with one request in flight
  double rate = 0;              // open loop: Poisson arrivals per simulated second
  std::vector<double> trace;    // open loop: arrival times, simulated seconds from the workload's start
  uint64_t requests = 0;        // requests to issue (0: until duration_s)
  double duration_s = 0;        // simulated; 0: until `requests`
  uint64_t seed = 0;
  bool keep_outputs = false;
};

struct Workload {
  std::vector<Load> loads;      // run at once
  double sample_period_s = 0;   // > 0: every counter's value is read each period (monitor)
  double start_s = 0;           // the simulated time the workload started
  double end_s = 0;             // the last request's end
  std::vector<RequestResult> results;
  std::vector<std::pair<double, std::vector<uint64_t>>> samples;  // (time, counter values in counters() order)
};

struct CounterValue {
  std::string path, name, unit, description;  // path: chip0.core0.tensor, link.chip0-chip1, ...
  uint64_t value;
};

class Host;
struct Request;

class Runtime {
 public:
  // The process's runtime, on its instance. The first call elaborates; a
  // later call for another instance or chip configuration throws RunError.
  static Runtime& get(const InstanceConfig& instance, const ChipConfig& chip);
  static bool can_run(const InstanceConfig& instance, const ChipConfig& chip);
  ~Runtime();

  const InstanceConfig& instance_config() const { return icfg_; }
  const ChipConfig& chip_config() const { return ccfg_; }
  uint32_t num_cores() const { return icfg_.chips * ccfg_.cores; }

  // Loads a model: validates it, places its constants in every replica's
  // DRAM slices. Throws RunError (not enough cores, cores in use, invalid).
  int32_t load(const isa::Executable& exe, const LoadOptions& opt);
  // A bundle: each group holds its device steps' cores (opt.groups: first cores).
  int32_t load_bundle(BundleSpec spec, const LoadOptions& opt);
  // New requests to `id` fail with `unloaded`; queued and running ones finish first.
  void unload(int32_t id);
  // Blue/green: requests submitted to `old_id` from now on go to `new_id`;
  // `old_id` serves what it has queued, then unloads.
  void swap(int32_t old_id, int32_t new_id);
  // Checked here (names, sizes: bad_input at once), answered by the simulation.
  std::shared_future<RequestResult> submit(int32_t id, Tensors inputs, bool keep_outputs = true);
  // Several requests that arrive at the same simulated time (a batch scattered over replicas).
  std::vector<std::shared_future<RequestResult>> submit_all(int32_t id, std::vector<Tensors> inputs,
                                                            bool keep_outputs = true);
  // Runs load generators to completion in simulated time (blocks the caller).
  Workload run_workload(Workload w);
  // Every counter of every chip and link, read through the chips' COUNTER registers.
  std::vector<CounterValue> counters();
  double now_s();
  // One request alone: load onto `first_core`, run, unload. Counters are
  // the differences over the request. Throws RunError for bad inputs, a
  // device fault or a timeout (outputs with NaN/Inf come back with that status).
  struct Solo {
    RequestResult result;
    std::vector<CounterValue> counters;
  };
  Solo run_solo(const isa::Executable& exe, Tensors inputs, bool timing_only, uint32_t first_core = 0);
  // Models loaded (id -> name), and which global cores are in use.
  std::map<int32_t, std::string> models();
  std::vector<uint32_t> used_cores();  // global core numbers held by loaded models
  // Trace recording (traces/recorder.h) on every core, keeping at most `limit`
  // events; stop_trace returns them with the count of those dropped.
  void start_trace(uint64_t limit);
  std::unique_ptr<traces::Recorder> stop_trace();

 private:
  Runtime(const InstanceConfig& icfg, const ChipConfig& ccfg);
  void loop();
  // Runs `f` on the simulation thread and waits for it.
  template <typename F>
  auto call(F f) -> decltype(f());
  void post(std::function<void()> task);
  int32_t add(std::shared_ptr<const BundleSpec> spec, const LoadOptions& opt);
  // Checks one request's inputs; the request to enqueue, or null when it was answered at once.
  std::unique_ptr<Request> prepare(int32_t id, Tensors inputs, bool keep_outputs,
                                          std::shared_future<RequestResult>& fut, int32_t& target);

  InstanceConfig icfg_;
  ChipConfig ccfg_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::function<void()>> tasks_;
  bool stop_ = false;
  std::unique_ptr<Host> host_;  // lives on the simulation thread
  std::thread thread_;
  std::exception_ptr start_error_;
  // Model ids as submitters see them (swap redirects), and their tensor specs.
  std::map<int32_t, int32_t> alias_;
  std::map<int32_t, std::shared_ptr<const BundleSpec>> specs_;
};

}  // namespace infsim::sim
