"""Pipeline parallel: one model over N NeuronCores (`--pipeline-cores N`,
Neuron's `--neuroncore-pipeline-cores`).

The graph's nodes, in order, are cut into N stages; stage k becomes core k's
run program of one pipelined executable (`Executable.pipeline`). A value
made before a cut and used after it crosses every cut in between: each stage
that holds it sends it to the next with its *send program*, DMAs from its
DRAM slice into the next stage's (`next` endpoints; the runtime connects
each stage's core to its successor's, on the same chip or across the links,
and runs the send program when the successor is idle). docs/runtime.md §2.8
gives the protocol.

**Balance.** The cuts minimise the largest stage estimate (a linear-partition
dynamic program over the node order). A node's estimate, in core cycles, is

    max(MACs / (rows x cols x rate) / MATMUL_EFFICIENCY,
        DRAM bytes its weights stream / DRAM_BYTES_PER_CYCLE)
    + output elements / partitions (the engines' pass over the result)
    + KERNEL_OVERHEAD_CYCLES

(rate: 1 for BF16/FP16, 2 for INT8, 1/4 for FP32), and each cut adds the
bytes crossing it / LINK_BYTES_PER_CYCLE to both stages beside it (sent by one,
received by the other). tests/python/test_pipeline.py checks the estimate
against the simulated stage times.
"""
import json
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .. import _infsim
from ..isa import dtype_size
from .emitter import Emitter, Target
from .ir import CompileError, Graph, Node
from .plan import Segment, lower_segment

MAX_PIPELINE_CORES = int(_infsim.MAX_PIPELINE_CORES)
MATMUL_EFFICIENCY = 0.35  # of the array's peak a real kernel sustains (ResNet-50 and BERT-base measure 33-34%)
DRAM_BYTES_PER_CYCLE = 13.0  # one core's share of its DRAM channel (25.6 GB/s for two cores at 976.5625 MHz)
LINK_BYTES_PER_CYCLE = 16.0  # NeuronLink-v1 per direction, about one per core cycle
KERNEL_OVERHEAD_CYCLES = 2000  # a kernel's start, first loads and drain (~2 us)
MATMUL_RATE = {"bf16": 1.0, "fp16": 1.0, "int8": 2.0, "fp32": 0.25}


def _shape(g: Graph, v: str):
    if v in g.constants:
        return tuple(g.constants[v].shape)
    return tuple(g.values[v].shape) if v in g.values else ()


def node_macs(g: Graph, n: Node) -> int:
    """Multiply-accumulates of one node (0 for those that do not use the array)."""
    out = _shape(g, n.outputs[0]) if n.outputs else ()
    out_elems = int(np.prod(out)) if out else 0
    if n.op in ("Conv", "ConvTranspose") and len(n.inputs) > 1:
        w = _shape(g, n.inputs[1])
        group = int(n.attrs.get("group", 1))
        if n.op == "Conv":
            return out_elems * int(np.prod(w[1:]))
        return int(np.prod(_shape(g, n.inputs[0]))) * int(np.prod(w[1:])) * 1 // max(1, group) * group
    if n.op in ("MatMul", "FusedMatMul", "Gemm") and len(n.inputs) > 1:
        a = _shape(g, n.inputs[0])
        k = a[-2] if n.op == "Gemm" and n.attrs.get("transA") else (a[-1] if a else 1)
        return out_elems * int(k)
    if n.op == "Attention":
        q = _shape(g, n.inputs[0])  # [B, H, S, D]; scores S x S, then weights x V
        kt = _shape(g, n.inputs[1])
        s_kv = kt[-1] if kt else 1
        return 2 * int(np.prod(q)) * int(s_kv)
    return 0


