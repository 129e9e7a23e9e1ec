"""infsim.DataParallel: torch.neuron.DataParallel on the simulator.

    model = infsim.trace(net, torch.rand(1, 3, 224, 224))     # compiled for batch 1
    dp = infsim.DataParallel(model)                            # a replica on every visible core
    y = dp(torch.rand(16, 3, 224, 224))                        # 16 requests over 4 replicas

A call's batch is split along `dim` into chunks of the compiled batch (the
last one zero-padded), the chunks are submitted at once and run
concurrently on the replicas in the one simulation, and the outputs are
gathered back in order. `last_records` holds each chunk's request record
(simulated arrival, start and end, replica, status).
"""
import numpy as np

from . import runtime
from .runtime import RunError


class DataParallel:
    def __init__(self, model, device_ids=None, dim=0, instance=None, timing_only=False):
        exe = getattr(model, "executable", model)
        self.instance = instance or getattr(model, "instance", "inf1.xlarge")
        self.runtime = runtime.Runtime(self.instance, runtime.metadata(exe).get("target"))
        self.model = self.runtime.load(exe, cores=device_ids, timing_only=timing_only, name="DataParallel")
        self.dim = dim
        self.input_names = [t["name"] for t in exe.tensors if t["kind"] == "input"]
        self.output_names = [t["name"] for t in exe.tensors if t["kind"] == "output"]
        shapes = [tuple(self.model.inputs[n]["shape"]) for n in self.input_names]
        self.batch = shapes[0][dim]
        self.last_records = []

    @property
    def device_ids(self):
        return self.model.groups

    def __call__(self, *args):
        if len(args) != len(self.input_names):
            raise TypeError(f"expected {len(self.input_names)} inputs ({', '.join(self.input_names)}), got {len(args)}")
        torch_in = any(type(a).__module__.startswith("torch") for a in args)
        arrays = [a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a) for a in args]
        total = arrays[0].shape[self.dim]
        if any(a.shape[self.dim] != total for a in arrays):
            raise RunError(f"every input needs the same size along dim {self.dim}")
        pieces = []
        for b0 in range(0, total, self.batch):
            piece = {}
            for n, a in zip(self.input_names, arrays):
                a = np.take(a, range(b0, min(b0 + self.batch, total)), axis=self.dim)
                short = self.batch - a.shape[self.dim]
                if short:
                    pad = list(a.shape)
                    pad[self.dim] = short
                    a = np.concatenate([a, np.zeros(pad, a.dtype)], axis=self.dim)
                piece[n] = a
            pieces.append(piece)
        futures = self.model.submit_all(pieces)
        self.last_records = [f.record() for f in futures]
        parts = [f.result() for f in futures]
        out = [np.take(np.concatenate([p[n] for p in parts], axis=self.dim), range(total), axis=self.dim)
               for n in self.output_names]
        if torch_in:
            import torch
            out = [torch.from_numpy(o) for o in out]
        return out[0] if len(out) == 1 else tuple(out)

    def unload(self):
        self.model.unload()
