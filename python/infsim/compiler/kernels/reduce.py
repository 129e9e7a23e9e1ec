"""Row-wise ops: reductions (ReduceSum/Mean/Max/Min, GlobalAverage/MaxPool),
Softmax / LogSoftmax and LayerNormalization.

Each is computed over "rows": the input view is permuted so the reduced
(normalised) axes come last; every other index is a row, and rows go on
partitions, 128 per tile, with the whole reduced extent along the free axis
of one partition (so a row's statistics are per-partition columns that the
scalar and vector engines take as operands). Statistics are kept in FP32.
"""
import itertools
import math

import numpy as np

from ...isa import sbuf, onchip
from ..ir import Node
from ..lower import Lowering, kernel
from ..views import DView, split_dims
from .common import P, Buffers, col

RMAX = 16384  # elements of one row held in a partition (FP32 scratch: 64 KiB)


def _row_tiles(x: DView, y: DView, nred: int):
    """Tiles of rows for x whose last `nred` axes are reduced into y (whose
    matching axes have size 1 or are absent). Yields (x_offset, y_offset,
    rows, x_row_step, y_row_step)."""
    kept = list(x.shape[:x.ndim - nred])
    ys = list(y.strides[:len(kept)]) if y.ndim >= len(kept) else [0] * len(kept)
    shape, (xs, ys) = split_dims(kept or [1], [list(x.strides[:len(kept)]) or [0], ys or [0]])
    for idx in itertools.product(*[range(d) for d in shape[:-1]]):
        xo = sum(i * s for i, s in zip(idx, xs))
        yo = sum(i * s for i, s in zip(idx, ys))
        for r0 in range(0, shape[-1], P):
            yield xo + r0 * xs[-1], yo + r0 * ys[-1], min(P, shape[-1] - r0), xs[-1], ys[-1]


def _red_dims(x: DView, nred: int):
    dims = list(zip(x.shape[x.ndim - nred:], x.strides[x.ndim - nred:]))
    return dims, int(np.prod([d for d, _ in dims], dtype=np.int64)) if dims else 1


