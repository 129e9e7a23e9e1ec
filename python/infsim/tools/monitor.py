"""`infsim monitor`: neuron-monitor on the simulator. It runs a workload
itself (bench's options) and writes one JSON object per period of
simulated time, then a final cumulative one for the whole run, with
neuron-monitor's structure and names:

  neuron_runtime_data[0].report.neuroncore_counters.neuroncores_in_use[core].{neuroncore_utilization, flops}
      per global core: the busiest of its engines' busy cycles over the period's cycles, in percent;
      2 x the tensor engine's multiply-accumulates per simulated second
  neuron_runtime_data[0].report.execution_stats
      error_summary and execution_summary: requests answered in the period, by status;
      latency_stats.total_latency / device_latency: p0 p1 p25 p50 p75 p99 p100 in seconds (linear
      interpolation), of the requests answered in the period: arrival to end, and the device part
      (inputs on the device to the device done)
  neuron_runtime_data[0].report.memory_used.neuron_runtime_used_bytes.neuron_device
      the loaded models' DRAM (their executables' dram_bytes, per replica), and per core in
      usage_breakdown.neuroncore_memory_usage: constants, model_code, model_shared_scratchpad,
      runtime_memory, tensors (core_memory)
  neuron_hardware_info: neuron_device_count, neuroncore_per_device_count

Every figure is simulated; `wall_s` in the final object is the simulator's own time.
"""
import json
import sys
import time

import numpy as np

from .. import _infsim, runtime
from ..isa import dtype_size
from . import bench

PERCENTILES = {"p0": 0, "p1": 1, "p25": 25, "p50": 50, "p75": 75, "p99": 99, "p100": 100}
# Neuron's execution_summary / error_summary keys for each status.
SUMMARY = {"NRT_SUCCESS": "completed", "NRT_EXEC_COMPLETED_WITH_NUM_ERR": "completed_with_num_err",
           "NRT_TIMEOUT": "timed_out", "NRT_EXEC_BAD_INPUT": "incorrect_input", "NRT_QUEUE_FULL": "failed_to_queue",
           "NRT_HW_ERROR": "completed_with_err", "NRT_FAILURE": "completed_with_err",
           "NRT_INVALID_HANDLE": "failed_to_queue"}
ERRORS = {"NRT_EXEC_COMPLETED_WITH_NUM_ERR": "numerical", "NRT_TIMEOUT": "transient", "NRT_QUEUE_FULL": "transient",
          "NRT_EXEC_BAD_INPUT": "model", "NRT_HW_ERROR": "hardware", "NRT_FAILURE": "runtime",
          "NRT_INVALID_HANDLE": "runtime"}


def _latency(values):
    if not values:
        return {k: None for k in PERCENTILES}
    return {k: float(np.percentile(values, p)) for k, p in PERCENTILES.items()}


def core_memory(exe, groups) -> dict:
    """neuron-monitor's usage_breakdown.neuroncore_memory_usage per global
    core of the loaded replicas (groups: each replica's first global core),
    in bytes of device DRAM: constants (weights), model_code (instruction
    words, every program), tensors (inputs and outputs), model_shared_scratchpad
    (activations), runtime_memory (none: the simulated runtime keeps nothing
    on the device)."""
    meta = runtime.metadata(exe)
    stages = meta.get("pipeline")
    per = {}
    for c in range(exe.num_cores):
        constants = sum(size for core, _, size in exe.constants if core == c)
        code = 128 * sum(len(lines) for core, _, _, lines, _ in exe.all_streams if core == c)
        tensors = sum(int(np.prod(t["shape"])) * dtype_size(t["dtype"]) for t in exe.tensors if t["core"] == c)
        if stages:
            scratch = max(0, stages[c]["dram_bytes"] - stages[c]["weight_bytes"])
        else:
            scratch = int(meta.get("activation_bytes", 0)) if c == 0 else 0
        per[c] = {"constants": constants, "model_code": code, "model_shared_scratchpad": scratch,
                  "runtime_memory": 0, "tensors": tensors}
    return {str(g + c): dict(v) for g in groups for c, v in per.items()}


