#!/usr/bin/python3
"""Benchmark suite for real models (issue 5): ResNet-50 batch 1 and 8,
BERT-base seq 128 batch 1 (and any reference model by name).

Per case, measured in this run on this machine:
  compile_s            ONNX -> executable
  simulate_wall_s      full simulation (values and cycles), median of --repeat
  timing_only_wall_s   timing-only simulation (same cycles, no values)
  torch_cpu_s          PyTorch eager FP32 inference of the same model, same
                       thread count as the simulator (1), median
  sim_over_torch, timing_only_over_torch   the ratios
  simulated_cycles, cycles_per_wall_s
  peak_rss_mib         peak resident memory of a fresh process that loads the
                       executable and simulates it once (no PyTorch in it)
  sim_rss_mib          the same less the process's memory before loading the
                       executable (interpreter, numpy, infsim: about 48 MiB)
  exe_mib, activation_mib   executable size; DRAM high-water of activations
  memory_ratio         sim_rss_mib / (exe_mib + activation_mib), the issue's measure
  cosine               against PyTorch FP32

    bench/models_bench.py [--cases resnet50:1,resnet50:8,bert_base:1] [--repeat N] [--json OUT]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path[:0] = [os.path.join(ROOT, "python"), ROOT]

import models  # noqa: E402
from models.export import input_names, to_onnx  # noqa: E402
from infsim import runtime  # noqa: E402
from infsim.accuracy import cosine  # noqa: E402
from infsim.compiler import compile_model  # noqa: E402
from mlp_bench import median_time  # noqa: E402  (this directory is on sys.path when run as a script)

DEFAULT = "resnet50:1,resnet50:8,bert_base:1"

# Run in a fresh interpreter: simulate once; report the peak resident memory
# (VmHWM: ru_maxrss would carry the parent's over fork and exec) and the
# resident memory before loading the executable (the interpreter, numpy and
# infsim), in KiB.
PEAK_SCRIPT = """
import sys, numpy as np
sys.path.insert(0, {python!r})
from infsim import runtime
def status(key):
    return int(open("/proc/self/status").read().split(key + ":")[1].split()[0])
base = status("VmRSS")
exe = runtime.load({exe!r})
with np.load({inputs!r}) as z:
    feeds = {{k: z[k] for k in z.files}}
runtime.run(exe, feeds)
print(base, status("VmHWM"))
"""


def bench_case(name, batch, dtype, repeat, tmp):
    model = models.build(name)
    inputs = models.example_inputs(name, batch=batch)
    proto = to_onnx(model, inputs)
    names = input_names(proto)
    feeds = {n: x.numpy() for n, x in zip(names, inputs)}
    t0 = time.perf_counter()
    exe = compile_model(proto, "inf1", dtype)
    compile_s = time.perf_counter() - t0
    exe_path = os.path.join(tmp, f"{name}_b{batch}.infx")
    exe.save(exe_path)
    meta = runtime.metadata(exe)
    out = {}

    def simulate():
        out["y"], out["stats"] = runtime.run(exe, feeds)

    sim_s = median_time(simulate, repeat)
    timing_s = median_time(lambda: runtime.run(exe, feeds, timing_only=True), repeat)
    with torch.no_grad():
        model(*inputs)  # warm-up
        torch_s = median_time(lambda: model(*inputs), max(repeat, 3))
        ref = model(*inputs)
    ref = (ref[0] if isinstance(ref, (tuple, list)) else ref).numpy()
    y = list(out["y"].values())[0]
    cos = cosine(y, ref)
    in_path = os.path.join(tmp, f"{name}_b{batch}_in.npz")
    np.savez(in_path, **feeds)
    script = PEAK_SCRIPT.format(python=os.path.join(ROOT, "python"), exe=exe_path, inputs=in_path)
    base_kib, peak_kib = map(int, subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                                 check=True).stdout.split()[-2:])
    st = out["stats"]
    return {"model": name, "batch": batch, "dtype": dtype, "compile_s": compile_s, "simulate_wall_s": sim_s,
            "timing_only_wall_s": timing_s, "torch_cpu_s": torch_s, "sim_over_torch": sim_s / torch_s,
            "timing_only_over_torch": timing_s / torch_s, "simulated_cycles": st["total_cycles"],
            "simulated_ms": st["simulated_seconds"] * 1e3, "cycles_per_wall_s": st["total_cycles"] / sim_s,
            "peak_rss_mib": peak_kib / 1024, "sim_rss_mib": (peak_kib - base_kib) / 1024,
            "exe_mib": os.path.getsize(exe_path) / 2**20,
            "activation_mib": meta.get("activation_bytes", 0) / 2**20,
            "memory_ratio": (peak_kib - base_kib) / 1024 / (os.path.getsize(exe_path) / 2**20 +
                                                            meta.get("activation_bytes", 0) / 2**20),
            "tensor_utilization": st["derived"].get("chip0.core0.tensor.utilization", 0.0), "cosine": cos}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=DEFAULT, help="comma-separated model:batch")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(1)  # the simulator runs on one thread: compare like with like
    rows = []
    hdr = ["model", "batch", "compile_s", "simulate_wall_s", "timing_only_wall_s", "torch_cpu_s", "sim_over_torch",
           "timing_only_over_torch", "simulated_cycles", "cycles_per_wall_s", "peak_rss_mib", "sim_rss_mib",
           "exe_mib", "activation_mib", "memory_ratio", "tensor_utilization", "cosine"]
    print(" | ".join(hdr), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for case in a.cases.split(","):
            name, batch = case.split(":")
            r = bench_case(name, int(batch), a.dtype, a.repeat, tmp)
            rows.append(r)
            print(" | ".join(f"{r[h]:.4g}" if isinstance(r[h], float) else str(r[h]) for h in hdr), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
