"""Ops that only re-view data (Reshape, Transpose, Slice, Expand, ...) and
ops that copy it (Concat, Pad, a Reshape of a view the strides cannot
express): DRAM-to-DRAM DMA, converting the element type on the way."""
import numpy as np

from ...isa import sbuf
from ..ir import Node
from ..lower import Lowering, kernel
from ..views import DView
from .common import FMAX, Buffers, resident_row, store, tiles

# DRAM-to-DRAM copies rotate over every queue: they carry no compute dependency.
COPY_QUEUES = ("dma0", "dma1", "dma2", "dma3")


def copy_view(lw: Lowering, src: DView, dst: DView):
    """dst[...] = src[...] (same shape; src may broadcast), tile by tile."""
    src = src.expand(dst.shape)
    for i, t in enumerate(tiles(dst.shape, [dst, src], fmax=1 << 16, row=resident_row(lw.em, [dst, src]))):
        lw.em.dma(t.endpoint(src, 1), t.endpoint(dst, 0), queue=COPY_QUEUES[i % len(COPY_QUEUES)])


def fill_view(lw: Lowering, dst: DView, value: float):
    """Every element of dst = value: a memset tile stored over the view."""
    em = lw.em
    buf = Buffers(em, FMAX * 4, 1, "fill")
    a = buf.next()
    em.insn("vector", "memset", dst=sbuf(0, 128, a, dst.dtype, [(FMAX, 1)]), value=float(value))
    for t in tiles(dst.shape, [dst]):
        store(em, sbuf(0, t.rows, a, dst.dtype, [(t.cols, 1)]), dst, t, 0)
    buf.free()


def _ints(lw, node, i, attr):
    """An int list given as input i (opset >= 13 style) or attribute."""
    if len(node.inputs) > i and node.inputs[i]:
        return None if not lw.is_const(node.inputs[i]) else [int(x) for x in lw.const(node.inputs[i]).reshape(-1)]
    v = node.attrs.get(attr)
    return None if v is None else [int(x) for x in np.atleast_1d(v)]


def _const_inputs(*idx):
    def check(node: Node, lw: Lowering):
        for i in idx:
            if len(node.inputs) > i and node.inputs[i] and not lw.is_const(node.inputs[i]):
                return f"{node.op} input {i} must be a constant"
        return None
    return check


def rebind(lw: Lowering, node: Node, view):
    """Output = a new view of the input's buffer, or a copy when none exists."""
    src = node.inputs[0]
    if view is not None:
        lw.bind(node.outputs[0], view, alias_of=src)
    else:
        base = lw.view(src)
        tmp = lw.new_output(node.outputs[0], base.shape)
        copy_view(lw, base, tmp)
        out_shape = lw.shape(node.outputs[0])
        lw.views[node.outputs[0]] = tmp.reshape(out_shape)


@kernel("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", check=_const_inputs(1))
def emit_reshape(node: Node, lw: Lowering):
    rebind(lw, node, lw.view(node.inputs[0]).reshape(lw.shape(node.outputs[0])))


@kernel("Transpose")
def emit_transpose(node: Node, lw: Lowering):
    v = lw.view(node.inputs[0])
    perm = node.attrs.get("perm") or list(reversed(range(v.ndim)))
    lw.bind(node.outputs[0], v.permute([int(p) for p in perm]), alias_of=node.inputs[0])


@kernel("Slice", check=_const_inputs(1, 2, 3, 4))
def emit_slice(node: Node, lw: Lowering):
    v = lw.view(node.inputs[0])
    starts, ends = _ints(lw, node, 1, "starts"), _ints(lw, node, 2, "ends")
    axes = _ints(lw, node, 3, "axes") or list(range(len(starts)))
    steps = _ints(lw, node, 4, "steps") or [1] * len(starts)
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = a % v.ndim
        start, stop, step = slice(s, e, st).indices(v.shape[a])
        v = v.slice(a, start, stop, step)
    lw.bind(node.outputs[0], v, alias_of=node.inputs[0])


