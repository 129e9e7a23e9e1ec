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

Modules: conv_geometry.py (shapes, pads, strides), conv_plan.py (layout and
tile sizes), conv_bands.py (bands into SBUF), this one (weights, the loop
nest and the instructions), pool.py (pooling on the same bands).
"""
from dataclasses import replace
from typing import Dict, List, Optional, Tuple

import numpy as np

from ...isa import dtype_size, onchip, sbuf
from ..emitter import coalesce
from ..ir import CompileError, Node
from ..lower import Lowering, kernel
from ..quantize import conv_input_quantisation, quantise_weights
from ..residency import RESIDENT_BASE
from ..views import DView
from .common import P, Buffers, col, image_groups
from .conv_bands import BandLoader, load_folded
from .conv_geometry import ConvGeom, as4d, conv_geom, convtranspose_geom
from .conv_plan import OUT_SLOTS, ConvPlan, conv_budget, plan_conv

# A strided 1x1 convolution loads only the rows it reads, each a DMA piece of its own,
# unless its input is in DRAM with rows shorter than a burst: then whole rows, a channel
# of an image one contiguous piece. (ResNet-50's layer 4 downsample reads 14-wide rows:
# 26-byte pieces, each a DRAM burst or two, cost more than twice the bytes in one run.)
WHOLE_ROW_BYTES = 64  # one DRAM burst
# A convolution with fewer input channels per group stays BF16 under INT8: its bands
# are quantised on that many partitions of the vector engine, slower than the BF16
# products it would save (ResNet-50's 3-channel stem: 154 against 92 us an image),
# and an image's raw input is the activation that quantises worst.
INT8_MIN_CHANNELS = 16
ACT_FUNCS = {"identity", "relu", "relu6", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu", "softplus"}

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

    def load(self, em, addr, b, dma=None):
        """DMAs block b's weights into the group's weight region at addr, one DMA per run
        (by `dma`: em.load_dma fills resident weights from the load program)."""
        X = self.ntaps * self.plan.blocks[b][1]
        for r, (j, n, p0, pc) in enumerate(self.runs[b]):
            src = self.view.endpoint(self.dram_off[self.run_index[b] + r], (pc, n * X), [(n * X, 1)])
            (dma or em.dma)(src, onchip(sbuf(p0, pc, addr + self.col[(b, j)] * self.es, self.dt, [(n * X, 1)])))

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
    at = em.load_constant(v.endpoint(0, (cols, nblk), [(nblk, 1)]), onchip(sbuf(0, cols, buf.next(), "fp32", [(nblk, 1)])))
    return buf, at["address"]


class ConvKernel:
    """Emission of one convolution: the buffers, the band loader and the loop nest."""

    def __init__(self, lw: Lowering, node: Node, x: DView, y: DView, g: ConvGeom, w: np.ndarray,
                 bias: Optional[str], act: str, residual: Optional[DView] = None, residual_act: str = "identity"):
        em, t = lw.em, lw.t
        if x.addr < RESIDENT_BASE and g.KH == g.KW == 1 and g.sh > 1 and g.u == 1 and \
                g.W * x.es < WHOLE_ROW_BYTES:
            g = replace(g, whole_rows=True)
        self.em, self.g, self.y, self.act = em, g, y, act
        # A residual join fused in (passes.fuse_residual): after a band's block is computed,
        # y = residual_act(conv + residual), the residual loaded like the store in reverse.
        self.residual, self.residual_act = residual, residual_act
        # INT8 (post-training quantisation, a calibrated Conv input): the band loader
        # quantises the input on chip (x / x_scale + zero point into INT8, by the vector
        # engine from a staging copy in the storage dtype; pads hold the zero point);
        # weights are quantised per output channel here, and the epilogue rescales the
        # INT32 sums by x_scale * w_scale[co] and adds the bias, which absorbs the zero point.
        quant = lw.opt.quant
        self.int8 = quant is not None and node.op == "Conv" and node.inputs[0] in quant and \
            g.C // g.groups >= INT8_MIN_CHANNELS
        x_scale, zero = conv_input_quantisation(quant[node.inputs[0]]) if self.int8 else (None, 0)
        self.mdt = "int8" if self.int8 else lw.opt.matmul_dtype
        self.es = es = dtype_size(self.mdt)
        # INT8 bands have a staging copy beside them: plan for both.
        out_es = y.es + (residual.es if residual is not None else 0)  # output tile (+ residual tile)
        self.plan = plan = plan_conv(g, t.array_cols, es + (x.es if self.int8 else 0), out_es, conv_budget(lw, False))
        rescale = None
        bias_values = lw.const(bias).astype(np.float32).reshape(-1) if bias else None
        if self.int8:
            w, w_scales = quantise_weights(w.astype(np.float32), axis=0)
            rescale = x_scale * w_scales
            if zero:  # the zero point's share of every window: -z * sum(W[co]), rescaled, into the bias
                shift = -zero * rescale * w.reshape(w.shape[0], -1).sum(axis=1)
                bias_values = shift if bias_values is None else bias_values + shift
        self.weights = ConvWeights(lw, node, w, g, plan, self.mdt)
        self.bias_buf, self.bias_addr = _bias_columns(lw, node, bias_values, plan, t.array_cols)
        self.scale_buf, self.scale_addr = _bias_columns(lw, node, rescale, plan, t.array_cols, "rescale")
        self.out_buf = Buffers(em, plan.nb * plan.R * g.OW * y.es, OUT_SLOTS, f"{node.name} out")
        self.res_buf = Buffers(em, plan.nb * plan.R * g.OW * residual.es, OUT_SLOTS, f"{node.name} residual") \
            if residual is not None else None
        # In a pipeline stage the weights of a single co group are resident, loaded once.
        self.w_resident = None
        if len(plan.co_groups) == 1 and em.weight_budget:
            layout = (self.mdt, plan.fold, tuple(plan.blocks), tuple(tuple(pr) for pr in plan.pairs),
                      len(plan.taps))  # (a micro-batch's plan may lay them out otherwise)
            self.w_resident, new = em.resident_weights((node.name, "W", layout), plan.group_cols[0] * es)
            if new:
                for b in plan.co_groups[0]:
                    self.weights.load(em, self.w_resident, b, dma=em.load_dma)
        self.w_buf = Buffers(em, max(plan.group_cols) * es, 1, f"{node.name} weights") \
            if self.w_resident is None else None
        self.band_buf = Buffers(em, plan.slot_elems(g) * es, plan.slots, f"{node.name} band")
        if plan.fold > 1:  # ordinary bands, replicated into the folded ones
            self.stage_buf = Buffers(em, plan.stage_elems(g) * es, plan.slots, f"{node.name} stage")
            self.loader = BandLoader(em, x, g, self.mdt, 1, plan.stage_rows(g, plan.R), plan.nb, 1, g.C,
                                     pad_value=zero, quant_scale=x_scale)
            zeroed = self.stage_buf
        else:
            self.stage_buf = None
            self.loader = BandLoader(em, x, g, self.mdt, plan.rstep, plan.rows_stored(g, plan.R), plan.nb,
                                     len(plan.tiles), min(P, g.C), pad_value=zero, quant_scale=x_scale)
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
            waddr = self.w_resident
            if waddr is None:
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
                done = load_folded(self.em, self.loader, stage, slot, g, plan, self.mdt, n0, nb, r0 * g.sh, rr0,
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
        plan_conv(g, lw.t.array_cols, dtype_size(mdt), 4, conv_budget(lw, True))
    except CompileError as e:
        return str(e)
    return None


def check_conv(node: Node, lw: Lowering):
    return _check_common(node, lw, conv_geom)


def check_convtranspose(node: Node, lw: Lowering):
    return _check_common(node, lw, convtranspose_geom)


def _emit(node: Node, lw: Lowering, geom_fn):
    r = geom_fn(node, lw)
    if isinstance(r, str):
        raise CompileError(f"{node.name}: {r}")
    g, w = r
    x = as4d(lw.view(node.inputs[0]))
    y = as4d(lw.new_output(node.outputs[0]))
    bias = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
    residual = as4d(lw.view(node.inputs[3])) if node.attrs.get("residual") else None
    ConvKernel(lw, node, x, y, g, w, bias, node.attrs.get("act", "identity"), residual,
               node.attrs.get("residual_act", "identity")).run()


@kernel("Conv", check=check_conv)
def emit_conv(node: Node, lw: Lowering):
    _emit(node, lw, conv_geom)


@kernel("ConvTranspose", check=check_convtranspose)
def emit_convtranspose(node: Node, lw: Lowering):
    _emit(node, lw, convtranspose_geom)
