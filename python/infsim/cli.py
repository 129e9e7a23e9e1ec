"""The `infsim` command line: compile, run, bench, objdump, info, demo."""
import argparse
import json
import struct
import sys

import numpy as np

from . import _infsim, runtime
from .errors import CompileError

CALIBRATION_METHODS = ("percentile", "mse")  # compiler/quantize.py's, named here to spare the CLI importing it

ERRORS = (CompileError, runtime.RunError, _infsim.FormatError, _infsim.RunError, _infsim.ConfigError,
          _infsim.IsaError, OSError, ValueError, KeyError)


def cmd_compile(a):
    from .compiler import compile_model
    calibration = _load_npz(a.calibration) if a.calibration else None
    report = []
    exe = compile_model(a.model, target=a.target, dtype=a.dtype, batch=a.batch, autocast=a.auto_cast,
                        fallback=a.fallback, calibration=calibration, report=report,
                        resident_share=a.sbuf_resident_share, calibration_method=a.calibration_method,
                        pipeline_cores=a.pipeline_cores)
    exe.save(a.output)
    meta = runtime.metadata(exe)
    on_host = [r for r in report if r[2] == "host"]
    if a.verbose:
        for name, op, where, reason in report:
            print(f"  {where:6} {op:20} {name}" + (f"  ({reason})" if reason else ""))
    if a.verbose and isinstance(exe, _infsim.Executable):
        _print_schedule(meta)
    for k, st in enumerate(meta.get("pipeline", [])):
        first, last = st["nodes"]
        print(f"  pipeline stage {k} (core {k}): nodes {first}-{last - 1} ('{st['first']}' .. '{st['last']}'), "
              f"estimate {st['estimate_cycles'] / 976.5625e3:.3f} ms, {st['weight_bytes']} bytes of weights "
              f"({st['streamed_weight_bytes']} streamed per run), sends {st['sent_bytes']} bytes")
    if isinstance(exe, _infsim.Executable):
        n = sum(len(s[3]) for s in exe.all_streams)
        print(f"compiled {a.model} -> {a.output}: {len(report)} ops on the device, {n} instructions, "
              f"{len(exe.dma)} DMA descriptors, {meta['weight_bytes']} bytes of weights, "
              f"{meta['dram_bytes']} bytes of DRAM, {meta['compile_seconds']:.2f} s")
    else:
        devices = sum(s["kind"] == "device" for s in exe.steps)
        print(f"compiled {a.model} -> {a.output}: {len(report) - len(on_host)} ops on the device in {devices} "
              f"segment(s), {len(on_host)} on the host CPU, {meta['compile_seconds']:.2f} s")
        for name, op, _, reason in on_host:
            print(f"  host: {op} '{name}': {reason}")
    return 0


def _print_schedule(meta):
    """The schedule's decisions (compiler/schedule.py, residency.py): stages and their
    micro-batches, what stays in SBUF, what spills, what is fused."""
    for st in meta.get("stages", []):
        first, last = st["nodes"]
        print(f"  stage: nodes {first}-{last - 1} from '{st['first']}', micro-batch {st['micro_batch']} "
              f"of {meta.get('batch', 1)}")
    r = meta.get("resident", {})
    if r:
        print(f"  resident: {r['values']} values in SBUF (high water {r['high_water']} of {r['sbuf_bytes']} "
              f"bytes per partition), {r['split_dmas']} split DMAs; activations spilled to DRAM: "
              f"{meta.get('activation_bytes', 0)} bytes at most")
    fused = {k: v for k, v in meta.get("fused", {}).items() if v}
    if fused:
        print("  fused: " + ", ".join(f"{v} {k}" for k, v in sorted(fused.items())))


