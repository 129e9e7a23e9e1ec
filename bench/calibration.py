#!/usr/bin/python3
"""Calibration against AWS's published Inf1 figures (docs/calibration.md).

Every case runs the way a user would measure it: the reference model
compiled at that batch and dtype, one replica per NeuronCore of
inf1.xlarge (4 replicas, data parallel, contending for the chip's two DRAM
channels), closed-loop clients (2 per replica), timing-only, through the
same code as `infsim bench`. Reported per row, all in simulated time:

  throughput     inferences per simulated second (bench's throughput_avg)
  p50 ms         median request latency
  tensor util    MACs done / (array peak x cores x span): the tensor
                 engines' utilisation, the fraction of 64 TFLOPS used
  DRAM GB/s      both channels together; MB/inf the DRAM bytes per inference

    bench/calibration.py [--cases resnet50,bert_base,pose_resnet,resnet50_fp16] [--requests N] [--json OUT]

Published figures (shared/DESIGN.md): ResNet-50 FP32->BF16 ~921 img/s and
FP16 batch 10 ~2,207 img/s on inf1.xlarge; BERT-base seq 128 ~1,056-1,181
seq/s on inf1.xlarge; a customer's pose model 281 -> 414 img/s at batch
2 -> 8. Where no batch is published the batch sizes below are swept and
the best is the one compared.
"""
import argparse
import json
import os
import sys
import time
from types import SimpleNamespace

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path[:0] = [os.path.join(ROOT, "python"), ROOT]

from infsim import _infsim, runtime  # noqa: E402
from infsim.tools import bench  # noqa: E402

# case -> (model, dtype, batch sizes, published figure and what it is)
CASES = {
    "resnet50_fp16": ("resnet50", "fp16", [10], (2207, 2207, "FP16, batch 10")),
    "resnet50": ("resnet50", "bf16", [1, 2, 4, 8, 16], (921, 921, "FP32 -> BF16 cast, batch not published")),
    "bert_base": ("bert_base", "bf16", [1, 4, 8, 16], (1056, 1181, "seq 128, batch not published")),
    "pose_resnet": ("pose_resnet", "bf16", [2, 8], (281, 414, "a customer's pose model, batch 2 -> 8")),
}
INSTANCE = "inf1.xlarge"


def macs(counters):
    return sum(v.get("tensor", {}).get("macs", 0) for chip, parts in counters.items() if chip.startswith("chip")
               for core, v in parts.items() if core.startswith("core"))


def run_case(name, requests):
    model, dtype, batches, published = CASES[name]
    rt = runtime.Runtime(INSTANCE)
    c = _infsim.config("inf1")
    peak = int(c["array_rows"]) * int(c["array_cols"]) * float(c["tensor_clock_mhz"]) * 1e6  # MAC/s per core
    rows = []
    for batch, exe in bench.executables(model, batches, "inf1", dtype):
        args = SimpleNamespace(cores=None, timing_only=True, timeout=10.0, seed=0, trace=None, rate=None,
                               duration=None, requests=requests, profile=None, profile_written=True,
                               profile_limit=0)
        t0 = time.perf_counter()
        row, _ = bench.run_config(rt, exe, batch, rt.num_cores, 2, args, model)
        wall = time.perf_counter() - t0
        # Per inference over the whole run (counters include the warm-up), at the measured rate.
        infs = row["dram_bytes"] / row["dram_bytes_per_inf"] if row["dram_bytes_per_inf"] else 1
        rate = row["throughput_avg"]
        rows.append({"case": name, "model": model, "dtype": dtype, "batch": batch, "n_models": rt.num_cores,
                     "throughput": rate, "p50_ms": row["latency_ms_p50"],
                     "tensor_util": macs(row["counters"]) / infs * rate / (peak * rt.num_cores),
                     "dram_gb_s": row["dram_bytes_per_inf"] * rate / 1e9,
                     "dram_mb_per_inf": row["dram_bytes_per_inf"] / 1e6, "published": published,
                     "failed": row["failed"], "wall_s": wall})
        print(f"  {name} batch {batch}: {rate:.1f}/s ({wall:.0f} s wall)", file=sys.stderr, flush=True)
    return rows


def table(rows):
    out = ["| case | dtype | batch | throughput /s | published /s | vs published | p50 ms | tensor util | "
           "DRAM GB/s | DRAM MB/inf |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi, _ = r["published"]
        if r["case"] == "pose_resnet":  # one figure per batch
            lo = hi = lo if r["batch"] == 2 else hi
        dev = r["throughput"] / lo - 1 if r["throughput"] < lo else max(0.0, r["throughput"] / hi - 1)
        pub = f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"
        out.append(f"| {r['case']} | {r['dtype']} | {r['batch']} | {r['throughput']:,.1f} | {pub} | {dev:+.0%} | "
                   f"{r['p50_ms']:.2f} | {r['tensor_util']:.1%} | {r['dram_gb_s']:.1f} | {r['dram_mb_per_inf']:.1f} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--requests", type=int, default=48, help="counted requests per configuration")
    ap.add_argument("--json")
    a = ap.parse_args()
    rows = []
    for name in a.cases.split(","):
        rows += run_case(name, a.requests)
    print(table(rows))
    pose = {r["batch"]: r["throughput"] for r in rows if r["case"] == "pose_resnet"}
    if 2 in pose and 8 in pose:
        print(f"\npose_resnet batch 8 / batch 2: {pose[8] / pose[2]:.2f}x (published 1.47x)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows], f, indent=1)


if __name__ == "__main__":
    main()
