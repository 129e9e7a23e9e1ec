"""Instruction emission for one NeuronCore with automatic synchronisation.

Kernels (compiler/kernels/) describe work as instructions on engines and DMA
transfers between DRAM views and on-chip access patterns; they never name a
semaphore. The emitter works out every dependency from the memory each
instruction reads and writes:

  * every instruction signals its own engine's semaphore, so the semaphore of
    engine E counts E's completed instructions (engines complete in order) and
    "wait for E >= v" means "wait until E's v-th instruction has completed";
  * a tracker remembers, per memory region, which engine last wrote it and
    which engines read it since; a new access waits for the last conflicting
    access of every other engine (read after write, write after read, write
    after write). An engine orders its own instructions.

Because every wait names an instruction emitted earlier, and each engine runs
its instructions in emission order, emission order is a valid schedule and
a program built this way cannot deadlock. Overlap comes for free wherever
kernels touch different memory: a load into a free buffer runs while the
engines still compute on another.
"""
import hashlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import _infsim
from ..isa import AP, CoreProgram, OPCODES, dtype_size, onchip
from .ir import CompileError
from .residency import ResidentSpace

ALIGN = 64  # bytes: DRAM placement granularity (a whole inf1 burst; two on inf2)
LOAD_QUEUES = ("dma0", "dma1", "dma3")  # loads rotate over these
STORE_QUEUE = "dma2"  # stores have their own queue, so a store waiting for compute never blocks a load
ENGINES = ("tensor", "vector", "scalar", "dma0", "dma1", "dma2", "dma3")
# Tracker buckets (bytes): an access is checked against the records of the buckets it touches.
WEIGHT_KERNEL_FLOOR = 0.25  # of SBUF per partition that resident weights always leave to the kernels
BUCKET = {"sbuf": 1024, "psum": 2048, "dram": 1 << 16, "next": 1 << 16}  # ("next": a pipeline successor's DRAM)


def align(x, a=ALIGN):
    return (x + a - 1) // a * a


