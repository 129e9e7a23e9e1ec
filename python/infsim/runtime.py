"""Runtime API: load executables, run them on the simulated chip, read stats."""
import json
from typing import Dict

import numpy as np

from . import _infsim

NUMPY_OF = {"fp32": np.float32, "fp16": np.float16, "int8": np.int8, "int32": np.int32}

INSTANCES = {  # instance type -> (chip configuration, chips)
    "inf1.xlarge": ("inf1", 1),
    "inf1.2xlarge": ("inf1", 1),
    "inf1.6xlarge": ("inf1", 4),
    "inf1.24xlarge": ("inf1", 16),
}


# Bad inputs or a failed run (device fault, deadlock); the message says which.
# The device runtime raises it too, so one `except RunError` catches all.
RunError = _infsim.RunError


def load(path: str):
    """An executable, or a bundle (device executables and host steps) by its magic."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise RunError(f"cannot open {path}: {e.strerror}") from None
    from .bundle import MAGIC, Bundle
    if head == MAGIC:
        with open(path, "rb") as f:
            return Bundle.deserialize(f.read())
    return _infsim.Executable.load(path)


def metadata(exe) -> dict:
    return json.loads(exe.metadata_json)


def _to_bytes(name, arr, spec) -> bytes:
    if spec["dtype"] not in NUMPY_OF:
        raise RunError(f"input '{name}': device dtype {spec['dtype']} cannot be fed from the host")
    a = np.asarray(arr)
    if tuple(a.shape) != tuple(spec["shape"]):
        raise RunError(f"input '{name}': shape {tuple(a.shape)} does not match the compiled shape "
                       f"{tuple(spec['shape'])}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
        raise RunError(f"input '{name}': dtype {a.dtype} is not numeric")
    return np.ascontiguousarray(a, dtype=NUMPY_OF[spec["dtype"]]).tobytes()


def run(exe, inputs: Dict[str, np.ndarray], instance: str = "inf1.xlarge", config: str = None,
        timing_only: bool = False):
    """Runs `exe` with numpy inputs keyed by name. Returns (outputs, stats).

    The chip configuration is the one the executable was compiled for,
    unless `config` (a name or YAML path) overrides it for a what-if run.
    timing_only: the same cycles and counters, faster, without computing
    values (the outputs are then meaningless)."""
    if instance not in INSTANCES:
        raise RunError(f"unknown instance '{instance}' (choose from {', '.join(INSTANCES)})")
    if not isinstance(exe, _infsim.Executable):  # a bundle runs its steps through this function
        return exe.run(inputs, instance, config, timing_only)
    if config is None:
        config = metadata(exe).get("target", INSTANCES[instance][0])
    specs = {t["name"]: t for t in exe.tensors}
    ins = {t["name"]: t for t in exe.tensors if t["kind"] == "input"}
    chunks = _batch_chunks(exe, inputs, ins)
    if chunks is None:
        # Names are checked by the device runtime; shapes and dtypes here, where the arrays are.
        raw = {n: _to_bytes(n, a, ins[n]) if n in ins else b"" for n, a in inputs.items()}
        r = run_raw(exe, raw, config, timing_only)
        return _unpack(r["outputs"], specs), make_stats(r, instance, config)
    # A larger batch: runs of the compiled batch, the last one zero-padded.
    batch, total = chunks
    parts, results = [], []
    for b0 in range(0, total, batch):
        piece = {}
        for n, a in inputs.items():
            a = np.asarray(a)[b0:b0 + batch]
            if a.shape[0] < batch:
                a = np.concatenate([a, np.zeros((batch - a.shape[0],) + a.shape[1:], a.dtype)])
            piece[n] = _to_bytes(n, a, ins[n])
        r = run_raw(exe, piece, config, timing_only)
        parts.append(_unpack(r["outputs"], specs))
        results.append(make_stats(r, instance, config))
    outputs = {n: np.concatenate([p[n] for p in parts])[:total] for n in parts[0]}
    return outputs, combine_stats(results, instance)


def _unpack(raw_outputs, specs):
    return {name: np.frombuffer(data, dtype=NUMPY_OF[specs[name]["dtype"]]).reshape(specs[name]["shape"]).copy()
            for name, data in raw_outputs.items()}


def _batch_chunks(exe, inputs, ins):
    """(compiled batch, given batch) when every input carries a batch of rows
    other than the compiled one but otherwise the compiled shape; else None."""
    batch = metadata(exe).get("batch")
    if not batch or set(inputs) != set(ins):
        return None
    given = set()
    for n, a in inputs.items():
        shape, compiled = tuple(np.shape(a)), tuple(ins[n]["shape"])
        if not shape or compiled[0] != batch or shape[1:] != compiled[1:]:
            return None
        given.add(shape[0])
    if len(given) != 1 or given == {batch} or 0 in given:
        return None
    return batch, given.pop()


def combine_stats(stats_list, instance) -> dict:
    """One STATS.json for several device runs (a bundle's steps, the pieces
    of a split batch): cycles, time and every counter add up; derived
    figures are recomputed."""
    total = {"total_cycles": 0, "simulated_seconds": 0.0, "runs": 0, "instance": instance,
             "config": stats_list[0]["config"], "counters": {}, "counter_units": {}}

    def add(dst, src):
        for k, v in src.items():
            if isinstance(v, dict):
                add(dst.setdefault(k, {}), v)
            else:
                dst[k] = dst.get(k, 0) + v

    for s in stats_list:
        total["total_cycles"] += s["total_cycles"]
        total["simulated_seconds"] += s["simulated_seconds"]
        total["runs"] += s["runs"]
        add(total["counters"], s["counters"])
        total["counter_units"].update(s["counter_units"])
    total["derived"] = derived_figures(total["counters"], total["simulated_seconds"], total["config"])
    return total


# SystemC elaborates one chip per process: other configurations run in a
# worker process each, started on first use and kept for later runs.
_workers = {}


def _worker(config):
    if config not in _workers:
        import multiprocessing
        _workers[config] = multiprocessing.get_context("spawn").Pool(1)
    return _workers[config]


def run_raw(exe, raw: Dict[str, bytes], config: str, timing_only: bool = False) -> dict:
    """Runs with raw input bytes, in this process if its chip is `config`,
    else in that configuration's worker process."""
    if _infsim.can_run_here(config):
        return _infsim.run(exe, raw, config, timing_only)
    return _worker(config).apply(_run_in_worker, (exe.serialize(), raw, config, timing_only))