def node_cycles(g: Graph, n: Node, dtype: str, rows: int, cols: int, parts: int) -> float:
    """The compiler's estimate of one node's time on a core, in core cycles (module text)."""
    out = sum(int(np.prod(_shape(g, o))) for o in n.outputs if o and _shape(g, o))
    if n.op == "Gather":  # an embedding lookup reads the rows it gathers, not the table
        weight_elems = out
    else:
        weight_elems = sum(int(g.constants[c].size) for c in n.inputs if c in g.constants and g.constants[c].size > 64)
    weight_bytes = weight_elems * dtype_size("bf16" if dtype == "int8" and n.op not in ("Conv",) else dtype)
    array = node_macs(g, n) / (rows * cols * MATMUL_RATE.get(dtype, 1.0)) / MATMUL_EFFICIENCY
    return max(array, weight_bytes / DRAM_BYTES_PER_CYCLE) + out / parts + KERNEL_OVERHEAD_CYCLES


def _crossing(g: Graph, nodes: Sequence[Node]) -> Tuple[List[List[str]], List[str]]:
    """Per cut t (before node t, 1..n-1): the values made before it (or model
    inputs) and used at or after it; and the model's outputs."""
    n = len(nodes)
    produced = {}
    for i, nd in enumerate(nodes):
        for o in nd.outputs:
            if o:
                produced[o] = i
    for v in g.inputs:
        produced[v.name] = -1
    last = {}
    for i, nd in enumerate(nodes):
        for v in nd.inputs:
            if v and v in produced:
                last[v] = i
    outs = [v.name for v in g.outputs]
    cuts: List[List[str]] = [[] for _ in range(n + 1)]
    for v, p in produced.items():
        for t in range(max(p + 1, 1), last.get(v, -1) + 1):
            cuts[t].append(v)
    return cuts, outs


def _value_bytes(g: Graph, v: str, storage: str) -> int:
    s = _shape(g, v)
    dt = np.dtype(g.values[v].dtype) if v in g.values else np.dtype(np.float32)
    es = 4 if (not np.issubdtype(dt, np.floating) or v in {x.name for x in g.inputs}) else dtype_size(storage)
    return int(np.prod(s)) * es if s else es


def split_stages(g: Graph, nodes: Sequence[Node], n_stages: int, costs: Sequence[float],
                 cut_bytes: Sequence[float]) -> List[Tuple[int, int]]:
    """Node ranges [first, last) of n_stages stages minimising the largest
    estimate (stage cost + its cuts' transfer cycles)."""
    n = len(nodes)
    if n_stages > n:
        raise CompileError(f"--pipeline-cores {n_stages}: the model has only {n} device ops to split")
    pre = np.concatenate([[0.0], np.cumsum(costs)])
    link = [b / LINK_BYTES_PER_CYCLE for b in cut_bytes]  # per cut position 0..n

    def stage(i, j):
        return pre[j] - pre[i] + (link[i] if i > 0 else 0.0) + (link[j] if j < n else 0.0)

    inf = float("inf")
    # best[k][j]: the least largest-stage cost of nodes [0, j) in k stages
    best = np.full((n_stages + 1, n + 1), inf)
    arg = np.zeros((n_stages + 1, n + 1), dtype=np.int64)
    best[0][0] = 0.0
    for k in range(1, n_stages + 1):
        for j in range(k, n - (n_stages - k) + 1):
            for i in range(k - 1, j):
                if best[k - 1][i] == inf:
                    continue
                c = max(best[k - 1][i], stage(i, j))
                if c < best[k][j]:
                    best[k][j], arg[k][j] = c, i
    bounds, j = [], n
    for k in range(n_stages, 0, -1):
        i = int(arg[k][j])
        bounds.append((i, j))
        j = i
    return list(reversed(bounds))


