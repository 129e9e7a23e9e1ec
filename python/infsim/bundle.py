"""A compiled model whose ops do not all run on the device: device
executables and host (CPU) steps, run in order by the runtime.

File format (`.infx` bundle): the 8-byte magic "INFSIMB\\0", a u32 format
version (1), a u64 JSON length and the JSON plan, then the payloads it
refers to back to back: each device step's serialized executable and each
host step's nodes as an ONNX graph. The plan lists the steps with their
input and output value names and payload (offset, size) pairs.
"""
import json
import struct
from typing import Dict, List

import numpy as np

from . import _infsim

MAGIC = b"INFSIMB\0"
VERSION = 1


class Bundle:
    def __init__(self, steps: List[dict], meta: dict, inputs: Dict[str, list], outputs: Dict[str, list]):
        self.steps = steps  # {"kind", "inputs", "outputs", "exe" | "onnx" bytes}
        self.meta = meta
        self.inputs = inputs  # name -> [shape, dtype]
        self.outputs = outputs

    # ------------------------------------------------------------------ build
    @classmethod
    def from_segments(cls, graph, segs, meta) -> "Bundle":
        steps = []
        for s in segs:
            if s.kind == "device":
                steps.append({"kind": "device", "inputs": s.inputs, "outputs": s.outputs, "exe": s.exe})
            else:
                steps.append({"kind": "host", "inputs": s.inputs, "outputs": s.outputs,
                              "onnx": _host_onnx(graph, s)})
        ins = {v.name: [list(v.shape), str(np.dtype(v.dtype))] for v in graph.inputs}
        outs = {v.name: [list(v.shape), str(np.dtype(v.dtype))] for v in graph.outputs}
        return cls(steps, meta, ins, outs)

    # ------------------------------------------------------------------ compat with Executable
    @property
    def metadata_json(self) -> str:
        return json.dumps(dict(self.meta, inputs={k: v[0] for k, v in self.inputs.items()},
                               outputs={k: v[0] for k, v in self.outputs.items()}), sort_keys=True)

    @property
    def tensors(self):
        return [{"name": n, "kind": "input", "shape": s, "dtype": d} for n, (s, d) in self.inputs.items()] + \
               [{"name": n, "kind": "output", "shape": s, "dtype": d} for n, (s, d) in self.outputs.items()]

    def validate(self, config):
        """Validates every device step's executable for the chip configuration."""
        for st in self.steps:
            if st["kind"] == "device":
                st["exe"].validate(config)

    # ------------------------------------------------------------------ files
    def serialize(self) -> bytes:
        blobs, plan = [], []
        offset = 0
        for st in self.steps:
            data = st["exe"].serialize() if st["kind"] == "device" else st["onnx"]
            plan.append({"kind": st["kind"], "inputs": st["inputs"], "outputs": st["outputs"],
                         "payload": [offset, len(data)]})
            blobs.append(data)
            offset += len(data)
        head = json.dumps({"steps": plan, "meta": self.meta, "inputs": self.inputs, "outputs": self.outputs},
                          sort_keys=True).encode()
        return MAGIC + struct.pack("<IQ", VERSION, len(head)) + head + b"".join(blobs)

    def save(self, path):
        with open(path, "wb") as f:
            f.write(self.serialize())

    @classmethod
    def deserialize(cls, data: bytes) -> "Bundle":
        if data[:8] != MAGIC or len(data) < 20:
            raise _infsim.RunError("not an infsim bundle")
        version, n = struct.unpack_from("<IQ", data, 8)
        if version != VERSION:
            raise _infsim.RunError(f"bundle format version {version} is not supported (this build reads {VERSION})")
        try:
            head = json.loads(data[20:20 + n])
        except ValueError as e:
            raise _infsim.RunError(f"corrupt bundle header: {e}") from None
        base = 20 + n
        steps = []
        for st in head["steps"]:
            off, size = st["payload"]
            if base + off + size > len(data):
                raise _infsim.RunError("truncated bundle: a step's payload runs past the end of the file")
            blob = data[base + off:base + off + size]
            step = {"kind": st["kind"], "inputs": st["inputs"], "outputs": st["outputs"]}
            if st["kind"] == "device":
                step["exe"] = _infsim.Executable.deserialize(blob)
            else:
                step["onnx"] = blob
            steps.append(step)
        return cls(steps, head["meta"], head["inputs"], head["outputs"])

    # ------------------------------------------------------------------ host steps
    def run_host_step(self, step, feeds):
        """Runs one host step on the CPU (the runtime runs the device steps)."""
        from .compiler.host_ops import run_graph
        from .compiler.onnx_import import load_onnx
        if "graph" not in step:  # parsed on first use, kept for later runs
            step["graph"] = load_onnx(__import__("onnx").load_from_string(step["onnx"]))
        g = step["graph"]
        # The device hands back INT32 for integer and boolean values: restore the declared types.
        feeds = {v.name: np.asarray(feeds[v.name]).astype(v.dtype, copy=False) for v in g.inputs}
        return run_graph(g, feeds, step["outputs"])


def _host_onnx(graph, seg) -> bytes:
    """The host nodes of a segment as a standalone ONNX model (inputs and
    the constants they use included)."""
    import onnx
    from onnx import helper, numpy_helper
    const_names = {i for n in seg.nodes for i in n.inputs if i in graph.constants}
    inits = [numpy_helper.from_array(np.asarray(graph.constants[c]), c) for c in sorted(const_names)]

    def vinfo(name):
        v = graph.values[name]
        return helper.make_tensor_value_info(name, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(v.dtype)], list(v.shape))

    nodes = []
    for n in seg.nodes:
        attrs = {}
        for k, v in n.attrs.items():
            attrs[k] = v
        nodes.append(helper.make_node(n.op, n.inputs, n.outputs, name=n.name, **attrs))
    g = helper.make_graph(nodes, "host_step", [vinfo(i) for i in seg.inputs], [vinfo(o) for o in seg.outputs],
                          initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", graph.opset)]).SerializeToString()
