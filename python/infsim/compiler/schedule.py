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
                   + 2 * bytes of its values that spill (do not fit resident)
  + sum over cuts:   2 * bytes of the values crossing it that are too big to
                     stay resident at the whole batch (written, read back)

where m is either the largest micro-batch whose resident peak fits the
resident area (nothing inside spills) or the whole batch (the spills are
estimated by allocating the stage's values first-fit in program order, as
the lowering does), whichever is cheaper. A dynamic program over the cut
points picks the cheapest plan; one stage with m = N is the plain schedule,
chosen whenever it is cheapest. BERT-base at batch 8 is the case in point:
its FFN intermediate (8 x 128 x 3072 values) does not fit, so the FFN runs
4 sequences at a time, its weights read twice instead of the intermediate
going through DRAM.

Only batch-separable nodes can be micro-batched (every value has the batch
as its leading axis and no op mixes images: convolutions, pooling,
elementwise ops, products with constant weights, layer norms, attention,
transposes that keep the batch first, ...). Cuts fall only
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
             "Add", "Sub", "Mul", "Div", "Max", "Min", "Sqrt", "Reciprocal", "Pow", "Erf", "Softplus",
             "LayerNormalization", "Attention", "Cast", "Softmax", "Transpose", "Unsqueeze", "Squeeze", "Gather"}
