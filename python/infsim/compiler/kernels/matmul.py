"""Matrix products on the systolic array: MatMul (batched, broadcasting),
Gemm, and FusedMatMul (a product with its bias and activation folded in by
the graph passes).

C[M, N] = A[M, K] @ B[K, N] per batch index. The array computes
stationary^T @ moving with the contraction K on partitions, so:

  * A^T [K, M] is the stationary, loaded M-columns at a time (M <= array
    columns); a row-major A is loaded row block by row block and transposed
    through the array (pe_transpose), a column-major A (stored transposed)
    is loaded directly;
  * B [K, N] streams as the moving operand, 512 columns (one PSUM bank of
    FP32) at a time; a B whose N axis is not contiguous (B stored
    transposed, e.g. K^T in attention) is transposed the same way;
  * C [M, N] accumulates over K tiles in PSUM, rows on partitions, so it is
    stored row-major without a transpose; the bias (along N) is added by the
    vector engine and the activation applied by the scalar engine on the way
    out of PSUM.
B tiles stay in SBUF for every row block of A that uses them.
"""
import math
from dataclasses import replace

import numpy as np

from ...isa import dram, onchip, sbuf
from ..ir import Node
from ..lower import Lowering, kernel
from ..views import DView
from ..quantize import activation_scale, quantise_weights
from .common import P, Buffers

NMAX = 512  # moving columns per matmul: one PSUM bank of FP32
MBLK = 512  # rows of A transposed and kept in SBUF at once (activation x activation products)
KCHUNK = 512  # columns of A rows staged at once for their transpose
SBUF_SHARE = 0.9  # fraction of the free SBUF a matmul kernel plans for


def int8_plan(node: Node, lw: Lowering):
    """INT8 when quantising and this product has calibrated activations
    times constant weights (activation x activation products stay in BF16)."""
    q = lw.opt.quant
    return q is not None and node.inputs[0] in q and lw.is_const(node.inputs[1]) and \
        not int(node.attrs.get("transA", 0))


def _mat_views(node: Node, lw: Lowering, mdt: str):
    """Logical A [.., M, K] and B [.., K, N] views, and for INT8 the weight
    scales per output column. A constant 2-D B (weights) comes back as the
    array itself: the kernel lays it out in the blocks it loads."""
    a_name, b_name = node.inputs[0], node.inputs[1]
    trans_a = int(node.attrs.get("transA", 0))
    trans_b = int(node.attrs.get("transB", 0))
    w_scales = []
    a_shape, b_shape = lw.shape(a_name), lw.shape(b_name)

    def logical(name, shape, trans, vector_axis):
        if lw.is_const(name):
            arr = lw.const(name)
            if arr.ndim == 1:
                arr = arr.reshape((1, -1) if vector_axis == 0 else (-1, 1))
            if trans:
                arr = np.swapaxes(arr, -1, -2)
            # Weights are laid out at compile time the way the kernel reads them.
            key = (f"{name}#T" if trans else name) + ("#q" if mdt == "int8" else "")
            if mdt == "int8":
                arr, scales = quantise_weights(arr.astype(np.float32), axis=-1)
                w_scales.append(scales)
            if name == b_name and arr.ndim == 2:
                return np.asarray(arr, np.float32)
            if key not in lw.g.constants:
                lw.g.constants[key] = np.ascontiguousarray(arr)
            return lw.view(key, dtype=mdt)
        v = lw.view(name)
        if v.ndim == 1:
            v = v.reshape((1, v.shape[0]) if vector_axis == 0 else (v.shape[0], 1))
        if trans:
            v = v.permute(list(range(v.ndim - 2)) + [v.ndim - 1, v.ndim - 2])
        return v

    A = logical(a_name, a_shape, trans_a, 0)
    B = logical(b_name, b_shape, trans_b, 1)
    return A, B, (w_scales[0] if w_scales else None)


def check_matmul(node: Node, lw: Lowering):
    K = lw.shape(node.inputs[0])[-1 if not int(node.attrs.get("transA", 0)) else -2]
    es = 4 if lw.opt.matmul_dtype == "fp32" else 2
    need = math.ceil(K / P) * es * (lw.t.array_cols + 2 * 128) + 2 * K * es
    if need > SBUF_SHARE * lw.t.sbuf_bytes:
        return f"a contraction of {K} needs {need} SBUF bytes per partition (more than {SBUF_SHARE:.0%} of SBUF)"
    return None


