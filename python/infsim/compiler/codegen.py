"""Lowering of fully connected layer chains onto one NeuronCore.

Layout (activations live transposed, features on partitions):
  * a layer's input x^T [F, B] sits in SBUF as K tiles of <= 128 partitions,
    each tile [k, B] contiguous along the free axis;
  * weights are laid out in DRAM at compile time as slabs [k, G] of W^T (K tile
    by column group of G output features), each one contiguous, streamed by DMA
    queues dma0 and dma3 in turn through a ring of SBUF slots;
  * out[M, n] = W^T[k, M]^T @ x^T[k, n] accumulates over K tiles in a PSUM bank
    (M <= array columns); the scalar engine adds the bias, applies the
    activation and writes the next layer's x^T straight from PSUM, so no layer
    needs a transpose;
  * the input arrives by DMA (dma1) row by row, cast to the compute dtype on
    the way, and is transposed through the array (pe_transpose) into the
    first layer's x^T; the output leaves by DMA (dma2) in the model's
    row-major [B, out] layout.
Engines synchronise only through semaphores: each has one producing engine
(see CoreProgram), consumers wait for the count the producer reaches.
"""
import json
import math
from dataclasses import dataclass
from typing import Dict, List

import numpy as np

from .. import _infsim
from ..isa import CoreProgram, dram, dtype_size, onchip, psum, sbuf
from .ir import CompileError
from .passes import Linear

ALIGN = 64  # bytes: DRAM placement granularity (a whole inf1 burst; two on inf2)
PSUM_GROUP_BANKS = 3  # banks accumulating one column group; two groups alternate
TRANSPOSE_BANKS = 2  # further banks for transposing the input
WEIGHT_QUEUES = ("dma0", "dma3")  # weight slabs alternate between these


def _align(x, a=ALIGN):
    return (x + a - 1) // a * a


