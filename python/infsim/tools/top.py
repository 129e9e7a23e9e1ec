"""`infsim top`: neuron-top on the simulator, a live terminal view of a
workload. The workload is either run here (bench's options: MODEL, replicas,
workers or a rate), simulated in slices of `--period` simulated seconds with
a frame after each, or read as a stream of neuron-monitor objects (`infsim
monitor`'s JSON lines, from a file or `-` for a pipe).

Each frame shows, from the monitor object of the last period: per core the
utilisation (percent of the period's cycles the busiest engine was busy)
or, after 'f', the tensor engine's TFLOPS against the core's peak; the
device memory per core (tensors, constants, model code, runtime memory,
scratchpad); the loaded models and their cores; the requests answered and
their latency; the simulated time, and the simulation's own speed
(simulated milliseconds per wall second). 'q' quits. Not on a terminal, it
runs the whole workload (or reads the whole stream) and prints one plain
snapshot of the last period (of the first, when no --requests or
--duration ends the workload).
"""
import json
import os
import select
import sys
import time

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .. import _infsim, runtime
from . import bench, monitor

MEMORY_KINDS = ("tensors", "constants", "model_code", "runtime_memory", "model_shared_scratchpad")


def run_frames(a):
    """(monitor object, info) per --period slice of a workload run here."""
    rt = runtime.Runtime(a.instance, a.config)
    [(batch, exe)] = bench.executables(a.model, [a.batch_size] if a.batch_size else None,
                                       a.target or a.config or "inf1", a.dtype)
    m = rt.load(exe, replicas=a.n_models, cores=a.cores, timing_only=a.timing_only, timeout_s=a.timeout)
    cfg = _infsim.config(rt.config)
    per_chip, chips = int(cfg["cores"]), int(rt.instance_config["chips"])
    memory = monitor.core_memory(exe, m.groups)
    device_bytes = int(runtime.metadata(exe).get("dram_bytes", 0)) * len(m.groups)
    need = runtime.cores_needed(exe)
    info = {"instance": rt.instance, "models": [(os.path.basename(a.model), [list(range(g, g + need)) for g in m.groups])],
            "peak_tflops": peak_tflops(cfg)}
    inputs = bench.bench_inputs(exe, a.seed)
    names = [(p, n) for p, n, _, _, _ in rt.counter_list()]
    answered, start, wall0 = 0, rt.now_s(), time.perf_counter()
    try:
        while (not a.requests or answered < a.requests) and (not a.duration or rt.now_s() - start < a.duration):
            load = {"model": m, "inputs": inputs, "seed": a.seed + answered, "duration_s": a.period}
            if a.rate:
                load["rate"] = a.rate
            else:
                load["workers"] = a.n_models * a.workers_per_model
            before = [v for *_, v in rt.counter_list()]
            w = rt.run_workload([load])
            after = [v for *_, v in rt.counter_list()]
            answered += len(w["results"])
            frame = monitor.report(w["start_s"], max(w["end_s"], w["start_s"] + a.period), w["results"], before,
                                   after, names, cfg, device_bytes, chips, per_chip, memory)
            yield frame, dict(info, sim_s=rt.now_s() - start, wall_s=time.perf_counter() - wall0, answered=answered)
    finally:
        m.unload()


def stream_frames(path):
    """(monitor object, info) per object of a monitor stream; the cumulative one ends it."""
    f = sys.stdin if path == "-" else open(path)
    wall0, sim0, answered = time.perf_counter(), None, 0
    try:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: not a monitor JSON line ({e})") from None
            if obj.get("cumulative"):
                break
            period = obj.get("period", {})
            sim0 = period.get("start_s", 0.0) if sim0 is None else sim0
            answered += sum(obj["neuron_runtime_data"][0]["report"]["execution_stats"]["execution_summary"].values())
            yield obj, {"instance": "", "models": [], "peak_tflops": None, "answered": answered,
                        "sim_s": period.get("end_s", 0.0) - sim0, "wall_s": time.perf_counter() - wall0}
    finally:
        if f is not sys.stdin:
            f.close()


def peak_tflops(cfg) -> float:
    """One core's tensor-engine peak: 2 FLOP per MAC, rows x cols MACs per cycle."""
    return 2.0 * int(cfg["array_rows"]) * int(cfg["array_cols"]) * float(cfg["tensor_clock_mhz"]) * 1e6 / 1e12


