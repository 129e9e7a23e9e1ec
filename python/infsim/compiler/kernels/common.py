"""Helpers shared by the kernels: tiling views onto partitions, loads and stores."""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

from ...isa import AP, onchip, sbuf
from ..residency import RESIDENT_BASE
from ..views import DView, split_dims

P = 128  # partitions
FMAX = 2048  # elements per partition in one elementwise tile


@dataclass
class Tile:
    """One [rows, cols] block of an iteration space, located in each view:
    element (r, c) of view i sits at offsets[i] + r*pstrides[i] + c*fstrides[i]."""
    rows: int
    cols: int
    offsets: List[int]
    pstrides: List[int]
    fstrides: List[int]

    def endpoint(self, view: DView, i: int) -> dict:
        """The DMA endpoint of this tile in `view` (view i of the tiling)."""
        return view.endpoint(self.offsets[i], (self.rows, self.pstrides[i]), [(self.cols, self.fstrides[i])])


def tiles(shape: Sequence[int], views: Sequence[DView], fmax: int = FMAX, pmax: int = P, row: int = 0) -> List[Tile]:
    """Covers an iteration space of `shape` (every view broadcast to it) with
    tiles of at most pmax rows by fmax columns: the innermost coalesced axis
    runs along the free axis, the next one along partitions, outer axes loop.
    row: a resident view's row length (compiler/residency.py); an innermost
    axis that is several rows long is cut into rows, so that tiles are rows."""
    cshape, cstrides = split_dims(list(shape), [list(v.strides) for v in views])
    if row > 1 and cshape[-1] > row and cshape[-1] % row == 0:
        n = cshape[-1] // row
        cshape = cshape[:-1] + [n, row]
        cstrides = [st[:-1] + [st[-1] * row, st[-1]] for st in cstrides]
    out: List[Tile] = []
    if len(cshape) == 1:
        n = cshape[0]
        rows = min(pmax, n)
        q = n // rows
        for c0 in range(0, q, fmax):
            c = min(fmax, q - c0)
            out.append(Tile(rows, c, [c0 * s[0] for s in cstrides], [q * s[0] for s in cstrides],
                            [s[0] for s in cstrides]))
        rem = n - rows * q
        if rem:
            base = rows * q
            out += [Tile(1, min(fmax, rem - c0), [(base + c0) * s[0] for s in cstrides], [0] * len(views),
                         [s[0] for s in cstrides]) for c0 in range(0, rem, fmax)]
        return out
    R, C = cshape[-2], cshape[-1]
    outer = cshape[:-2]
    import itertools
    for idx in itertools.product(*[range(d) for d in outer]):
        base = [sum(i * s for i, s in zip(idx, st[:-2])) for st in cstrides]
        for r0 in range(0, R, pmax):
            for c0 in range(0, C, fmax):
                out.append(Tile(min(pmax, R - r0), min(fmax, C - c0),
                                [b + r0 * st[-2] + c0 * st[-1] for b, st in zip(base, cstrides)],
                                [st[-2] for st in cstrides], [st[-1] for st in cstrides]))
    return out


class Buffers:
    """A ring of SBUF slots of `nbytes` per partition, freed at kernel end."""

    def __init__(self, em, nbytes: int, count: int, what: str):
        self.em = em
        self.nbytes = nbytes
        self.addrs = [em.sbuf.alloc(nbytes, what) for _ in range(count)]
        self.i = 0

    def next(self) -> int:
        a = self.addrs[self.i % len(self.addrs)]
        self.i += 1
        return a

    def free(self):
        for a in self.addrs:
            self.em.sbuf.free(a, self.nbytes)
        self.addrs = []


def resident_row(em, views: Sequence[DView]) -> int:
    """The row length of the first view resident in SBUF (0: none is): tiles() cuts along it."""
    for v in views:
        if v.addr >= RESIDENT_BASE:
            return em.resident.lookup(v.addr).L
    return 0


def load(em, view: DView, t: Tile, i: int, addr: int, dtype: str = None, part_start: int = 0) -> AP:
    """DMA of tile t of view i into SBUF at `addr`; returns the on-chip AP
    ([rows, cols], a free stride of 0 loads one column and reads it repeatedly)."""
    dtype = dtype or view.dtype
    bcast = t.fstrides[i] == 0
    cols = 1 if bcast else t.cols
    ap = sbuf(part_start, t.rows, addr, dtype, [(cols, 1)])
    em.dma(view.endpoint(t.offsets[i], (t.rows, t.pstrides[i]), [(cols, t.fstrides[i] or 1)]), onchip(ap))
    return sbuf(part_start, t.rows, addr, dtype, [(t.cols, 0)]) if bcast else ap


def store(em, ap: AP, view: DView, t: Tile, i: int):
    em.dma(onchip(ap), t.endpoint(view, i))


def col(addr: int, rows: int, part_start: int = 0) -> AP:
    """A per-partition FP32 column [rows, 1]."""
    return sbuf(part_start, rows, addr, "fp32", [(1, 1)])


def image_groups(v: DView, nb: int) -> List[Tuple[int, int]]:
    """(first image, images) per DMA for nb images of a [N, C, ...] view that a
    DMA reads or writes channel by channel (channels on partitions). In DRAM
    one DMA per image: a DMA walks its partitions outermost, so with every
    image inside it each channel would alternate between images far apart,
    and every switch is a DRAM row conflict (a precharge and an activate)
    instead of a row hit. A resident view is on chip: one DMA."""
    if nb <= 1 or v.addr >= RESIDENT_BASE:
        return [(0, nb)]
    return [(i, 1) for i in range(nb)]
