"""Compilation driver: import -> passes -> placement -> lowering -> executable
(or a bundle of executables and host steps when ops fall back to the CPU)."""
import json
import os
import time

from .. import __version__
from .emitter import Target
from .ir import CompileError
from .lower import Options
from .onnx_import import load_onnx
from .passes import optimize
from .plan import lower_segment, place, segment
from .quantize import CALIBRATION_METHODS

DTYPES = ("bf16", "fp16", "fp32", "int8")
AUTOCAST = ("all", "matmul")
FALLBACK = ("host", "none")


def compile_model(model, target: str = "inf1", dtype: str = "bf16", batch=None, autocast: str = "all",
                  fallback: str = "host", calibration=None, report=None, resident_share=None,
                  calibration_method: str = "percentile", pipeline_cores: int = 1):
    """Compiles an ONNX model (path or ModelProto).

    target:    "inf1", "inf2" or a chip configuration YAML file.
    dtype:     bf16 | fp16 | fp32 | int8 (int8 needs `calibration`).
    batch:     fixes a dynamic batch dimension; must match a static one.
    autocast:  "all" stores every float value in dtype; "matmul" narrows only
               matmul/convolution operands and keeps everything else FP32.
    fallback:  "host" runs ops the device cannot on the CPU; "none" makes them an error.
    report:    a list that receives one (node, op, placement, reason) per node.
    calibration_method: int8: "percentile" or "mse" (compiler/quantize.py).
    resident_share: fraction of SBUF kept for values resident between kernels
               (default lower.RESIDENT_SHARE; 0 keeps every value in DRAM, for comparisons).
    pipeline_cores: N > 1 splits the model into a pipeline of N stages, one
               per core (compiler/pipeline.py); every op must run on the device.
    Returns an `_infsim.Executable` when everything runs on the device, else
    an `infsim.bundle.Bundle`."""
    if dtype not in DTYPES:
        raise CompileError(f"unknown --dtype {dtype} (choose from {', '.join(DTYPES)})")
    if autocast not in AUTOCAST:
        raise CompileError(f"unknown --auto-cast {autocast} (choose from {', '.join(AUTOCAST)})")
    if fallback not in FALLBACK:
        raise CompileError(f"unknown --fallback {fallback} (choose from {', '.join(FALLBACK)})")
    if calibration_method not in CALIBRATION_METHODS:
        raise CompileError(f"unknown --calibration-method {calibration_method} "
                           f"(choose from {', '.join(CALIBRATION_METHODS)})")
    t0 = time.perf_counter()
    graph = load_onnx(model, batch)
    if batch is not None:
        for x in graph.inputs:
            if x.shape and x.shape[0] != batch:
                raise CompileError(f"--batch {batch} but input '{x.name}' has a fixed batch of {x.shape[0]}")
    options = Options(dtype=dtype, autocast=autocast)
    if resident_share is not None:
        if not 0.0 <= resident_share < 1.0:
            raise CompileError(f"resident share {resident_share} is not in [0, 1)")
        options.resident_share = float(resident_share)
    if dtype == "int8":
        from .quantize import calibrate
        if calibration is None:
            raise CompileError("--dtype int8 needs a calibration set (post-training quantisation): "
                               "pass calibration inputs (CLI: --calibration FILE.npz)")
        options.quant = calibrate(graph, calibration, calibration_method)
    graph = optimize(graph)
    tgt = Target.load(target)
    placement = place(graph, tgt, options)
    host = [(n, reason) for n, reason in placement if reason is not None]
    if report is not None:
        report.extend((n.name, n.op, "host" if r else "device", r or "") for n, r in placement)
    if host and fallback == "none":
        lines = "\n".join(f"  {n.op} '{n.name}': {r}" for n, r in host)
        raise CompileError(f"{len(host)} op(s) cannot run on the device (--fallback none):\n{lines}")
    recorded = target if os.sep not in target and not target.endswith((".yaml", ".yml")) else os.path.abspath(target)
    batch_dim = graph.inputs[0].shape[0] if graph.inputs and graph.inputs[0].shape else 1
    meta = {"compiler": f"infsim {__version__}", "target": recorded, "target_name": tgt.name, "dtype": dtype,
            "autocast": autocast, "batch": batch_dim,
            "model": model if isinstance(model, str) else "<in-memory ONNX>",
            "host_ops": [{"node": n.name, "op": n.op, "reason": r} for n, r in host]}
    if pipeline_cores != 1:
        from .pipeline import compile_pipeline
        exe = compile_pipeline(graph, placement, tgt, options, meta, pipeline_cores)
        m = json.loads(exe.metadata_json)
        m["compile_seconds"] = time.perf_counter() - t0
        exe.metadata_json = json.dumps(m, sort_keys=True)
        return exe
    segs = segment(graph, placement)
    for s in segs:
        if s.kind == "device":
            s.exe = lower_segment(graph, s, tgt, options, meta)
    meta["compile_seconds"] = time.perf_counter() - t0
    for s in segs:
        if s.kind == "device":
            m = json.loads(s.exe.metadata_json)
            m["compile_seconds"] = meta["compile_seconds"]
            s.exe.metadata_json = json.dumps(m, sort_keys=True)
    if len(segs) == 1 and segs[0].kind == "device" and \
            set(segs[0].inputs) == {v.name for v in graph.inputs} and \
            segs[0].outputs == [v.name for v in graph.outputs]:
        return segs[0].exe
    from ..bundle import Bundle
    return Bundle.from_segments(graph, segs, meta)