@kernel("MatMul", "Gemm", "FusedMatMul", check=check_matmul)
def emit_matmul(node: Node, lw: Lowering):
    em, t = lw.em, lw.t
    int8 = int8_plan(node, lw)
    mdt = "int8" if int8 else lw.opt.matmul_dtype
    A, B, w_scales = _mat_views(node, lw, mdt)
    M, K = A.shape[-2:]
    N = B.shape[-1]
    if B.shape[-2] != K:
        raise ValueError(f"{node.name}: inner dimensions {A.shape} @ {B.shape}")
    Y = lw.new_output(node.outputs[0])
    weights = B if isinstance(B, np.ndarray) else None  # constant [K, N]: blocked below
    batch = tuple(np.broadcast_shapes(A.shape[:-2], B.shape[:-2]))
    A = A.expand(batch + (M, K))
    if weights is None:
        B = B.expand(batch + (K, N))
    Yb = Y.reshape(batch + (M, N))
    if weights is not None and batch:
        # Constant weights: the batch rows are rows of one product, so each weight
        # block is loaded once for all of them instead of once per batch index.
        rows = int(np.prod(batch)) * M
        a2, y2 = A.reshape((rows, K)), (Yb.reshape((rows, N)) if Yb is not None else None)
        if a2 is not None and y2 is not None:
            A, Yb, M, batch = a2, y2, rows, ()
    alpha = float(node.attrs.get("alpha", 1.0))
    act = node.attrs.get("act", "identity")
    bias = _bias(node, lw, M, N)
    # INT8: the activation is quantised on chip (x / s_a) and each output column rescaled by s_a * s_w[n].
    prescale = rescale = None
    if int8:
        s_a = activation_scale(lw.opt.quant[node.inputs[0]])
        prescale = 1.0 / s_a
        key = f"{node.name}#rescale"
        lw.g.constants[key] = (s_a * w_scales).reshape(1, N).astype(np.float32)
        rescale = lw.view(key, dtype="fp32").expand((M, N))
    es = 2 if mdt in ("bf16", "fp16") else (1 if mdt == "int8" else 4)
    cols = t.array_cols
    kt = math.ceil(K / P)
    # Resident weights (a pipeline stage): B, the bias and the rescale in SBUF from the load program on.
    res_b = _resident(node, lw, weights, mdt, es, kt)
    # Plan the tile sizes to fit SBUF: A^T [kt x 128, mblk], B double-buffered [kt x 128, nc].
    mblk, nc = _plan_tiles(M, K, N, es, cols, int(em.sbuf.available() * SBUF_SHARE), weights is not None,
                            int8, b_tiles=res_b is None)
    at_buf = Buffers(em, kt * mblk * es, 1, f"{node.name} A^T")
    rows_buf = Buffers(em, min(K, KCHUNK) * (es + (4 if int8 else 0)), 2, f"{node.name} A rows")
    b_buf = Buffers(em, kt * nc * es, 2, f"{node.name} B") if res_b is None else None
    bt_buf = Buffers(em, K * es, 2, f"{node.name} B rows") if weights is None and B.strides[-1] != 1 else None
    if weights is not None and res_b is None:
        # Weights in DRAM as the blocks the kernel loads, [n chunk][k tile][<=128 rows][nc],
        # each one contiguous: every load is one long DRAM run (row hits), not 128 strided rows.
        block_at, flat, off = {}, [], 0
        for n0 in range(0, N, nc):
            for k in range(kt):
                blk = weights[k * P:(k + 1) * P, n0:n0 + nc]
                block_at[(n0, k)] = off
                flat.append(blk.reshape(-1))
                off += blk.size
        w_addr = em.constant(np.concatenate(flat), mdt)
    out_buf = Buffers(em, nc * 4, 4, f"{node.name} out")
    bias_buf = Buffers(em, nc * 4, 2, f"{node.name} bias") if bias is not None else None
    scale_buf = Buffers(em, nc * 4, 2, f"{node.name} rescale") if int8 else None

    for bidx in np.ndindex(*batch) if batch else [()]:
        a, b, y = A, B, Yb
        for i in bidx:
            a, y = a.index(0, i), y.index(0, i)
            b = b if weights is not None else b.index(0, i)
        for m0 in range(0, M, mblk):
            mb = min(mblk, M - m0)
            at = at_buf.next()
            _load_transposed(lw, a.slice(0, m0, m0 + mb), at, mblk, mdt, rows_buf, cols, ktiles=kt,
                             prescale=prescale)
            for n0 in range(0, N, nc):
                ncur = min(nc, N - n0)
                if res_b is not None:  # resident: k tile k of B at res_b + k*N*es, columns n0.. of it
                    bt, bstep = res_b + n0 * es, N
                else:
                    bt, bstep = b_buf.next(), nc
                if res_b is None and weights is not None:  # one contiguous block per K tile
                    for k in range(kt):
                        kk = min(P, K - k * P)
                        em.dma(dram(w_addr + block_at[(n0, k)] * es, mdt, kk, ncur, [(ncur, 1)]),
                               onchip(sbuf(0, kk, bt + k * nc * es, mdt, [(ncur, 1)])))
                elif res_b is None and bt_buf is None:  # rows of B, N contiguous
                    bsl = b.slice(1, n0, n0 + ncur)
                    for k in range(kt):
                        k0, kk = k * P, min(P, K - k * P)
                        em.dma(bsl.endpoint(k0 * bsl.strides[0], (kk, bsl.strides[0]), [(ncur, bsl.strides[1])]),
                               onchip(sbuf(0, kk, bt + k * nc * es, mdt, [(ncur, 1)])))
                elif res_b is None:  # B^T rows [ncur, K] -> B tiles [K, ncur]
                    _load_transposed(lw, b.slice(1, n0, n0 + ncur).permute((1, 0)), bt, nc, mdt, bt_buf, cols,
                                     ktiles=kt)
                bias_ap = _row_operand(em, bias, bias_buf, n0, ncur, min(P, mb))
                scale_ap = _row_operand(em, rescale, scale_buf, n0, ncur, min(P, mb))
                for ms in range(0, mb, cols):
                    msz = min(cols, mb - ms)
                    ps = em.psum_tile(msz, ncur, dtype="int32" if int8 else "fp32")
                    for k in range(kt):
                        kk = min(P, K - k * P)
                        em.insn("tensor", "load_stationary",
                                src=sbuf(0, kk, at + (k * mblk + ms) * es, mdt, [(msz, 1)]))
                        em.insn("tensor", "multiply_moving", src=sbuf(0, kk, bt + k * bstep * es, mdt, [(ncur, 1)]),
                                dst=ps, accumulate=int(k > 0))
                    o = sbuf(0, msz, out_buf.next(), y.dtype, [(ncur, 1)])
                    _epilogue(em, ps, o, bias_ap, alpha, act, msz, scale_ap)
                    yv = y.slice(0, m0 + ms, m0 + ms + msz).slice(1, n0, n0 + ncur)
                    em.dma(onchip(o), yv.endpoint(0, (msz, yv.strides[0]), [(ncur, yv.strides[1])]))
    for buf in (at_buf, rows_buf, b_buf, bt_buf, out_buf, bias_buf, scale_buf):
        if buf is not None:
            buf.free()


