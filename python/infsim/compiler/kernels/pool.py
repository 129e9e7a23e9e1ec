"""Pooling runs on the vector engine with the same bands (pad value -inf for
max, 0 for average), (n, c) rows on partitions: one tensor_reduce per band
over the 4-dim pattern [(rows, sh*Wp), (OW, sw), (KH, dh*Wp), (KW, dw)]
(reads k*k elements per output, one SBUF operand: cheaper than k*k-1
tensor_tensor ops that read two). Average divides by the window size, or
multiplies by a compile-time map of 1/count where counts differ
(count_include_pad=0 with padding, ceil_mode).
"""

from typing import List, Tuple

import numpy as np

from ...isa import onchip, sbuf
from ..ir import CompileError, Node
from ..lower import Lowering, kernel
from ..views import DView
from .common import P, Buffers
from .conv_bands import BandLoader
from .conv_geometry import ConvGeom, node_ints, node_pads
from .conv_plan import conv_budget

NEG_INF = float("-inf")

# ============================================================================ pooling

POOL_FMAX = 2048  # output elements per partition of one band


def _pool_geom(node: Node, lw: Lowering):
    """(ConvGeom with CO = C, reciprocal window counts [OH, OW] or None when uniform, scale) or a reason."""
    xs, ys = lw.shape(node.inputs[0]), lw.shape(node.outputs[0])
    if len(xs) != 4:
        return f"{len(xs) - 2}-D pooling"
    if len(node.outputs) > 1 and node.outputs[1]:
        return "MaxPool indices output"
    k = [int(v) for v in node.attrs["kernel_shape"]]
    s = node_ints(node, "strides", 2, 1)
    d = node_ints(node, "dilations", 2, 1)
    pads = node_pads(node, xs[2:], k, s, d)
    if isinstance(pads, str):
        return pads
    (pt, pl), ends = pads
    g = ConvGeom(xs[0], xs[1], xs[2], xs[3], xs[1], ys[2], ys[3], k[0], k[1], s[0], s[1], d[0], d[1], pt, pl)
    if node.op == "MaxPool":
        return g, None, 1.0
    if d != [1, 1]:
        return "AveragePool with dilations"
    # Window sizes as PyTorch counts them: windows clipped to the padded
    # extent (count_include_pad) or to the image; ceil_mode windows may overhang both.
    include = int(node.attrs.get("count_include_pad", 0))
    counts = []
    for o, n, kk, ss, beg, end in ((g.OH, xs[2], k[0], s[0], pt, ends[0]), (g.OW, xs[3], k[1], s[1], pl, ends[1])):
        st = np.arange(o) * ss - beg
        en = np.minimum(st + kk, n + end)
        counts.append(en - st if include else np.minimum(en, n) - np.maximum(st, 0))
    cnt = counts[0][:, None] * counts[1][None, :]
    if np.all(cnt == cnt.flat[0]):
        return g, None, 1.0 / float(cnt.flat[0])
    return g, (1.0 / cnt).astype(np.float32), 1.0


