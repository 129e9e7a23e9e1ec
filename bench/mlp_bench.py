#!/usr/bin/python3
"""Benchmark: compile time, simulation wall time and simulated cycles for MLPs,
against PyTorch CPU eager inference of the same model measured in the same run
with the same thread count (the simulator runs on one thread).

    bench/mlp_bench.py [--json REPORT.json] [--repeat N] [--dtype bf16|fp16|fp32]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path[:0] = [os.path.join(ROOT, "python"), os.path.join(ROOT, "models")]

import mlp  # noqa: E402
from infsim import runtime  # noqa: E402
from infsim.accuracy import cosine  # noqa: E402
from infsim.compiler import compile_model  # noqa: E402

CASES = [((784, 512, 256, 10), 1), ((784, 512, 256, 10), 8), ((784, 512, 256, 10), 64),
         ((1024, 4096, 4096, 1024), 16)]


def median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dtype", default="bf16")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for sizes, batch in CASES:
        model = mlp.build(sizes)
        x = mlp.example_input(batch, sizes[0])
        path = f"/tmp/infsim_bench_{'x'.join(map(str, sizes))}_b{batch}.onnx"
        torch.onnx.export(model, (x,), path, input_names=["x"], output_names=["y"], opset_version=13)
        t0 = time.perf_counter()
        exe = compile_model(path, "inf1", a.dtype)
        compile_s = time.perf_counter() - t0
        out = {}

        def simulate():
            out["y"], out["stats"] = runtime.run(exe, {"x": x.numpy()})

        sim_s = median_time(simulate, a.repeat)
        timing_s = median_time(lambda: runtime.run(exe, {"x": x.numpy()}, timing_only=True), a.repeat)
        with torch.no_grad():
            torch_s = median_time(lambda: model(x), max(a.repeat, 20))
            ref = model(x).numpy()
        y = out["y"]["y"]
        cos = cosine(y, ref)
        st = out["stats"]
        rows.append({"model": "mlp-" + "-".join(map(str, sizes)), "batch": batch, "dtype": a.dtype,
                     "compile_s": compile_s, "simulate_wall_s": sim_s, "torch_cpu_s": torch_s,
                     "sim_over_torch": sim_s / torch_s, "timing_only_wall_s": timing_s,
                     "timing_only_over_torch": timing_s / torch_s, "simulated_cycles": st["total_cycles"],
                     "simulated_us": st["simulated_seconds"] * 1e6,
                     "cycles_per_wall_s": st["total_cycles"] / sim_s,
                     "max_abs_err": float(np.abs(y - ref).max()), "cosine": cos})
    hdr = ["model", "batch", "compile_s", "simulate_wall_s", "torch_cpu_s", "sim_over_torch", "timing_only_wall_s",
           "timing_only_over_torch", "simulated_cycles",
           "simulated_us", "cycles_per_wall_s", "max_abs_err", "cosine"]
    print(" | ".join(hdr))
    for r in rows:
        print(" | ".join(f"{r[h]:.4g}" if isinstance(r[h], float) else str(r[h]) for h in hdr))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
