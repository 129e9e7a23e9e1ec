"""Convolution planning: how the contraction is laid out on the array's rows
(kernel rows folded into partitions or not), the channel tiles and output
blocks, which weights stay resident together, and the band and PSUM tile
sizes that fit SBUF (kernels/conv.py explains the loop nest they serve)."""
from dataclasses import dataclass, field
from typing import List, Tuple

from ..ir import CompileError
from ..lower import Lowering
from .common import P
from .conv_geometry import ConvGeom

PSUM_N = 512  # output positions per PSUM tile: one bank of FP32
SBUF_SHARE = 0.8  # fraction of the free SBUF a convolution plans for
BAND_POS = 2048  # output positions a band aims for: stores write runs of >= 4 KiB per channel (BF16)
OUT_SLOTS = 3  # band output tiles in flight (stores overlap the next bands)
FOLD_KH = True  # fold kernel rows into the contraction when C_in * KH <= 128 (False: for comparisons)

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
    rstep = g.sh if (fold > 1 or (g.KH == 1 and g.u == 1 and not g.whole_rows)) else 1
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


def conv_budget(lw: Lowering, at_check: bool) -> int:
    free = lw.t.sbuf_bytes if at_check else lw.em.sbuf.available()
    return int(free * SBUF_SHARE)
