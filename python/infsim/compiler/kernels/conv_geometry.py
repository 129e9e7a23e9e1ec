"""Convolution and pooling geometry: the attributes of a Conv, ConvTranspose or
pool node (kernel, strides, dilations, pads, groups) normalised to 2-D, and
the padded band widths the kernels lay out (kernels/conv.py explains the
layout)."""
from dataclasses import dataclass
import math

import numpy as np

from ..ir import Node
from ..lower import Lowering
from ..views import DView

# ============================================================================ geometry

@dataclass
class ConvGeom:
    """A 2-D convolution as the kernel computes it. Padded coordinates: input
    element (i, j) sits at padded (pt + u*i, pl + u*j); everything else of the
    padded image is zero (u > 1: zero insertion for ConvTranspose)."""
    N: int
    C: int
    H: int
    W: int
    CO: int
    OH: int
    OW: int
    KH: int
    KW: int
    sh: int = 1
    sw: int = 1
    dh: int = 1
    dw: int = 1
    pt: int = 0
    pl: int = 0
    groups: int = 1
    u: int = 1
    # Bands hold whole input rows (a strided 1x1 convolution of short DRAM rows:
    # conv.WHOLE_ROW_BYTES): Wp covers the row even past the last column read.
    whole_rows: bool = False

    @property
    def Wp(self) -> int:
        """Padded columns the taps read (or the whole row)."""
        taps = (self.OW - 1) * self.sw + (self.KW - 1) * self.dw + 1
        return max(taps, self.pl + self.W) if self.whole_rows else taps

    @property
    def Wl(self) -> int:
        """Input columns inside Wp (the rest are never read)."""
        return max(0, min(self.W, (self.Wp - 1 - self.pl) // self.u + 1))


def node_ints(node: Node, name, n, default):
    v = node.attrs.get(name)
    return [int(x) for x in v] if v is not None else [default] * n


def node_str(v, default="NOTSET") -> str:
    if v is None:
        return default
    return v.decode() if isinstance(v, bytes) else str(v)


def node_pads(node: Node, in_sp, k, s, d):
    """(begin pads, end pads) per spatial axis from ONNX pads or auto_pad, or a reason string."""
    n = len(in_sp)
    auto = node_str(node.attrs.get("auto_pad"))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for i in range(n):
            total = max(0, (math.ceil(in_sp[i] / s[i]) - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in_sp[i])
            begins.append(total // 2 if auto == "SAME_UPPER" else total - total // 2)
            ends.append(total - begins[-1])
        return begins, ends
    if auto == "VALID":
        return [0] * n, [0] * n
    if auto != "NOTSET":
        return f"auto_pad {auto}"
    pads = node_ints(node, "pads", 2 * n, 0)
    if min(pads) < 0:
        return "negative pads"
    return pads[:n], pads[n:]


def spatial(node: Node, lw: Lowering, kshape):
    """(kernel, strides, dilations, begin pads) normalised to 2-D, or a reason string."""
    n = len(kshape)
    k = [int(x) for x in kshape]
    s = node_ints(node, "strides", n, 1)
    d = node_ints(node, "dilations", n, 1)
    pads = node_pads(node, lw.shape(node.inputs[0])[2:], k, s, d)
    if isinstance(pads, str):
        return pads
    begins = pads[0]
    if n == 1:
        k, s, d, begins = [1] + k, [1] + s, [1] + d, [0] + begins
    return k, s, d, begins


def as4d(v: DView) -> DView:
    """[N, C, L] -> [N, C, 1, L] (a view)."""
    if v.ndim == 4:
        return v
    return DView(v.addr, (v.shape[0], v.shape[1], 1, v.shape[2]), (v.strides[0], v.strides[1], 0, v.strides[2]),
                 v.dtype)


def conv_geom(node: Node, lw: Lowering):
    """(ConvGeom, weights [CO, C/groups, KH, KW]) of a Conv, or a reason string."""
    xs, ys = lw.shape(node.inputs[0]), lw.shape(node.outputs[0])
    if len(xs) not in (3, 4):
        return f"{len(xs) - 2}-D convolution"
    w = lw.const(node.inputs[1]).astype(np.float32)
    sp = spatial(node, lw, node.attrs.get("kernel_shape") or w.shape[2:])
    if isinstance(sp, str):
        return sp
    k, s, d, b = sp
    w = w.reshape(w.shape[0], w.shape[1], k[0], k[1])
    x4 = xs if len(xs) == 4 else (xs[0], xs[1], 1, xs[2])
    y4 = ys if len(ys) == 4 else (ys[0], ys[1], 1, ys[2])
    g = ConvGeom(x4[0], x4[1], x4[2], x4[3], y4[1], y4[2], y4[3], k[0], k[1], s[0], s[1], d[0], d[1], b[0], b[1],
                 int(node.attrs.get("group", 1)))
    return g, w


def convtranspose_geom(node: Node, lw: Lowering):
    """ConvTranspose as (ConvGeom of the equivalent stride-1 convolution of the
    zero-inserted input, its weights [CO, C/groups, KH, KW]), or a reason."""
    xs, ys = lw.shape(node.inputs[0]), lw.shape(node.outputs[0])
    if len(xs) != 4:
        return f"{len(xs) - 2}-D ConvTranspose"
    if node.attrs.get("output_shape") is not None or node_str(node.attrs.get("auto_pad")) not in ("NOTSET", "VALID"):
        return "ConvTranspose with output_shape or auto_pad"
    wt = lw.const(node.inputs[1]).astype(np.float32)  # [C, CO/groups, KH, KW]
    G = int(node.attrs.get("group", 1))
    KH, KW = wt.shape[2:]
    s = node_ints(node, "strides", 2, 1)
    d = node_ints(node, "dilations", 2, 1)
    pads = [0] * 4 if node_str(node.attrs.get("auto_pad")) == "VALID" else node_ints(node, "pads", 4, 0)
    pt, pl = d[0] * (KH - 1) - pads[0], d[1] * (KW - 1) - pads[1]
    if pt < 0 or pl < 0 or min(pads) < 0:
        return "ConvTranspose pads larger than dilation * (kernel - 1)"
    C, cog = wt.shape[:2]
    # Wc[g*cog + o, i] = Wt[g*cig + i, o], flipped in both spatial axes.
    wc = wt.reshape(G, C // G, cog, KH, KW).transpose(0, 2, 1, 3, 4).reshape(G * cog, C // G, KH, KW)
    wc = np.ascontiguousarray(wc[:, :, ::-1, ::-1])
    if s[0] != s[1]:
        return "ConvTranspose with different strides per axis"
    return ConvGeom(xs[0], xs[1], xs[2], xs[3], ys[1], ys[2], ys[3], KH, KW, 1, 1, d[0], d[1], pt, pl, G, u=s[0]), wc
