"""`infsim bench`: neuronperf on the simulator.

For every configuration (batch size x n_models x workers_per_model) the
model is loaded as n_models replicas on the instance, load is generated in
simulated time (closed-loop workers, a Poisson rate, or an arrival trace)
and one row is written with neuronperf's columns. Definitions
(docs/runtime.md, "Bench"):

  latency          end - arrival of each request, simulated
  percentiles      numpy.percentile, linear interpolation (p0 = min, p100 = max)
  warm-up          the first request of each client (closed loop) or the first
                   n_models requests (open loop) are issued on top of
                   --requests and not counted
  throughput_avg   counted inferences / (last counted end - first counted arrival)
  --duration       requests are issued for that many simulated seconds; those
                   still in flight when it ends are not counted
  cost_per_1m_inf  price_per_hour x 1e6 / (3600 x throughput_avg)
  wall_s           the simulator's own wall time for the configuration
"""
import csv
import json
import os
import sys
import time

import numpy as np

from .. import runtime
from ..runtime.stats import dram_bytes, nest

COLUMNS = ["model_filename", "instance_type", "n_models", "workers_per_model", "pipeline_size", "batch_size",
           "throughput_avg", "latency_ms_p0", "latency_ms_p50", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99",
           "latency_ms_p100", "total_infs", "total_s", "cost_per_1m_inf", "wall_s"]
PERCENTILES = (0, 50, 90, 95, 99, 100)


def int_list(text):
    try:
        return [int(x) for x in str(text).split(",") if x]
    except ValueError:
        raise runtime.RunError(f"expected a comma-separated list of integers, got '{text}'") from None


def bench_inputs(exe, seed=0):
    """Random values for float inputs; zeros for integer ones (token ids,
    masks), valid for any table."""
    rng = np.random.default_rng(seed)
    return {t["name"]: rng.standard_normal(t["shape"]).astype(np.float32)
            if t["dtype"] in ("fp32", "fp16", "bf16") else np.zeros(t["shape"], np.int32)
            for t in exe.tensors if t["kind"] == "input"}


def pipeline_size(exe) -> int:
    """Cores one pipeline of the executable spans (1: not pipelined)."""
    return exe.num_cores if getattr(exe, "pipeline", False) else 1


def executables(model, batch_sizes, target, dtype, pipeline_sizes=None):
    """(batch, executable) per batch size and pipeline size: an .infx at its
    own batch and pipeline, an .onnx compiled once per batch and pipeline
    size, a reference model name exported at each batch size and compiled
    per pipeline size."""
    if model.endswith(".infx"):
        exe = runtime.load(model)
        batch = runtime.metadata(exe).get("batch", 1)
        if batch_sizes and batch_sizes != [batch]:
            raise runtime.RunError(f"{model} was compiled for batch {batch}; bench the .onnx to try other batches")
        if pipeline_sizes and pipeline_sizes != [pipeline_size(exe)]:
            raise runtime.RunError(f"{model} was compiled for a pipeline of {pipeline_size(exe)} core(s); bench "
                                   f"the .onnx to try other pipeline sizes")
        return [(batch, exe)]
    from ..compiler import compile_model
    out = []
    if model.endswith(".onnx") or os.path.exists(model):
        for b in batch_sizes or [None]:
            for p in pipeline_sizes or [1]:
                exe = compile_model(model, target=target, dtype=dtype, batch=b, fallback="none", pipeline_cores=p)
                out.append((runtime.metadata(exe).get("batch", b or 1), exe))
        return out
    from ..accuracy import _models_package
    models = _models_package()
    if model not in models.MODELS:
        raise runtime.RunError(f"'{model}' is neither a file nor a reference model ({', '.join(models.MODELS)})")
    from models.export import to_onnx
    net = models.build(model)
    for b in batch_sizes or [1]:
        proto = to_onnx(net, models.example_inputs(model, batch=b))
        for p in pipeline_sizes or [1]:
            exe = compile_model(proto, target=target, dtype=dtype, fallback="none", pipeline_cores=p)
            out.append((b, exe))
    return out