@kernel("Expand", check=_const_inputs(1))
def emit_expand(node: Node, lw: Lowering):
    lw.bind(node.outputs[0], lw.view(node.inputs[0]).expand(lw.shape(node.outputs[0])), alias_of=node.inputs[0])


@kernel("Split", check=_const_inputs(1))
def emit_split(node: Node, lw: Lowering):
    v = lw.view(node.inputs[0])
    axis = int(node.attrs.get("axis", 0)) % v.ndim
    start = 0
    for out in node.outputs:
        n = lw.shape(out)[axis]
        lw.bind(out, v.slice(axis, start, start + n), alias_of=node.inputs[0])
        start += n


def check_gather(node: Node, lw: Lowering):
    if lw.is_const(node.inputs[1]):
        return None  # constant indices: a view (scalar) or copies
    if not lw.is_const(node.inputs[0]) or int(node.attrs.get("axis", 0)) != 0:
        return "Gather of a non-constant table or on an axis other than 0"
    return None


@kernel("Gather", check=check_gather)
def emit_gather(node: Node, lw: Lowering):
    from .gather import emit_embedding
    axis = int(node.attrs.get("axis", 0))
    if not lw.is_const(node.inputs[1]):
        return emit_embedding(node, lw)
    v = lw.view(node.inputs[0])
    axis %= v.ndim
    idx = lw.const(node.inputs[1])
    if idx.ndim == 0:
        lw.bind(node.outputs[0], v.index(axis, int(idx) % v.shape[axis]), alias_of=node.inputs[0])
        return
    y = lw.new_output(node.outputs[0])
    flat = idx.reshape(-1)
    yv = y.reshape(v.shape[:axis] + (flat.size,) + v.shape[axis + 1:])
    for j, i in enumerate(flat):
        copy_view(lw, v.slice(axis, int(i) % v.shape[axis], int(i) % v.shape[axis] + 1),
                  yv.slice(axis, j, j + 1))


@kernel("Concat")
def emit_concat(node: Node, lw: Lowering):
    y = lw.new_output(node.outputs[0])
    axis = int(node.attrs["axis"]) % y.ndim
    start = 0
    for name in node.inputs:
        n = lw.shape(name)[axis]
        if n:
            copy_view(lw, lw.view(name), y.slice(axis, start, start + n))
        start += n


@kernel("Tile", check=_const_inputs(1))
def emit_tile(node: Node, lw: Lowering):
    """Output viewed as [r0, d0, r1, d1, ...]; the input broadcast over the
    repeat axes (stride 0) is copied into it in one pass."""
    x = lw.view(node.inputs[0])
    reps = [int(r) for r in lw.const(node.inputs[1]).reshape(-1)]
    y = lw.new_output(node.outputs[0])
    shape, strides = [], []
    for r, d, st in zip(reps, x.shape, x.strides):
        shape += [r, d]
        strides += [0, st]
    src = DView(x.addr, tuple(shape), tuple(strides), x.dtype)
    copy_view(lw, src, y.reshape(tuple(shape)))


def check_pad(node: Node, lw: Lowering):
    mode = node.attrs.get("mode", b"constant")
    if mode not in (b"constant", "constant"):
        return f"Pad mode {mode}"
    return _const_inputs(1, 2)(node, lw)


@kernel("Pad", check=check_pad)
def emit_pad(node: Node, lw: Lowering):
    x = lw.view(node.inputs[0])
    pads = _ints(lw, node, 1, "pads")
    value = 0.0
    if len(node.inputs) > 2 and node.inputs[2]:
        value = float(lw.const(node.inputs[2]).reshape(-1)[0])
    else:
        value = float(node.attrs.get("value", 0.0))
    y = lw.new_output(node.outputs[0])
    fill_view(lw, y, value)
    n = x.ndim
    inner = y
    for a in range(n):
        b, e = pads[a], pads[a + n]
        if b < 0 or e < 0:
            x = x.slice(a, -b if b < 0 else 0, x.shape[a] + (e if e < 0 else 0))
        inner = inner.slice(a, max(b, 0), max(b, 0) + x.shape[a])
    copy_view(lw, x, inner)
