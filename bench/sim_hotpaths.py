#!/usr/bin/python3
"""Simulator speed on its hot paths: wall time of full and timing-only runs.

    bench/sim_hotpaths.py [--only matmul,elementwise,dma] [--scale S] [--repeat N] [--json REPORT.json]

  matmul       a chain of BF16 matmuls, [128x64] stationary x [128x512] moving,
               accumulating into 8 PSUM banks (2000 at --scale 1: 8.4 G MACs,
               about two ResNet-50 inferences).
  elementwise  vector tensor_tensor / tensor_scalar / tensor_copy and scalar
               activation / tensor_copy on [128, 2048] BF16 tiles.
  dma          DRAM FP32 <-> SBUF BF16 copies of 1 MiB [128, 2048] blocks on
               four queues (converting on the way), both directions.

Each program runs once to warm up, then --repeat times full and timing-only;
the best wall and CPU (process) times of each are reported, with the simulated cycles and a
digest of the outputs and counters, so two builds can be compared for
identical results as well as for speed (timing-only runs must give the full
run's cycles and counters; the script checks that).
"""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

try:
    from infsim import _infsim  # a PYTHONPATH may name another build of the package
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    from infsim import _infsim
from infsim.isa import AP, dram, onchip, psum  # noqa: E402
from infsim.program import ProgramBuilder  # noqa: E402

CONFIG = "inf1"
QUEUES = ["dma0", "dma1", "dma2", "dma3"]


def matmul_program(count):
    h = ProgramBuilder()
    rng = np.random.default_rng(0)
    w = h.input("w", rng.standard_normal((128, 64 * 8)).astype(np.float32), "bf16")
    xs = [h.input(f"x{i}", rng.standard_normal((128, 512)).astype(np.float32), "bf16") for i in range(4)]
    banks = 8
    for i in range(count):
        st = AP("sbuf", 0, 128, w.offset + (i % 8) * 64 * 2, "bf16", ((64, 1),))
        h.emit("tensor", "load_stationary", {"src": st})
        h.emit("tensor", "multiply_moving", {"src": xs[i % 4], "dst": psum(0, 64, (i % banks) * 2048, [(512, 1)]),
                                             "accumulate": int(i >= banks)})
    h.output("y", psum(0, 64, 0, [(512 * banks, 1)]), "tensor")
    return h


def elementwise_program(rounds):
    h = ProgramBuilder()
    rng = np.random.default_rng(1)
    shape = (128, 2048)
    a = h.input("a", rng.standard_normal(shape).astype(np.float32), "bf16")
    b = h.input("b", rng.standard_normal(shape).astype(np.float32), "bf16")
    col = h.input("col", rng.standard_normal((128, 1)).astype(np.float32))
    v1, v2, v3 = (h.alloc(*shape, "bf16") for _ in range(3))
    s1, s2 = h.alloc(*shape, "bf16"), h.alloc(*shape, "fp32")
    for _ in range(rounds):
        h.emit("vector", "tensor_tensor", {"op": "add", "in0": a, "in1": b, "dst": v1})
        h.emit("vector", "tensor_tensor", {"op": "mul", "in0": v1, "in1": b, "dst": v2})
        h.emit("vector", "tensor_scalar", {"op0": "mul", "op1": "add", "src": v2, "dst": v3, "imm0": 0.0,
                                           "imm1": 0.5, "col0": col})
        h.emit("vector", "tensor_copy", {"src": v3, "dst": v1})
        h.emit("scalar", "activation", {"func": "gelu", "src": a, "dst": s1, "scale": 0.75, "bias": col})
        h.emit("scalar", "activation", {"func": "identity", "src": b, "dst": s2, "scale": 1.0})
        h.emit("scalar", "tensor_copy", {"src": s2, "dst": s1})
    h.prog.emit("scalar", "nop", waits=[("done_vector", h.prog.semaphore_value("done_vector"))], signal="done_scalar")
    h.output("v", v3, "vector")
    h.output("s", s1, "scalar")
    return h


def dma_program(blocks):
    h = ProgramBuilder()
    rng = np.random.default_rng(2)
    p, f = 128, 2048
    src = h.dram_input("src", rng.standard_normal((p * 4, f)).astype(np.float32))  # four 1 MiB blocks
    out = [h._dram(p * f * 4) for _ in range(4)]
    tiles = [h.alloc(p, f, "bf16") for _ in range(4)]
    for i in range(blocks):
        q = QUEUES[i % 4]
        t = i % 4
        load = h.exe.add_dma(dram(src + t * p * f * 4, "fp32", p, f, [(f, 1)]), onchip(tiles[t]))
        store = h.exe.add_dma(onchip(tiles[t]), dram(out[t], "fp32", p, f, [(f, 1)]))
        h.prog.emit(q, "dma_copy", {"desc": load, "count": 1}, signal=q)
        h.prog.emit(q, "dma_copy", {"desc": store, "count": 1}, signal=q)
    h.prog.emit("vector", "nop", waits=[(q, h.prog.semaphore_value(q)) for q in QUEUES], signal="done_vector")
    for t in range(4):
        h.exe.add_tensor(f"y{t}", "output", "fp32", [p, f], 0, out[t])
        h.outputs.append(f"y{t}")
    h.output("tile0", tiles[0], "vector")
    return h


def digest(result, outputs):
    """Cycles, a digest of the output bytes and one of every counter."""
    o = hashlib.sha256()
    for name in sorted(outputs):
        o.update(result["outputs"][name])
    c = hashlib.sha256(repr(sorted(tuple(x) for x in result["counters"])).encode())
    return {"cycles": result["total_cycles"], "outputs": o.hexdigest()[:16], "counters": c.hexdigest()[:16]}


def measure(name, h, repeat):
    exe = h.finish()
    inputs = {k: v.tobytes() for k, v in h.inputs.items()}
    _infsim.run(exe, inputs, CONFIG, False)  # warm-up: elaboration, page allocation
    row = {}
    for mode, timing_only in (("full", False), ("timing_only", True)):
        wall = cpu = float("inf")
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            r = _infsim.run(exe, inputs, CONFIG, timing_only)
            wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
        row[mode] = {"wall_s": wall, "cpu_s": cpu, **digest(r, h.outputs)}
    full, fast = row["full"], row["timing_only"]
    if (full["cycles"], full["counters"]) != (fast["cycles"], fast["counters"]):
        raise SystemExit(f"{name}: timing-only run disagrees with the full run: {full} vs {fast}")
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="matmul,elementwise,dma")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every category's instruction count")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    programs = {
        "matmul": lambda: matmul_program(int(2000 * a.scale)),
        "elementwise": lambda: elementwise_program(int(40 * a.scale)),
        "dma": lambda: dma_program(int(128 * a.scale)),
    }
    report = {"config": CONFIG, "scale": a.scale}
    for name in a.only.split(","):
        row = measure(name, programs[name](), a.repeat)
        report[name] = row
        f, t = row["full"], row["timing_only"]
        print(f"{name:12} full {f['wall_s']:7.3f} s (cpu {f['cpu_s']:7.3f})   timing-only {t['wall_s']:7.3f} s"
              f" (cpu {t['cpu_s']:7.3f})   cycles {f['cycles']:>9}   outputs {f['outputs']}   counters {f['counters']}",
              flush=True)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
