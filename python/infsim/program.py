"""Hand-written single-core programs, for instruction tests and
microbenchmarks: inputs DMA'd from DRAM into SBUF/PSUM (queue dma0), the
instructions of interest, outputs DMA'd back (queue dma1), run on the chip.

    h = ProgramBuilder()
    a = h.input("a", np.ones((4, 8), np.float32))
    out = h.alloc(4, 8)
    h.emit("vector", "tensor_scalar", {...})
    h.output("y", out, "vector")
    outputs, result = h.run()
"""
import numpy as np

from . import _infsim
from .isa import AP, CoreProgram, dram, dtype_size, onchip
from .runtime import run_raw


class ProgramBuilder:
    def __init__(self, semaphores=32):
        self.exe = _infsim.Executable()
        self.prog = CoreProgram(0, semaphores, ["program"])
        self.dram_top = 0
        self.onchip_top = {"sbuf": 0, "psum": 0}
        self.loaded = 0
        self.outputs = []
        self.inputs = {}

    def _dram(self, nbytes):
        a = self.dram_top
        self.dram_top += (nbytes + 63) // 64 * 64
        return a

    def alloc(self, parts, free, dtype="fp32", space="sbuf") -> AP:
        off = self.onchip_top[space]
        self.onchip_top[space] += (free * dtype_size(dtype) + 63) // 64 * 64
        return AP(space, 0, parts, off, dtype, ((free, 1),))

    def dram_input(self, name, array) -> int:
        """array [P, F] float32 left in DRAM; returns its address."""
        a = np.ascontiguousarray(array, np.float32)
        addr = self._dram(a.nbytes)
        self.exe.add_tensor(name, "input", "fp32", list(a.shape), 0, addr)
        self.inputs[name] = a
        return addr

    def input(self, name, array, dtype="fp32", space="sbuf") -> AP:
        """array [P, F] float32 in DRAM -> on-chip [P, F] of dtype."""
        a = np.ascontiguousarray(array, np.float32)
        p, f = a.shape
        addr = self._dram(a.nbytes)
        self.exe.add_tensor(name, "input", "fp32", [p, f], 0, addr)
        ap = self.alloc(p, f, dtype, space)
        d = self.exe.add_dma(dram(addr, "fp32", p, f, [(f, 1)]), onchip(ap))
        self.loaded = self.prog.emit("dma0", "dma_copy", {"desc": d, "count": 1}, signal="in")
        self.inputs[name] = a
        return ap

    def emit(self, engine, opcode, fields):
        """An instruction under test, after all inputs, before all outputs."""
        return self.prog.emit(engine, opcode, fields, waits=[("in", self.loaded)], signal=f"done_{engine}")

    def output(self, name, ap: AP, engine):
        p, f = ap.part_count, ap.free_size
        addr = self._dram(p * f * 4)
        self.exe.add_tensor(name, "output", "fp32", [p, f], 0, addr)
        d = self.exe.add_dma(onchip(ap), dram(addr, "fp32", p, f, [(f, 1)]))
        done = self.prog.semaphore_value(f"done_{engine}")
        self.prog.emit("dma1", "dma_copy", {"desc": d, "count": 1}, waits=[(f"done_{engine}", done)])
        self.outputs.append(name)

    def finish(self):
        """Ends the program; returns the executable."""
        self.prog.emit("dma1", "end_of_program", {"code": 0})
        self.exe.source_ops = ["program"]
        for engine, lines in self.prog.streams.items():
            self.exe.add_stream(0, engine, lines, self.prog.stream_ops[engine])
        return self.exe

    def run(self, config="inf1"):
        """Runs on the chip; returns ({output name: array}, raw run result)."""
        self.finish()
        r = run_raw(self.exe, {k: v.tobytes() for k, v in self.inputs.items()}, config)
        shapes = {t["name"]: t["shape"] for t in self.exe.tensors}
        out = {n: np.frombuffer(r["outputs"][n], np.float32).reshape(shapes[n]) for n in self.outputs}
        return out, r
