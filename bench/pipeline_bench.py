#!/usr/bin/python3
"""Pipeline speed case (issue 11): BERT-base seq 128 batch 1 BF16 as a
16-core pipeline (--pipeline-cores 16) on inf1.6xlarge (4 chips: stages
cross the NeuronLinks), N requests (default 100) from 17 closed-loop
workers (a client per stage and one more), once with full values and once
timing-only, each in one simulation.

Reports, measured in this run on this machine:
  compile_s                 compiling the 16 stages
  load_s                    loading (constants, connections, each stage's load program)
  values_wall_s             simulating the N requests with values
  timing_wall_s             simulating them timing-only
  throughput_avg, latency_ms_p50   simulated, timing-only run (bench's definitions)
  streamed_weight_bytes     DRAM bytes of weights the stages' run programs read per request
  torch_cpu_ms              PyTorch eager FP32 BERT-base batch 1 on the CPU, median of 5, one thread
  values_wall_per_request_over_torch    values_wall_s / N / torch_cpu_ms

    bench/pipeline_bench.py [--requests N] [--pipeline-cores P] [--json OUT]
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path[:0] = [os.path.join(ROOT, "python"), ROOT]

import torch  # noqa: E402

import models  # noqa: E402
from infsim import runtime  # noqa: E402
from infsim.tools.bench import bench_inputs, executables, summarise  # noqa: E402
from mlp_bench import median_time  # noqa: E402  (this directory is on sys.path when run as a script)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--pipeline-cores", type=int, default=16)
    ap.add_argument("--json")
    a = ap.parse_args()
    p = a.pipeline_cores
    t0 = time.perf_counter()
    [(batch, exe)] = executables("bert_base", [1], "inf1", "bf16", [p])
    compile_s = time.perf_counter() - t0
    meta = runtime.metadata(exe)
    rt = runtime.Runtime("inf1.6xlarge")
    report = {"requests": a.requests, "pipeline_cores": p, "compile_s": compile_s,
              "streamed_weight_bytes": sum(s["streamed_weight_bytes"] for s in meta["pipeline"])}
    for mode, timing_only in (("values", False), ("timing", True)):
        t0 = time.perf_counter()
        m = rt.load(exe, replicas=1, timing_only=timing_only)
        report.setdefault("load_s", time.perf_counter() - t0)
        warmup = p + 1
        t0 = time.perf_counter()
        w = rt.run_workload([{"model": m, "inputs": bench_inputs(exe), "workers": p + 1,
                              "requests": a.requests + warmup}])
        report[f"{mode}_wall_s"] = time.perf_counter() - t0
        m.unload()
        done = summarise(w["results"], w["start_s"], 0, warmup)
        if timing_only:
            span = max(r["end_s"] for r in done) - min(r["arrival_s"] for r in done)
            lat = sorted(r["end_s"] - r["arrival_s"] for r in done)
            report["throughput_avg"] = len(done) * batch / span
            report["latency_ms_p50"] = lat[len(lat) // 2] * 1e3
    torch.set_num_threads(1)
    net = models.build("bert_base")
    x = models.example_inputs("bert_base", batch=1)
    with torch.no_grad():
        net(*x)  # warm-up
        torch_ms = median_time(lambda: net(*x), 5) * 1e3
    report["torch_cpu_ms"] = torch_ms
    report["values_wall_per_request_over_torch"] = report["values_wall_s"] / (a.requests + p + 1) * 1e3 / torch_ms
    for k, v in report.items():
        print(f"{k:36} {v:.4g}" if isinstance(v, float) else f"{k:36} {v}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