def _load_npz(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise runtime.RunError(f"cannot read inputs {path}: {e}") from None


def cmd_run(a):
    exe = runtime.load(a.model)
    if a.profile:
        from .tools import profile
        outputs, stats, trace = profile.profile_run(exe, _load_npz(a.inputs), a.instance, a.config, a.timing_only,
                                                    a.profile_limit)
    else:
        outputs, stats = runtime.run(exe, _load_npz(a.inputs), instance=a.instance, config=a.config,
                                     timing_only=a.timing_only)
    stats["timing_only"] = a.timing_only
    if a.profile:
        profile.write(a.profile, trace)
        if getattr(a, "plot", None):
            from .tools import plots
            plots.utilisation_plot(trace, a.plot)
        if getattr(a, "summary", False):
            s = profile.summary(trace, stats)
            profile.print_summary(s)
            if a.summary_json:
                with open(a.summary_json, "w") as f:
                    json.dump(s, f, indent=1)
    if a.outputs and not a.timing_only:  # timing-only outputs carry no values
        np.savez(a.outputs, **outputs)
    if a.stats:
        with open(a.stats, "w") as f:
            json.dump(stats, f, indent=1, sort_keys=True)
    where = f"outputs -> {a.outputs}" if a.outputs and not a.timing_only else "no outputs written"
    print(f"ran {a.model}: {stats['total_cycles']} cycles, {stats['simulated_seconds'] * 1e6:.3f} us simulated; {where}"
          + (f"; trace -> {a.profile}" if a.profile else "") + (f"; plot -> {a.plot}" if getattr(a, "plot", None) else ""))
    return 0


def cmd_objdump(a):
    exe = runtime.load(a.model)
    if not isinstance(exe, _infsim.Executable):
        print(f"{a.model}: infsim bundle, {len(exe.steps)} steps")
        print("metadata:", exe.metadata_json)
        for i, st in enumerate(exe.steps):
            print(f"step {i}: {st['kind']}, inputs {st['inputs']} -> outputs {st['outputs']}")
            if st["kind"] == "device":
                _dump_executable(st["exe"])
        return 0
    with open(a.model, "rb") as f:
        head = f.read(40)
    fmt_version, isa_version, size, digest = struct.unpack_from("<IIQQ", head, 8)
    print(f"{a.model}: infsim executable, format {fmt_version}, ISA {isa_version}, {size} bytes, "
          f"hash {digest:016x}")
    print("metadata:", json.dumps(runtime.metadata(exe), sort_keys=True))
    _dump_executable(exe)
    return 0


def _dump_executable(exe):
    print(f"cores: {exe.num_cores}")
    print("tensors:")
    for t in exe.tensors:
        print(f"  {t['kind']:6} {t['name']:20} {t['dtype']:5} {str(t['shape']):18} core {t['core']} "
              f"dram {t['dram_offset']:#x}")
    consts = exe.constants
    print(f"constants: {len(consts)} blocks, {sum(c[2] for c in consts)} bytes")
    print(f"dma descriptors: {len(exe.dma)}")
    for i in range(len(exe.dma)):
        print(f"  {i:5}: {exe.describe_dma(i)}")
    ops = exe.source_ops
    for core, phase, engine, lines, src in exe.all_streams:
        program = "" if phase == "run" else f" ({phase} program)"  # a pipeline stage's load and send programs
        print(f"core {core} {engine}{program}: {len(lines)} instructions")
        for i, (line, s) in enumerate(zip(lines, src)):
            print(f"  {i:5}: {line:100}  ; {ops[s]}")


def cmd_info(a):
    if a.instances:
        print(f"{'instance':16} {'chips':>5} {'cores':>5} {'topology':8} {'vcpus':>5} {'USD/h':>7}  links")
        for name in runtime.instances():
            c = runtime.instance_config(name)
            chips = int(c["chips"])
            cores = chips * int(_infsim.config(c["chip"])["cores"])
            links = "-" if chips == 1 else f"{float(c['link_clock_mhz']) * int(c['link_bytes_per_cycle']) / 1024**3 * 1e6:.0f} GiB/s per link and direction"
            print(f"{name:16} {chips:5} {cores:5} {c['topology']:8} {c['vcpus']:>5} {float(c['price_per_hour']):7.3f}  {links}")
        return 0
    if a.instance_params:
        c = runtime.instance_config(a.instance or "inf1.xlarge")
        print(f"instance {c['name']}:")
        for p in _infsim.instance_param_schema():
            unit = f" {p['unit']}" if p["unit"] else ""
            print(f"  {p['name']:26} = {c[p['name']]:>14}{unit:8}  {p['description']}")
        return 0
    if a.params or not a.model:
        cfg = _infsim.config(a.target)
        print(f"chip configuration {a.target}:")
        for p in _infsim.param_schema():
            unit = f" {p['unit']}" if p["unit"] else ""
            print(f"  {p['name']:24} = {cfg[p['name']]:>14}{unit:8}  {p['description']}")
    if a.model:
        exe = runtime.load(a.model)
        print(json.dumps(runtime.metadata(exe), indent=1, sort_keys=True))
        exe.validate(a.target)
        print(f"{a.model}: valid for {a.target}")
    return 0


def cmd_accuracy(a):
    from .accuracy import CONFIGS, main
    names = a.models.split(",") if a.models else list(CONFIGS[a.size])
    unknown = set(names) - set(CONFIGS[a.size])
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(sorted(unknown))} (choose from {', '.join(CONFIGS[a.size])})")
    return main(names, a.dtypes.split(","), a.size, a.json, a.target, a.calibration_method)


def cmd_demo(a):
    from .demo import run_demo
    return run_demo(a.out, a.dtype, a.model, a.batch)


