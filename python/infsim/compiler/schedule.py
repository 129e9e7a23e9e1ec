"""Stages and micro-batches: how a batch flows through a segment.

A batch of N images does not fit on chip layer by layer: ResNet-50's
early feature maps are 12.5 KiB per partition per image, so at batch 10
they spill to DRAM and every layer writes and reads them again. Lowering
each layer for the whole batch keeps weights read once but spills
activations; lowering the whole graph per image keeps activations on chip
but reads every weight N times. Neither is what the chip is good at.

The schedule cuts the segment's nodes into *stages*; a stage runs its nodes
for one micro-batch of m images at a time (m <= N), so everything inside
it stays resident, and the values that cross a cut live in DRAM at the
whole batch (each micro-batch writes its slice). The cost of a plan, in
DRAM bytes per batch, is

    sum over stages: weight bytes of the stage * ceil(N / m)
  + sum over cuts:   2 * bytes of the values crossing it (written, read back)

and m is the largest micro-batch whose resident peak fits the resident
area. A dynamic program over the cut points picks the cheapest plan; one
stage with m = N is the plain schedule, chosen whenever it is cheapest.

Only batch-separable nodes can be micro-batched (every value has the batch
as its leading axis and no op mixes images: convolutions, pooling,
elementwise ops, products with constant weights, ...). Cuts fall only
where every crossing value is produced by a kernel (not a view of another
value's buffer).
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from .ir import Graph, Node

PARTS = 128
VIEW_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Transpose", "Slice", "Expand",
            "Split"}
SEPARABLE = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
             "Reshape", "Flatten", "Identity", "Dropout", "FusedMatMul", "MatMul", "Gemm",
             "Relu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "LeakyRelu", "Gelu", "Exp", "Neg", "Abs",
             "Add", "Sub", "Mul", "Div", "Max", "Min", "Sqrt", "Reciprocal", "Pow", "Erf", "Softplus"}
FEATURE_MAP_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool"}
FILL = 0.85  # of the resident area a stage's peak may plan for (the allocator needs some slack)


@dataclass
class Stage:
    first: int  # node indices [first, last)
    last: int
    micro: int  # images per micro-batch (= the batch: not split)


def plan_stages(g: Graph, nodes: Sequence[Node], outputs: Sequence[str],
                batch: int, resident_bytes: int, storage_es: int, weight_es: int) -> List[Stage]:
    """The cheapest staging of `nodes` for a batch of `batch` (see the module text)."""
    n = len(nodes)
    whole = [Stage(0, n, batch)]
    if batch <= 1 or resident_bytes <= 0 or n == 0:
        return whole
    produced_at: Dict[str, int] = {}
    last_use: Dict[str, int] = {}
    for i, nd in enumerate(nodes):
        for o in nd.outputs:
            if o:
                produced_at[o] = i
        for v in nd.inputs:
            if v and v not in g.constants:
                last_use[v] = i
    for v in outputs:
        last_use[v] = n

    def shape(v):
        return tuple(g.values[v].shape) if v in g.values else None

    def separable(nd: Node) -> bool:
        if nd.op not in SEPARABLE:
            return False
        if nd.op in ("MatMul", "Gemm", "FusedMatMul") and (len(nd.inputs) < 2 or nd.inputs[1] not in g.constants
                                                           or int(nd.attrs.get("transA", 0))):
            return False
        for v in list(nd.inputs) + list(nd.outputs):
            if v and v not in g.constants:
                s = shape(v)
                if not s or s[0] != batch:
                    return False
        return True

    sep = [separable(nd) for nd in nodes]
    # Buffers: a view op's output shares its input's buffer (live until the last use of either).
    root: Dict[str, str] = {}
    for nd in nodes:
        for o in nd.outputs:
            if o:
                src = nd.inputs[0] if nd.op in VIEW_OPS and nd.inputs and nd.inputs[0] not in g.constants else None
                root[o] = root.get(src, src) if src else o
    end: Dict[str, int] = {}
    for v, u in last_use.items():
        r = root.get(v, v)
        end[r] = max(end.get(r, -1), u)

    def per_image(v) -> float:
        """Resident bytes per partition one image of value v takes."""
        s = shape(v)
        if s is None:
            return 0.0
        if len(s) == 4 and nodes[produced_at[v]].op in FEATURE_MAP_OPS:
            return math.ceil(s[1] / PARTS) * s[2] * s[3] * storage_es
        return int(np.prod(s[1:])) * storage_es / PARTS

    buffers = [v for v in root if root[v] == v]  # values with their own buffer
    size_img = {v: per_image(v) for v in buffers}
    weights = [sum(int(g.constants[c].size) * weight_es for c in nd.inputs if c in g.constants
                   and g.constants[c].size > 64) for nd in nodes]
    cum_w = np.concatenate([[0], np.cumsum(weights)])

    def crossing(t) -> Optional[float]:
        """Bytes of the values crossing a cut before node t, or None when no cut may fall there."""
        total = 0.0
        for v in buffers:
            p = produced_at.get(v)
            if p is not None and p < t <= end.get(v, -1):
                if nodes[p].op in VIEW_OPS or not sep[p]:
                    return None
                total += float(np.prod(shape(v))) * storage_es
        for v, r in root.items():  # a view crossing the cut whose buffer is produced before it
            if r != v and produced_at.get(v, n) < t <= last_use.get(v, -1):
                return None
        return total

    cuts = {0: 0.0, n: 0.0}
    for t in range(1, n):
        c = crossing(t)
        if c is not None and sep[t - 1] and sep[t]:
            cuts[t] = c
    points = sorted(cuts)
    budget = resident_bytes * FILL

    def stage_cost(i, j):
        """(DRAM bytes, micro-batch) of nodes [i, j) as one stage."""
        if not all(sep[i:j]):
            return cum_w[j] - cum_w[i], batch  # not separable: the whole batch, as lowered today
        peak = 0.0
        for t in range(i, j):
            live = sum(size_img[v] for v in buffers
                       if i <= produced_at.get(v, -1) <= t <= end.get(v, -1) and end.get(v, -1) < j)
            peak = max(peak, live)
        m = batch if peak == 0 else int(min(batch, max(1, budget // peak)))
        return (cum_w[j] - cum_w[i]) * math.ceil(batch / m), m

    best = {0: (0.0, [])}
    for j in points[1:]:
        for i in points:
            if i >= j or i not in best:
                continue
            cost, m = stage_cost(i, j)
            total = best[i][0] + cost + (2 * cuts[i] if i > 0 else 0.0)
            if j not in best or total < best[j][0]:
                best[j] = (total, best[i][1] + [Stage(i, j, m)])
    plan = best[n][1]
    if all(s.micro == batch for s in plan):
        return whole
    return plan