def summarise(results, start_s, duration_s, warmup):
    """Counted requests: issued after the warm-up, answered within the duration."""
    results = sorted(results, key=lambda r: (r["arrival_s"], r["id"]))[warmup:]
    if duration_s:
        results = [r for r in results if r["end_s"] <= start_s + duration_s]
    return results


def run_config(rt, exe, batch, n_models, workers, args, model_name):
    m = rt.load(exe, replicas=n_models, cores=args.cores, timing_only=args.timing_only, timeout_s=args.timeout,
                name=model_name)
    try:
        inputs = bench_inputs(exe, args.seed)
        load = {"model": m, "inputs": inputs, "seed": args.seed}
        if args.trace:
            load["trace"] = read_trace(args.trace)
            warmup = 0
        elif args.rate:
            load["rate"] = args.rate
            warmup = n_models
        else:
            load["workers"] = n_models * workers
            warmup = n_models * workers
        if args.duration:
            load["duration_s"] = args.duration
        elif not args.trace:
            load["requests"] = args.requests + warmup
        profiling = bool(args.profile) and not args.profile_written
        if profiling:
            rt._rt.start_trace(args.profile_limit)
        before = rt.counter_list()
        t0 = time.perf_counter()
        w = rt.run_workload([load])
        wall = time.perf_counter() - t0
        after = rt.counter_list()
        if profiling:
            write_profile(rt, m, exe, w, args)
    finally:
        m.unload()
    delta = [(p, n, u, d, v1 - v0) for (p, n, u, d, v0), (_, _, _, _, v1) in zip(before, after)]
    counted = summarise(w["results"], w["start_s"], args.duration, warmup)
    ok = [r for r in counted if r["status"] == "NRT_SUCCESS"]
    lat_ms = np.array([(r["end_s"] - r["arrival_s"]) * 1e3 for r in ok])
    span = max(r["end_s"] for r in ok) - min(r["arrival_s"] for r in ok) if ok else 0.0
    infs = len(ok) * batch
    throughput = infs / span if span > 0 else 0.0
    price = float(rt.instance_config["price_per_hour"])
    row = {"model_filename": model_name, "instance_type": rt.instance, "n_models": n_models,
           "workers_per_model": 0 if (args.rate or args.trace) else workers, "pipeline_size": pipeline_size(exe),
           "batch_size": batch, "throughput_avg": throughput}
    for p in PERCENTILES:
        row[f"latency_ms_p{p}"] = float(np.percentile(lat_ms, p)) if len(lat_ms) else float("nan")
    counters = nest(delta)
    moved = dram_bytes(counters)
    row.update({"total_infs": infs, "total_s": span, "cost_per_1m_inf": price * 1e6 / (3600 * throughput)
                if throughput else float("inf"), "wall_s": wall,
                "requests": len(counted), "failed": len(counted) - len(ok),
                "statuses": {s: sum(r["status"] == s for r in counted) for s in {r["status"] for r in counted}},
                # Over the whole run, warm-up included.
                "dram_bytes": moved, "dram_bytes_per_inf": moved / max(1, len(w["results"]) * batch),
                "timing_only": bool(args.timing_only), "counters": counters})
    return row, counted


def write_profile(rt, m, exe, w, args):
    """The first configuration's timeline (Chrome trace JSON): every replica's
    cores, the links, and each request's span from arrival to end."""
    from . import profile
    events, dropped, tracks, bin_fs = rt._rt.stop_trace()
    from .. import _infsim
    chip_cfg = _infsim.config(rt.config)
    per_chip = int(chip_cfg["cores"])
    placements = {}
    for g in m.groups:
        for i in range(exe.num_cores):
            placements[divmod(g + i, per_chip)] = (exe, i)
    trace = profile.chrome_trace(events, dropped, placements, 1e9 / float(chip_cfg["tensor_clock_mhz"]), per_chip,
                                 w["results"], tracks, bin_fs)
    trace["otherData"]["instance"] = rt.instance
    profile.write(args.profile, trace)
    args.profile_written = True