FEATURE_MAP_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool"}
FILL = 0.85  # of the resident area a stage's peak may plan for (the allocator needs some slack)
CROSS_RESIDENT = 0.25  # a value crossing a cut stays resident when its whole batch takes at most this share


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

    sep = [_separable(g, nd, batch) for nd in nodes]
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

    budget = resident_bytes * FILL
    # Buffers produced here, which may be resident (segment inputs and outputs never are).
    buffers = [v for v in root if root[v] == v and v in produced_at and v not in outputs]
    size_img = {v: per_image(v) for v in buffers}
    bytes_img = {v: float(np.prod(shape(v)[1:])) * storage_es if shape(v) else 0.0 for v in buffers}
    by_producer: Dict[int, List[str]] = {}
    for v in buffers:
        by_producer.setdefault(produced_at[v], []).append(v)
    by_end: Dict[int, List[str]] = {}
    for v in buffers:
        by_end.setdefault(end.get(v, -1), []).append(v)
    weights = [sum(int(g.constants[c].size) * weight_es for c in nd.inputs if c in g.constants
                   and g.constants[c].size > 64) for nd in nodes]
    cum_w = np.concatenate([[0], np.cumsum(weights)])

    def crossing(t) -> Optional[float]:
        """DRAM bytes the values crossing a cut before node t cost, or None when no cut may fall there."""
        total = 0.0
        for v in buffers:
            p = produced_at[v]
            if p < t <= end.get(v, -1):
                if nodes[p].op in VIEW_OPS or not sep[p]:
                    return None
                if size_img[v] * batch > budget * CROSS_RESIDENT:
                    total += 2 * bytes_img[v] * batch
        for v, r in root.items():  # a view crossing the cut whose buffer is produced before it
            if r != v and produced_at.get(v, n) < t <= last_use.get(v, -1):
                return None
        return total

    cuts = {0: 0.0, n: 0.0}
    for t in range(1, n):
        if sep[t - 1] and sep[t]:
            c = crossing(t)
            if c is not None:
                cuts[t] = c
    points = sorted(cuts)

    def spills(i, j) -> float:
        """DRAM bytes of the values made and used inside nodes [i, j) that do not
        fit resident at the whole batch: first fit in program order, freed after
        their last use, as the lowering allocates."""
        used, cost, live = 0.0, 0.0, []
        for t in range(i, j):
            for v in by_producer.get(t, ()):
                if end.get(v, -1) >= j:
                    continue
                sz = size_img[v] * batch
                if used + sz <= budget:
                    used += sz
                    live.append(v)
                else:
                    cost += 2 * bytes_img[v] * batch
            if live and any(end[v] <= t for v in live):
                used -= sum(size_img[v] * batch for v in live if end[v] <= t)
                live = [v for v in live if end[v] > t]
        return cost

    # Forward dynamic program; for each stage start i the stage grows one cut
    # point at a time, its live bytes per partition kept per node.
    best = {0: (0.0, [])}
    for a, i in enumerate(points[:-1]):
        if i not in best:
            continue
        live = np.zeros(n + 1)
        separable_so_far = True
        prev = i
        for j in points[a + 1:]:
            separable_so_far = separable_so_far and all(sep[prev:j])
            for e in range(prev, j):  # values ending in [prev, j) are now inside the stage
                for v in by_end.get(e, ()):
                    if produced_at[v] >= i:
                        live[produced_at[v]:e + 1] += size_img[v]
            prev = j
            w = cum_w[j] - cum_w[i]
            peak = float(live[i:j].max()) if j > i else 0.0
            cost, m = w + (spills(i, j) if peak * batch > budget else 0.0), batch
            if separable_so_far and peak * batch > budget:
                mf = int(min(batch, max(1, budget // peak)))
                if w * math.ceil(batch / mf) < cost:
                    cost, m = w * math.ceil(batch / mf), mf
            total = best[i][0] + cost + (cuts[i] if i > 0 else 0.0)
            if j not in best or total < best[j][0]:
                best[j] = (total, best[i][1] + [Stage(i, j, m)])
    plan = _merge(best[n][1], batch)
    if all(s.micro == batch for s in plan):
        return whole
    return plan


def _merge(plan: List[Stage], batch: int) -> List[Stage]:
    """Adjacent whole-batch stages as one (the same code either way)."""
    out: List[Stage] = []
    for s in plan:
        if out and s.micro == batch and out[-1].micro == batch:
            out[-1] = Stage(out[-1].first, s.last, batch)
        else:
            out.append(s)
    return out


def _separable(g: Graph, nd: Node, batch: int) -> bool:
    """Whether node `nd` treats the images of a batch independently, so it may
    run on a slice of the batch (the values' leading axis)."""
    if nd.op not in SEPARABLE:
        return False
    if nd.op in ("MatMul", "Gemm", "FusedMatMul") and (len(nd.inputs) < 2 or nd.inputs[1] not in g.constants
                                                       or int(nd.attrs.get("transA", 0))):
        return False
    if nd.op == "Transpose" and [int(p) for p in (nd.attrs.get("perm") or [1])][0] != 0:
        return False
    if nd.op in ("Softmax", "Unsqueeze", "Squeeze") and 0 in _axes(g, nd):
        return False
    if nd.op == "Gather" and (int(nd.attrs.get("axis", 0)) != 0 or nd.inputs[0] not in g.constants
                              or nd.inputs[1] in g.constants):
        return False  # only a lookup in a constant table, by indices that carry the batch
    for v in list(nd.inputs) + list(nd.outputs):
        if v and v not in g.constants:
            s = tuple(g.values[v].shape) if v in g.values else None
            if not s or s[0] != batch:
                return False
    return True


def _axes(g: Graph, nd: Node) -> List[int]:
    """The axes a Softmax/Squeeze/Unsqueeze names, made non-negative (against its output's rank)."""
    if nd.op == "Softmax":
        rank = len(g.values[nd.outputs[0]].shape) if nd.outputs[0] in g.values else 0
        return [int(nd.attrs.get("axis", -1)) % max(rank, 1)]
    axes = nd.attrs.get("axes")
    if axes is None and len(nd.inputs) > 1 and nd.inputs[1] in g.constants:
        axes = g.constants[nd.inputs[1]].reshape(-1).tolist()
    if axes is None:
        return [0]  # Squeeze of every 1-axis: may include the batch's
    ref = nd.outputs[0] if nd.op == "Unsqueeze" else nd.inputs[0]
    rank = len(g.values[ref].shape) if ref in g.values else 1
    return [int(a) % rank for a in axes]