def compile_pipeline(graph: Graph, placement, target: Target, options, metadata: dict,
                     n_stages: int):
    """The pipelined executable of `graph` over n_stages cores (module text)."""
    if not 1 <= n_stages <= MAX_PIPELINE_CORES:
        raise CompileError(f"--pipeline-cores {n_stages}: 1 to {MAX_PIPELINE_CORES} are supported")
    host = [(n, r) for n, r in placement if r is not None]
    if host:
        lines = "\n".join(f"  {n.op} '{n.name}': {r}" for n, r in host[:10])
        raise CompileError(f"--pipeline-cores {n_stages}: every op must run on the device, and {len(host)} "
                           f"would fall back to the host:\n{lines}")
    nodes = [n for n, _ in placement]
    costs = [node_cycles(graph, nd, options.dtype, target.array_rows, target.array_cols, target.partitions)
             for nd in nodes]
    cuts, outs = _crossing(graph, nodes)
    cut_bytes = [sum(_value_bytes(graph, v, options.storage) for v in c) for c in cuts]
    bounds = split_stages(graph, nodes, n_stages, costs, cut_bytes)
    model_inputs = [v.name for v in graph.inputs]

    segs: List[Segment] = []
    for k, (i, j) in enumerate(bounds):
        seg_nodes = nodes[i:j]
        produced = {o for nd in seg_nodes for o in nd.outputs if o}
        received = list(cuts[i]) if k > 0 else []  # everything live at the cut comes in
        if k == 0:
            used = [v for nd in seg_nodes for v in nd.inputs if v and v not in graph.constants]
            received = list(dict.fromkeys(model_inputs + [v for v in used if v not in produced]))
        sent = cuts[j] if j < len(nodes) else []
        # This stage's outputs: what it makes that later stages or the host need. What it only passes on
        # (received and sent) is sent from where it arrived.
        out_here = [o for nd in seg_nodes for o in nd.outputs if o and (o in sent or o in outs)]
        hidden = set(received if k > 0 else []) | {v for v in out_here if v not in outs}
        segs.append(Segment("device", list(seg_nodes), received, out_here, hidden=hidden))

    exe = _infsim.Executable()
    exe.pipeline = True
    stage_meta = []
    for k, seg in enumerate(segs):
        seg.exe = lower_segment(graph, seg, target, options, metadata)
        exe.add_core(seg.exe, 0, k)
    for k in range(len(segs) - 1):
        exe.add_core(_send_program(target, segs[k], segs[k + 1]), 0, k)
    for k, ((i, j), seg) in enumerate(zip(bounds, segs)):
        m = json.loads(seg.exe.metadata_json)
        stage_meta.append({"nodes": [i, j], "first": nodes[i].name, "last": nodes[j - 1].name,
                           "estimate_cycles": round(float(sum(costs[i:j])), 1),
                           "sent_bytes": int(cut_bytes[j]) if j < len(nodes) else 0,
                           "weight_bytes": m.get("weight_bytes", 0), "dram_bytes": m.get("dram_bytes", 0)})
    meta = dict(metadata)
    meta.update({"inputs": {v.name: list(v.shape) for v in graph.inputs},
                 "outputs": {v.name: list(v.shape) for v in graph.outputs},
                 "pipeline_cores": len(segs), "pipeline": stage_meta,
                 "weight_bytes": sum(s["weight_bytes"] for s in stage_meta),
                 "dram_bytes": max(s["dram_bytes"] for s in stage_meta)})
    exe.metadata_json = json.dumps(meta, sort_keys=True)
    return exe


def _send_program(target: Target, src: Segment, dst: Segment):
    """Stage src's send program: every value dst receives, from src's DRAM
    (where src made or received it) into dst's input buffer."""
    em = Emitter(target)
    em.begin_op("send to the next stage")
    for name in dst.inputs:
        if name not in src.io:
            raise CompileError(f"pipeline: value '{name}' is neither made nor received by the stage before")
        a, dtype, shape = src.io[name]
        b, dtype_b, shape_b = dst.io[name]
        if dtype != dtype_b or tuple(shape) != tuple(shape_b):
            raise CompileError(f"pipeline: '{name}' leaves as {dtype}{list(shape)}, arrives as {dtype_b}{list(shape_b)}")
        n = int(np.prod(shape)) if shape else 1
        # Rows of up to 64 KiB, so that the queue's pieces and the link's packets stream.
        row = max(1, min(n, 65536 // dtype_size(dtype)))
        while n % row:
            row -= 1
        src_ep = {"loc": "dram", "dtype": dtype, "address": a, "part_count": n // row, "part_step": row,
                  "dims": [(row, 1)]}
        em.dma(src_ep, dict(src_ep, loc="next", address=b), queue=None)
    return em.finish("send")