def render(frame, info, show_flops):
    """The view of one frame, as rich renderables."""
    rep = frame["neuron_runtime_data"][0]["report"]
    hw = frame.get("neuron_hardware_info", {})
    total = hw.get("neuron_device_count", 0) * hw.get("neuroncore_per_device_count", 0)
    in_use = rep["neuroncore_counters"]["neuroncores_in_use"]
    mem = rep["memory_used"]["neuron_runtime_used_bytes"].get("usage_breakdown", {}).get("neuroncore_memory_usage", {})
    speed = info["sim_s"] * 1e3 / info["wall_s"] if info["wall_s"] > 0 else 0.0
    head = Text(f"infsim top  {info['instance']}  simulated {info['sim_s'] * 1e3:.3f} ms  "
                f"({speed:.3g} simulated ms per wall s)  answered {info['answered']}", style="bold")
    cores = Table(title="NeuronCores" + (" (TFLOPS)" if show_flops else " (utilisation)"), expand=False)
    cores.add_column("core", justify="right")
    cores.add_column("TFLOPS" if show_flops else "util %", justify="right")
    cores.add_column("", justify="left")
    for c in range(max(total, max((int(k) + 1 for k in list(in_use) + list(mem)), default=0))):
        u = in_use.get(str(c), {"neuroncore_utilization": 0.0, "flops": 0.0})
        if show_flops:
            tf = u.get("flops", 0.0) / 1e12
            peak = info.get("peak_tflops")
            share = tf / peak if peak else 0.0
            value = f"{tf:.3f}" + (f" / {peak:.1f}" if peak else "")
        else:
            share = u["neuroncore_utilization"] / 100.0
            value = f"{u['neuroncore_utilization']:.1f}"
        cores.add_row(f"nc{c}", value, "#" * int(round(20 * min(1.0, share))))
    memory = Table(title="device memory (bytes)")
    memory.add_column("core", justify="right")
    for k in MEMORY_KINDS:
        memory.add_column(k, justify="right")
    for c, v in sorted(mem.items(), key=lambda kv: int(kv[0])):
        memory.add_row(f"nc{c}", *(f"{v.get(k, 0):,}" for k in MEMORY_KINDS))
    if mem:
        memory.add_row("all", *(f"{sum(v.get(k, 0) for v in mem.values()):,}" for k in MEMORY_KINDS))
    stats = rep["execution_stats"]
    lat = stats["latency_stats"]["total_latency"]
    done = stats["execution_summary"]
    errors = sum(done.values()) - done.get("completed", 0)
    parts = [head, cores, memory]
    if info["models"]:
        models = Table(title="models")
        models.add_column("model")
        models.add_column("replicas' cores")
        for name, groups in info["models"]:
            models.add_row(name, "  ".join(f"{g[0]}-{g[-1]}" if len(g) > 1 else str(g[0]) for g in groups))
        parts.append(models)
    p50 = f"{lat['p50'] * 1e3:.3f} ms" if lat.get("p50") is not None else "-"
    p99 = f"{lat['p99'] * 1e3:.3f} ms" if lat.get("p99") is not None else "-"
    parts.append(Text(f"last period: {done.get('completed', 0)} completed, {errors} with errors, "
                      f"latency p50 {p50}, p99 {p99}"))
    parts.append(Text("f: percent / TFLOPS   q: quit", style="dim"))
    return Group(*parts)


class Keys:
    """Single key presses from the terminal (cbreak mode), without blocking."""

    def __init__(self):
        import termios
        import tty
        self.fd = os.open("/dev/tty", os.O_RDONLY)
        self.saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)

    def read(self, timeout=0.0) -> str:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        return os.read(self.fd, 16).decode(errors="ignore") if ready else ""

    def close(self):
        import termios
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
        os.close(self.fd)


def main(a):
    if not a.model and not a.input:
        raise ValueError("infsim top: give a MODEL to run, or --input FILE (a monitor stream; - for a pipe)")
    frames = stream_frames(a.input) if a.input else run_frames(a)
    if not sys.stdout.isatty():
        last = None
        for last in frames:
            if not (a.input or a.requests or a.duration):
                break  # no end given: the first period's snapshot
        frames.close()
        if last is None:
            raise ValueError("infsim top: the workload gave no period to show")
        Console(force_terminal=False, width=120).print(render(*last, a.flops))
        return 0
    keys = Keys()
    show_flops, last = a.flops, None
    try:
        with Live(Text("starting ..."), refresh_per_second=4, screen=False) as live:
            for last in frames:
                live.update(render(*last, show_flops))
                k = keys.read()
                if "f" in k:
                    show_flops = not show_flops
                if "q" in k:
                    return 0
            while last is not None:  # the workload ended: the last frame stays until 'q'
                k = keys.read(0.25)
                if "f" in k:
                    show_flops = not show_flops
                    live.update(render(*last, show_flops))
                if "q" in k:
                    break
    finally:
        frames.close()
        keys.close()
    return 0


def add_parser(sub):
    p = sub.add_parser("top", help="neuron-top on the simulator: a live view of a workload (run here, or a "
                                   "monitor stream)")
    p.add_argument("model", nargs="?", help=".infx, .onnx or a reference model name (as bench)")
    p.add_argument("--input", help="a monitor stream (infsim monitor's JSON lines) to show instead; - reads a pipe")
    p.add_argument("--instance", default="inf1.xlarge")
    p.add_argument("--config")
    p.add_argument("--target")
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--cores")
    p.add_argument("--n-models", type=int, default=1)
    p.add_argument("--workers-per-model", type=int, default=2)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--requests", type=int, default=0, help="stop after this many answered requests (0: until 'q')")
    p.add_argument("--duration", type=float, help="stop after this many simulated seconds")
    p.add_argument("--rate", type=float, help="open-loop Poisson rate instead of closed-loop workers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--timing-only", action="store_true")
    p.add_argument("--period", type=float, default=0.005, help="simulated seconds per frame (default 0.005)")
    p.add_argument("--flops", action="store_true", help="start in TFLOPS rather than percent")
    p.set_defaults(fn=main)
    return p
