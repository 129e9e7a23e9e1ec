"""Fused attention: softmax(Q K^T * scale + mask) V per batch index (head),
the node compiler/passes.fuse_attention makes of the unfused ops.

Per head, with S queries, T keys (T <= 512) and D <= 128 features:

  * Q^T [D, S] and K^T [D, T] come into SBUF transposed (through the array
    when their rows are the contiguous axis, as matmul.py's A operands);
    V [T, Dv] is loaded as it is, keys on partitions (128 per tile);
  * per block of <= array_cols queries: the scores S = Q K^T land in one
    PSUM bank [queries, T] (FP32); the vector engine scales them and adds
    the mask, takes the row max; the scalar engine computes exp(x - max)
    and the row sum in the same pass; the probabilities P = e / sum go to
    the matmul dtype;
  * P^T (keys on partitions) comes from P through the array (pe_transpose),
    and O = P V accumulates over key tiles in PSUM; the epilogue writes O in
    the output dtype and one DMA stores it.

Nothing of the [.., S, T] scores leaves the chip: the unfused graph writes
and reads them three to four times (the product, the scale, the mask add,
the softmax), which for BERT-base at batch 8 is 27 MB per sequence.
"""
import math

import numpy as np

from ...isa import dtype_size, onchip, sbuf
from ..ir import Node
from ..lower import Lowering, kernel
from .common import P, Buffers, col
from .matmul import _load_transposed


def check_attention(node: Node, lw: Lowering):
    sq, sk, sv = (lw.shape(x) for x in node.inputs[:3])
    es = dtype_size(lw.opt.matmul_dtype)
    T, Dv = sk[-1], sv[-1]
    need = 2 * (sq[-2] + T) * es + 2 * math.ceil(T / P) * Dv * es + T * (12 + es) + 2 * Dv * 4 + 4096
    if need > 0.9 * lw.em.sbuf.limit:
        return f"attention over {T} keys needs {need} SBUF bytes per partition"
    return None


