"""Post-training quantisation to INT8: calibration and scales.

Calibration runs the model on the host (host_ops) over the calibration set
and records, for every value that feeds a matrix product or a convolution,
its largest magnitude. The device then quantises that activation
symmetrically on chip, q = round(x / s) with s = amax / 127 (saturating):
a matmul while transposing its A operand, a convolution as its bands
arrive (values stay BF16 in DRAM between ops). Weights are
quantised per output channel the same way at compile time; the array
multiplies INT8 x INT8 into INT32 and the epilogue rescales by s_x * s_w.
"""
from typing import Dict

import numpy as np

from .ir import CompileError, Graph

QUANTISED_OPS = ("MatMul", "Gemm", "Conv")
QMAX = 127.0


def calibrate(graph: Graph, calibration: Dict[str, np.ndarray]) -> Dict[str, float]:
    """{value name: amax} over the calibration set (arrays keyed by input
    name, the batch axis first, any number of compiled batches). amax is
    the 99.99th percentile of |x| per batch, maximised over batches: the
    rare outliers saturate rather than coarsening every other value's step."""
    from .host_ops import run_graph
    names = [v.name for v in graph.inputs]
    missing = [n for n in names if n not in calibration]
    if missing:
        raise CompileError(f"the calibration set has no data for input(s) {', '.join(missing)}")
    batch = graph.inputs[0].shape[0]
    total = len(calibration[names[0]])
    if total < batch or total % batch:
        raise CompileError(f"the calibration set has {total} samples: give a multiple of the batch ({batch})")
    wanted = sorted({n.inputs[0] for n in graph.nodes if n.op in QUANTISED_OPS and n.inputs[0] not in graph.constants})
    amax: Dict[str, float] = {}
    for b0 in range(0, total, batch):
        feeds = {n: np.asarray(calibration[n][b0:b0 + batch]) for n in names}
        for v in graph.inputs:
            if tuple(feeds[v.name].shape) != tuple(v.shape):
                raise CompileError(f"calibration input '{v.name}': samples of shape {feeds[v.name].shape[1:]}, "
                                   f"the model takes {tuple(v.shape[1:])}")
        got = run_graph(graph, feeds, outputs=wanted)
        for k, a in got.items():
            amax[k] = max(amax.get(k, 0.0), float(np.percentile(np.abs(a), 99.99)))
    return amax


def activation_scale(amax: float) -> float:
    return max(amax, 1e-12) / QMAX


def quantise_weights(w: np.ndarray, axis: int):
    """Symmetric per-channel INT8 (channel = `axis`): (values as float, scales)."""
    red = tuple(a for a in range(w.ndim) if a != axis % w.ndim)
    s = np.maximum(np.abs(w).max(axis=red, keepdims=True), 1e-12) / QMAX
    q = np.clip(np.rint(w / s), -QMAX, QMAX).astype(np.float32)
    return q, s.reshape(-1).astype(np.float32)