def _pool_rows(g: ConvGeom, es: int, out_es: int, budget: int) -> Tuple[int, int]:
    """(output rows per band, input rows per band slot) so that two band
    slots, two output tiles and the FP32 sum and 1/count tiles fit `budget`."""
    def rows_in(R):
        return (R - 1) * g.sh + (g.KH - 1) * g.dh + 1
    for R in range(max(1, min(g.OH, POOL_FMAX // g.OW)), 0, -1):
        if 2 * rows_in(R) * g.Wp * es + 2 * R * g.OW * (out_es + 8) <= budget:
            return R, rows_in(R)
    raise CompileError(f"pooling rows of {g.Wp} columns do not fit SBUF")


def check_pool(node: Node, lw: Lowering):
    r = _pool_geom(node, lw)
    if isinstance(r, str):
        return r
    try:
        _pool_rows(r[0], 4, 4, conv_budget(lw, True))
    except CompileError as e:
        return str(e)
    return None


def _nc_images(*views: DView) -> List[Tuple[DView, ...]]:
    """NCHW views as [1, rows, H, W] views whose rows (n, c) are equally
    spaced: one tuple for all images when every view packs its images, else
    one tuple per image."""
    N, C = views[0].shape[:2]

    def image(v, n, count):
        sN, sC, sH, sW = v.strides
        return DView(v.addr + n * sN * v.es, (1, count * C) + v.shape[2:], (0, sC, sH, sW), v.dtype)
    if N == 1 or all(v.strides[0] == C * v.strides[1] for v in views):
        return [tuple(image(v, 0, N) for v in views)]
    return [tuple(image(v, n, 1) for v in views) for n in range(N)]


@kernel("MaxPool", "AveragePool", check=check_pool)
def emit_pool(node: Node, lw: Lowering):
    em = lw.em
    g, rmap, scale = _pool_geom(node, lw)
    is_max = node.op == "MaxPool"
    x = lw.view(node.inputs[0])
    y = lw.new_output(node.outputs[0])
    dt = x.dtype  # bands stay in the storage dtype: max is exact, sums are FP32
    R, rows_in = _pool_rows(g, x.es, y.es, conv_budget(lw, False))
    band_buf = Buffers(em, rows_in * g.Wp * x.es, 2, f"{node.name} band")
    out_buf = Buffers(em, R * g.OW * y.es, 2, f"{node.name} out")
    acc_buf = None if is_max else Buffers(em, R * g.OW * 4, 2, f"{node.name} sum")
    map_buf = None if rmap is None else Buffers(em, R * g.OW * 4, 2, f"{node.name} 1/count")
    map_view = None
    if rmap is not None:
        key = f"{node.name}#pool_rcount"
        lw.g.constants[key] = rmap.reshape(-1)
        map_view = lw.view(key, dtype="fp32")
    images = _nc_images(x, y)
    loaders = [BandLoader(em, xi, g, dt, 1, rows_in, 1, 1, min(P, xi.shape[1]), NEG_INF if is_max else 0.0)
               for xi, _ in images]
    for a in band_buf.addrs:  # the pad columns are the same for every image
        loaders[0].init_slot(a)
    for (xi, yi), loader in zip(images, loaders):
        rows = xi.shape[1]
        for c0 in range(0, rows, P):
            cc = min(P, rows - c0)
            for r0 in range(0, g.OH, R):
                rb = min(R, g.OH - r0)
                slot = band_buf.next()
                loader.load(slot, 0, c0, cc, 0, 1, r0 * g.sh, 0, (rb - 1) * g.sh + (g.KH - 1) * g.dh + 1)
                win = sbuf(0, cc, slot, dt, [(rb, g.sh * g.Wp), (g.OW, g.sw), (g.KH, g.dh * g.Wp), (g.KW, g.dw)])
                o = sbuf(0, cc, out_buf.next(), y.dtype, [(rb * g.OW, 1)])
                if is_max:
                    em.insn("vector", "tensor_reduce", op="max", axes=2, src=win, dst=o)
                else:
                    acc = sbuf(0, cc, acc_buf.next(), "fp32", [(rb * g.OW, 1)])
                    em.insn("vector", "tensor_reduce", op="add", axes=2, src=win, dst=acc)
                    if rmap is None:
                        em.insn("scalar", "activation", func="identity", src=acc, dst=o, bias=None, scale=scale,
                                accum=None)
                    else:
                        m = sbuf(0, cc, map_buf.next(), "fp32", [(rb * g.OW, 1)])
                        em.dma(map_view.endpoint(r0 * g.OW, (cc, 0), [(rb * g.OW, 1)]), onchip(m))
                        em.insn("vector", "tensor_tensor", op="mul", in0=acc, in1=m, dst=o)
                sC, sH, sW = yi.strides[1:]
                em.dma(onchip(o), yi.endpoint(c0 * sC + r0 * sH, (cc, sC), [(rb, sH), (g.OW, sW)]))
    for buf in (band_buf, out_buf, acc_buf, map_buf):
        if buf is not None:
            buf.free()