@kernel("Attention", check=check_attention)
def emit_attention(node: Node, lw: Lowering):
    em, cols = lw.em, lw.t.array_cols
    mdt = lw.opt.matmul_dtype
    es = dtype_size(mdt)
    Q, KT, V = (lw.view(x) for x in node.inputs[:3])
    mask = lw.view(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] else None
    Y = lw.new_output(node.outputs[0])
    S, D = Q.shape[-2:]
    T, Dv = KT.shape[-1], V.shape[-1]
    batch = tuple(Y.shape[:-2])
    scale = float(node.attrs.get("scale", 1.0))
    Q, KT, V = Q.expand(batch + (S, D)), KT.expand(batch + (D, T)), V.expand(batch + (T, Dv))
    mask = mask.expand(batch + (S, T)) if mask is not None else None
    nkt = math.ceil(T / P)
    qt_buf = Buffers(em, S * es, 2, f"{node.name} Q^T")
    kt_buf = Buffers(em, T * es, 2, f"{node.name} K^T")
    v_buf = Buffers(em, nkt * Dv * es, 2, f"{node.name} V")
    rows_buf = Buffers(em, max(D, 1) * es, 2, f"{node.name} rows")
    x_buf = Buffers(em, T * 4, 2, f"{node.name} scores")
    e_buf = Buffers(em, T * 4, 1, f"{node.name} exp")
    p_buf = Buffers(em, T * es, 2, f"{node.name} P")
    pt_buf = Buffers(em, nkt * cols * es, 2, f"{node.name} P^T")
    m_buf = Buffers(em, T * 4, 2, f"{node.name} mask") if mask is not None else None
    o_buf = Buffers(em, Dv * 4, 2, f"{node.name} out")
    st_buf = Buffers(em, 16, 2, f"{node.name} stats")
    for bidx in np.ndindex(*batch) if batch else [()]:
        q, kt, v, y, m = Q, KT, V, Y, mask
        for i in bidx:
            q, kt, v, y = q.index(0, i), kt.index(0, i), v.index(0, i), y.index(0, i)
            m = m.index(0, i) if m is not None else None
        qt, ktt, va = qt_buf.next(), kt_buf.next(), v_buf.next()
        _load_transposed(lw, q, qt, S, mdt, rows_buf, cols, ktiles=1)
        _load_transposed(lw, kt.permute((1, 0)), ktt, T, mdt, rows_buf, cols, ktiles=1)
        for j in range(nkt):
            k0, kk = j * P, min(P, T - j * P)
            em.dma(v.endpoint(k0 * v.strides[0], (kk, v.strides[0]), [(Dv, v.strides[1])]),
                   onchip(sbuf(0, kk, va + j * Dv * es, mdt, [(Dv, 1)])))
        mrow = None
        if m is not None and m.strides[0] == 0:  # one mask row for every query: loaded once, broadcast
            mrow = sbuf(0, min(cols, S), m_buf.next(), "fp32", [(T, 1)])
            em.dma(m.endpoint(0, (min(cols, S), 0), [(T, m.strides[1])]), onchip(mrow))
        for q0 in range(0, S, cols):
            qb = min(cols, S - q0)
            ps = em.psum_tile(qb, T)
            em.insn("tensor", "load_stationary", src=sbuf(0, D, qt + q0 * es, mdt, [(qb, 1)]))
            em.insn("tensor", "multiply_moving", src=sbuf(0, D, ktt, mdt, [(T, 1)]), dst=ps, accumulate=0)
            x = sbuf(0, qb, x_buf.next(), "fp32", [(T, 1)])
            em.insn("vector", "tensor_scalar", op0="mul", op1="bypass", src=ps, dst=x, imm0=scale, imm1=0.0)
            if m is not None:
                if mrow is not None:
                    mt = sbuf(0, qb, mrow.offset, "fp32", [(T, 1)])
                else:
                    mt = sbuf(0, qb, m_buf.next(), "fp32", [(T, 1)])
                    ms = m.slice(0, q0, q0 + qb)
                    em.dma(ms.endpoint(0, (qb, ms.strides[0]), [(T, ms.strides[1])]), onchip(mt))
                em.insn("vector", "tensor_tensor", op="add", in0=x, in1=mt, dst=x)
            c = st_buf.next()
            mx, neg, sm = col(c, qb), col(c + 4, qb), col(c + 8, qb)
            em.insn("vector", "tensor_reduce", op="max", axes=1, src=x, dst=mx)
            em.insn("vector", "tensor_scalar", op0="mul", op1="bypass", src=mx, dst=neg, imm0=-1.0, imm1=0.0)
            e = sbuf(0, qb, e_buf.next(), "fp32", [(T, 1)])
            em.insn("scalar", "activation", func="exp", src=x, dst=e, bias=neg, scale=1.0, accum=sm)
            em.insn("vector", "reciprocal", src=sm, dst=sm)
            p = p_buf.next()
            em.insn("vector", "tensor_scalar", op0="mul", op1="bypass", src=e, dst=sbuf(0, qb, p, mdt, [(T, 1)]),
                    imm0=0.0, imm1=0.0, col0=sm)
            pt = pt_buf.next()
            for c0 in range(0, T, cols):  # P^T: keys on partitions, tile j = keys [128j, 128j + 128)
                cc = min(cols, T - c0)
                tp = em.psum_tile(cc, qb)
                em.insn("tensor", "pe_transpose", src=sbuf(0, qb, p + c0 * es, mdt, [(cc, 1)]), dst=tp)
                j, p0 = divmod(c0, P)
                em.insn("vector", "tensor_copy", src=tp, dst=sbuf(p0, cc, pt + j * cols * es, mdt, [(qb, 1)]))
            ops = em.psum_tile(qb, Dv)
            for j in range(nkt):
                kk = min(P, T - j * P)
                em.insn("tensor", "load_stationary", src=sbuf(0, kk, pt + j * cols * es, mdt, [(qb, 1)]))
                em.insn("tensor", "multiply_moving", src=sbuf(0, kk, va + j * Dv * es, mdt, [(Dv, 1)]), dst=ops,
                        accumulate=int(j > 0))
            o = sbuf(0, qb, o_buf.next(), y.dtype, [(Dv, 1)])
            em.insn("scalar", "activation", func="identity", src=ops, dst=o, bias=None, scale=1.0, accum=None)
            ys = y.slice(0, q0, q0 + qb)
            em.dma(onchip(o), ys.endpoint(0, (qb, ys.strides[0]), [(Dv, ys.strides[1])]))
    for b in (qt_buf, kt_buf, v_buf, rows_buf, x_buf, e_buf, p_buf, pt_buf, m_buf, o_buf, st_buf):
        if b is not None:
            b.free()
