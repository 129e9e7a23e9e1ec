"""Convolution family: Conv (1-D and 2-D, grouped, depthwise), ConvTranspose
(2-D), MaxPool and AveragePool (2-D). GlobalAveragePool / GlobalMaxPool are
row reductions (kernels/reduce.py).

On-chip layout
--------------
Activations are NCHW in DRAM. On chip, channels go on partitions and a band
of image rows, zero-padded, along the free axis of each partition:

    band slot: partition = input channel (within a tile of <= 128)
               free      = [ci tile][image][row][Wp padded columns]

A band is loaded by DMAs per ci tile (rows of W contiguous elements in
DRAM, converted to the matmul dtype on the way) into the interior of the
slot; the padding is memset: the pad columns once per slot (DMAs never write
them), pad rows for the bands at the top and bottom of the image. A band is
loaded in pieces, one per PSUM tile of output rows: the dependency tracker
works on memory regions, so the first matmuls wait for the first piece only.

Convolution as implicit GEMM
----------------------------
    out[co, y, x] = sum_{ci, kh, kw} W[co, ci, kh, kw] * xpad[ci, y*sh + kh*dh, x*sw + kw*dw]

The array computes psum[m, j] += sum_k stationary[k, m] * moving[k, j] with
the contraction k on partitions, so each tap (kh, kw) of each ci tile is one
matmul:

  * stationary = W[ci tile, co block] of the tap, [<= 128 ci, <= array_cols
    co]: laid out at compile time as a constant (each co block one
    contiguous, partition-major DRAM range: one DMA, long DRAM runs) and
    loaded into SBUF once;
  * moving = the band itself read through a strided access pattern
    [(rows, sh*Wp), (OW, sw)] from element (kh*dh)*Wp + kw*dw: the access
    pattern *is* the im2col, nothing is copied;
  * the PSUM tile [co block, rows*OW <= 512 (one bank of FP32)] accumulates
    over ci tiles and taps; the epilogue is one scalar-engine activation
    PSUM -> func(psum + bias[co]) in the output dtype into the band's output
    tile in SBUF; one DMA per band and co block stores it to NCHW (channels
    on partitions, R*OW contiguous elements per channel: long DRAM runs).

Loop nest, outer to inner:

    for co group            (normally one: all weights resident in SBUF, read from DRAM once)
      load the group's weights, one DMA per co block (the first block's matmuls start early)
      for band              (image(s) x R output rows, R*OW ~ BAND_POS; a ring of slots, so
                             band i+1 loads while band i computes: the emitter orders reuse)
        load band, in one piece per PSUM tile
        for co block        (<= array_cols output channels = PSUM partitions)
          for PSUM tile     (rb rows, rb*OW <= 512 output positions)
            for ci tile, tap: load_stationary, multiply_moving (accumulate)
            epilogue into the band's output tile
          store the band's output tile

A stationary is reloaded for every PSUM tile, but the load (M <= array_cols
cycles) fills the array's idle buffer while the previous multiply streams,
so it is free whenever multiplies stream >= M columns. Small feature maps
put several images in one PSUM tile (N = images*OH*OW) to keep the
multiplies long.

Groups use block-diagonal stationaries: for a co block, the stationary of
ci tile t is W restricted to those channels, zero between different groups;
(block, tile) pairs that are entirely zero are skipped and the partition
range is narrowed to the (quadrant-legal) channels the block's groups read.
A depthwise 3x3 thus costs one matmul per tap with a diagonal stationary.

Folding kh into the contraction ("stem" layout): when C_in * KH <= 128 the
array's rows are mostly idle, so the band is replicated KH times into
partition groups (partition kh*C_in + c holds input row y*sh + kh*dh of
channel c, by on-chip DMA from an ordinary band: DRAM is read once) and one
stationary [KH*C_in, co] covers a whole kernel column: KW matmuls per PSUM
tile instead of KH*KW. A 1x1 conv (KH == 1) with a stride loads only the
rows it reads (every sh-th).

ConvTranspose is the stride-1 convolution, with the spatially flipped and
in/out-swapped weights, of the input scattered into a zeroed band at stride
positions (zero insertion: the DMA writes every u-th row and column) and
padded by dil*(k-1) - pad. The output is computed in u*u phases (rows a mod
u, columns b mod u), each a stride-u convolution of the band with only the
taps that land on input samples, written to the output tile at stride u: no
multiplications by the inserted zeros (4x fewer for stride 2).

Pooling runs on the vector engine with the same bands (pad value -inf for
max, 0 for average), (n, c) rows on partitions: one tensor_reduce per band
over the 4-dim pattern [(rows, sh*Wp), (OW, sw), (KH, dh*Wp), (KW, dw)]
(reads k*k elements per output, one SBUF operand: cheaper than k*k-1
tensor_tensor ops that read two). Average divides by the window size, or
multiplies by a compile-time map of 1/count where counts differ
(count_include_pad=0 with padding, ceil_mode).
"""
import math
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Tuple

import numpy as np

from ...isa import dtype_size, onchip, sbuf
from ..emitter import coalesce
from ..ir import CompileError, Node
from ..lower import Lowering, kernel
from ..quantize import activation_scale, quantise_weights
from ..views import DView
from .common import P, Buffers, col, image_groups