def report(t0, t1, requests, before, after, names, cfg, device_bytes, chips, per_chip, memory=None):
    """One neuron-monitor object for the requests answered in [t0, t1) and
    the counter values `before` and `after` it (memory: core_memory's)."""
    period = t1 - t0
    busy, macs = {}, {}
    for (path, name), b, a in zip(names, before, after):
        if ".core" in path and name in ("busy_cycles", "macs"):  # chipI.coreN.engine
            chip, core, _ = path.split(".")
            g = int(chip[4:]) * per_chip + int(core[4:])
            if name == "busy_cycles":
                busy[g] = max(busy.get(g, 0), a - b)
            else:
                macs[g] = macs.get(g, 0) + a - b
    cycles = period * float(cfg["tensor_clock_mhz"]) * 1e6
    in_use = {str(g): {"neuroncore_utilization": 100.0 * v / cycles if cycles else 0.0,
                       "flops": 2.0 * macs.get(g, 0) / period if period else 0.0}
              for g, v in sorted(busy.items()) if v}
    summary = {k: 0 for k in set(SUMMARY.values())}
    errors = {k: 0 for k in ("generic", "numerical", "transient", "model", "runtime", "hardware")}
    for r in requests:
        summary[SUMMARY.get(r["status"], "completed_with_err")] += 1
        if r["status"] in ERRORS:
            errors[ERRORS[r["status"]]] += 1
    ok = [r for r in requests if r["status"] in ("NRT_SUCCESS", "NRT_EXEC_COMPLETED_WITH_NUM_ERR")]
    return {
        "period": {"start_s": t0, "end_s": t1},
        "neuron_runtime_data": [{
            "pid": 0, "neuron_runtime_tag": "infsim", "error": "",
            "report": {
                "neuroncore_counters": {"period": period, "neuroncores_in_use": in_use, "error": ""},
                "execution_stats": {
                    "period": period, "error_summary": errors, "execution_summary": summary,
                    "latency_stats": {
                        "total_latency": _latency([r["end_s"] - r["arrival_s"] for r in ok]),
                        "device_latency": _latency([r["device_done_s"] - r["input_done_s"] for r in ok])},
                    "error": ""},
                "memory_used": {"period": period, "neuron_runtime_used_bytes": {
                    "host": 0, "neuron_device": device_bytes,
                    "usage_breakdown": {"neuroncore_memory_usage": memory or {}}}, "error": ""}}}],
        "neuron_hardware_info": {"neuron_device_count": chips, "neuroncore_per_device_count": per_chip, "error": ""},
    }


class Prometheus:
    """The monitor objects' figures in Prometheus' text format, served on
    127.0.0.1:PORT/metrics (prometheus_client), with the names of
    neuron-monitor's Prometheus companion: neuroncore_utilization_ratio and
    neuroncore_flops {neuroncore}, execution_status_total {status_type},
    execution_errors_total {error_type}, execution_latency_seconds
    {latency_type, percentile} (the last period's), neuron_runtime_memory_used_bytes
    {memory_location}, neuroncore_memory_usage_bytes {neuroncore, memory_type},
    neuron_hardware_info {neuron_device_count, neuroncore_per_device_count}."""

    def __init__(self, port):
        from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
        r = self.registry = CollectorRegistry()
        self.util = Gauge("neuroncore_utilization_ratio", "NeuronCore utilisation over the last period (0-1)",
                          ["neuroncore"], registry=r)
        self.flops = Gauge("neuroncore_flops", "tensor-engine FLOP per simulated second, last period", ["neuroncore"],
                           registry=r)
        self.status = Counter("execution_status", "requests answered, by status", ["status_type"], registry=r)
        self.errors = Counter("execution_errors", "failed requests, by error type", ["error_type"], registry=r)
        self.latency = Gauge("execution_latency_seconds", "latency percentiles of the last period",
                             ["latency_type", "percentile"], registry=r)
        self.memory = Gauge("neuron_runtime_memory_used_bytes", "device memory of the loaded models",
                            ["memory_location"], registry=r)
        self.core_memory = Gauge("neuroncore_memory_usage_bytes", "device memory per NeuronCore",
                                 ["neuroncore", "memory_type"], registry=r)
        self.hw = Gauge("neuron_hardware_info", "the instance's devices", ["neuron_device_count",
                                                                           "neuroncore_per_device_count"], registry=r)
        start_http_server(port, addr="127.0.0.1", registry=r)

    def update(self, obj):
        rep = obj["neuron_runtime_data"][0]["report"]
        for core, v in rep["neuroncore_counters"]["neuroncores_in_use"].items():
            self.util.labels(core).set(v["neuroncore_utilization"] / 100.0)
            self.flops.labels(core).set(v["flops"])
        stats = rep["execution_stats"]
        for k, n in stats["execution_summary"].items():
            self.status.labels(k).inc(n)
        for k, n in stats["error_summary"].items():
            self.errors.labels(k).inc(n)
        for kind, pct in stats["latency_stats"].items():
            for p, v in pct.items():
                if v is not None:
                    self.latency.labels(kind, p).set(v)
        used = rep["memory_used"]["neuron_runtime_used_bytes"]
        self.memory.labels("host").set(used["host"])
        self.memory.labels("neuron_device").set(used["neuron_device"])
        for core, kinds in used.get("usage_breakdown", {}).get("neuroncore_memory_usage", {}).items():
            for k, v in kinds.items():
                self.core_memory.labels(core, k).set(v)
        hw = obj["neuron_hardware_info"]
        self.hw.labels(str(hw["neuron_device_count"]), str(hw["neuroncore_per_device_count"])).set(1)