def _run_in_worker(exe_bytes, raw, config, timing_only=False):
    return _infsim.run(_infsim.Executable.deserialize(exe_bytes), raw, config, timing_only)


def make_stats(r, instance, config) -> dict:
    """STATS.json content: totals plus counters nested by component path."""
    counters = {}
    for path, name, unit, desc, value in r["counters"]:
        node = counters
        for part in path.split("."):
            node = node.setdefault(part, {})
        node[name] = value
    return {"total_cycles": r["total_cycles"], "simulated_seconds": r["simulated_seconds"], "runs": 1,
            "instance": instance, "config": config, "counters": counters,
            "counter_units": {f"{p}.{n}": {"unit": u, "description": d} for p, n, u, d, _ in r["counters"]},
            "derived": derived_figures(counters, r["simulated_seconds"], config)}


def derived_figures(counters, seconds, config) -> dict:
    """Figures computed from the counters (never counted separately): tensor
    FLOP rate and array utilisation per core, DMA and DRAM bandwidths."""
    if seconds <= 0:
        return {}
    c = _infsim.config(config)
    peak_macs = int(c["array_rows"]) * int(c["array_cols"]) * float(c["tensor_clock_mhz"]) * 1e6  # per second
    out = {}
    for core, engines in counters.items():
        if not core.startswith("core"):
            continue
        macs = engines.get("tensor", {}).get("macs", 0)
        out[f"{core}.tensor.tflops"] = 2 * macs / seconds / 1e12
        out[f"{core}.tensor.utilization"] = macs / (peak_macs * seconds)
        for engine, values in engines.items():
            if "bytes" in values:
                out[f"{core}.{engine}.gb_per_s"] = values["bytes"] / seconds / 1e9
    for channel, values in counters.get("dram", {}).items():
        out[f"dram.{channel}.gb_per_s"] = (values["read_bytes"] + values["write_bytes"]) / seconds / 1e9
    return out
