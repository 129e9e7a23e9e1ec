"""Compilation driver: import -> passes -> lowering -> executable."""
import os

from .. import __version__
from .codegen import Target, lower_linear_chain
from .ir import CompileError
from .onnx_import import load_onnx
from .passes import extract_linear_chain

DTYPES = ("bf16", "fp16", "fp32")


def compile_model(model, target: str = "inf1", dtype: str = "bf16", batch=None):
    """Compiles an ONNX model (path or ModelProto) into an `_infsim.Executable`.

    target: "inf1", "inf2" or a chip configuration YAML file.
    dtype:  compute dtype of weights and activations (FP32 accumulation always).
    batch:  fixes a dynamic batch dimension; must match a static one.
    """
    if dtype == "int8":
        raise CompileError("--dtype int8 needs post-training quantisation, which is not implemented yet")
    if dtype not in DTYPES:
        raise CompileError(f"unknown --dtype {dtype} (choose from {', '.join(DTYPES)})")
    graph = load_onnx(model, batch)
    x = graph.inputs[0] if graph.inputs else None
    if batch is not None and x is not None and x.shape[0] != batch:
        raise CompileError(f"--batch {batch} but input '{x.name}' has a fixed batch of {x.shape[0]}")
    layers = extract_linear_chain(graph)
    tgt = Target.load(target)
    y = graph.outputs[0]
    # A configuration file is recorded by absolute path, so the executable runs from anywhere.
    recorded = target if os.sep not in target and not target.endswith((".yaml", ".yml")) else os.path.abspath(target)
    meta = {"compiler": f"infsim {__version__}", "target": recorded, "target_name": tgt.name, "dtype": dtype,
            "batch": x.shape[0], "inputs": {x.name: list(x.shape)}, "outputs": {y.name: list(y.shape)},
            "model": model if isinstance(model, str) else "<in-memory ONNX>", "host_ops": []}
    return lower_linear_chain(layers, x.name, x.shape, y.name, y.shape, x.shape[0], dtype, tgt, meta)