@dataclass
class Target:
    """The facts of the chip configuration the compiler uses."""
    name: str
    partitions: int
    array_rows: int
    array_cols: int
    sbuf_bytes: int
    psum_bytes: int
    psum_bank_bytes: int
    semaphores: int
    dram_slice_bytes: int

    @classmethod
    def load(cls, name_or_path: str) -> "Target":
        c = _infsim.config(name_or_path)
        return cls(c["name"], int(c["partitions"]), int(c["array_rows"]), int(c["array_cols"]),
                   int(c["sbuf_partition_bytes"]), int(c["psum_partition_bytes"]), int(c["psum_bank_bytes"]),
                   int(c["semaphores"]), int(c["dram_bytes"]) // int(c["cores"]))


def to_dtype_bytes(a: np.ndarray, dtype: str) -> bytes:
    """FP32 weights in a device dtype, converted by the device's own numerics."""
    return _infsim.convert(np.ascontiguousarray(a, dtype=np.float32).tobytes(), "fp32", dtype)


class SbufAllocator:
    """Bump allocator of byte ranges inside every partition."""

    def __init__(self, limit):
        self.limit = limit
        self.used = 0
        self.regions = []

    def alloc(self, name, nbytes):
        off = _align(self.used, 4)
        if off + nbytes > self.limit:
            raise CompileError(
                f"SBUF overflow: {name} needs {nbytes} bytes per partition at offset {off}, the partition has "
                f"{self.limit} (regions so far: {', '.join(f'{n}={b}' for n, b in self.regions)}); "
                f"use a smaller --batch")
        self.regions.append((name, nbytes))
        self.used = off + nbytes
        return off


def lower_linear_chain(layers: List[Linear], input_name: str, input_shape, output_name: str, output_shape,
                       batch: int, dtype: str, target: Target, metadata: Dict) -> "_infsim.Executable":
    P = target.partitions
    cols = target.array_cols
    if P % cols:
        raise CompileError("array_cols must divide the partition count")
    es = dtype_size(dtype)
    B = batch
    source_ops = ["<io>"] + [l.name for l in layers]
    prog = CoreProgram(0, target.semaphores, source_ops)
    exe = _infsim.Executable()

    # ---------------------------------------------------------------- DRAM plan
    dram_top = 0

    def dram_alloc(nbytes):
        nonlocal dram_top
        off = dram_top
        dram_top = _align(dram_top + nbytes)
        if dram_top > target.dram_slice_bytes:
            raise CompileError(f"model needs more than the core's {target.dram_slice_bytes >> 20} MiB of DRAM")
        return off

    F0 = layers[0].in_features
    FL = layers[-1].out_features
    x_addr = dram_alloc(B * F0 * 4)
    y_addr = dram_alloc(B * FL * 4)
    exe.add_tensor(input_name, "input", "fp32", list(input_shape), 0, x_addr)
    exe.add_tensor(output_name, "output", "fp32", list(output_shape), 0, y_addr)

    # ---------------------------------------------------------------- SBUF plan
    n_tile = target.psum_bank_bytes // 4  # batch columns per matmul: one PSUM bank of FP32
    banks_needed = 2 * PSUM_GROUP_BANKS + TRANSPOSE_BANKS
    if target.psum_bytes // target.psum_bank_bytes < banks_needed:
        raise CompileError(f"the target needs at least {banks_needed} PSUM banks")
    group_cols = PSUM_GROUP_BANKS * cols
    sa = SbufAllocator(target.sbuf_bytes)
    act_bytes = max(math.ceil(l.in_features / P) for l in layers) * B * es
    act_regions = [sa.alloc("activations A", act_bytes), sa.alloc("activations B", act_bytes)]
    row_blocks = [(b0, min(P, B - b0)) for b0 in range(0, B, P)]  # batch rows per transpose
    staging_off = sa.alloc("input rows", len(row_blocks) * F0 * es)
    bias_off = []
    for l in layers:
        bias_off.append(sa.alloc(f"bias {l.name}", math.ceil(l.out_features / cols) * 4))
    out_off = sa.alloc("output", math.ceil(FL / cols) * B * 4)
    slot_bytes = group_cols * es
    free = target.sbuf_bytes - _align(sa.used, 4)
    n_slots = min(16, free // slot_bytes)
    if n_slots < 2:
        raise CompileError(f"SBUF overflow: no room left for weight slots ({free} bytes free per partition); "
                           "use a smaller --batch")
    slot_off = sa.alloc("weight slots", n_slots * slot_bytes)

    # ------------------------------------------------------- input (dma1, tensor, vector)
    # Rows of x arrive whole (contiguous in DRAM, cast on the way); the array
    # transposes [rows, features] blocks into PSUM and the vector engine
    # copies x^T into the first activation buffer's K tiles. (A transposing
    # DMA would read DRAM 4 bytes at a time, a burst each.)
    IO = 0
    copied = {}  # transpose bank -> 'xcopy' count once copied out
    for ri, (b0, rb) in enumerate(row_blocks):
        rows = staging_off + ri * F0 * es
        d = exe.add_dma(dram(x_addr + b0 * F0 * 4, "fp32", rb, F0, [(F0, 1)]), onchip(sbuf(0, rb, rows, dtype, [(F0, 1)])))
        rows_ready = prog.emit("dma1", "dma_copy", {"desc": d, "count": 1}, signal="in", source=IO)
        for i, f0 in enumerate(range(0, F0, cols)):
            fc = min(cols, F0 - f0)
            bank = 2 * PSUM_GROUP_BANKS + (ri * math.ceil(F0 / cols) + i) % TRANSPOSE_BANKS
            xt = psum(0, fc, bank * target.psum_bank_bytes, [(rb, 1)])
            v = prog.emit("tensor", "pe_transpose", {"src": sbuf(0, rb, rows + f0 * es, dtype, [(fc, 1)]), "dst": xt},
                          waits=[("in", rows_ready), ("xcopy", copied.get(bank, 0))], signal="xpose", source=IO)
            dst = sbuf(f0 % P, fc, act_regions[0] + ((f0 // P) * B + b0) * es, dtype, [(rb, 1)])
            copied[bank] = prog.emit("vector", "tensor_copy", {"src": xt, "dst": dst}, waits=[("xpose", v)],
                                     signal="xcopy", source=IO)
    inputs_ready = prog.semaphore_value("xcopy")
    bias_ready = []
    for li, l in enumerate(layers):
        b = l.bias if l.bias is not None else np.zeros(l.out_features, np.float32)
        b_addr = dram_alloc(b.size * 4)
        exe.add_constant(0, b_addr, b.astype(np.float32).tobytes())
        full, rest = divmod(l.out_features, cols)
        first = None
        # bias of output tile j, partition p -> column j of the bias region: element order (p, j).
        if full:
            first = exe.add_dma(dram(b_addr, "fp32", cols, 1, [(full, cols)]),
                                onchip(sbuf(0, cols, bias_off[li], "fp32", [(full, 1)])))
        if rest:
            d = exe.add_dma(dram(b_addr + full * cols * 4, "fp32", rest, 1, [(1, 1)]),
                            onchip(sbuf(0, rest, bias_off[li] + full * 4, "fp32", [(1, 1)])))
            first = d if first is None else first
        bias_ready.append(prog.emit("dma1", "dma_copy", {"desc": first, "count": (full > 0) + (rest > 0)},
                                    signal="bias", source=li + 1))

    # ------------------------------------------------------ weight slabs (dma0, dma3)
    # Slab s = (layer, column group g, K tile t) in the order the tensor engine uses them.
    slabs = []
    for li, l in enumerate(layers):
        for g0 in range(0, l.out_features, group_cols):
            gc = min(group_cols, l.out_features - g0)
            for t0 in range(0, l.in_features, P):
                k = min(P, l.in_features - t0)
                block = l.weight[g0:g0 + gc, t0:t0 + k].T  # [k, gc] of W^T, transposed block by block
                addr = dram_alloc(block.size * es)
                exe.add_constant(0, addr, to_dtype_bytes(block, dtype))
                slabs.append((li, g0, t0, k, gc, addr))

    slab_index = {(li, g0, t0): s for s, (li, g0, t0, _, _, _) in enumerate(slabs)}

    # Every use of a slab (each batch tile reuses them all) loads it into the
    # next slot of the ring. Uses alternate between two DMA queues, so one
    # slab's transfer overlaps the next one's setup and DRAM latency; a queue
    # runs ahead of the tensor engine by up to n_slots and waits for the
    # slot's previous slab to have been read.
    n_tiles = math.ceil(B / n_tile)
    slab_loaded = []  # per use: (semaphore, value once loaded)
    for u in range(n_tiles * len(slabs)):
        li, g0, t0, k, gc, addr = slabs[u % len(slabs)]
        slot = slot_off + (u % n_slots) * slot_bytes
        queue = WEIGHT_QUEUES[u % len(WEIGHT_QUEUES)]
        d = exe.add_dma(dram(addr, dtype, k, gc, [(gc, 1)]), onchip(sbuf(0, k, slot, dtype, [(gc, 1)])))
        v = prog.emit(queue, "dma_copy", {"desc": d, "count": 1}, waits=[("wfree", u - n_slots + 1)],
                      signal=f"wload_{queue}", source=li + 1)
        slab_loaded.append((f"wload_{queue}", v))

    # ------------------------------------------------------------------ compute
    act_done_layer = [0] * len(layers)  # 'act' count once layer li's activations are all written
    bank_free = {}  # PSUM bank -> 'act' count once its last reader finished
    group_parity = 0
    for ni, n0 in enumerate(range(0, B, n_tile)):
        nsz = min(n_tile, B - n0)
        for li, l in enumerate(layers):
            src_region = act_regions[li % 2]
            dst_region = act_regions[(li + 1) % 2]
            last = li == len(layers) - 1
            k_tiles = math.ceil(l.in_features / P)
            for g0 in range(0, l.out_features, group_cols):
                gc = min(group_cols, l.out_features - g0)
                m_tiles = math.ceil(gc / cols)
                banks = [(group_parity * PSUM_GROUP_BANKS + j) for j in range(m_tiles)]
                group_parity ^= 1
                mm_done = {}
                for t in range(k_tiles):
                    k = min(P, l.in_features - t * P)
                    u = ni * len(slabs) + slab_index[(li, g0, t * P)]
                    slot = slot_off + (u % n_slots) * slot_bytes
                    x_ap = sbuf(0, k, src_region + (t * B + n0) * es, dtype, [(nsz, 1)])
                    x_wait = ("xcopy", inputs_ready) if li == 0 else ("act", act_done_layer[li - 1])
                    for j in range(m_tiles):
                        m = min(cols, gc - j * cols)
                        st = sbuf(0, k, slot + j * cols * es, dtype, [(m, 1)])
                        prog.emit("tensor", "load_stationary", {"src": st}, waits=[slab_loaded[u]],
                                  signal="wfree" if j == m_tiles - 1 else None, source=li + 1)
                        bank = banks[j]
                        out = psum(0, m, bank * target.psum_bank_bytes, [(nsz, 1)])
                        waits = [x_wait]
                        if t == 0:
                            waits.append(("act", bank_free.get(bank, 0)))
                        v = prog.emit("tensor", "multiply_moving", {"src": x_ap, "dst": out, "accumulate": int(t > 0)},
                                      waits=waits, signal="mm" if t == k_tiles - 1 else None, source=li + 1)
                        if t == k_tiles - 1:
                            mm_done[j] = v
                for j in range(m_tiles):
                    m = min(cols, gc - j * cols)
                    f0 = g0 + j * cols  # first output feature of this tile
                    bank = banks[j]
                    src = psum(0, m, bank * target.psum_bank_bytes, [(nsz, 1)])
                    tile = f0 // cols
                    bias = sbuf(0, m, bias_off[li] + tile * 4, "fp32", [(1, 1)])
                    if last:
                        dst = sbuf(0, m, out_off + (tile * B + n0) * 4, "fp32", [(nsz, 1)])
                    else:
                        dst = sbuf(f0 % P, m, dst_region + ((f0 // P) * B + n0) * es, dtype, [(nsz, 1)])
                    v = prog.emit("scalar", "activation",
                                  {"func": l.act, "src": src, "dst": dst, "bias": bias, "scale": 1.0},
                                  waits=[("mm", mm_done[j]), ("bias", bias_ready[li])], signal="act", source=li + 1)
                    bank_free[bank] = v
                    act_done_layer[li] = v
                    if last:
                        d = exe.add_dma(onchip(dst), dram(y_addr + (n0 * FL + f0) * 4, "fp32", m, 1, [(nsz, FL)]))
                        prog.emit("dma2", "dma_copy", {"desc": d, "count": 1}, waits=[("act", v)], signal="out",
                                  source=IO)
    # DMA queues complete in order: after the last store, every output is in DRAM.
    prog.emit("dma2", "end_of_program", {"code": 0}, source=IO)

    exe.source_ops = source_ops
    for engine, lines in prog.streams.items():
        exe.add_stream(0, engine, lines, prog.stream_ops[engine])
    metadata = dict(metadata)
    metadata.update({"sbuf_bytes_per_partition": sa.used, "dram_bytes": dram_top, "weight_slots": n_slots,
                     "layers": [{"name": l.name, "in": l.in_features, "out": l.out_features, "act": l.act}
                                for l in layers]})
    exe.metadata_json = json.dumps(metadata, sort_keys=True)
    return exe
