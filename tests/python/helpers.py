"""Shared test helpers: models to ONNX, accuracy measures."""
import numpy as np
import torch

from infsim.accuracy import cosine  # noqa: F401  (tests import it from here)


def export(module, example, path, input_names=("x",), output_names=("y",), dynamic_batch=False):
    dyn = {input_names[0]: {0: "batch"}} if dynamic_batch else None
    torch.onnx.export(module.eval(), (example,), str(path), input_names=list(input_names),
                      output_names=list(output_names), opset_version=13, dynamic_axes=dyn)
    return str(path)




# Tolerances that follow from the compute dtype: BF16 keeps 8 significant
# bits (relative step 2^-8), FP16 11, FP32 24; errors grow with the number of
# accumulated rounded terms, bounded here relative to the output's scale.
TOLERANCE = {"bf16": 2e-2, "fp16": 4e-3, "fp32": 1e-5}


def assert_close(got, ref, dtype):
    scale = float(np.abs(ref).max())
    err = float(np.abs(got - ref).max())
    assert err <= TOLERANCE[dtype] * scale, f"max abs error {err:.3e} > {TOLERANCE[dtype]} x {scale:.3e}"
    assert cosine(got, ref) >= (0.999 if dtype != "fp32" else 0.9999999)


def to_onnx(module, inputs, opset=13):
    """A module exported in memory (input names from forward's parameters)."""
    import inspect
    import io
    import onnx
    inputs = tuple(inputs)
    names = list(inspect.signature(module.forward).parameters)[:len(inputs)]
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module.eval(), inputs, buf, input_names=names, opset_version=opset,
                          do_constant_folding=True)
    return onnx.load_from_string(buf.getvalue()), names


def run_module(module, *inputs, dtype="fp32", opset=13, **compile_kw):
    """Compiles `module` for the simulator, runs it on `inputs`; returns
    (device output, PyTorch FP32 output, stats, executable)."""
    from infsim import runtime
    from infsim.compiler import compile_model
    model, names = to_onnx(module, inputs, opset)
    exe = compile_model(model, dtype=dtype, **compile_kw)
    outs, stats = runtime.run(exe, {n: x.numpy() for n, x in zip(names, inputs)})
    with torch.no_grad():
        ref = module(*inputs)
    ref = ref[0] if isinstance(ref, (tuple, list)) else ref
    return list(outs.values())[0], ref.numpy(), stats, exe