@dataclass
class Target:
    """The facts of the chip configuration the compiler uses."""
    name: str
    partitions: int
    array_rows: int
    array_cols: int
    sbuf_bytes: int  # per partition
    psum_bytes: int  # per partition
    psum_bank_bytes: int
    semaphores: int
    dram_slice_bytes: int  # DRAM of one core
    fp8: bool

    @classmethod
    def load(cls, name_or_path: str) -> "Target":
        c = _infsim.config(name_or_path)
        return cls(c["name"], int(c["partitions"]), int(c["array_rows"]), int(c["array_cols"]),
                   int(c["sbuf_partition_bytes"]), int(c["psum_partition_bytes"]), int(c["psum_bank_bytes"]),
                   int(c["semaphores"]), int(c["dram_bytes"]) // int(c["cores"]), bool(int(c["fp8"])))

    @property
    def psum_banks(self):
        return self.psum_bytes // self.psum_bank_bytes

    @property
    def psum_bank_fp32(self):
        """FP32 elements of one PSUM bank per partition: the widest matmul output."""
        return self.psum_bank_bytes // 4


# ----------------------------------------------------------------------------- regions

@dataclass(frozen=True)
class Region:
    """A box of memory: partitions [p0, p1) x bytes [lo, hi) (DRAM: p0=0, p1=1)."""
    space: str
    p0: int
    p1: int
    lo: int
    hi: int

    def overlaps(self, o: "Region") -> bool:
        return self.p0 < o.p1 and o.p0 < self.p1 and self.lo < o.hi and o.lo < self.hi

    def covers(self, o: "Region") -> bool:
        return self.p0 <= o.p0 and o.p1 <= self.p1 and self.lo <= o.lo and o.hi <= self.hi


def _span(dims) -> Tuple[int, int]:
    """Lowest and highest element offset reached by free dims [(num, step)]."""
    lo = hi = 0
    for num, step in dims:
        reach = (num - 1) * step
        lo, hi = (lo + reach, hi) if reach < 0 else (lo, hi + reach)
    return lo, hi


def ap_region(ap: AP) -> Region:
    lo, hi = _span(ap.dims)
    es = dtype_size(ap.dtype)
    return Region(ap.space, ap.part_start, ap.part_start + ap.part_count, ap.offset + lo * es, ap.offset + (hi + 1) * es)


def endpoint_region(e: dict) -> Region:
    if e["loc"] not in ("dram", "next"):  # (the next pipeline stage's DRAM is a memory of its own)
        es = dtype_size(e["dtype"])
        lo, hi = _span(e["dims"])
        return Region(e["loc"], e["part_start"], e["part_start"] + e["part_count"], e["address"] + lo * es,
                      e["address"] + (hi + 1) * es)
    lo, hi = _span(list(e["dims"]) + [(e["part_count"], e["part_step"])])
    es = dtype_size(e["dtype"])
    return Region(e["loc"], 0, 1, e["address"] + lo * es, e["address"] + (hi + 1) * es)


class DependencyTracker:
    """Last accesses per memory region, for the waits a new access needs."""

    MAX_RECORDS = 48  # per bucket; beyond it the oldest records merge into one (more waits, never fewer)

    def __init__(self):
        self.buckets: Dict[Tuple[str, int], List[list]] = {}

    def _keys(self, r: Region):
        b = BUCKET[r.space]
        return [(r.space, i) for i in range(r.lo // b, (r.hi - 1) // b + 1)]

    def waits(self, engine: str, reads: Sequence[Region], writes: Sequence[Region]) -> Dict[str, int]:
        need: Dict[str, int] = {}
        for regions, is_write in ((reads, False), (writes, True)):
            for r in regions:
                for key in self._keys(r):
                    for rec in self.buckets.get(key, ()):
                        reg, eng, value, rec_write = rec
                        if eng != engine and (is_write or rec_write) and value > need.get(eng, 0) \
                                and reg.overlaps(r):
                            need[eng] = value
        return need

    def record(self, engine: str, value: int, reads: Sequence[Region], writes: Sequence[Region]):
        for regions, is_write in ((reads, False), (writes, True)):
            for r in regions:
                for key in self._keys(r):
                    recs = self.buckets.setdefault(key, [])
                    # A write that covers a record supersedes it: whoever conflicts with the
                    # old record also conflicts with this write, which waited for it.
                    recs[:] = [x for x in recs
                               if not (r.covers(x[0]) and (is_write or (x[1] == engine and not x[3])))]
                    recs.append([r, engine, value, is_write])
                    if len(recs) > self.MAX_RECORDS:
                        self._merge(recs)

    @staticmethod
    def _merge(recs):
        """Merges the oldest half per (engine, kind) into their bounding box."""
        old = recs[:len(recs) // 2]
        del recs[:len(recs) // 2]
        groups: Dict[Tuple[str, bool], list] = {}
        for reg, eng, value, w in old:
            g = groups.get((eng, w))
            if g is None:
                groups[(eng, w)] = [reg, eng, value, w]
            else:
                a = g[0]
                g[0] = Region(a.space, min(a.p0, reg.p0), max(a.p1, reg.p1), min(a.lo, reg.lo), max(a.hi, reg.hi))
                g[2] = max(g[2], value)
        recs[:0] = list(groups.values())


# ----------------------------------------------------------------------------- allocators

def _release(free_list, start, end):
    """free_list (sorted (start, end) ranges) with [start, end) added, neighbours merged."""
    merged = []
    for a, b in sorted(free_list + [(start, end)]):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        elif b > a:
            merged.append((a, b))
    return merged


class SbufAllocator:
    """Byte ranges of every partition, allocated and freed by kernels.

    Successive kernels allocate from opposite ends (first fit from the
    bottom, then from the top, ...): each kernel finds the whole free space
    in one piece, as its tiling plan assumes, and consecutive kernels' small
    buffers land in different places, so one kernel's loads can overlap the
    previous kernel's compute (the tracker orders any reuse)."""

    def __init__(self, limit):
        self.limit = limit
        self.free_list = [(0, limit)]  # sorted (start, end)
        self.from_top = False
        self.high_water = 0

    def next_kernel(self):
        self.from_top = not self.from_top

    def alloc(self, nbytes, what="buffer") -> int:
        nbytes = align(max(nbytes, 4), 64)
        ranges = reversed(self.free_list) if self.from_top else self.free_list
        for s, e in ranges:
            if e - s >= nbytes:
                start = e - nbytes if self.from_top else s
                self._take(start, start + nbytes)
                self.high_water = max(self.high_water, start + nbytes)
                return start
        raise CompileError(f"SBUF overflow: {what} needs {nbytes} bytes per partition; "
                           f"{self.available()} are free of {self.limit}")

    def available(self):
        return max((e - s for s, e in self.free_list), default=0)

    def _take(self, s, e):
        out = []
        for a, b in self.free_list:
            if b <= s or a >= e:
                out.append((a, b))
            else:
                if a < s:
                    out.append((a, s))
                if e < b:
                    out.append((e, b))
        self.free_list = sorted(out)

    def free(self, start, nbytes):
        self.free_list = _release(self.free_list, start, start + align(max(nbytes, 4), 64))


class DramAllocator:
    """Activations in the lower half of the core's DRAM slice, reused once
    dead; constants (weights) in the upper half, never written."""

    def __init__(self, slice_bytes):
        self.half = slice_bytes // 2
        self.free_list = [(0, self.half)]
        self.act_high = 0
        self.const_top = self.half

    def alloc(self, nbytes) -> int:
        nbytes = align(max(nbytes, 1))
        for i, (s, e) in enumerate(self.free_list):
            if e - s >= nbytes:
                self.free_list[i] = (s + nbytes, e)
                self.act_high = max(self.act_high, s + nbytes)
                return s
        raise CompileError(f"the model's activations need more than {self.half >> 20} MiB of DRAM")

    def free(self, addr, nbytes):
        self.free_list = _release(self.free_list, addr, addr + align(max(nbytes, 1)))

    def alloc_const(self, nbytes) -> int:
        addr = self.const_top
        self.const_top = align(self.const_top + nbytes)
        if self.const_top > 2 * self.half:
            raise CompileError(f"the model's weights need more than {self.half >> 20} MiB of DRAM")
        return addr

    def is_const(self, addr) -> bool:
        return addr >= self.half

    @property
    def const_bytes(self):
        return self.const_top - self.half


# ----------------------------------------------------------------------------- emitter

def _ap_fields(opcode: str, fields: dict):
    """(reads, writes) access patterns of an instruction's fields."""
    reads, writes = [], []
    for name, kind in OPCODES[opcode][2]:
        if kind != "ap":
            continue
        ap = fields.get(name)
        if ap is None or ap.space == "none":
            continue
        if name in ("dst", "accum"):
            writes.append(ap)
            if name == "dst" and fields.get("accumulate"):
                reads.append(ap)
        else:
            reads.append(ap)
    return reads, writes


class Emitter:
    """One core's program under construction: instructions, DMA descriptors,
    constants, memory allocation and the dependencies between them."""

    def __init__(self, target: Target, exe=None, resident_bytes: int = 0, weight_bytes: int = 0):
        self.t = target
        self.exe = exe if exe is not None else _infsim.Executable()
        self.source_ops: List[str] = ["<io>"]
        self.prog = CoreProgram(0, target.semaphores, self.source_ops)
        self.deps = DependencyTracker()
        # SBUF, per partition from the bottom: the kernels' working space, resident weights
        # (a pipeline stage's: constants copied into SBUF once by the load program and read
        # there by every run; at most weight_bytes, and the kernels keep WEIGHT_KERNEL_FLOOR of
        # SBUF), the resident area (compiler/residency.py).
        resident_lo = target.sbuf_bytes - align(resident_bytes)
        floor = align(int(WEIGHT_KERNEL_FLOOR * target.sbuf_bytes))
        self.weight_budget = max(0, min(align(int(weight_bytes)), resident_lo - floor))
        self.weight_top = resident_lo  # weights are placed downwards from here
        self.sbuf = SbufAllocator(resident_lo - self.weight_budget)
        self.resident = ResidentSpace(resident_lo, target.sbuf_bytes)
        self.weight_used = 0  # bytes per partition placed
        self.weight_slots: Dict[tuple, object] = {}  # key -> SBUF offset (rows: partition, offset)
        self.row_strips: List[list] = []  # [offset, bytes, partitions used] (resident_row)
        self.load_prog = CoreProgram(0, target.semaphores, self.source_ops)
        self.load_deps = DependencyTracker()
        self.weight_load_bytes = 0  # DRAM bytes the load program reads
        self.weight_stream_bytes = 0  # DRAM bytes of constants each run still reads
        self._constants: Dict[tuple, int] = {}  # (bytes, digest) -> DRAM address
        self.dram = DramAllocator(target.dram_slice_bytes)
        self.source = 0
        self._psum_next = 0
        self._load_rr = 0
        self.counts: Dict[str, int] = {}
        self.dram_traffic: Dict[int, int] = {}  # source op index -> DRAM bytes its DMAs move

    # -- debug attribution
    def begin_op(self, name: str):
        """Following instructions belong to graph node `name` (listings and profiles)."""
        self.source_ops.append(name)
        self.source = len(self.source_ops) - 1
        self.sbuf.next_kernel()

    # -- memory
    def psum_bank(self) -> int:
        """The next PSUM bank, round robin (the tracker orders reuse)."""
        b = self._psum_next
        self._psum_next = (b + 1) % self.t.psum_banks
        return b

    def psum_tile(self, parts, n, part_start=0, dtype="fp32") -> AP:
        """A fresh PSUM bank as an FP32 (INT32 for INT8 products) [parts, n] tile."""
        if n > self.t.psum_bank_fp32:
            raise ValueError(f"psum tile of {n} > {self.t.psum_bank_fp32}")
        return AP("psum", part_start, parts, self.psum_bank() * self.t.psum_bank_bytes, dtype, ((n, 1),))

    def constant(self, array: np.ndarray, dtype: str) -> int:
        """Places a constant in DRAM in a device dtype; returns its address.
        The same bytes are placed once (a kernel lowered once per micro-batch
        asks for its weights each time)."""
        a = np.ascontiguousarray(array)
        if dtype in ("int32",):
            data = a.astype(np.int32).tobytes()
        else:
            data = _infsim.convert(a.astype(np.float32).tobytes(), "fp32", dtype)
        key = (len(data), hashlib.blake2b(data, digest_size=20).digest())
        if key not in self._constants:
            self._constants[key] = self.dram.alloc_const(len(data))
            self.exe.add_constant(0, self._constants[key], data)
        return self._constants[key]

    def resident_weights(self, key: tuple, nbytes: int) -> Tuple[Optional[int], bool]:
        """SBUF offset of `nbytes` per partition (every partition) for the
        constant `key` kept resident, and whether it is new (the caller then
        fills it with load_dma); (None, False) when it does not fit, and the
        caller streams it from DRAM."""
        if key in self.weight_slots:
            return self.weight_slots[key], False
        nbytes = align(max(nbytes, 4))
        if self.weight_used + nbytes > self.weight_budget:
            return None, False
        self.weight_used += nbytes
        self.weight_slots[key] = self.weight_top - self.weight_used
        return self.weight_slots[key], True

    def resident_constant(self, src: dict, dst: dict) -> Optional[dict]:
        """A resident copy of DRAM constant `src` laid out as on-chip `dst`
        (its partitions and free pattern, at another offset), filled by the
        load program; None when it does not fit."""
        lo, hi = _span(dst["dims"])
        es = dtype_size(dst["dtype"])
        key = ("constant", _frozen(src), dst["dtype"], dst["part_start"], dst["part_count"], tuple(dst["dims"]))
        at, new = self.resident_weights(key, (hi + 1) * es - lo * es)
        if at is None:
            return None
        ep = dict(dst, address=at - lo * es)
        if new:
            self.load_dma(src, ep)
        return ep

    def resident_row(self, row: dict) -> Optional[Tuple[int, int]]:
        """(partition, SBUF offset) of a resident copy of one row of a DRAM
        constant (a vector that kernels broadcast to every partition: a bias, a
        rescale), or None where it does not fit. Rows are packed one per
        partition into strips of the weight space (a strip as wide as the row
        that opened it), so a vector of N values takes N x 4 bytes of one
        partition, not of all 128."""
        key = ("row", _frozen(row))
        if key in self.weight_slots:
            return self.weight_slots[key]
        nbytes = _elements(row) * dtype_size(row["dtype"])
        strip = next((st for st in self.row_strips if st[1] >= nbytes and st[2] < self.t.partitions), None)
        if strip is None:
            width = align(nbytes)
            at, _ = self.resident_weights(("row strip", len(self.row_strips)), width)
            if at is None:
                return None
            strip = [at, width, 0]
            self.row_strips.append(strip)
        where = (strip[2], strip[0])
        strip[2] += 1
        self.weight_slots[key] = where
        self.load_dma(row, {"loc": "sbuf", "dtype": row["dtype"], "address": where[1], "part_start": where[0],
                            "part_count": 1, "dims": [(_elements(row), 1)]})
        return where

    def load_constant(self, src: dict, dst: dict) -> dict:
        """Brings DRAM constant `src` on chip for a kernel, which then reads
        the endpoint returned: the resident copy where there is room (nothing
        moves per run), else `dst`, loaded by a DMA now."""
        ep = self.resident_constant(src, dst) if self.weight_budget else None
        if ep is None:
            self.dma(src, dst)
            return dst
        return ep

    def load_dma(self, src: dict, dst: dict):
        """A DMA of the load program (DRAM constants into resident weights)."""
        self.weight_load_bytes += _elements(src) * dtype_size(src["dtype"])
        d = self.exe.add_dma(src, dst)
        q = self._load_queue()
        reads = [] if src["loc"] == "dram" else [endpoint_region(src)]
        writes = [endpoint_region(dst)]
        need = self.load_deps.waits(q, reads, writes)
        v = self.load_prog.emit(q, "dma_copy", {"desc": d, "count": 1}, waits=sorted(need.items()), signal=q,
                                source=self.source)
        self.load_deps.record(q, v, reads, writes)

    # -- instructions
    def insn(self, engine: str, opcode: str, **fields) -> int:
        """Emits one instruction with the waits its memory accesses need;
        returns the engine's semaphore value once it completes."""
        reads, writes = _ap_fields(opcode, fields)
        return self._emit(engine, opcode, fields, [ap_region(a) for a in reads], [ap_region(a) for a in writes])

    def dma(self, src: dict, dst: dict, queue: Optional[str] = None) -> int:
        """One DMA transfer (endpoints from isa.dram / isa.onchip / DView.endpoint).
        Loads rotate over the load queues; anything writing DRAM goes to the store queue."""
        if queue is None:  # (a value resident in SBUF counts as DRAM here: its stores wait for compute too)
            queue = STORE_QUEUE if dst["loc"] == "dram" else self._load_queue()
        n_src = _elements(src)
        if n_src != _elements(dst):
            raise ValueError(f"DMA element counts differ: {src} -> {dst}")
        if self.resident.is_virtual(src) or self.resident.is_virtual(dst):
            s, d = self.resident.resolve(src), self.resident.resolve(dst)
            if s is None or d is None:  # an access that is not rows of the buffer: pieces that are
                pieces = self.resident.split(src, dst)
                for ep in (src, dst):
                    if self.resident.is_virtual(ep):
                        self.resident.lookup(ep["address"]).fallback_dmas += len(pieces)
                v = 0
                for s, d in pieces:
                    v = self.dma(s, d, queue)
                return v
            src, dst = s, d
        if self.weight_budget and dst["loc"] == "sbuf" and src["loc"] == "dram" and self.dram.is_const(src["address"]):
            # A constant a kernel loads as it goes: from its resident copy, on chip, where there is room.
            # One row (or one broadcast to the partitions: partition step 0) is kept packed, and
            # copied (broadcast) from there.
            if src["part_step"] == 0 or src["part_count"] == 1:
                at = self.resident_row(dict(src, part_count=1))
                if at is not None:
                    src = {"loc": "sbuf", "dtype": src["dtype"], "address": at[1], "part_start": at[0], "part_count": 1,
                           "dims": [(src["part_count"], 0), (n_src // src["part_count"], 1)]}
            else:
                src = self.resident_constant(src, dst) or src
        for ep in (src, dst):
            if ep["loc"] == "dram":  # planned DRAM traffic per graph node, for the compile report
                self.dram_traffic[self.source] = self.dram_traffic.get(self.source, 0) + \
                    _elements(ep) * dtype_size(ep["dtype"])
        d = self.exe.add_dma(src, dst)
        const = src["loc"] == "dram" and self.dram.is_const(src["address"])
        if const:
            self.weight_stream_bytes += _elements(src) * dtype_size(src["dtype"])
        reads = [] if const else [endpoint_region(src)]
        return self._emit(queue, "dma_copy", {"desc": d, "count": 1}, reads, [endpoint_region(dst)])

    def gather(self, table: dict, dst: dict, index: AP, queue: Optional[str] = None) -> int:
        """dma_gather: dst partition p <- table row index[p] (the table is a constant)."""
        queue = queue or self._load_queue()
        self.weight_stream_bytes += _elements(dst) * dtype_size(table["dtype"])  # the rows it gathers
        d = self.exe.add_dma(table, dst)
        return self._emit(queue, "dma_gather", {"desc": d, "index": index}, [ap_region(index)],
                          [endpoint_region(dst)])

    def _load_queue(self) -> str:
        """The next load queue, round robin."""
        q = LOAD_QUEUES[self._load_rr % len(LOAD_QUEUES)]
        self._load_rr += 1
        return q

    def _emit(self, engine, opcode, fields, reads, writes) -> int:
        need = self.deps.waits(engine, reads, writes)
        v = self.prog.emit(engine, opcode, fields, waits=sorted(need.items()), signal=engine, source=self.source)
        self.deps.record(engine, v, reads, writes)
        self.counts[opcode] = self.counts.get(opcode, 0) + 1
        return v

    def finish(self, phase: str = "run"):
        """Ends the program once every engine is idle; returns the executable.
        phase: which of the core's programs this is (run, load, send)."""
        programs = [(self.prog, phase)]
        if self.load_prog.streams:  # resident weights: the load program fills them
            programs.append((self.load_prog, "load"))
        for prog, ph in programs:
            last = [(e, prog.semaphore_value(e)) for e in ENGINES if prog.semaphore_value(e) > 0]
            prog.emit(STORE_QUEUE, "end_of_program", {"code": 0}, waits=last, source=0)
            for engine, lines in prog.streams.items():
                self.exe.add_stream(0, engine, lines, prog.stream_ops[engine], ph)
        self.exe.source_ops = self.source_ops
        return self.exe


def _frozen(e: dict) -> tuple:
    """An endpoint as a hashable key."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in e.items()))


def _elements(e: dict) -> int:
    n = e["part_count"]
    for num, _ in e["dims"]:
        n *= num
    return n


def coalesce(dims: Sequence[Tuple[int, int]]) -> List[Tuple[int, int]]:
    """Merges free dims [(num, step)] (outermost first) that walk memory as one:
    fewer dims and longer contiguous runs for the DMA."""
    out: List[List[int]] = []
    for num, step in dims:
        if num == 1:
            continue
        if out and out[-1][1] == num * step:
            out[-1] = [out[-1][0] * num, step]
        else:
            out.append([num, step])
    return [tuple(d) for d in out] or [(1, 1)]


__all__ = ["Emitter", "Target", "Region", "coalesce", "align", "onchip", "ap_region", "endpoint_region"]