def read_trace(path):
    """An arrival trace: one arrival per line, simulated seconds from the
    start (a CSV with an 'arrival_s' column also works); '#' starts a comment."""
    try:
        with open(path) as f:
            lines = [ln.split("#")[0].strip() for ln in f]
    except OSError as e:
        raise runtime.RunError(f"cannot read trace {path}: {e.strerror}") from None
    lines = [ln for ln in lines if ln]
    if lines and not _is_number(lines[0].split(",")[0]):
        col = lines[0].split(",").index("arrival_s") if "arrival_s" in lines[0].split(",") else None
        if col is None:
            raise runtime.RunError(f"{path}: a CSV trace needs an arrival_s column")
        lines = [ln.split(",")[col] for ln in lines[1:]]
    try:
        times = [float(x.split(",")[0]) for x in lines]
    except ValueError:
        raise runtime.RunError(f"{path}: arrival times must be numbers (seconds)") from None
    if any(b < a for a, b in zip(times, times[1:])) or (times and times[0] < 0):
        raise runtime.RunError(f"{path}: arrival times must be non-negative and in order")
    return times


def _is_number(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def print_table(rows):
    cols = ["n_models", "workers_per_model", "pipeline_size", "batch_size", "throughput_avg", "latency_ms_p50",
            "latency_ms_p99",
            "total_infs", "total_s", "cost_per_1m_inf", "wall_s"]
    try:
        from rich.console import Console
        from rich.table import Table
        t = Table(title=f"{rows[0]['model_filename']} on {rows[0]['instance_type']} (simulated; wall_s is the simulator's)")
        for c in cols:
            t.add_column(c, justify="right")
        for r in rows:
            t.add_row(*[_fmt(r[c]) for c in cols])
        Console(width=max(160, Console().width)).print(t)
    except ImportError:
        print("  ".join(f"{c:>14}" for c in cols))
        for r in rows:
            print("  ".join(f"{_fmt(r[c]):>14}" for c in cols))


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def main(args):
    rt = runtime.Runtime(args.instance, args.config)
    cores = runtime.visible_cores(rt.num_cores, args.cores)
    rows, request_rows = [], []
    name = os.path.basename(args.model)
    configs = []
    several_sizes = len(int_list(args.pipeline_sizes)) > 1 if args.pipeline_sizes else False
    for batch, exe in executables(args.model, int_list(args.batch_sizes) if args.batch_sizes else None,
                                  args.target or args.config or "inf1", args.dtype,
                                  int_list(args.pipeline_sizes) if args.pipeline_sizes else None):
        need = runtime.cores_needed(exe)
        most = len(cores) // need
        if most == 0:
            raise runtime.RunError(f"NRT_LOAD_NOT_ENOUGH_NC: one replica needs {need} cores, {len(cores)} are "
                                   f"visible on {rt.instance}")
        # By default a pipeline gets a client per stage and one more, to keep every stage busy.
        workers = int_list(args.workers_per_model) if args.workers_per_model else [max(2, pipeline_size(exe) + 1)]
        for n in int_list(args.n_models) if args.n_models else sorted({1, most}):
            if n > most:
                msg = f"{n} replicas of {need} core(s) asked for, {len(cores)} cores visible on {rt.instance}"
                if several_sizes:  # (--pipeline-sizes 1,4 --n-models 4,1: the sizes x counts that fit)
                    print(f"infsim bench: skipped: {msg}", file=sys.stderr)
                    continue
                raise runtime.RunError(f"NRT_LOAD_NOT_ENOUGH_NC: {msg}")
            configs += [(batch, exe, n, w) for w in workers]
    if not configs:
        raise runtime.RunError(f"NRT_LOAD_NOT_ENOUGH_NC: no configuration fits the {len(cores)} cores visible on "
                               f"{rt.instance}")
    from tqdm import tqdm
    with tqdm(total=len(configs), desc="bench", unit="config", disable=not sys.stderr.isatty(), leave=False) as bar:
        for batch, exe, n, w in configs:
            bar.set_postfix(batch=batch, n_models=n, workers=w)
            row, counted = run_config(rt, exe, batch, n, w, args, name)
            bar.update()
            rows.append(row)
            for r in counted:
                request_rows.append({"config": len(rows) - 1, "id": r["id"], "replica": r["replica"],
                                     "status": r["status"], "arrival_s": r["arrival_s"],
                                     "queue_ms": (r["start_s"] - r["arrival_s"]) * 1e3,
                                     "host_link_in_ms": (r["input_done_s"] - r["start_s"]) * 1e3,
                                     "device_ms": (r["device_done_s"] - r["input_done_s"]) * 1e3,
                                     "host_link_out_ms": (r["end_s"] - r["device_done_s"]) * 1e3,
                                     "latency_ms": (r["end_s"] - r["arrival_s"]) * 1e3})
    print_table(rows)
    if args.plot or args.html:
        from . import plots  # (matplotlib loads only here)
        title = f"{name} on {rt.instance}"
        if args.plot:
            for path in plots.bench_plots(rows, args.plot, title):
                print(f"plot -> {path}")
        if args.html:
            print(f"report -> {plots.bench_html(rows, args.html, title)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=COLUMNS + ["requests", "failed", "dram_bytes_per_inf"],
                                extrasaction="ignore")
            wr.writeheader()
            wr.writerows(rows)
    if args.requests_csv:
        with open(args.requests_csv, "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=list(request_rows[0]) if request_rows else ["config"])
            wr.writeheader()
            wr.writerows(request_rows)
    return 0


def add_parser(sub):
    b = sub.add_parser("bench", help="neuronperf on the simulator: throughput, latency percentiles, cost per 1M "
                                     "inferences, per configuration, in simulated time")
    b.add_argument("model", help=".infx (benched at its batch), .onnx (compiled per batch size) or a reference "
                                 "model name (resnet50, bert_base, mlp, ...)")
    b.add_argument("--instance", default="inf1.xlarge", help="instance type or instance YAML file")
    b.add_argument("--config", help="chip configuration (name or YAML) instead of the instance's")
    b.add_argument("--target", help="chip configuration to compile for (default: --config, else inf1)")
    b.add_argument("--dtype", default="bf16", help="compile dtype for .onnx and reference models")
    b.add_argument("--cores", help="visible cores, e.g. 0-3 (default: INFSIM_VISIBLE_CORES, else all)")
    b.add_argument("--n-models", help="replica counts, comma-separated (default: 1 and as many as fit)")
    b.add_argument("--workers-per-model", help="closed-loop clients per replica, comma-separated (default: 2, "
                                               "or a pipeline's size + 1)")
    b.add_argument("--batch-sizes", help="comma-separated (an .infx: its own batch)")
    b.add_argument("--pipeline-sizes", help="cores per pipeline, comma-separated (compiled once per size with "
                                            "--pipeline-cores; default 1; an .infx: its own)")
    b.add_argument("--requests", type=int, default=100, help="counted requests per configuration")
    b.add_argument("--duration", type=float, help="simulated seconds of load per configuration, instead of --requests")
    b.add_argument("--rate", type=float, help="open loop: Poisson arrivals per simulated second")
    b.add_argument("--trace", help="open loop: replay an arrival trace (traces/README.md)")
    b.add_argument("--seed", type=int, default=0, help="seeds the Poisson arrivals and the random inputs")
    b.add_argument("--timeout", type=float, default=1.0, help="request timeout, simulated seconds")
    b.add_argument("--timing-only", action="store_true", help="cycles and counters only, values not computed")
    b.add_argument("--profile", help="write the first configuration's timeline as Chrome trace-event JSON")
    b.add_argument("--profile-limit", type=int, default=1000000, help="events kept in the trace at most")
    b.add_argument("--json", help="write the rows (a list) as JSON")
    b.add_argument("--csv", help="write the rows as CSV")
    b.add_argument("--requests-csv", help="one row per request: queue, host link in, device, host link out")
    b.add_argument("--plot", metavar="DIR", help="write PNGs (matplotlib): throughput, p50/p99 latency, cost per 1M")
    b.add_argument("--html", metavar="REPORT.html", help="write one self-contained page: the table and the plots")
    b.set_defaults(fn=lambda a: _checked(a))
    return b


def _checked(a):
    a.profile_written = False
    if a.rate and a.trace:
        raise runtime.RunError("give --rate or --trace, not both")
    return main(a)
