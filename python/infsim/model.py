"""The user-facing compiled model: `infsim.trace` and `infsim.load`."""
import inspect
import io

import numpy as np

from . import runtime
from .compiler import compile_model


class CompiledModel:
    """A model compiled for the simulated chip; call it like the original module."""

    def __init__(self, executable, instance="inf1.xlarge"):
        self.executable = executable
        self.instance = instance
        self.input_names = [t["name"] for t in executable.tensors if t["kind"] == "input"]
        self.output_names = [t["name"] for t in executable.tensors if t["kind"] == "output"]
        self.last_stats = None

    def __call__(self, *args):
        if len(args) != len(self.input_names):
            raise TypeError(f"expected {len(self.input_names)} inputs ({', '.join(self.input_names)}), got {len(args)}")
        torch_in = any(type(a).__module__.startswith("torch") for a in args)
        arrays = {n: (a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a))
                  for n, a in zip(self.input_names, args)}
        outputs, self.last_stats = runtime.run(self.executable, arrays, self.instance)
        result = [outputs[n] for n in self.output_names]
        if torch_in:
            import torch
            result = [torch.from_numpy(r) for r in result]
        return result[0] if len(result) == 1 else tuple(result)

    def save(self, path):
        self.executable.save(str(path))


def load(path, instance="inf1.xlarge") -> CompiledModel:
    """An executable or a bundle (device steps and host steps) from a file."""
    return CompiledModel(runtime.load(str(path)), instance)


def trace(module, example_inputs, target="inf1", dtype="bf16", instance="inf1.xlarge", opset=13,
          autocast="all", fallback="host", calibration=None, pipeline_cores=1) -> CompiledModel:
    """Exports a PyTorch module to ONNX with `example_inputs` fixing the shapes,
    compiles it and returns a CompiledModel that runs on the simulator.
    dtype, autocast, fallback, calibration (INT8: {input name: array}) and
    pipeline_cores (a pipeline of N stages, one per core; more than 4 need an
    instance with several chips, e.g. instance="inf1.6xlarge") are compile_model's."""
    import onnx
    import torch

    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    try:
        params = list(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):
        params = []
    names = params[:len(example_inputs)] if len(params) >= len(example_inputs) else \
        [f"input{i}" for i in range(len(example_inputs))]
    buf = io.BytesIO()
    module = module.eval()
    with torch.no_grad():
        torch.onnx.export(module, example_inputs, buf, input_names=names, output_names=["output"],
                          opset_version=opset, do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    exe = compile_model(proto, target=target, dtype=dtype, autocast=autocast, fallback=fallback,
                        calibration=calibration, pipeline_cores=pipeline_cores)
    return CompiledModel(exe, instance)
