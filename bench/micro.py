#!/usr/bin/python3
"""Microbenchmarks of the simulated inf1 NeuronCore and its DRAM.

    bench/micro.py [--json REPORT.json]

  matmul      BF16 [128x64] x [128x512] matmuls with operands in SBUF: array
              utilisation, from the cycle difference of 64 and 128 iterations.
  seq_copy    DRAM -> SBUF copies of contiguous 512 KiB blocks on 4 DMA queues,
              one core (its slice lies in one of the two channels) and two
              cores (cores 0 and 2: both channels).
  gather      64-byte rows gathered from a 1 GiB table, sequential rows vs
              random rows: same instructions and bytes, different addresses;
              the DRAM row counters explain the difference.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from infsim import _infsim  # noqa: E402
from infsim.isa import AP, CoreProgram, dram, onchip, psum, sbuf  # noqa: E402
from infsim.program import ProgramBuilder  # noqa: E402

CONFIG = "inf1"
cfg = _infsim.config(CONFIG)
CLOCK_HZ = float(cfg["tensor_clock_mhz"]) * 1e6
CHANNEL_BPS = int(cfg["dram_bus_bytes"]) * int(cfg["dram_mt_per_s"]) * 1e6
QUEUES = ["dma0", "dma1", "dma2", "dma3"]


def counters(result, prefix):
    # Chip 0's counters, named without the chip.
    own = [(p.removeprefix("chip0."), n, v) for p, n, _, _, v in result["counters"] if p.startswith("chip0.")]
    return {f"{p}.{n}": v for p, n, v in own if p.startswith(prefix)}


def matmul(iterations):
    h = ProgramBuilder()
    rng = np.random.default_rng(0)
    w = h.input("w", rng.standard_normal((128, 64 * 8)).astype(np.float32), "bf16")
    x = h.input("x", rng.standard_normal((128, 512)).astype(np.float32), "bf16")
    for i in range(iterations):
        st = AP("sbuf", 0, 128, w.offset + (i % 8) * 64 * 2, "bf16", ((64, 1),))
        h.emit("tensor", "load_stationary", {"src": st})
        h.emit("tensor", "multiply_moving", {"src": x, "dst": psum(0, 64, (i % 8) * 2048, [(512, 1)]), "accumulate": 0})
    h.output("y", psum(0, 1, 0, [(1, 1)]), "tensor")  # one element: a constant, tiny tail
    _, r = h.run(CONFIG)
    return r["total_cycles"]


def bench_matmul():
    c64, c128 = matmul(64), matmul(128)
    per_iter = (c128 - c64) / 64
    macs_per_cycle = 128 * 64 * 512 / per_iter
    peak = int(cfg["array_rows"]) * int(cfg["array_cols"])
    return {"cycles_per_matmul": per_iter, "ideal_cycles": 512, "macs_per_cycle": macs_per_cycle,
            "peak_macs_per_cycle": peak, "fraction_of_peak": macs_per_cycle / peak,
            "tflops_per_core": 2 * macs_per_cycle * CLOCK_HZ / 1e12}


def copy_program(exe, core, blocks, block_bytes, base):
    """`blocks` contiguous DRAM blocks -> SBUF, spread over the 4 queues."""
    prog = CoreProgram(core, 32, ["copy"])
    part_bytes = block_bytes // 128
    for i in range(blocks):
        q = QUEUES[i % 4]
        d = exe.add_dma(dram(base + i * block_bytes, "fp32", 128, part_bytes // 4, [(part_bytes // 4, 1)]),
                        onchip(sbuf(0, 128, (i % 4) * part_bytes, "fp32", [(part_bytes // 4, 1)])))
        prog.emit(q, "dma_copy", {"desc": d, "count": 1}, signal=q)
    prog.emit("vector", "end_of_program", {"code": 0}, waits=[(q, prog.semaphore_value(q)) for q in QUEUES])
    for engine, lines in prog.streams.items():
        exe.add_stream(core, engine, lines, prog.stream_ops[engine])


def bench_seq_copy(cores, total_bytes=32 << 20, block_bytes=512 << 10):
    exe = _infsim.Executable()
    exe.num_cores = max(cores) + 1
    exe.source_ops = ["copy"]
    for c in range(exe.num_cores):
        if c in cores:
            copy_program(exe, c, total_bytes // len(cores) // block_bytes, block_bytes, 0)
        else:
            exe.add_stream(c, "vector", ["end_of_program code=0"], [0])
    r = _infsim.run(exe, {}, CONFIG)
    bw = total_bytes / r["simulated_seconds"]
    slice_bytes = int(cfg["dram_bytes"]) // int(cfg["cores"])
    interleave = int(cfg["dram_interleave_bytes"]) or int(cfg["dram_bytes"]) // int(cfg["dram_channels"])
    channels = len({c * slice_bytes // interleave % int(cfg["dram_channels"]) for c in cores})
    peak = channels * CHANNEL_BPS
    dc = counters(r, "dram")
    hits = sum(v for k, v in dc.items() if k.endswith("row_hits"))
    reads = sum(v for k, v in dc.items() if k.endswith(".reads"))
    return {"cores": cores, "bytes": total_bytes, "gb_per_s": bw / 1e9, "channels_used": channels,
            "peak_gb_per_s": peak / 1e9, "fraction_of_peak": bw / peak, "row_hit_rate": hits / reads,
            "refreshes": sum(v for k, v in dc.items() if k.endswith("refreshes"))}


def bench_gather(random_rows, gathers=256):
    h = ProgramBuilder()
    rng = np.random.default_rng(1)
    rows = 1 << 24  # 64-byte rows: a 1 GiB table
    if random_rows:
        idx = rng.integers(0, rows, (128, gathers))
    else:
        idx = np.arange(128 * gathers).reshape(gathers, 128).T
    index = h.input("idx", idx.astype(np.float32), "int32")
    table = 64 << 20  # the table starts above the builder's own DRAM use
    dst = h.alloc(128, 16 * 4)
    for g in range(gathers):
        q = QUEUES[g % 4]
        d = h.exe.add_dma(dram(table, "fp32", rows, 16, [(16, 1)]),
                          onchip(AP("sbuf", 0, 128, dst.offset + (g % 4) * 64, "fp32", ((16, 1),))))
        col = AP("sbuf", 0, 128, index.offset + g * 4, "int32", ((1, 1),))
        h.prog.emit(q, "dma_gather", {"desc": d, "index": col}, waits=[("in", h.loaded)], signal=q)
    h.prog.emit("vector", "nop", waits=[(q, h.prog.semaphore_value(q)) for q in QUEUES], signal="done_vector")
    h.output("y", AP("sbuf", 0, 1, dst.offset, "fp32", ((1, 1),)), "vector")
    _, r = h.run(CONFIG)
    dc = counters(r, "dram.channel0")
    nbytes = 128 * gathers * 64
    return {"random_rows": random_rows, "bytes": nbytes, "cycles": r["total_cycles"],
            "gb_per_s": nbytes / r["simulated_seconds"] / 1e9,
            "row_hits": dc["dram.channel0.row_hits"], "row_misses": dc["dram.channel0.row_misses"],
            "row_conflicts": dc["dram.channel0.row_conflicts"], "activates": dc["dram.channel0.activates"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json")
    a = ap.parse_args()
    report = {"config": CONFIG, "matmul": bench_matmul(),
              "seq_copy_one_core": bench_seq_copy([0]), "seq_copy_two_channels": bench_seq_copy([0, 2]),
              "gather_sequential": bench_gather(False), "gather_random": bench_gather(True)}
    for name, r in report.items():
        if name == "config":
            continue
        print(f"{name}:")
        for k, v in r.items():
            print(f"  {k:22} {v:.4g}" if isinstance(v, float) else f"  {k:22} {v}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
