"""Activations resident in SBUF.

A value produced and consumed inside one device segment may live in a
reserved part of SBUF (the resident area) instead of DRAM, so the next
layer reads it without touching DRAM. Kernels do not know the difference:
such a value is a DView like any other, whose address is *virtual*
(>= RESIDENT_BASE, never written into an executable), and the emitter turns
every DMA endpoint that names a virtual address into an on-chip one.

Layout of a resident buffer: its elements in the order of the buffer's own
(contiguous) layout are cut into rows of L elements; row r lives in
partition r mod 128, at free offset (r div 128) * L:

    element e -> row r = e div L, column c = e mod L
              -> partition r mod 128, byte offset base + ((r div 128) * L + c) * size

The producer picks L so that the accesses kernels make are rows of the
transfer: L = the last axis for row-major values (BERT's [tokens, features]:
a token per partition), L = N*H*W for feature maps stored channel-major
(CNHW: a channel per partition, every image of the batch in its row, so a
convolution band of nb images is one on-chip access pattern).

An endpoint maps onto SBUF when each of its partition rows is one buffer
row (partition step = L, not crossing a 128-row group) and its free
pattern stays inside that row. Any other access still works: the transfer
is split into pieces that do map (`split`), at a DMA descriptor each; the
Lowering counts them per value and a second lowering keeps values that
needed many in DRAM.
"""
import bisect
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from ..isa import dtype_size

RESIDENT_BASE = 1 << 44  # above every DRAM and fabric address
PARTS = 128


