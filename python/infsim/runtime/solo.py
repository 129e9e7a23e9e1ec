"""One request alone: `run(exe, inputs)`, what `infsim run`, `infsim.trace`'s
models and the tests use. The model is loaded onto core 0 of the process's
instance, run once and unloaded; counters are those of the request."""
from typing import Dict

import numpy as np

from .. import _infsim
from .executables import RunError, metadata, to_bytes, unpack
from .stats import combine_stats, make_stats


def run(exe, inputs: Dict[str, np.ndarray], instance: str = "inf1.xlarge", config: str = None,
        timing_only: bool = False):
    """Runs `exe` (an executable or a bundle) with numpy inputs keyed by
    name. Returns (outputs, stats).

    The chip configuration is the one the executable was compiled for,
    unless `config` (a name or YAML path) overrides it for a what-if run.
    timing_only: the same cycles and counters, faster, without computing
    values (the outputs are then meaningless)."""
    if not isinstance(exe, _infsim.Executable):
        return run_bundle(exe, inputs, instance, config, timing_only)
    if config is None:
        config = metadata(exe).get("target", "inf1")
    specs = {t["name"]: t for t in exe.tensors}
    ins = {t["name"]: t for t in exe.tensors if t["kind"] == "input"}
    chunks = _batch_chunks(exe, inputs, ins)
    if chunks is None:
        # Names are checked by the device runtime; shapes and dtypes here, where the arrays are.
        raw = {n: to_bytes(n, a, ins[n]) if n in ins else b"" for n, a in inputs.items()}
        r = run_raw(exe, raw, config, timing_only, instance)
        return unpack(r["outputs"], specs), make_stats(r, instance, config)
    # A larger batch: runs of the compiled batch, the last one zero-padded.
    batch, total = chunks
    parts, results = [], []
    for b0 in range(0, total, batch):
        piece = {}
        for n, a in inputs.items():
            a = np.asarray(a)[b0:b0 + batch]
            if a.shape[0] < batch:
                a = np.concatenate([a, np.zeros((batch - a.shape[0],) + a.shape[1:], a.dtype)])
            piece[n] = to_bytes(n, a, ins[n])
        r = run_raw(exe, piece, config, timing_only, instance)
        parts.append(unpack(r["outputs"], specs))
        results.append(make_stats(r, instance, config))
    outputs = {n: np.concatenate([p[n] for p in parts])[:total] for n in parts[0]}
    return outputs, combine_stats(results, instance)


def run_bundle(bundle, inputs, instance, config=None, timing_only=False):
    """Runs every step of a bundle in order; returns (outputs, stats) with
    the device runs' statistics summed and the host steps' wall time."""
    import time
    env = dict(inputs)
    missing = set(bundle.inputs) - set(env)
    if missing:
        raise RunError(f"missing inputs: {', '.join(sorted(missing))}")
    results, host_seconds = [], 0.0
    for st in bundle.steps:
        feeds = {n: env[n] for n in st["inputs"]}
        if st["kind"] == "device":
            out, stats = run(st["exe"], feeds, instance, config, timing_only)
            results.append(stats)
        else:
            t0 = time.perf_counter()
            out = bundle.run_host_step(st, feeds)
            host_seconds += time.perf_counter() - t0
        env.update(out)
    stats = combine_stats(results, instance) if results else {"total_cycles": 0}
    stats["host_steps"] = sum(st["kind"] == "host" for st in bundle.steps)
    stats["host_seconds"] = host_seconds
    return {n: env[n] for n in bundle.outputs}, stats


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


# SystemC elaborates one instance per process: other (instance, chip
# configuration) pairs run in a worker process each, started on first use
# and kept for later runs.
_workers = {}


def _worker(key):
    if key not in _workers:
        import multiprocessing
        _workers[key] = multiprocessing.get_context("spawn").Pool(1)
    return _workers[key]


def run_raw(exe, raw: Dict[str, bytes], config: str, timing_only: bool = False, instance: str = "inf1.xlarge") -> dict:
    """Runs with raw input bytes, in this process if it simulates (instance,
    config), else in that pair's worker process."""
    if _infsim.can_run_here(config, instance):
        return _infsim.run(exe, raw, config, timing_only, instance)
    return _worker((instance, config)).apply(_run_in_worker, (exe.serialize(), raw, config, timing_only, instance))


def _run_in_worker(exe_bytes, raw, config, timing_only, instance):
    return _infsim.run(_infsim.Executable.deserialize(exe_bytes), raw, config, timing_only, instance)