def _plan_tiles(M, K, N, es, cols, budget, const_b, int8, b_tiles=True):
    """(rows of A^T kept in SBUF at once, B columns per tile) that fit `budget`
    bytes per partition: A^T [kt x 128, mblk], B double-buffered [kt x 128, nc]
    (b_tiles: not when B is resident), two staging rows of K, the
    output/bias/rescale tiles. Every A^T block streams all of B again, so with
    constant weights (read from DRAM) the fewest blocks win, then the widest B
    tiles (longer multiplies)."""
    kt = math.ceil(K / P)
    best = None
    for nc in sorted({min(NMAX, N), min(256, N), min(128, N)}, reverse=True):
        fixed = (2 * kt * es * nc if b_tiles else 0) + 4 * nc * 8 + 2 * min(K, KCHUNK) * (es + (4 if int8 else 0))
        mblk = min(_round_up(M, cols), max(0, budget - fixed) // (kt * es) // cols * cols)
        if not const_b:
            mblk = min(mblk, MBLK)
        if mblk < cols:
            continue
        key = (math.ceil(M / mblk), -nc)
        if best is None or key < best[0]:
            best = (key, mblk, nc)
    if best is None:
        return cols, min(128, N)
    return best[1], best[2]


def _resident(node: Node, lw: Lowering, weights, mdt, es, kt):
    """SBUF offset of the product's resident B (k tile k at + k*N*es, its rows
    on partitions), filled by the load program; None where it streams (the
    weights are not constant, or do not fit). The bias and the INT8 rescale
    are rows the emitter keeps resident itself (Emitter.resident_row)."""
    em = lw.em
    if weights is None or not em.weight_budget:
        return None
    K, N = weights.shape
    res_b, new = em.resident_weights((node.name, "B"), kt * N * es)
    if res_b is None:
        return None
    if new:  # row-major [K, N]: k tile k is 128 contiguous rows
        w_addr = em.constant(weights, mdt)
        for k in range(kt):
            kk = min(P, K - k * P)
            em.load_dma(dram(w_addr + k * P * N * es, mdt, kk, N, [(N, 1)]),
                        onchip(sbuf(0, kk, res_b + k * N * es, mdt, [(N, 1)])))
    return res_b


def _round_up(x, a):
    return (x + a - 1) // a * a


def _bias(node: Node, lw: Lowering, M, N):
    """The bias as an [M, N] broadcast view in FP32, or None."""
    if len(node.inputs) < 3 or not node.inputs[2]:
        return None
    name = node.inputs[2]
    beta = float(node.attrs.get("beta", 1.0))
    if lw.is_const(name):
        c = lw.const(name).astype(np.float32) * beta
        key = f"{name}#bias"
        lw.g.constants[key] = np.ascontiguousarray(np.broadcast_to(c, np.broadcast_shapes(c.shape, (1, N))) if
                                                   c.ndim < 2 else c)
        return lw.view(key, dtype="fp32").expand((M, N))
    if beta != 1.0:
        raise ValueError("Gemm with a non-constant C and beta != 1")
    return lw.view(name).expand((M, N))


def _row_operand(em, view, buf, n0, ncur, rows):
    """Columns [n0, n0+ncur) of a per-column operand (bias, INT8 rescale),
    the same in every row: one DMA with partition step 0."""
    if view is None:
        return None
    ap = sbuf(0, rows, buf.next(), "fp32", [(ncur, 1)])
    v = view.slice(1, n0, n0 + ncur)
    em.dma(v.endpoint(0, (rows, v.strides[0]), [(ncur, v.strides[1])]), onchip(ap))
    return ap


def _epilogue(em, ps, o, bias_ap, alpha, act, rows, scale_ap):
    """PSUM -> (alpha or per-column INT8 rescale) * + bias -> activation -> o."""
    def part(ap):
        return sbuf(0, rows, ap.offset, "fp32", ap.dims)

    src = ps
    if scale_ap is not None:  # INT32 sums -> FP32 values, in place in PSUM
        src = replace(ps, dtype="fp32")
        em.insn("vector", "tensor_tensor", op="mul", in0=ps, in1=part(scale_ap), dst=src)
    if bias_ap is None:
        em.insn("scalar", "activation", func=act, src=src, dst=o, bias=None, scale=alpha, accum=None)
        return
    if alpha != 1.0:
        em.insn("vector", "tensor_scalar", op0="mul", op1="bypass", src=src, dst=src, imm0=alpha, imm1=0.0)
    dst = o if act == "identity" else src
    em.insn("vector", "tensor_tensor", op="add", in0=src, in1=part(bias_ap), dst=dst)
    if act != "identity":
        em.insn("scalar", "activation", func=act, src=src, dst=o, bias=None, scale=1.0, accum=None)


def _load_transposed(lw: Lowering, rows: DView, dst: int, width: int, dtype: str, stage: Buffers, cols: int,
                     ktiles: int, prescale=None):
    """rows: a [R, K] view (R <= width). Fills dst with its transpose as K
    tiles [128 partitions, width] (tile k at dst + k*width*es).

    A view whose R axis is contiguous is loaded directly (the DMA reads
    runs along R); otherwise rows of 128 are loaded and transposed through
    the array, `cols` K-columns at a time. prescale (INT8): rows are loaded
    in FP32 and multiplied by it into `dtype` (rounded, saturating) first."""
    em = lw.em
    R, K = rows.shape
    es = {"bf16": 2, "fp16": 2, "int8": 1}.get(dtype, 4)
    if rows.strides[0] == 1 and R > 1 and prescale is None:
        for k in range(ktiles):
            k0, kk = k * P, min(P, K - k * P)
            em.dma(rows.endpoint(k0 * rows.strides[1], (kk, rows.strides[1]), [(R, 1)]),
                   onchip(sbuf(0, kk, dst + k * width * es, dtype, [(R, 1)])))
        return
    for r0 in range(0, R, P):
        rr = min(P, R - r0)
        for q0 in range(0, K, KCHUNK):  # staged KCHUNK columns at a time: a small staging buffer
            kc = min(KCHUNK, K - q0)
            st = stage.next()
            src = rows.endpoint(r0 * rows.strides[0] + q0 * rows.strides[1], (rr, rows.strides[0]),
                                [(kc, rows.strides[1])])
            if prescale is None:
                em.dma(src, onchip(sbuf(0, rr, st, dtype, [(kc, 1)])))
            else:  # the staging slot holds FP32 rows first, then their quantised copy
                raw = sbuf(0, rr, st + kc * es, "fp32", [(kc, 1)])
                em.dma(src, onchip(raw))
                em.insn("vector", "tensor_scalar", op0="mul", op1="bypass", src=raw,
                        dst=sbuf(0, rr, st, dtype, [(kc, 1)]), imm0=prescale, imm1=0.0)
            for c0 in range(0, kc, cols):
                cc = min(cols, kc - c0)
                ps = em.psum_tile(cc, rr)
                em.insn("tensor", "pe_transpose", src=sbuf(0, rr, st + c0 * es, dtype, [(cc, 1)]), dst=ps)
                k, p0 = divmod(q0 + c0, P)
                em.insn("vector", "tensor_copy", src=ps,
                        dst=sbuf(p0, cc, dst + (k * width + r0) * es, dtype, [(rr, 1)]))