PSUM_N = 512  # output positions per PSUM tile: one bank of FP32
SBUF_SHARE = 0.8  # fraction of the free SBUF a convolution plans for
BAND_POS = 2048  # output positions a band aims for: stores write runs of >= 4 KiB per channel (BF16)
OUT_SLOTS = 3  # band output tiles in flight (stores overlap the next bands)
ACT_FUNCS = {"identity", "relu", "relu6", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu", "softplus"}
NEG_INF = float("-inf")
MEMSET_MAX = 32768  # elements per partition of one memset instruction
FOLD_KH = True  # fold kernel rows into the contraction when C_in * KH <= 128 (False: for comparisons)


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

    @property
    def Wp(self) -> int:
        """Padded columns the taps read."""
        return (self.OW - 1) * self.sw + (self.KW - 1) * self.dw + 1

    @property
    def Wl(self) -> int:
        """Input columns inside Wp (the rest are never read)."""
        return max(0, min(self.W, (self.Wp - 1 - self.pl) // self.u + 1))


def _ints(node: Node, name, n, default):
    v = node.attrs.get(name)
    return [int(x) for x in v] if v is not None else [default] * n


def _str(v, default="NOTSET") -> str:
    if v is None:
        return default
    return v.decode() if isinstance(v, bytes) else str(v)


def _pads(node: Node, in_sp, k, s, d):
    """(begin pads, end pads) per spatial axis from ONNX pads or auto_pad, or a reason string."""
    n = len(in_sp)
    auto = _str(node.attrs.get("auto_pad"))
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
    pads = _ints(node, "pads", 2 * n, 0)
    if min(pads) < 0:
        return "negative pads"
    return pads[:n], pads[n:]


def _spatial(node: Node, lw: Lowering, kshape):
    """(kernel, strides, dilations, begin pads) normalised to 2-D, or a reason string."""
    n = len(kshape)
    k = [int(x) for x in kshape]
    s = _ints(node, "strides", n, 1)
    d = _ints(node, "dilations", n, 1)
    pads = _pads(node, lw.shape(node.inputs[0])[2:], k, s, d)
    if isinstance(pads, str):
        return pads
    begins = pads[0]
    if n == 1:
        k, s, d, begins = [1] + k, [1] + s, [1] + d, [0] + begins
    return k, s, d, begins


def _as4d(v: DView) -> DView:
    """[N, C, L] -> [N, C, 1, L] (a view)."""
    if v.ndim == 4:
        return v
    return DView(v.addr, (v.shape[0], v.shape[1], 1, v.shape[2]), (v.strides[0], v.strides[1], 0, v.strides[2]),
                 v.dtype)


def _conv_geom(node: Node, lw: Lowering):
    """(ConvGeom, weights [CO, C/groups, KH, KW]) of a Conv, or a reason string."""
    xs, ys = lw.shape(node.inputs[0]), lw.shape(node.outputs[0])
    if len(xs) not in (3, 4):
        return f"{len(xs) - 2}-D convolution"
    w = lw.const(node.inputs[1]).astype(np.float32)
    sp = _spatial(node, lw, node.attrs.get("kernel_shape") or w.shape[2:])
    if isinstance(sp, str):
        return sp
    k, s, d, b = sp
    w = w.reshape(w.shape[0], w.shape[1], k[0], k[1])
    x4 = xs if len(xs) == 4 else (xs[0], xs[1], 1, xs[2])
    y4 = ys if len(ys) == 4 else (ys[0], ys[1], 1, ys[2])
    g = ConvGeom(x4[0], x4[1], x4[2], x4[3], y4[1], y4[2], y4[3], k[0], k[1], s[0], s[1], d[0], d[1], b[0], b[1],
                 int(node.attrs.get("group", 1)))
    return g, w


def _convtranspose_geom(node: Node, lw: Lowering):
    """ConvTranspose as (ConvGeom of the equivalent stride-1 convolution of the
    zero-inserted input, its weights [CO, C/groups, KH, KW]), or a reason."""
    xs, ys = lw.shape(node.inputs[0]), lw.shape(node.outputs[0])
    if len(xs) != 4:
        return f"{len(xs) - 2}-D ConvTranspose"
    if node.attrs.get("output_shape") is not None or _str(node.attrs.get("auto_pad")) not in ("NOTSET", "VALID"):
        return "ConvTranspose with output_shape or auto_pad"
    wt = lw.const(node.inputs[1]).astype(np.float32)  # [C, CO/groups, KH, KW]
    G = int(node.attrs.get("group", 1))
    KH, KW = wt.shape[2:]
    s = _ints(node, "strides", 2, 1)
    d = _ints(node, "dilations", 2, 1)
    pads = [0] * 4 if _str(node.attrs.get("auto_pad")) == "VALID" else _ints(node, "pads", 4, 0)
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


# ============================================================================ planning

def _quadrant_cover(a: int, e: int) -> Tuple[int, int]:
    """The smallest partition range (start, count) covering [a, e) that engines
    may address: it starts at 0, 32, 64 or 96 and spans at most 128, 32, 64 or 32."""
    for start, span in ((96, 32), (64, 64), (32, 32), (0, 128)):
        if start <= a and e - start <= span:
            return start, e - start
    raise ValueError(f"partitions [{a}, {e})")


@dataclass
class ConvPlan:
    fold: int  # kh taps folded into partitions (1: none)
    rstep: int  # padded rows between consecutive band rows (sh when only every sh-th row is read)
    tiles: List[Tuple[int, int]]  # input channel tiles (c0, cc); a tile spans partitions [0, fold*cc)
    taps: List[Tuple[int, int]]  # (kh, kw) per matmul; kh = 0 when folded (the shift is in the partitions)
    blocks: List[Tuple[int, int]]  # output channel blocks (co0, msz), msz <= array columns
    pairs: List[List[Tuple[int, int, int]]]  # per block: nonzero (tile, p0, pc), pc quadrant-legal
    co_groups: List[List[int]]  # blocks whose weights are resident together
    nb: int  # images per band (> 1 only when a band is whole images)
    R: int  # output rows per band
    rb: int  # output rows per PSUM tile
    slots: int  # band slots in the ring
    es: int  # bytes per element of the matmul dtype
    group_cols: List[int] = field(default_factory=list)  # weight elements per partition per co group
    # Output phases (a, b, taps): output rows = a mod u, columns = b mod u; with zero insertion
    # (u > 1) a phase only uses the taps that land on input samples. u = 1: one phase, all taps.
    phases: List[Tuple[int, int, List[int]]] = field(default_factory=list)

    def rows_stored(self, g: ConvGeom, R: int) -> int:
        """Rows of a band slot for R output rows."""
        if self.rstep > 1 or self.fold > 1:
            return R
        return (R - 1) * g.sh + (g.KH - 1) * g.dh + 1

    def stage_rows(self, g: ConvGeom, R: int) -> int:
        """Rows of the ordinary band the folded band is replicated from."""
        return (R - 1) * g.sh + (g.KH - 1) * g.dh + 1

    def slot_elems(self, g: ConvGeom) -> int:
        return len(self.tiles) * self.nb * self.rows_stored(g, self.R) * g.Wp

    def stage_elems(self, g: ConvGeom) -> int:
        return self.nb * self.stage_rows(g, self.R) * g.Wp if self.fold > 1 else 0


def plan_conv(g: ConvGeom, array_cols: int, es: int, out_es: int, budget: int) -> ConvPlan:
    """Chooses layout and tile sizes so everything fits `budget` bytes per partition."""
    if g.OW > PSUM_N:
        raise CompileError(f"output rows of {g.OW} > {PSUM_N} positions (one PSUM bank)")
    if g.C % g.groups or g.CO % g.groups:
        raise CompileError("channels not divisible by group")
    fold = g.KH if (FOLD_KH and g.groups == 1 and g.u == 1 and g.KH > 1 and g.C * g.KH <= P) else 1
    rstep = g.sh if (fold > 1 or (g.KH == 1 and g.u == 1)) else 1
    if fold > 1:
        tiles = [(0, g.C)]
        taps = [(0, kw) for kw in range(g.KW)]
    else:
        tiles = [(c0, min(P, g.C - c0)) for c0 in range(0, g.C, P)]
        taps = [(kh, kw) for kh in range(g.KH) for kw in range(g.KW)]
    blocks = [(co0, min(array_cols, g.CO - co0)) for co0 in range(0, g.CO, array_cols)]
    cig, cog = g.C // g.groups, g.CO // g.groups
    pairs = []
    for co0, msz in blocks:
        if fold > 1:
            pairs.append([(0, 0, fold * g.C)])
            continue
        lo, hi = (co0 // cog) * cig, ((co0 + msz - 1) // cog + 1) * cig  # input channels the block reads
        row = []
        for t, (c0, cc) in enumerate(tiles):
            a, e = max(lo, c0) - c0, min(hi, c0 + cc) - c0
            if a < e:
                row.append((t,) + _quadrant_cover(a, e))
        pairs.append(row)
    block_cols = [len(pr) * len(taps) * msz for pr, (_, msz) in zip(pairs, blocks)]

    avail = budget - len(blocks) * 4 - 256
    # Weights: all resident if they take at most 60% of the space, else groups of blocks of <= 40% each.
    if sum(block_cols) * es <= 0.6 * avail:
        co_groups = [list(range(len(blocks)))]
    else:
        co_groups, cur, size = [], [], 0
        for b, c in enumerate(block_cols):
            if cur and (size + c) * es > 0.4 * avail:
                co_groups.append(cur)
                cur, size = [], 0
            cur.append(b)
            size += c
        co_groups.append(cur)
    group_cols = [sum(block_cols[b] for b in grp) for grp in co_groups]
    avail -= max(group_cols) * es
    u = g.u
    phases = [(a, b, [i for i, (kh, kw) in enumerate(taps)
                      if (a + kh * g.dh - g.pt) % u == 0 and (b + kw * g.dw - g.pl) % u == 0])
              for a in range(u) for b in range(u)]
    plan = ConvPlan(fold, rstep, tiles, taps, blocks, pairs, co_groups, 1, 1, 1, 2, es, group_cols, phases)

    def fits(nb, R, rb):
        """Sets the band shape; True if the ring of band slots and output tiles fits."""
        plan.nb, plan.R, plan.rb = nb, R, rb
        band = (plan.slot_elems(g) + plan.stage_elems(g)) * es
        out = OUT_SLOTS * nb * R * g.OW * out_es
        plan.slots = 3 if 3 * band + out <= avail else 2
        return plan.slots * band + out <= avail

    if g.OH * g.OW <= PSUM_N:  # whole images: a band is one PSUM tile of nb images
        for nb in range(min(g.N, PSUM_N // (g.OH * g.OW)), 0, -1):
            if fits(nb, g.OH, g.OH):
                return plan
    # Bands of R output rows, k PSUM tiles of rb rows each; smaller when SBUF is short.
    # With zero insertion a PSUM tile holds one phase: rb/u rows of ceil(OW/u) columns.
    rb = min(g.OH, PSUM_N // g.OW if u == 1 else u * (PSUM_N // -(-g.OW // u)))
    k = min(-(-g.OH // rb), max(1, BAND_POS // (rb * g.OW)))
    for R in [min(g.OH, k * rb) for k in range(k, 0, -1)] + list(range(rb - 1, 0, -1)):
        if u > 1 and R % u and R < g.OH:  # zero-inserted rows stay in place when bands start at multiples of u
            continue
        if fits(1, R, min(rb, R) if u == 1 or R < u else min(rb, R) // u * u):
            return plan
    raise CompileError(f"one band of input rows ({len(tiles)} channel tiles x {g.Wp} columns) does not fit SBUF")


def _budget(lw: Lowering, at_check: bool) -> int:
    free = lw.t.sbuf_bytes if at_check else lw.em.sbuf.available()
    return int(free * SBUF_SHARE)


# ============================================================================ bands

class BandLoader:
    """Loads bands of a padded NCHW input into SBUF slots laid out
    [tile][image][row][Wp]: slot row i of a band starting at padded row y0
    holds padded row y0 + rstep*i."""

    def __init__(self, em, x: DView, g: ConvGeom, dtype: str, rstep: int, rows: int, nb: int, ntiles: int,
                 parts: int, pad_value: float = 0.0, quant_scale: Optional[float] = None):
        self.em, self.x, self.g, self.dt = em, x, g, dtype
        self.quant_scale = quant_scale  # INT8: rows arrive in a staging copy, then x / scale into the slot
        self.staging: Dict[int, int] = {}  # slot address -> its staging copy (same element offsets)
        self.es = dtype_size(dtype)
        self.rstep, self.rows, self.nb, self.parts, self.pad = rstep, rows, nb, parts, pad_value
        self.img = rows * g.Wp  # elements of one image in a slot
        self.tile = nb * self.img  # elements of one ci tile in a slot
        self.ntiles = ntiles

    def _memset(self, addr, dims):
        self.em.insn("vector", "memset", dst=sbuf(0, self.parts, addr, self.dt, coalesce(dims)), value=self.pad)

    def init_slot(self, addr):
        """Pads no band DMA writes: the pad columns (or, with zero insertion,
        everything), once per slot."""
        g = self.g
        n = self.ntiles * self.tile
        if g.u > 1:
            for e0 in range(0, n, MEMSET_MAX):
                self._memset(addr + e0 * self.es, [(min(MEMSET_MAX, n - e0), 1)])
            return
        lines = self.ntiles * self.nb * self.rows
        right = g.pl + g.Wl
        if g.pl:
            self._memset(addr, [(lines, g.Wp), (g.pl, 1)])
        if right < g.Wp:
            self._memset(addr + right * self.es, [(lines, g.Wp), (g.Wp - right, 1)])

    def load(self, addr, t, c0, cc, n0, nb, y0, i0, i1):
        """Slot rows [i0, i1) of the band that starts at padded row y0 (slot row
        i = padded row y0 + rstep*i), channels [c0, c0+cc) of images
        [n0, n0+nb), into ci tile t of the slot at addr."""
        g, x, u, rs = self.g, self.x, self.g.u, self.rstep
        base = addr + t * self.tile * self.es
        last = g.pt + u * (g.H - 1)  # padded row of the last input row
        if u == 1:
            lo = max(i0, -(-(g.pt - y0) // rs))
            hi = min(i1, (last - y0) // rs + 1) if last >= y0 else i0
            h0, istep = y0 + rs * lo - g.pt, 1
            cnt = hi - lo
        else:  # zero insertion: input rows land every u-th padded row (rstep is 1)
            p0 = g.pt + u * max(0, -(-(y0 + i0 - g.pt) // u))  # first input row at or after slot row i0
            p1 = g.pt + u * ((min(y0 + i1 - 1, last) - g.pt) // u)  # last one before slot row i1
            cnt = (p1 - p0) // u + 1 if y0 + i1 - 1 >= g.pt and p1 >= p0 else 0
            lo, hi, h0, istep = p0 - y0, p1 - y0 + 1, (p0 - g.pt) // u, u
        if cnt <= 0:
            lo = hi = i1
        # Pad rows above and below the image (an earlier band may have left data there;
        # with zero insertion the rows between input rows are never written).
        if lo > i0 and y0 + rs * i0 < g.pt:
            self._memset(base + i0 * g.Wp * self.es, [(nb, self.img), ((lo - i0) * g.Wp, 1)])
        if hi < i1 and y0 + rs * (i1 - 1) > last:
            self._memset(base + hi * g.Wp * self.es, [(nb, self.img), ((i1 - hi) * g.Wp, 1)])
        if cnt <= 0:
            return
        sN, sC, sH, sW = x.strides
        first = t * self.tile + lo * g.Wp + g.pl  # element offset in the slot
        if self.quant_scale is not None and addr not in self.staging:
            self.staging[addr] = self.em.sbuf.alloc(self.ntiles * self.tile * x.es, "INT8 band staging")
        for i, k in image_groups(x, nb):
            src = x.endpoint((n0 + i) * sN + c0 * sC + h0 * sH, (cc, sC), [(k, sN), (cnt, rs * sH), (g.Wl, sW)])
            dims = coalesce([(k, self.img), (cnt, istep * g.Wp), (g.Wl, u)])
            at = first + i * self.img
            dst = sbuf(0, cc, addr + at * self.es, self.dt, dims)
            if self.quant_scale is None:
                self.em.dma(src, onchip(dst))
                continue
            stage = sbuf(0, cc, self.staging[addr] + at * x.es, x.dtype, dims)
            self.em.dma(src, onchip(stage))
            self.em.insn("vector", "tensor_scalar", op0="div", op1="bypass", src=stage, dst=dst,
                         imm0=self.quant_scale, imm1=0.0)

    def free(self):
        for a in self.staging.values():
            self.em.sbuf.free(a, self.ntiles * self.tile * self.x.es)
        self.staging = {}


# ============================================================================ convolution

def _block_weights(w: np.ndarray, g: ConvGeom, plan: ConvPlan, b: int) -> List[np.ndarray]:
    """Stationaries of block b, one [pc, taps, msz] slab per nonzero (tile, p0, pc)."""
    co0, msz = plan.blocks[b]
    co = np.arange(co0, co0 + msz)
    if plan.fold > 1:  # partition f*C + c <-> channel c, kernel row f; taps are kernel columns
        slab = w[co0:co0 + msz].transpose(2, 1, 3, 0).reshape(plan.fold * g.C, g.KW, msz)
        return [slab]
    cig, cog = g.C // g.groups, g.CO // g.groups
    out = []
    for t, p0, pc in plan.pairs[b]:
        c = plan.tiles[t][0] + p0 + np.arange(pc)
        local = c[:, None] - (co // cog)[None, :] * cig  # channel within the output channel's group
        valid = (local >= 0) & (local < cig)
        dense = w[co[None, :], np.clip(local, 0, cig - 1)] * valid[:, :, None, None]  # [pc, msz, KH, KW]
        out.append(dense.reshape(pc, msz, g.KH * g.KW).transpose(0, 2, 1))
    return out


class ConvWeights:
    """The weights as one DRAM constant. A block's slabs (one per nonzero
    (block, tile) pair) are grouped in runs of consecutive pairs over the same
    partitions (a dense block: one run), and each run is stored
    partition-major, [pc, slabs, taps*msz], so it loads with one contiguous
    DMA. In SBUF the slabs of a co group sit side by side along the free
    axis, each at its own partitions [p0, p0+pc)."""

    def __init__(self, lw: Lowering, node: Node, w: np.ndarray, g: ConvGeom, plan: ConvPlan, dtype: str):
        self.plan, self.dt, self.es = plan, dtype, dtype_size(dtype)
        self.ntaps = len(plan.taps)
        self.runs: List[List[Tuple[int, int, int, int]]] = []  # per block: (first pair, pairs, p0, pc)
        self.dram_off: List[int] = []  # per run, in block order
        chunks, off = [], 0
        for b in range(len(plan.blocks)):
            slabs, pr, runs = _block_weights(w, g, plan, b), plan.pairs[b], []
            j = 0
            while j < len(pr):
                n = 1
                while j + n < len(pr) and pr[j + n][1:] == pr[j][1:]:
                    n += 1
                run = np.stack([s.reshape(s.shape[0], -1) for s in slabs[j:j + n]], axis=1)  # [pc, n, taps*msz]
                runs.append((j, n) + pr[j][1:])
                self.dram_off.append(off)
                chunks.append(run.reshape(-1))
                off += run.size
                j += n
            self.runs.append(runs)
        key = f"{node.name}#conv_weights"
        lw.g.constants[key] = np.concatenate(chunks).astype(np.float32)
        self.view = lw.view(key, dtype=dtype)
        self.run_index = np.cumsum([0] + [len(r) for r in self.runs])
        # SBUF column (element offset) of every slab, per co group
        self.col: Dict[Tuple[int, int], int] = {}
        for grp in plan.co_groups:
            c = 0
            for b in grp:
                for j in range(len(plan.pairs[b])):
                    self.col[(b, j)] = c
                    c += self.ntaps * plan.blocks[b][1]

    def load(self, em, addr, b):
        """DMAs block b's weights into the group's weight region at addr, one DMA per run."""
        X = self.ntaps * self.plan.blocks[b][1]
        for r, (j, n, p0, pc) in enumerate(self.runs[b]):
            src = self.view.endpoint(self.dram_off[self.run_index[b] + r], (pc, n * X), [(n * X, 1)])
            em.dma(src, onchip(sbuf(p0, pc, addr + self.col[(b, j)] * self.es, self.dt, [(n * X, 1)])))

    def stationary(self, addr, b, j, tap):
        _, p0, pc = self.plan.pairs[b][j]
        msz = self.plan.blocks[b][1]
        return sbuf(p0, pc, addr + (self.col[(b, j)] + tap * msz) * self.es, self.dt, [(msz, 1)])


def _bias_columns(lw: Lowering, node: Node, values: Optional[np.ndarray], plan: ConvPlan, cols: int,
                  what: str = "bias"):
    """Per-block FP32 columns of one value per output channel (the bias, the
    INT8 rescale) in SBUF: [cols partitions, blocks], or None."""
    if values is None:
        return None, None
    em = lw.em
    nblk = len(plan.blocks)
    bias = np.zeros(nblk * cols, np.float32)
    CO = sum(m for _, m in plan.blocks)
    bias[:CO] = values.astype(np.float32).reshape(-1)
    key = f"{node.name}#conv_{what}"
    lw.g.constants[key] = np.ascontiguousarray(bias.reshape(nblk, cols).T)
    v = lw.view(key, dtype="fp32")
    buf = Buffers(em, nblk * 4, 1, f"{node.name} {what}")
    addr = buf.next()
    em.dma(v.endpoint(0, (cols, nblk), [(nblk, 1)]), onchip(sbuf(0, cols, addr, "fp32", [(nblk, 1)])))
    return buf, addr


class ConvKernel:
    """Emission of one convolution: the buffers, the band loader and the loop nest."""

    def __init__(self, lw: Lowering, node: Node, x: DView, y: DView, g: ConvGeom, w: np.ndarray,
                 bias: Optional[str], act: str, residual: Optional[DView] = None, residual_act: str = "identity"):
        em, t = lw.em, lw.t
        self.em, self.g, self.y, self.act = em, g, y, act
        # A residual join fused in (passes.fuse_residual): after a band's block is computed,
        # y = residual_act(conv + residual), the residual loaded like the store in reverse.
        self.residual, self.residual_act = residual, residual_act
        # INT8 (post-training quantisation, a calibrated Conv input): the band loader
        # quantises the input on chip (x / x_scale into INT8, by the vector engine from a
        # staging copy in the storage dtype); weights are quantised per output channel
        # here, and the epilogue rescales the INT32 sums by x_scale * w_scale[co].
        quant = lw.opt.quant
        self.int8 = quant is not None and node.op == "Conv" and node.inputs[0] in quant
        x_scale = activation_scale(quant[node.inputs[0]]) if self.int8 else None
        self.mdt = "int8" if self.int8 else lw.opt.matmul_dtype
        self.es = es = dtype_size(self.mdt)
        # INT8 bands have a staging copy beside them: plan for both.
        out_es = y.es + (residual.es if residual is not None else 0)  # output tile (+ residual tile)
        self.plan = plan = plan_conv(g, t.array_cols, es + (x.es if self.int8 else 0), out_es, _budget(lw, False))
        rescale = None
        if self.int8:
            w, w_scales = quantise_weights(w.astype(np.float32), axis=0)
            rescale = x_scale * w_scales
        self.weights = ConvWeights(lw, node, w, g, plan, self.mdt)
        self.bias_buf, self.bias_addr = _bias_columns(lw, node, lw.const(bias) if bias else None, plan,
                                                      t.array_cols)
        self.scale_buf, self.scale_addr = _bias_columns(lw, node, rescale, plan, t.array_cols, "rescale")
        self.out_buf = Buffers(em, plan.nb * plan.R * g.OW * y.es, OUT_SLOTS, f"{node.name} out")
        self.res_buf = Buffers(em, plan.nb * plan.R * g.OW * residual.es, OUT_SLOTS, f"{node.name} residual") \
            if residual is not None else None
        self.w_buf = Buffers(em, max(plan.group_cols) * es, 1, f"{node.name} weights")
        self.band_buf = Buffers(em, plan.slot_elems(g) * es, plan.slots, f"{node.name} band")
        if plan.fold > 1:  # ordinary bands, replicated into the folded ones
            self.stage_buf = Buffers(em, plan.stage_elems(g) * es, plan.slots, f"{node.name} stage")
            self.loader = BandLoader(em, x, g, self.mdt, 1, plan.stage_rows(g, plan.R), plan.nb, 1, g.C,
                                     quant_scale=x_scale)
            zeroed = self.stage_buf
        else:
            self.stage_buf = None
            self.loader = BandLoader(em, x, g, self.mdt, plan.rstep, plan.rows_stored(g, plan.R), plan.nb,
                                     len(plan.tiles), min(P, g.C), quant_scale=x_scale)
            zeroed = self.band_buf
        for a in zeroed.addrs:
            self.loader.init_slot(a)
        self.img = plan.rows_stored(g, plan.R) * g.Wp  # elements of one image in a band slot
        self.mrow = g.sh // plan.rstep  # slot rows between consecutive output rows
        self.func = "relu" if act == "relu6" else act  # relu6: relu, then min 6 on the vector engine

    def run(self):
        g, plan = self.g, self.plan
        bands = [(n0, min(plan.nb, g.N - n0), r0, min(plan.R, g.OH - r0))
                 for n0 in range(0, g.N, plan.nb) for r0 in range(0, g.OH, plan.R)]
        for grp in plan.co_groups:
            waddr = self.w_buf.next()
            for b in grp:
                self.weights.load(self.em, waddr, b)
            for n0, nb, r0, R in bands:
                tiles = [(rr0, min(plan.rb, R - rr0)) for rr0 in range(0, R, plan.rb)]
                slot = self.load_band(n0, nb, r0, tiles)
                for b in grp:
                    obase = self.out_buf.next()
                    for rr0, rr in tiles:
                        for phase in plan.phases:
                            self.psum_tile(waddr, b, slot, obase, nb, rr0, rr, phase)
                        if self.act == "relu6":
                            o = self.out_tile(b, obase, nb, rr0 * g.OW, [(rr * g.OW, 1)])
                            self.em.insn("vector", "tensor_scalar", op0="min", op1="bypass", src=o, dst=o,
                                         imm0=6.0, imm1=0.0)
                    if self.residual is not None:
                        self.add_residual(b, obase, n0, nb, r0, R)
                    self.store(b, obase, n0, nb, r0, R)
        for buf in (self.out_buf, self.w_buf, self.band_buf, self.stage_buf, self.bias_buf, self.scale_buf,
                    self.res_buf):
            if buf is not None:
                buf.free()
        self.loader.free()

    def load_band(self, n0, nb, r0, tiles):
        """Loads the band of output rows r0.. into the next slot, in one piece per
        PSUM tile (the first matmuls wait for the first piece only)."""
        g, plan = self.g, self.plan
        slot = self.band_buf.next()
        stage = self.stage_buf.next() if self.stage_buf is not None else None
        done = 0  # slot (or stage) rows loaded
        for rr0, rr in tiles:
            if stage is None:
                need = plan.rows_stored(g, rr0 + rr)
                for ti, (c0, cc) in enumerate(plan.tiles):
                    self.loader.load(slot, ti, c0, cc, n0, nb, r0 * g.sh, done, need)
                done = need
            else:
                done = _load_folded(self.em, self.loader, stage, slot, g, plan, self.mdt, n0, nb, r0 * g.sh, rr0,
                                    rr, done)
        return slot

    def out_tile(self, b, obase, nb, offset, dims):
        """An access pattern into block b's output tile [nb images][R rows][OW]."""
        g, plan = self.g, self.plan
        return sbuf(0, plan.blocks[b][1], obase + offset * self.y.es, self.y.dtype,
                    coalesce([(nb, plan.R * g.OW)] + dims))

    def psum_tile(self, waddr, b, slot, obase, nb, rr0, rr, phase):
        """Output rows [rr0, rr0+rr) of the band (those of the phase), block b:
        matmuls accumulating in one PSUM bank, then the epilogue."""
        g, plan, em, u = self.g, self.plan, self.em, self.g.u
        a, bc, taps = phase  # outputs (rr0 + a + u*i, bc + u*j); u = 1: a = bc = 0, all taps
        prows, pcols = -(-(rr - a) // u), -(-(g.OW - bc) // u)
        if prows <= 0 or pcols <= 0:
            return
        msz = plan.blocks[b][1]
        o = self.out_tile(b, obase, nb, (rr0 + a) * g.OW + bc, [(prows, u * g.OW), (pcols, u)])
        bias = col(self.bias_addr + b * 4, msz) if self.bias_addr is not None else None
        if not taps:  # no tap reaches these outputs (kernel smaller than the stride): func(bias)
            em.insn("vector", "memset", dst=o, value=0.0)
            em.insn("scalar", "activation", func=self.func, src=o, dst=o, bias=bias, scale=1.0, accum=None)
            return
        ps = em.psum_tile(msz, nb * prows * pcols, dtype="int32" if self.int8 else "fp32")
        k = 0
        for j, (ti, p0, pc) in enumerate(plan.pairs[b]):
            for tap in taps:
                kh, kw = plan.taps[tap]
                off = ti * plan.nb * self.img + ((rr0 + a) * self.mrow + kh * g.dh) * g.Wp + bc * g.sw + kw * g.dw
                mov = sbuf(p0, pc, slot + off * self.es, self.mdt,
                           coalesce([(nb, self.img), (prows, u * self.mrow * g.Wp), (pcols, u * g.sw)]))
                em.insn("tensor", "load_stationary", src=self.weights.stationary(waddr, b, j, tap))
                em.insn("tensor", "multiply_moving", src=mov, dst=ps, accumulate=int(k > 0))
                k += 1
        if self.int8:  # INT32 sums * (x_scale * w_scale[co]) + bias[co], as FP32 in place
            psf = replace(ps, dtype="fp32")
            em.insn("vector", "tensor_scalar", op0="mul", op1="add" if bias is not None else "bypass", src=ps,
                    dst=psf, imm0=0.0, imm1=0.0, col0=col(self.scale_addr + b * 4, msz), col1=bias)
            ps, bias = psf, None
        em.insn("scalar", "activation", func=self.func, src=ps, dst=o, bias=bias, scale=1.0, accum=None)

    def add_residual(self, b, obase, n0, nb, r0, R):
        """o = residual_act(o + residual) over the band's block: the residual's
        [channels, images, rows, OW] tile in one DMA, one add, one activation.
        The add sees the convolution's output rounded to the output dtype, as
        the separate Add would."""
        g, r, em = self.g, self.residual, self.em
        co0, msz = self.plan.blocks[b]
        n = nb * R * g.OW
        sN, sC, sH, sW = r.strides
        rbase = self.res_buf.next()
        rt = sbuf(0, msz, rbase, r.dtype, [(n, 1)])
        es = dtype_size(r.dtype)
        for i, k in image_groups(r, nb):
            em.dma(r.endpoint((n0 + i) * sN + co0 * sC + r0 * sH, (msz, sC), [(k, sN), (R, sH), (g.OW, sW)]),
                   onchip(sbuf(0, msz, rbase + i * R * g.OW * es, r.dtype, [(k * R * g.OW, 1)])))
        o = sbuf(0, msz, obase, self.y.dtype, [(n, 1)])
        em.insn("vector", "tensor_tensor", op="add", in0=o, in1=rt, dst=o)
        if self.residual_act != "identity":
            em.insn("scalar", "activation", func=self.residual_act, src=o, dst=o, bias=None, scale=1.0, accum=None)

    def store(self, b, obase, n0, nb, r0, R):
        """One DMA per band and block: runs of R*OW elements per channel in DRAM."""
        g, y = self.g, self.y
        co0, msz = self.plan.blocks[b]
        sN, sC, sH, sW = y.strides
        es = dtype_size(y.dtype)
        for i, k in image_groups(y, nb):
            self.em.dma(onchip(sbuf(0, msz, obase + i * R * g.OW * es, y.dtype, [(k * R * g.OW, 1)])),
                        y.endpoint((n0 + i) * sN + co0 * sC + r0 * sH, (msz, sC), [(k, sN), (R, sH), (g.OW, sW)]))


def _load_folded(em, loader: BandLoader, stage, slot, g: ConvGeom, plan: ConvPlan, dt, n0, nb, y0, rr0, rr, done):
    """Rows [rr0, rr0+rr) of a folded band: the ordinary band rows they need
    (beyond the `done` already loaded) into `stage`, then one on-chip DMA per
    kernel row f: partitions [f*C, (f+1)*C) get padded rows y0 + f*dh + sh*i,
    so kernel row f becomes a partition shift. Returns the stage rows loaded."""
    es = dtype_size(dt)
    need = plan.stage_rows(g, rr0 + rr)
    loader.load(stage, 0, 0, g.C, n0, nb, y0, done, need)
    Wp, simg, img = g.Wp, loader.img, plan.R * g.Wp  # image strides of the stage and the folded slot
    for f in range(plan.fold):
        src = sbuf(0, g.C, stage + (f * g.dh + rr0 * g.sh) * Wp * es, dt,
                   coalesce([(nb, simg), (rr, g.sh * Wp), (Wp, 1)]))
        dst = sbuf(f * g.C, g.C, slot + rr0 * Wp * es, dt, coalesce([(nb, img), (rr * Wp, 1)]))
        em.dma(onchip(src), onchip(dst))
    return need


# ------------------------------------------------------------------------ checks and kernels

def _check_common(node: Node, lw: Lowering, geom_fn):
    if len(node.inputs) < 2 or not lw.is_const(node.inputs[1]):
        return f"{node.op} weights must be constants"
    if len(node.inputs) > 2 and node.inputs[2] and not lw.is_const(node.inputs[2]):
        return f"{node.op} bias must be a constant"
    act = node.attrs.get("act", "identity")
    if act not in ACT_FUNCS:
        return f"fused activation {act}"
    r = geom_fn(node, lw)
    if isinstance(r, str):
        return r
    g, _ = r
    try:
        mdt = lw.opt.matmul_dtype
        plan_conv(g, lw.t.array_cols, dtype_size(mdt), 4, _budget(lw, True))
    except CompileError as e:
        return str(e)
    return None


def check_conv(node: Node, lw: Lowering):
    return _check_common(node, lw, _conv_geom)


def check_convtranspose(node: Node, lw: Lowering):
    return _check_common(node, lw, _convtranspose_geom)


def _emit(node: Node, lw: Lowering, geom_fn):
    r = geom_fn(node, lw)
    if isinstance(r, str):
        raise CompileError(f"{node.name}: {r}")
    g, w = r
    x = _as4d(lw.view(node.inputs[0]))
    y = _as4d(lw.new_output(node.outputs[0]))
    bias = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
    residual = _as4d(lw.view(node.inputs[3])) if node.attrs.get("residual") else None
    ConvKernel(lw, node, x, y, g, w, bias, node.attrs.get("act", "identity"), residual,
               node.attrs.get("residual_act", "identity")).run()


@kernel("Conv", check=check_conv)
def emit_conv(node: Node, lw: Lowering):
    _emit(node, lw, _conv_geom)


@kernel("ConvTranspose", check=check_convtranspose)
def emit_convtranspose(node: Node, lw: Lowering):
    _emit(node, lw, _convtranspose_geom)


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
    s = _ints(node, "strides", 2, 1)
    d = _ints(node, "dilations", 2, 1)
    pads = _pads(node, xs[2:], k, s, d)
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
        _pool_rows(r[0], 4, 4, _budget(lw, True))
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
    R, rows_in = _pool_rows(g, x.es, y.es, _budget(lw, False))
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