def main(a):
    rt = runtime.Runtime(a.instance, a.config)
    [(batch, exe)] = bench.executables(a.model, [a.batch_size] if a.batch_size else None,
                                       a.target or a.config or "inf1", a.dtype)
    m = rt.load(exe, replicas=a.n_models, cores=a.cores, timing_only=a.timing_only, timeout_s=a.timeout)
    try:
        load = {"model": m, "inputs": bench.bench_inputs(exe, a.seed), "seed": a.seed}
        if a.trace:
            load["trace"] = bench.read_trace(a.trace)
        elif a.rate:
            load["rate"] = a.rate
        else:
            load["workers"] = a.n_models * a.workers_per_model
        if a.duration:
            load["duration_s"] = a.duration
        elif not a.trace:
            load["requests"] = a.requests
        names = [(p, n) for p, n, _, _, _ in rt.counter_list()]
        first = [v for *_, v in rt.counter_list()]
        t_start = rt.now_s()
        t0 = time.perf_counter()
        w = rt.run_workload([load], a.period)
        wall = time.perf_counter() - t0
        last = [v for *_, v in rt.counter_list()]
    finally:
        m.unload()
    cfg = _infsim.config(rt.config)
    per_chip = int(cfg["cores"])
    chips = int(rt.instance_config["chips"])
    device_bytes = int(runtime.metadata(exe).get("dram_bytes", 0)) * len(m.groups)
    memory = core_memory(exe, m.groups)
    prom = Prometheus(a.prometheus) if a.prometheus is not None else None
    out = open(a.output, "w") if a.output else sys.stdout
    try:
        # The periods, the last one cut short where the load ended.
        points = [(t_start, first)] + [(t, v) for t, v in w["samples"]]
        if w["end_s"] > points[-1][0]:
            points.append((w["end_s"] + 1e-12, last))
        for (ta, va), (tb, vb) in zip(points, points[1:]):
            done = [r for r in w["results"] if ta <= r["end_s"] < tb]
            obj = report(ta, tb, done, va, vb, names, cfg, device_bytes, chips, per_chip, memory)
            out.write(json.dumps(obj) + "\n")
            if prom:
                prom.update(obj)
        final = report(t_start, w["end_s"], w["results"], first, last, names, cfg, device_bytes, chips, per_chip,
                       memory)
        final["cumulative"] = True
        final["wall_s"] = wall
        out.write(json.dumps(final) + "\n")
    finally:
        if a.output:
            out.close()
    if prom:
        # Like neuron-monitor's exporter, it goes on serving (the run's last figures) until stopped.
        print(f"infsim monitor: serving Prometheus metrics on http://127.0.0.1:{a.prometheus}/metrics "
              "(Ctrl-C stops)", file=sys.stderr, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def add_parser(sub):
    p = sub.add_parser("monitor", help="neuron-monitor on the simulator: runs a workload, writes one JSON object "
                                       "per period of simulated time and a cumulative one")
    p.add_argument("model", help=".infx, .onnx or a reference model name (as bench)")
    p.add_argument("--instance", default="inf1.xlarge")
    p.add_argument("--config")
    p.add_argument("--target")
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--cores")
    p.add_argument("--n-models", type=int, default=1)
    p.add_argument("--workers-per-model", type=int, default=2)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--duration", type=float)
    p.add_argument("--rate", type=float)
    p.add_argument("--trace")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--timing-only", action="store_true")
    p.add_argument("--period", type=float, default=0.01, help="simulated seconds per report (default 0.01)")
    p.add_argument("-o", "--output", help="write the JSON lines here instead of standard output")
    p.add_argument("--prometheus", type=int, metavar="PORT",
                   help="also serve the figures in Prometheus' text format on 127.0.0.1:PORT/metrics, until stopped")
    p.set_defaults(fn=main)
    return p
