#!/usr/bin/python3
"""Serving speed case (issue 10): ResNet-50 batch 1 BF16 on inf1.xlarge, 4
replicas with 2 closed-loop workers each, N requests (default 10,000),
timing-only, in one simulation.

Reports, measured in this run on this machine:
  wall_s                 the simulation's wall time for the N requests (excludes compile and load)
  requests_per_wall_s    N / wall_s
  wall_ms_per_request    wall_s / N
  throughput_avg         simulated inferences per simulated second (bench's definition)
  torch_cpu_ms           PyTorch eager FP32 ResNet-50 batch 1 on the CPU, median of 5, one thread
  wall_per_request_over_torch   wall_ms_per_request / torch_cpu_ms

    bench/serving_bench.py [--requests N] [--json OUT]
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
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--json")
    a = ap.parse_args()
    [(batch, exe)] = executables("resnet50", [1], "inf1", "bf16")
    rt = runtime.Runtime("inf1.xlarge")
    m = rt.load(exe, replicas=4, timing_only=True)
    warmup = 8
    t0 = time.perf_counter()
    w = rt.run_workload([{"model": m, "inputs": bench_inputs(exe), "workers": 8, "requests": a.requests + warmup}])
    wall = time.perf_counter() - t0
    m.unload()
    done = summarise(w["results"], w["start_s"], 0, warmup)
    span = max(r["end_s"] for r in done) - min(r["arrival_s"] for r in done)
    torch.set_num_threads(1)
    net = models.build("resnet50")
    x = models.example_inputs("resnet50", batch=1)
    with torch.no_grad():
        net(*x)  # warm-up
        torch_ms = median_time(lambda: net(*x), 5) * 1e3
    report = {"requests": a.requests, "wall_s": wall, "requests_per_wall_s": (a.requests + warmup) / wall,
              "wall_ms_per_request": wall / (a.requests + warmup) * 1e3,
              "throughput_avg": len(done) * batch / span, "torch_cpu_ms": torch_ms,
              "wall_per_request_over_torch": wall / (a.requests + warmup) * 1e3 / torch_ms}
    for k, v in report.items():
        print(f"{k:30} {v:.4g}" if isinstance(v, float) else f"{k:30} {v}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
