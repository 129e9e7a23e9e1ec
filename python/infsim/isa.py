"""The compiler's view of the ISA: operands, instruction emission, semaphores.

Opcode names, engines and fields come from `isa_gen` (generated from
isa/isa.yaml); this module only formats operands as assembly text, which the
C++ assembler encodes when the executable is built.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from . import isa_gen
from .isa_gen import DTYPE_BYTES, Dtype, Engine, OPCODES


def dtype_size(dtype: str) -> int:
    return DTYPE_BYTES[Dtype[dtype]]


@dataclass(frozen=True)
class AP:
    """On-chip access pattern: partitions [part_start, part_start+part_count),
    byte `offset` inside each, free dims [(num, step_in_elements), ...] outermost first."""

    space: str
    part_start: int
    part_count: int
    offset: int
    dtype: str
    dims: Tuple[Tuple[int, int], ...]

    def text(self) -> str:
        dims = ",".join(f"{n}:{s}" for n, s in self.dims)
        return f"{self.space}[{self.part_start}:{self.part_start + self.part_count}]@{self.offset}:{self.dtype}[{dims}]"

    @property
    def free_size(self) -> int:
        n = 1
        for num, _ in self.dims:
            n *= num
        return n


def sbuf(part_start, part_count, offset, dtype, dims) -> AP:
    return AP("sbuf", part_start, part_count, offset, dtype, tuple(dims))


def psum(part_start, part_count, offset, dims) -> AP:
    return AP("psum", part_start, part_count, offset, "fp32", tuple(dims))


def dram(address, dtype, part_count, part_step, dims) -> dict:
    """DMA endpoint in the core's DRAM slice: element (p, i..) at
    address + (p*part_step + sum(i*step)) * size."""
    return {"loc": "dram", "dtype": dtype, "address": address, "part_count": part_count,
            "part_step": part_step, "dims": list(dims)}


def onchip(ap: AP) -> dict:
    """DMA endpoint for an on-chip access pattern."""
    return {"loc": ap.space, "dtype": ap.dtype, "address": ap.offset, "part_start": ap.part_start,
            "part_count": ap.part_count, "dims": list(ap.dims)}


def _field_text(kind: str, value) -> str:
    if kind == "ap":
        return "none" if value is None else value.text()
    if kind == "f32":
        return repr(float(value))
    return str(value)


class CoreProgram:
    """Instruction streams of one core, with semaphores allocated by name.

    Each semaphore has one producing engine, so its count rises in that
    engine's program order and `emit(..., signal=S)` can return the value S
    holds once the instruction completes: consumers wait for that value.
    """

    def __init__(self, core: int, num_semaphores: int, source_ops: List[str]):
        self.core = core
        self.num_semaphores = num_semaphores
        self.streams: Dict[str, List[str]] = {}
        self.stream_ops: Dict[str, List[int]] = {}
        self.source_ops = source_ops
        self._sem_ids: Dict[str, int] = {}
        self._sem_producer: Dict[str, str] = {}
        self._sem_count: Dict[str, int] = {}
        self._waited: Dict[Tuple[str, str], int] = {}

    def semaphore_value(self, name: str) -> int:
        return self._sem_count.get(name, 0)

    def _sem(self, name: str) -> int:
        if name not in self._sem_ids:
            if len(self._sem_ids) >= self.num_semaphores:
                raise RuntimeError(f"more than {self.num_semaphores} semaphores needed")
            self._sem_ids[name] = len(self._sem_ids)
        return self._sem_ids[name]

    def emit(self, engine: str, opcode: str, fields: Optional[dict] = None, waits: Sequence[Tuple[str, int]] = (),
             signal: Optional[str] = None, source: int = 0) -> Optional[int]:
        """Appends one instruction. `waits` are (semaphore, value) pairs; ones
        this engine already waited for are dropped, and more than the two
        header slots spill into nops. Returns the signal's value after completion."""
        _, engines, field_kinds = OPCODES[opcode]
        if Engine[engine] not in engines:
            raise ValueError(f"{opcode} cannot run on the {engine} engine")
        fields = fields or {}
        names = [f for f, _ in field_kinds]
        if set(fields) - set(names):
            raise ValueError(f"{opcode}: unknown fields {sorted(set(fields) - set(names))}")
        need = []
        for sem, value in waits:
            if value <= 0 or self._waited.get((engine, sem), 0) >= value:
                continue
            self._waited[(engine, sem)] = value
            need.append((self._sem(sem), value))
        while len(need) > 2:
            self._append(engine, "nop " + self._header(need[:2], None), source)
            need = need[2:]
        parts = [opcode] + [f"{f}={_field_text(k, fields[f])}" for f, k in field_kinds if f in fields]
        result = None
        sig = None
        if signal is not None:
            producer = self._sem_producer.setdefault(signal, engine)
            if producer != engine:
                raise RuntimeError(f"semaphore {signal} already produced by {producer}")
            sig = self._sem(signal)
            self._sem_count[signal] = self._sem_count.get(signal, 0) + 1
            result = self._sem_count[signal]
        self._append(engine, " ".join(parts) + self._header(need, sig), source)
        return result

    @staticmethod
    def _header(waits, sig) -> str:
        s = "".join(f" wait{i}=s{sem}>={value}" for i, (sem, value) in enumerate(waits))
        return s + (f" signal=s{sig}" if sig is not None else "")

    def _append(self, engine, line, source):
        self.streams.setdefault(engine, []).append(line)
        self.stream_ops.setdefault(engine, []).append(source)


__all__ = ["AP", "sbuf", "psum", "dram", "onchip", "CoreProgram", "dtype_size", "isa_gen"]
