#!/usr/bin/python3
"""Golden profile summaries of the reference models: each model compiled at
batch 1 BF16 for inf1 and profiled once on inf1.xlarge (timing-only, bench's
seeded inputs), its neuron-profile summary (`infsim profile
--summary-json`) kept in traces/golden/MODEL.json. CI compares them
(tests/python/test_golden.py): any change of cycles, bytes, instruction
counts or op timings shows up as a diff of named fields.

    traces/golden.py [--models resnet50,bert_base]            compare; exit 1 with the differences
    traces/golden.py --refresh [--models resnet50,bert_base]  rewrite the files (after a change meant to move them)
"""
import argparse
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path[:0] = [os.path.join(ROOT, "python"), ROOT]
GOLDEN = os.path.join(ROOT, "traces", "golden")
MODELS = ("resnet50", "bert_base")
REL_TOL = 1e-9  # floats; integers (cycles, bytes, counts) compare exactly


def summary(model: str) -> dict:
    from infsim.tools import bench, profile
    [(_, exe)] = bench.executables(model, [1], "inf1", "bf16")
    _, stats, trace = profile.profile_run(exe, bench.bench_inputs(exe, 0), "inf1.xlarge", None, True)
    s = profile.summary(trace, stats)
    s["model"] = model
    return s


def differences(old, new, path=""):
    """Field paths whose values differ, with both values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            out += differences(old.get(k), new.get(k), f"{path}.{k}" if path else k)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in differences(a, b, f"{path}[{i}]")]
    if isinstance(old, float) and isinstance(new, float):
        # Times come from absolute timestamps in microseconds: their last bits depend on when in the
        # process the run started. One core cycle is ~1e-6 of these runs; 1e-9 is far below it.
        same = abs(old - new) <= REL_TOL * max(abs(old), abs(new))
    else:
        same = old == new
    return [] if same else [f"{path}: {old!r} -> {new!r}"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--refresh", action="store_true")
    a = ap.parse_args(argv)
    failed = False
    for model in a.models.split(","):
        path = os.path.join(GOLDEN, f"{model}.json")
        new = json.loads(json.dumps(summary(model)))  # as it would be read back
        if a.refresh:
            with open(path, "w") as f:
                json.dump(new, f, indent=1, sort_keys=True)
                f.write("\n")
            print(f"{model}: written {path}")
            continue
        if not os.path.exists(path):
            print(f"{model}: no golden summary {path} (run traces/golden.py --refresh)")
            failed = True
            continue
        with open(path) as f:
            diff = differences(json.load(f), new)
        print(f"{model}: " + ("matches" if not diff else f"{len(diff)} fields differ from {path}:"))
        for d in diff[:40]:
            print("  " + d)
        failed |= bool(diff)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