def build_parser():
    p = argparse.ArgumentParser(prog="infsim", description="Inferentia-class chip simulator and toolchain")
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("compile", help="compile an ONNX model into an executable")
    c.add_argument("model")
    c.add_argument("-o", "--output", required=True)
    c.add_argument("--target", default="inf1", help="inf1, inf2 or a chip configuration YAML")
    c.add_argument("--dtype", default="bf16", help="bf16 | fp16 | fp32 | int8 (post-training quantisation)")
    c.add_argument("--auto-cast", default="all", choices=["all", "matmul"],
                   help="all: every float value in --dtype; matmul: only matmul/convolution operands")
    c.add_argument("--calibration", help="int8: .npz of calibration inputs keyed by input name (batch axis first)")
    c.add_argument("--calibration-method", default="percentile", choices=CALIBRATION_METHODS,
                   help="int8: an activation's range is a high percentile of |x|, or the clipping threshold "
                        "with the least quantisation error")
    c.add_argument("--fallback", default="host", choices=["host", "none"],
                   help="host: ops the device cannot run execute on the CPU; none: they are an error")
    c.add_argument("--batch", type=int, help="fixes a dynamic batch dimension")
    c.add_argument("-v", "--verbose", action="store_true", help="list where every op runs")
    c.add_argument("--sbuf-resident-share", type=float,
                   help="fraction of SBUF for values kept on chip between layers (default 0.5; 0: all in DRAM)")
    c.add_argument("--pipeline-cores", type=int, default=1,
                   help="split the model into a pipeline of N stages, one per core (1-64; across chips above 4)")
    c.set_defaults(fn=cmd_compile)

    r = sub.add_parser("run", help="run an executable on the simulated chip")
    r.add_argument("model")
    r.add_argument("--inputs", required=True, help=".npz keyed by input name")
    r.add_argument("--outputs", required=True, help=".npz written keyed by output name")
    r.add_argument("--timing-only", action="store_true",
                   help="cycles and counters only, without computing values (faster; no outputs written)")
    r.add_argument("--instance", default="inf1.xlarge", help="instance type or instance YAML file")
    r.add_argument("--config", help="chip configuration (name or YAML) instead of the one compiled for")
    r.add_argument("--stats", help="write STATS.json")
    r.add_argument("--profile", help="write the run's timeline as Chrome trace-event JSON (opens in Perfetto)")
    r.add_argument("--profile-limit", type=int, default=1000000,
                   help="events kept in the trace at most (later ones are counted, not kept)")
    r.set_defaults(fn=cmd_run)

    pr = sub.add_parser("profile", help="run once and write its timeline (Perfetto) and neuron-profile's summary")
    pr.add_argument("model")
    pr.add_argument("--inputs", required=True, help=".npz keyed by input name")
    pr.add_argument("-o", "--output", dest="profile", required=True, help="the Chrome trace-event JSON to write")
    pr.add_argument("--outputs", help="also write the outputs (.npz)")
    pr.add_argument("--stats", help="write STATS.json of the same run")
    pr.add_argument("--summary-json", help="write the summary as JSON")
    pr.add_argument("--instance", default="inf1.xlarge")
    pr.add_argument("--config", help="chip configuration instead of the one compiled for")
    pr.add_argument("--timing-only", action="store_true")
    pr.add_argument("--profile-limit", type=int, default=1000000)
    pr.add_argument("--plot", metavar="PNG", help="write per-engine utilisation over time as a PNG (matplotlib)")
    pr.set_defaults(fn=cmd_run, summary=True)

    o = sub.add_parser("objdump", help="print an executable's header, tensors, descriptors and disassembly")
    o.add_argument("model")
    o.set_defaults(fn=cmd_objdump)

    i = sub.add_parser("info", help="chip configuration parameters, or an executable's metadata")
    i.add_argument("model", nargs="?")
    i.add_argument("--target", default="inf1")
    i.add_argument("--params", action="store_true", help="list every configuration parameter")
    i.add_argument("--instances", action="store_true", help="list the instance types")
    i.add_argument("--instance-params", action="store_true", help="list every instance parameter")
    i.add_argument("--instance", help="with --instance-params: an instance type or file")
    i.set_defaults(fn=cmd_info)

    from .tools import bench, monitor, top
    bench.add_parser(sub)
    monitor.add_parser(sub)
    top.add_parser(sub)

    ac = sub.add_parser("accuracy", help="reference models vs PyTorch FP32: errors and cosine per model and dtype")
    ac.add_argument("--models", help="comma-separated (default: all)")
    ac.add_argument("--dtypes", default="fp32,bf16", help="comma-separated from fp32,bf16,fp16,int8")
    ac.add_argument("--size", default="full", choices=["full", "small"], help="small: reduced variants (CI)")
    ac.add_argument("--target", default="inf1")
    ac.add_argument("--calibration-method", default="percentile", choices=CALIBRATION_METHODS,
                    help="int8 rows: how activation ranges are calibrated (as infsim compile)")
    ac.add_argument("--json", help="write the rows as JSON")
    ac.set_defaults(fn=cmd_accuracy)

    d = sub.add_parser("demo", help="compile and run a bundled reference model (ResNet-50), compare with PyTorch")
    d.add_argument("--out", default="out")
    d.add_argument("--dtype", default="bf16")
    d.add_argument("--model", default="resnet50", help="a reference model of models/ (resnet50, bert_base, mlp, ...)")
    d.add_argument("--batch", type=int, help="batch size of the example input")
    d.set_defaults(fn=cmd_demo)
    return p


def main(argv=None):
    a = build_parser().parse_args(argv)
    try:
        return a.fn(a)
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except ERRORS as e:
        msg = str(e).strip().replace("\n", "; ") or type(e).__name__
        print(f"infsim {a.cmd}: error: {msg}", file=sys.stderr)
        return 1