@dataclass(eq=False)
class ResidentBuffer:
    vbase: int  # virtual byte address of element 0
    elements: int
    es: int  # bytes per element
    L: int  # elements per row
    offset: int  # SBUF byte offset of the buffer in every partition
    name: str = ""
    fallback_dmas: int = 0  # DMAs emitted because an access did not map (see split)

    @property
    def rows(self) -> int:
        return -(-self.elements // self.L)

    @property
    def partition_bytes(self) -> int:
        """SBUF bytes the buffer takes in each partition."""
        return -(-self.rows // PARTS) * self.L * self.es

    def place(self, e: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(partition, SBUF byte offset) of element indices e."""
        r, c = np.divmod(e, self.L)
        return r % PARTS, self.offset + ((r // PARTS) * self.L + c) * self.es


class ResidentSpace:
    """The resident area, bytes [lo, hi) of every partition, and the buffers in it."""

    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi
        self.free_list = [(lo, hi)] if hi > lo else []
        self.buffers: List[ResidentBuffer] = []  # by vbase
        self._next = RESIDENT_BASE
        self.high_water = 0  # bytes per partition in use at most
        self.placed: List[Tuple[str, int]] = []  # (value, bytes per partition), for the compile report

    def alloc(self, elements: int, es: int, L: int, name: str) -> Optional[ResidentBuffer]:
        """A buffer of `elements` in rows of L, or None when the area has no room."""
        buf = ResidentBuffer(self._next, elements, es, L, 0, name)
        need = (buf.partition_bytes + 63) // 64 * 64
        for i, (s, e) in enumerate(self.free_list):
            if e - s >= need:
                buf.offset = s
                self.free_list[i] = (s + need, e)
                self.free_list = [(a, b) for a, b in self.free_list if b > a]
                self._next += (elements * es + 4095) // 4096 * 4096 + 4096
                self.buffers.append(buf)
                self.high_water = max(self.high_water, self.used())
                self.placed.append((name, need))
                return buf
        return None

    def used(self) -> int:
        return (self.hi - self.lo) - sum(e - s for s, e in self.free_list)

    def free(self, vaddr: int):
        buf = self.lookup(vaddr)
        need = (buf.partition_bytes + 63) // 64 * 64
        merged = []
        for a, b in sorted(self.free_list + [(buf.offset, buf.offset + need)]):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        self.free_list = merged
        # The buffer stays in `buffers`: views of it may still be resolved (their DMAs are
        # emitted already; the dependency tracker orders the space's reuse).

    def lookup(self, vaddr: int) -> ResidentBuffer:
        i = bisect.bisect_right([b.vbase for b in self.buffers], vaddr) - 1
        if i < 0 or vaddr >= self.buffers[i].vbase + self.buffers[i].elements * self.buffers[i].es:
            raise ValueError(f"address {vaddr:#x} is in no resident buffer")
        return self.buffers[i]

    # ------------------------------------------------------------ endpoints

    @staticmethod
    def is_virtual(ep: dict) -> bool:
        return ep["loc"] == "dram" and ep["address"] >= RESIDENT_BASE

    def resolve(self, ep: dict) -> Optional[dict]:
        """The on-chip endpoint for a virtual one (other endpoints unchanged), or None when it does not map."""
        if not self.is_virtual(ep):
            return ep
        buf = self.lookup(ep["address"])
        if dtype_size(ep["dtype"]) != buf.es:
            return None
        e0, rem = divmod(ep["address"] - buf.vbase, buf.es)
        r0, c0 = divmod(e0, buf.L)
        lo = hi = 0
        for num, step in ep["dims"]:
            reach = (num - 1) * step
            lo, hi = (lo + reach, hi) if reach < 0 else (lo, hi + reach)
        pc, ps = ep["part_count"], ep["part_step"]
        if rem or c0 + lo < 0 or c0 + hi >= buf.L:
            return None
        if pc > 1 and (ps != buf.L or r0 % PARTS + pc > PARTS):
            return None
        return {"loc": "sbuf", "dtype": ep["dtype"], "part_start": int(r0 % PARTS), "part_count": int(pc),
                "address": int(buf.offset + ((r0 // PARTS) * buf.L + c0) * buf.es), "dims": list(ep["dims"])}

    def _places(self, ep: dict) -> Tuple[np.ndarray, np.ndarray, bool]:
        """(partition or -1 for DRAM, byte address, on chip?) of every element of ep in transfer order."""
        es = dtype_size(ep["dtype"])
        free = np.zeros(1, np.int64)
        for num, step in ep["dims"]:
            free = (free[:, None] + np.arange(num, dtype=np.int64)[None, :] * step).reshape(-1)
        pc = ep["part_count"]
        if ep["loc"] == "dram":
            e = (np.arange(pc, dtype=np.int64)[:, None] * ep["part_step"] + free[None, :]).reshape(-1)
            if not self.is_virtual(ep):
                return np.full(e.size, -1), ep["address"] + e * es, False
            buf = self.lookup(ep["address"])
            part, off = buf.place((ep["address"] - buf.vbase) // es + e)
            return part, off, True
        part = np.repeat(ep["part_start"] + np.arange(pc, dtype=np.int64), free.size)
        off = ep["address"] + np.tile(free, pc) * es
        return part, off, True

    def split(self, src: dict, dst: dict) -> List[Tuple[dict, dict]]:
        """The transfer src -> dst as pieces whose endpoints are all real: runs of
        elements with one partition and one stride on both sides, runs of the
        same shape on consecutive partitions merged into one piece."""
        sides = [self._places(src), self._places(dst)]
        es = [dtype_size(src["dtype"]), dtype_size(dst["dtype"])]
        n = sides[0][0].size
        parts = [s[0] for s in sides]
        offs = [s[1] for s in sides]
        # Runs: elements on one partition (each side) at one stride (each side). Between
        # element i and i+1: `joinable` if both stay on their partitions; a run continues
        # while the strides repeat. Found per stretch of equal strides, greedily.
        if n > 1:
            joinable = np.logical_and.reduce([p[1:] == p[:-1] for p in parts])
            d = np.stack([o[1:] - o[:-1] for o in offs], axis=1)
            change = np.ones(n - 1, bool)
            change[1:] = np.any(d[1:] != d[:-1], axis=1) | ~joinable[1:] | ~joinable[:-1]
            starts = list(np.flatnonzero(change)) + [n - 1]
        runs = []  # (first element, count, strides in bytes per side)
        i = 0
        while i < n:
            if i == n - 1 or not joinable[i]:
                runs.append((i, 1, list(es)))
                i += 1
                continue
            # the stretch of equal strides holding step i -> i+1 ends at the next change after i
            k = bisect.bisect_right(starts, i)
            j = min(starts[k] if k < len(starts) else n - 1, n - 1)  # last step index of the stretch is j-1
            runs.append((i, j - i + 1, [int(x) for x in d[i]]))
            i = j + 1
        pieces = []
        k = 0
        while k < len(runs):
            i0, cnt, st = runs[k]
            m = 1  # merge the following runs: same shape, next partition (on chip) or a constant step (DRAM)
            while k + m < len(runs):
                i1, c1, s1 = runs[k + m]
                if c1 != cnt or (s1 != st and cnt > 1):
                    break
                ok = True
                for side in range(2):
                    p, o = parts[side], offs[side]
                    prev = runs[k + m - 1][0]
                    if sides[side][2]:
                        ok &= p[i1] == p[prev] + 1 and o[i1] == o[prev]
                    else:
                        ok &= (o[i1] - o[prev]) % es[side] == 0 and \
                            (m == 1 or o[i1] - o[prev] == o[runs[k + 1][0]] - o[i0])
                if not ok:
                    break
                m += 1
            eps = []
            for side, ep in enumerate((src, dst)):
                p, o = parts[side], offs[side]
                step = st[side] // es[side] if cnt > 1 else 1
                if sides[side][2]:
                    eps.append({"loc": "sbuf" if ep["loc"] == "dram" else ep["loc"], "dtype": ep["dtype"],
                                "part_start": int(p[i0]), "part_count": m, "address": int(o[i0]),
                                "dims": [(cnt, step)]})
                else:
                    pstep = int(o[runs[k + 1][0]] - o[i0]) // es[side] if m > 1 else 0
                    eps.append({"loc": "dram", "dtype": ep["dtype"], "address": int(o[i0]), "part_count": m,
                                "part_step": pstep, "dims": [(cnt, step)]})
            pieces.append(tuple(eps))
            k += m
        return pieces

