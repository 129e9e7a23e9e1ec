"""Placement and segmentation: which nodes run on the device, which on the
host CPU, and the executables of the device segments.

Nodes are visited in graph (topological) order; a node no kernel accepts
runs on the host, splitting the device work into segments. Values crossing a
segment boundary travel through the host in FP32 (INT32 for integers).
"""
import json
import os
from dataclasses import dataclass, field, replace
from typing import List

from .emitter import Target
from .ir import CompileError
from .residency import RESIDENT_BASE
from .ir import Graph, Node
from .lower import Lowering, Options, check_node
from .views import DView
from . import kernels  # noqa: F401  (registers the kernels)


@dataclass
class Segment:
    kind: str  # "device" or "host"
    nodes: List[Node]
    inputs: List[str] = field(default_factory=list)
    outputs: List[str] = field(default_factory=list)
    exe: object = None  # device: the executable
    # A pipeline stage's values that pass to or from a neighbouring stage rather
    # than the host: not in the tensor table; their DRAM places go in `io`
    # (name -> (address, dtype, shape)). Those not the model's own inputs and
    # outputs are stored in the storage dtype, as inside the segment.
    hidden: set = field(default_factory=set)
    io: dict = field(default_factory=dict)


def place(graph: Graph, target: Target, options: Options):
    """[(node, reason or None)]: None = device."""
    probe = Lowering(graph, target, options, [], [], [])
    out = []
    for n in graph.nodes:
        try:
            reason = check_node(n, probe)
        except Exception as e:  # a check tripping on an unusual node: keep it on the host, say why
            reason = f"{type(e).__name__}: {e}"
        out.append((n, reason))
    return out


def segment(graph: Graph, placement) -> List[Segment]:
    segs: List[Segment] = []
    for n, reason in placement:
        kind = "device" if reason is None else "host"
        if not segs or segs[-1].kind != kind:
            segs.append(Segment(kind, []))
        segs[-1].nodes.append(n)
    graph_outputs = {v.name for v in graph.outputs}
    for i, s in enumerate(segs):
        produced = {o for n in s.nodes for o in n.outputs if o}
        used = [v for n in s.nodes for v in n.inputs if v]
        s.inputs = list(dict.fromkeys(v for v in used if v not in produced and v not in graph.constants))
        if i == 0:  # the model's inputs first, in their order (positional calls), used or not
            s.inputs = list(dict.fromkeys([v.name for v in graph.inputs] + s.inputs))
        later = {v for t in segs[i + 1:] for n in t.nodes for v in n.inputs} | graph_outputs
        s.outputs = [o for n in s.nodes for o in n.outputs if o in later]
    return segs


FALLBACK_LIMIT = 64  # split DMAs a resident value may cost before a second lowering keeps it in DRAM


def lower_segment(graph: Graph, seg: Segment, target: Target, options: Options, metadata: dict):
    """One device segment -> executable. Inputs and outputs live in DRAM in
    host types (FP32 / INT32), contiguous; other values live in SBUF where
    they fit (compiler/residency.py), else in DRAM.

    Residency is decided while lowering, so it is retried: values whose
    accesses did not map onto SBUF rows (split DMAs) go to DRAM in a second
    lowering, and a segment whose kernels do not fit beside the resident
    area is lowered without one."""
    in_dram = set()
    for attempt in range(3):
        try:
            lw = _lower(graph, seg, target, options, in_dram, metadata)
        except CompileError as e:
            if os.environ.get("INFSIM_DEBUG_RESIDENCY"):
                print("residency off:", e)
            if options.resident_share == 0:
                raise
            options = replace(options, resident_share=0.0)
            continue
        bad = {b.name for b in lw.em.resident.buffers if b.fallback_dmas > FALLBACK_LIMIT}
        if os.environ.get("INFSIM_DEBUG_RESIDENCY"):
            print("split DMAs:", sorted(((b.fallback_dmas, b.name) for b in lw.em.resident.buffers
                                        if b.fallback_dmas), reverse=True)[:12])
        if not bad - in_dram or attempt == 2:
            break
        in_dram |= bad
    return lw.em.exe


def _lower(graph, seg, target, options, in_dram, metadata):
    model_io = {v.name for v in graph.inputs} | {v.name for v in graph.outputs}
    lw = Lowering(graph, target, options, seg.nodes, seg.inputs, seg.outputs, in_dram,
                  stored=seg.hidden - model_io)
    exe = lw.em.exe
    io = {}
    seg.io = {}
    for name in seg.inputs:
        v = DView.contiguous(0, lw.shape(name), lw.storage_dtype(name))
        addr = lw.em.dram.alloc(max(v.size * v.es, 1))
        io[name] = DView(addr, v.shape, v.strides, v.dtype)
        seg.io[name] = (addr, v.dtype, tuple(v.shape))
        if name not in seg.hidden:
            exe.add_tensor(name, "input", v.dtype, list(v.shape), 0, addr)
    views = lw.run(io)
    from .kernels.shape_ops import copy_view
    for name in seg.outputs:
        v = views[name]
        owned = lw.buffer_of.get(name) is not None and lw.buffers[lw.buffer_of[name]][2] == 1
        if not (v.is_contiguous() and v.dtype == lw.storage_dtype(name) and owned and name not in io
                and v.addr < RESIDENT_BASE):
            lw.em.begin_op(f"{name} (output copy)")
            src = v
            v = DView.contiguous(lw.em.dram.alloc(max(src.size * 4, 1)), src.shape, lw.storage_dtype(name))
            copy_view(lw, src, v)
        seg.io[name] = (v.addr, v.dtype, tuple(v.shape))
        if name not in seg.hidden or name in model_io:
            exe.add_tensor(name, "output", v.dtype, list(v.shape), 0, v.addr)
    lw.em.finish()
    meta = dict(metadata)
    meta.update({"inputs": {n: list(lw.shape(n)) for n in seg.inputs},
                 "outputs": {n: list(lw.shape(n)) for n in seg.outputs},
                 "dram_bytes": lw.em.dram.act_high + lw.em.dram.const_bytes,
                 "weight_bytes": lw.em.dram.const_bytes,
                 "activation_bytes": lw.em.dram.act_high,
                 "sbuf_high_water": lw.em.sbuf.high_water,
                 "fused": {op: sum(n.op == op for n in lw.nodes)
                           for op in ("Attention", "FusedMatMul", "LayerNormalization")},
                 "stages": [{"nodes": [st.first, st.last], "micro_batch": st.micro,
                             "first": lw.nodes[st.first].name if st.first < len(lw.nodes) else ""}
                            for st in lw.stages],
                 "resident_weights": {"sbuf_bytes": lw.em.weight_used, "budget": lw.em.weight_budget,
                                      "tensors": len(lw.em.weight_slots), "load_bytes": lw.em.weight_load_bytes,
                                      "streamed_bytes": lw.em.weight_stream_bytes},
                 "resident": {"sbuf_bytes": lw.em.resident.hi - lw.em.resident.lo,
                              "high_water": lw.em.resident.high_water,
                              "values": len(lw.em.resident.placed),
                              "split_dmas": sum(b.fallback_dmas for b in lw.em.resident.buffers)},
                 "instructions": dict(sorted(lw.em.counts.items()))})
    exe.metadata_json = json.dumps(meta, sort_keys=True)
    return lw