def _axes(node: Node, lw: Lowering, rank):
    axes = node.attrs.get("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        axes = lw.const(node.inputs[1]).reshape(-1).tolist()
    if axes is None or len(axes) == 0:
        if int(node.attrs.get("noop_with_empty_axes", 0)):
            return []
        return list(range(rank))
    return sorted(int(a) % rank for a in axes)


def _reduced_axes(node: Node, lw: Lowering, rank):
    return list(range(2, rank)) if node.op.startswith("Global") else _axes(node, lw, rank)


def check_reduce(node: Node, lw: Lowering):
    if len(node.inputs) > 1 and node.inputs[1] and not lw.is_const(node.inputs[1]):
        return "reduction axes must be constants"
    shape = lw.shape(node.inputs[0])
    axes = _reduced_axes(node, lw, len(shape))
    if int(np.prod([shape[a] for a in axes] or [1])) > RMAX:
        return f"reduction over more than {RMAX} elements per row"
    return None


REDUCE_OP = {"ReduceSum": "add", "ReduceMean": "add", "ReduceMax": "max", "ReduceMin": "min", "ReduceProd": "mul",
             "GlobalAveragePool": "add", "GlobalMaxPool": "max"}


def _permuted(lw: Lowering, node: Node, axes):
    """x permuted so `axes` come last, and the output view with the same
    row order (its reduced axes dropped)."""
    x = lw.view(node.inputs[0])
    kept = [a for a in range(x.ndim) if a not in axes]
    xp = x.permute(kept + list(axes))
    y = lw.new_output(node.outputs[0])
    yk = y.reshape([x.shape[a] for a in kept] or [1])
    return xp, yk


def _rowwise(lw: Lowering, node: Node, axes):
    """For ops whose output has the input's shape (Softmax, LayerNorm): the
    input and a fresh output, both permuted so `axes` come last, the free
    dims of one row in each, and the row length."""
    x = lw.view(node.inputs[0])
    perm = [a for a in range(x.ndim) if a not in axes] + list(axes)
    xp = x.permute(perm)
    y = lw.new_output(node.outputs[0]).permute(perm)
    dims, R = _red_dims(xp, len(axes))
    ydims, _ = _red_dims(y, len(axes))
    return xp, y, dims, ydims, R


@kernel(*REDUCE_OP, check=check_reduce)
def emit_reduce(node: Node, lw: Lowering):
    em = lw.em
    rank = len(lw.shape(node.inputs[0]))
    axes = _reduced_axes(node, lw, rank)
    xp, yk = _permuted(lw, node, axes)
    dims, R = _red_dims(xp, len(axes))
    op = REDUCE_OP[node.op]
    xb = Buffers(em, R * xp.es, 2, f"{node.name} rows")
    ob = Buffers(em, 4, 2, f"{node.name} result")
    for xo, yo, rows, xstep, ystep in _row_tiles(xp, yk, len(axes)):
        xa = sbuf(0, rows, xb.next(), xp.dtype, [(R, 1)])
        em.dma(xp.endpoint(xo, (rows, xstep), dims), onchip(xa))
        r = sbuf(0, rows, ob.next(), "fp32", [(1, 1)])
        em.insn("vector", "tensor_reduce", op=op, axes=1, src=xa, dst=r)
        out = r
        mean = node.op in ("ReduceMean", "GlobalAveragePool")
        if mean or yk.dtype != "fp32":  # scale and/or narrow in place
            out = sbuf(0, rows, r.offset, yk.dtype, [(1, 1)])
            em.insn("scalar", "activation", func="identity", src=r, dst=out, bias=None, scale=1.0 / R if mean else 1.0,
                    accum=None)
        em.dma(onchip(out), yk.endpoint(yo, (rows, ystep), [(1, 1)]))
    xb.free()
    ob.free()


def _softmax_axes(node: Node, lw: Lowering):
    rank = len(lw.shape(node.inputs[0]))
    axis = int(node.attrs.get("axis", -1 if lw.g.opset >= 13 else 1)) % rank
    # Before opset 13 Softmax normalises over all axes from `axis` on.
    return list(range(axis, rank)) if lw.g.opset < 13 else [axis]


def _check_rows(axes_fn):
    def check(node: Node, lw: Lowering):
        shape = lw.shape(node.inputs[0])
        R = int(np.prod([shape[a] for a in axes_fn(node, lw)]))
        return f"rows of {R} elements exceed {RMAX}" if R > RMAX else None
    return check


@kernel("Softmax", "LogSoftmax", check=_check_rows(_softmax_axes))
def emit_softmax(node: Node, lw: Lowering):
    """max, exp(x - max) with the row sum accumulated by the same
    instruction, then a multiply by the reciprocal (Softmax) or a subtract
    of log(sum) (LogSoftmax)."""
    em = lw.em
    axes = _softmax_axes(node, lw)
    xp, y, dims, ydims, R = _rowwise(lw, node, axes)
    xb = Buffers(em, R * 4, 2, f"{node.name} rows")
    eb = Buffers(em, R * 4, 2, f"{node.name} exp")
    cb = Buffers(em, 16, 2, f"{node.name} stats")
    for xo, yo, rows, xstep, ystep in _row_tiles(xp, y, len(axes)):
        xa = sbuf(0, rows, xb.next(), xp.dtype, [(R, 1)])
        em.dma(xp.endpoint(xo, (rows, xstep), dims), onchip(xa))
        c = cb.next()
        mx, neg, s = col(c, rows), col(c + 4, rows), col(c + 8, rows)
        em.insn("vector", "tensor_reduce", op="max", axes=1, src=xa, dst=mx)
        em.insn("vector", "tensor_scalar", op0="mul", op1="bypass", src=mx, dst=neg, imm0=-1.0, imm1=0.0)
        e = sbuf(0, rows, eb.next(), "fp32", [(R, 1)])
        out = sbuf(0, rows, xa.offset, y.dtype, [(R, 1)])
        if node.op == "Softmax":
            em.insn("scalar", "activation", func="exp", src=xa, dst=e, bias=neg, scale=1.0, accum=s)
            em.insn("vector", "reciprocal", src=s, dst=s)
            em.insn("vector", "tensor_scalar", op0="mul", op1="bypass", src=e, dst=out, imm0=0.0, imm1=0.0,
                    col0=s)
        else:  # x - max - log(sum exp(x - max))
            em.insn("scalar", "activation", func="exp", src=xa, dst=e, bias=neg, scale=1.0, accum=s)
            em.insn("scalar", "activation", func="log", src=s, dst=s, bias=None, scale=1.0, accum=None)
            em.insn("vector", "tensor_scalar", op0="add", op1="sub", src=xa, dst=out,
                    imm0=0.0, imm1=0.0, col0=neg, col1=s)
        em.dma(onchip(out), y.endpoint(yo, (rows, ystep), ydims))
    for b in (xb, eb, cb):
        b.free()


def _ln_axes(node: Node, lw: Lowering):
    rank = len(lw.shape(node.inputs[0]))
    return list(range(int(node.attrs.get("axis", -1)) % rank, rank))


@kernel("LayerNormalization", check=_check_rows(_ln_axes))
def emit_layernorm(node: Node, lw: Lowering):
    """bn_stats/bn_aggr give each row's mean and variance; rstd =
    rsqrt(var + eps); (x - mean) * rstd in one tensor_scalar; then gamma
    and beta, broadcast to every partition by the DMA (partition step 0)."""
    em = lw.em
    axes = _ln_axes(node, lw)
    x, y, dims, ydims, R = _rowwise(lw, node, axes)
    eps = float(node.attrs.get("epsilon", 1e-5))
    xb = Buffers(em, R * 4, 2, f"{node.name} rows")
    tb = Buffers(em, R * 4, 2, f"{node.name} normalised")
    gb = Buffers(em, R * 4, 1, f"{node.name} gamma")
    bb = Buffers(em, R * 4, 1, f"{node.name} beta")
    cb = Buffers(em, 32, 2, f"{node.name} stats")
    gamma = lw.view(node.inputs[1], dtype="fp32").reshape((R,))
    beta = lw.view(node.inputs[2], dtype="fp32").reshape((R,)) if len(node.inputs) > 2 and node.inputs[2] else None
    # (in a pipeline stage they are resident, loaded once: load_constant)
    g_at = em.load_constant(gamma.endpoint(0, (P, 0), [(R, 1)]), onchip(sbuf(0, P, gb.next(), "fp32", [(R, 1)])))
    if beta is not None:
        b_at = em.load_constant(beta.endpoint(0, (P, 0), [(R, 1)]), onchip(sbuf(0, P, bb.next(), "fp32", [(R, 1)])))
    chunk = 512  # bn_stats per chunk keeps the running sums short; bn_aggr combines them
    nchunks = math.ceil(R / chunk)
    sb = Buffers(em, nchunks * 12, 2, f"{node.name} chunk stats")
    for xo, yo, rows, xstep, ystep in _row_tiles(x, y, len(axes)):
        xa = sbuf(0, rows, xb.next(), x.dtype, [(R, 1)])
        em.dma(x.endpoint(xo, (rows, xstep), dims), onchip(xa))
        st = sb.next()
        for i, c0 in enumerate(range(0, R, chunk)):
            em.insn("vector", "bn_stats", src=sbuf(0, rows, xa.offset + c0 * x.es, x.dtype, [(min(chunk, R - c0), 1)]),
                    dst=sbuf(0, rows, st + i * 12, "fp32", [(3, 1)]))
        c = cb.next()
        mv = sbuf(0, rows, c, "fp32", [(2, 1)])
        em.insn("vector", "bn_aggr", src=sbuf(0, rows, st, "fp32", [(3 * nchunks, 1)]), dst=mv)
        mean, var, rstd = col(c, rows), col(c + 4, rows), col(c + 8, rows)
        em.insn("vector", "tensor_scalar", op0="add", op1="bypass", src=var, dst=rstd, imm0=eps, imm1=0.0)
        em.insn("scalar", "activation", func="rsqrt", src=rstd, dst=rstd, bias=None, scale=1.0, accum=None)
        t = sbuf(0, rows, tb.next(), "fp32", [(R, 1)])
        em.insn("vector", "tensor_scalar", op0="sub", op1="mul", src=xa, dst=t, imm0=0.0, imm1=0.0, col0=mean,
                col1=rstd)
        out = sbuf(0, rows, xa.offset, y.dtype, [(R, 1)])
        g = sbuf(0, rows, g_at["address"], "fp32", [(R, 1)])
        em.insn("vector", "tensor_tensor", op="mul", in0=t, in1=g, dst=t if beta is not None else out)
        if beta is not None:
            em.insn("vector", "tensor_tensor", op="add", in0=t, in1=sbuf(0, rows, b_at["address"], "fp32", [(R, 1)]),
                    dst=out)
        em.dma(onchip(out), y.endpoint(yo, (rows, ystep), ydims))
    for b in (xb, tb, gb, bb, cb, sb):
        b.free()
