"""Graph passes: fold the graph into device layers.

Today the device lowering covers chains of fully connected layers (MatMul or
Gemm, bias Add, Relu) with free reshapes in between; anything else is refused
with the op's name.
"""
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from .ir import CompileError, Graph, Node

# Ops that do not move data in a row-major DRAM tensor of shape [batch, ...].
ALIASES = {"Flatten", "Reshape", "Identity", "Dropout"}
DEVICE_OPS = {"MatMul", "Gemm", "Add", "Relu"} | ALIASES


@dataclass
class Linear:
    """y = act(x @ weight.T + bias): weight [out, in], bias [out]."""
    name: str
    weight: np.ndarray
    bias: Optional[np.ndarray]
    act: str = "identity"

    @property
    def in_features(self):
        return self.weight.shape[1]

    @property
    def out_features(self):
        return self.weight.shape[0]


def _const(graph: Graph, name: str, node: Node):
    if name not in graph.constants:
        raise CompileError(f"node '{node.name}' ({node.op}): operand '{name}' must be a constant (weights); "
                           "activation-by-activation products are not supported yet")
    return graph.constants[name].astype(np.float32)


def extract_linear_chain(graph: Graph) -> List[Linear]:
    """Walks from the single input to the single output, folding ops into layers."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise CompileError(f"the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                           "this compiler version lowers single-input, single-output models")
    unsupported = sorted({f"{n.op} ('{n.name}')" for n in graph.nodes if n.op not in DEVICE_OPS})
    if unsupported:
        raise CompileError("operators not supported by the device compiler yet: " + ", ".join(unsupported))
    x = graph.inputs[0]
    if len(x.shape) < 2:
        raise CompileError(f"input '{x.name}' must have a batch dimension and features, got shape {x.shape}")
    cur = x.name
    features = int(np.prod(x.shape[1:]))
    layers: List[Linear] = []
    while cur != graph.outputs[0].name:
        users = graph.consumers(cur)
        if len(users) != 1:
            raise CompileError(f"value '{cur}' is used by {len(users)} nodes; only chains are supported yet")
        n = users[0]
        if n.op in ALIASES:
            if n.op in ("Reshape",):
                shape = graph.values.get(n.outputs[0])
                if shape is None or shape.shape[0] != x.shape[0]:
                    raise CompileError(f"Reshape '{n.name}' must keep the batch dimension")
        elif n.op == "Gemm":
            if n.attrs.get("transA", 0) or n.attrs.get("alpha", 1.0) != 1.0 or n.attrs.get("beta", 1.0) != 1.0:
                raise CompileError(f"Gemm '{n.name}': only alpha=beta=1, transA=0 is supported")
            w = _const(graph, n.inputs[1], n)
            w = w if n.attrs.get("transB", 0) else w.T
            b = _const(graph, n.inputs[2], n) if len(n.inputs) > 2 and n.inputs[2] else None
            layers.append(Linear(n.name, np.ascontiguousarray(w), None if b is None else np.broadcast_to(b, (w.shape[0],)).copy()))
        elif n.op == "MatMul":
            if n.inputs[0] != cur:
                raise CompileError(f"MatMul '{n.name}': the activation must be the first operand")
            w = _const(graph, n.inputs[1], n)
            if w.ndim != 2:
                raise CompileError(f"MatMul '{n.name}': weight must be 2-D")
            layers.append(Linear(n.name, np.ascontiguousarray(w.T), None))
        elif n.op == "Add":
            other = n.inputs[1] if n.inputs[0] == cur else n.inputs[0]
            if not layers or layers[-1].act != "identity" or layers[-1].bias is not None:
                raise CompileError(f"Add '{n.name}': only a bias add right after a MatMul is supported yet")
            b = _const(graph, other, n)
            if b.size != layers[-1].out_features:
                raise CompileError(f"Add '{n.name}': bias of {b.size} elements for {layers[-1].out_features} features")
            layers[-1].bias = b.reshape(-1).copy()
        elif n.op == "Relu":
            if not layers or layers[-1].act != "identity":
                raise CompileError(f"Relu '{n.name}' must follow a fully connected layer")
            layers[-1].act = "relu"
        if n.op in ("Gemm", "MatMul"):
            if layers[-1].in_features != features:
                raise CompileError(f"{n.op} '{n.name}': weight expects {layers[-1].in_features} inputs, "
                                   f"the activation has {features}")
            features = layers[-1].out_features
        cur = n.outputs[0]
    if not layers:
        raise CompileError("the model has no fully connected layer to run on the device")
    return layers
