"""Embedding lookup: Gather of rows of a constant table by a tensor of
indices, with the DMA's gather (dma_gather): 128 indices per transfer."""
from ...isa import sbuf, onchip, dram
from ..ir import Node
from ..lower import Lowering
from .common import P, Buffers


def emit_embedding(node: Node, lw: Lowering):
    em = lw.em
    table = lw.const(node.inputs[0])
    rows, width = table.shape[0], int(table.size // table.shape[0])
    tv = lw.view(node.inputs[0])
    idx = lw.view(node.inputs[1])
    n = idx.size
    idx_flat = idx.reshape((n,))
    y = lw.new_output(node.outputs[0])
    yv = y.reshape((n, width))
    ibuf = Buffers(em, 4, 2, f"{node.name} indices")
    rbuf = Buffers(em, width * tv.es, 2, f"{node.name} rows")
    for r0 in range(0, n, P):
        rr = min(P, n - r0)
        ia = sbuf(0, rr, ibuf.next(), "int32", [(1, 1)])
        sl = idx_flat.slice(0, r0, r0 + rr)
        em.dma(sl.endpoint(0, (rr, sl.strides[0]), [(1, 1)], ), onchip(ia))
        dst = sbuf(0, rr, rbuf.next(), tv.dtype, [(width, 1)])
        em.gather(dram(tv.addr, tv.dtype, rows, width, [(width, 1)]), onchip(dst), ia)
        out = yv.slice(0, r0, r0 + rr)
        em.dma(onchip(dst), out.endpoint(0, (rr, width), [(width, 1)]))
    ibuf.free()
    rbuf.free()
