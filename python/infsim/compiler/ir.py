"""Graph IR: values with static shapes, nodes in topological order, constants."""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from ..errors import CompileError  # noqa: F401  (the compiler raises it; defined where the CLI can reach it cheaply)


@dataclass
class Value:
    name: str
    shape: Tuple[int, ...]
    dtype: np.dtype


@dataclass
class Node:
    op: str
    name: str
    inputs: List[str]
    outputs: List[str]
    attrs: Dict[str, object] = field(default_factory=dict)


@dataclass
class Graph:
    inputs: List[Value]
    outputs: List[Value]
    nodes: List[Node]
    constants: Dict[str, np.ndarray]
    values: Dict[str, Value] = field(default_factory=dict)
    opset: int = 17  # of the default ONNX domain: some ops changed meaning between opsets

    def consumers(self, name: str) -> List[Node]:
        return [n for n in self.nodes if name in n.inputs]
