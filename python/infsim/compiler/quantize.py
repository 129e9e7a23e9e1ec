"""Post-training quantisation to INT8: calibration and scales.

Calibration runs the model on the host (host_ops) over the calibration set
and records, for every value that feeds a matrix product or a convolution,
the magnitude its INT8 range covers (`calibrate`: a high percentile, or the
threshold with the least quantisation error) and whether it is ever
negative. The device then quantises that activation on chip, saturating: a
matmul symmetrically while transposing its A operand (q = round(x / s),
s = amax / 127), a convolution as its bands arrive, with a zero point when
its input is non-negative (conv_input_quantisation). Values stay BF16 in
DRAM between ops. Weights are
quantised per output channel the same way at compile time; the array
multiplies INT8 x INT8 into INT32 and the epilogue rescales by s_x * s_w.
"""
from dataclasses import dataclass
from typing import Dict

import numpy as np

from .ir import CompileError, Graph

QUANTISED_OPS = ("MatMul", "Gemm", "Conv")
QMAX = 127.0
ZERO_POINT = -128  # the INT8 code of 0.0 for a non-negative activation (a convolution's input)


@dataclass(frozen=True)
class ActivationRange:
    """What calibration learned of one activation."""
    amax: float  # the magnitude the INT8 range covers (larger values saturate)
    nonnegative: bool  # no calibration value below 0 (a ReLU's output)


CALIBRATION_METHODS = ("percentile", "mse")
SAMPLES = 1 << 16  # values kept per activation and calibration batch for the MSE search
CANDIDATES = 64  # clipping thresholds the MSE search tries


def calibrate(graph: Graph, calibration: Dict[str, np.ndarray], method: str = "percentile"
              ) -> Dict[str, ActivationRange]:
    """{value name: ActivationRange} over the calibration set (arrays keyed by input
    name, the batch axis first, any number of compiled batches).

    percentile: amax is the 99.99th percentile of |x| per batch, maximised
    over batches: the rare outliers saturate rather than coarsening every
    other value's step.
    mse: amax is the clipping threshold that minimises the mean squared error
    of the quantised values (rounding inside, clipping outside) over a
    sample of every batch's values, searched among CANDIDATES thresholds from
    a tenth of the largest |x| to the largest."""
    from .host_ops import run_graph, statistics_precision
    if method not in CALIBRATION_METHODS:
        raise CompileError(f"unknown calibration method {method} (choose from {', '.join(CALIBRATION_METHODS)})")
    names = [v.name for v in graph.inputs]
    missing = [n for n in names if n not in calibration]
    if missing:
        raise CompileError(f"the calibration set has no data for input(s) {', '.join(missing)}")
    batch = graph.inputs[0].shape[0]
    total = len(calibration[names[0]])
    if total < batch or total % batch:
        raise CompileError(f"the calibration set has {total} samples: give a multiple of the batch ({batch})")
    wanted = sorted({n.inputs[0] for n in graph.nodes if n.op in QUANTISED_OPS and n.inputs[0] not in graph.constants})
    # Values only convolutions quantise: those may take the zero-point code (conv_input_quantisation).
    conv_only = {v for v in wanted if all(n.op == "Conv" for n in graph.nodes
                                          if n.op in QUANTISED_OPS and n.inputs[0] == v)}
    amax: Dict[str, float] = {}
    lowest: Dict[str, float] = {}
    samples: Dict[str, list] = {}
    for b0 in range(0, total, batch):
        feeds = {n: np.asarray(calibration[n][b0:b0 + batch]) for n in names}
        for v in graph.inputs:
            if tuple(feeds[v.name].shape) != tuple(v.shape):
                raise CompileError(f"calibration input '{v.name}': samples of shape {feeds[v.name].shape[1:]}, "
                                   f"the model takes {tuple(v.shape[1:])}")
        with statistics_precision():
            got = run_graph(graph, feeds, outputs=wanted)
        for k, a in got.items():
            lowest[k] = min(lowest.get(k, 0.0), float(np.min(a)) if a.size else 0.0)
            if method == "percentile":
                amax[k] = max(amax.get(k, 0.0), float(np.percentile(np.abs(a), 99.99)))
            else:
                flat = np.asarray(a, np.float32).reshape(-1)
                samples.setdefault(k, []).append(flat[::max(1, flat.size // SAMPLES)])
    for k, parts in samples.items():
        x = np.concatenate(parts)
        amax[k] = mse_threshold(x, unsigned=bool(lowest[k] >= 0.0 and k in conv_only))
    return {k: ActivationRange(a, lowest[k] >= 0.0) for k, a in amax.items()}


def mse_threshold(x: np.ndarray, unsigned: bool = False) -> float:
    """The INT8 clipping threshold with the least squared error on x: symmetric
    (127 steps each side), or 255 steps above 0 (a non-negative convolution
    input, coded with a zero point)."""
    top = float(np.abs(x).max()) if x.size else 0.0
    if top == 0.0:
        return 0.0
    steps, lo = (2 * QMAX + 1, 0.0) if unsigned else (QMAX, -QMAX)
    best, best_err = top, np.inf
    for t in np.linspace(top / 10, top, CANDIDATES):
        s = t / steps
        err = float(np.square(x - np.clip(np.rint(x / s), lo, steps) * s).sum())
        if err < best_err:
            best, best_err = float(t), err
    return best


def activation_scale(r: ActivationRange) -> float:
    """Symmetric: x = q * scale, q in [-127, 127] (a matrix product's input)."""
    return max(r.amax, 1e-12) / QMAX


def conv_input_quantisation(r: ActivationRange):
    """(scale, zero point) of a convolution's input: x = (q - zero point) * scale.
    A non-negative input uses all 256 codes, 0.0 at -128: twice the resolution
    of the symmetric code, whose negative half it would never use. The zero
    point costs nothing per product: the band's padding is the code of 0.0,
    so every window sums W * (q - z) = W * q - z * sum(W), and z * sum(W[co])
    is folded into the bias."""
    if r.nonnegative:
        return max(r.amax, 1e-12) / (2 * QMAX + 1), ZERO_POINT
    return activation_scale(r), 0


def quantise_weights(w: np.ndarray, axis: int):
    """Symmetric per-channel INT8 (channel = `axis`): (values as float, scales)."""
    red = tuple(a for a in range(w.ndim) if a != axis % w.ndim)
    s = np.maximum(np.abs(w).max(axis=red, keepdims=True), 1e-12) / QMAX
    q = np.clip(np.rint(w / s), -QMAX, QMAX).astype(np.float32)
    return q, s.reshape(-1).astype(np.float32)

