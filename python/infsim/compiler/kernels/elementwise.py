"""Elementwise ops: unary functions (scalar engine tables or vector ALU
sequences), binary ops with numpy broadcasting, Where, Cast.

Each tile of the output is loaded operand by operand (broadcast axes cost no
traffic: a partition stride of 0 in DRAM, a free stride of 0 on chip),
computed, and stored. A constant operand holding a single value becomes an
immediate of tensor_scalar instead of a tensor.
"""
import math
from typing import List, Optional

import numpy as np

from ...isa import AP, sbuf
from ..ir import Node
from ..lower import Lowering, is_float, kernel
from .common import FMAX, Buffers, load, resident_row, store, tiles

# ONNX op -> scalar engine function
ACT = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Log": "log", "Sqrt": "sqrt",
       "Softplus": "softplus", "Gelu": "gelu", "GeluTanh": "gelu_tanh", "Silu": "silu", "Erf": "erf"}
# ONNX op -> vector ALU op for two tensors
ALU = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Max": "max", "Min": "min", "Equal": "eq",
       "Less": "lt", "Greater": "gt", "LessOrEqual": "le", "GreaterOrEqual": "ge", "And": "mul", "Or": "max"}
POW_EXPONENTS = {2.0, 0.5, 1.0, -1.0, 3.0, -0.5}


def scalar_of(lw: Lowering, name: str) -> Optional[float]:
    """The single value of a constant operand, or None."""
    if not name or not lw.is_const(name):
        return None
    a = lw.const(name)
    if a.size == 0:
        return None
    flat = a.reshape(-1)
    return float(flat[0]) if np.all(flat == flat[0]) else None


# ------------------------------------------------------------------------ unary

def _clip_bounds(node, lw):
    lo = node.attrs.get("min", -math.inf)
    hi = node.attrs.get("max", math.inf)
    if len(node.inputs) > 1 and node.inputs[1]:
        lo = scalar_of(lw, node.inputs[1])
    if len(node.inputs) > 2 and node.inputs[2]:
        hi = scalar_of(lw, node.inputs[2])
    return lo, hi


def check_unary(node: Node, lw: Lowering):
    if node.op == "Clip":
        lo, hi = _clip_bounds(node, lw)
        if lo is None or hi is None:
            return "Clip bounds must be constants"
    if node.op == "Pow":
        e = scalar_of(lw, node.inputs[1])
        if e not in POW_EXPONENTS:
            return f"Pow exponent must be a constant in {sorted(POW_EXPONENTS)}"
    if node.op == "QuantizeLinear":
        zp = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
        if scalar_of(lw, node.inputs[1]) is None or zp is None or lw.const(zp).dtype != np.int8 or \
                scalar_of(lw, zp) != 0:
            return "QuantizeLinear other than per-tensor INT8 with zero point 0"
    if node.op == "Cast":
        src, dst = lw.value_dtype(node.inputs[0]), node.attrs.get("to")
        if is_float(src) and dst in (6, 7, 9, 3, 2, 5, 12, 13):  # to int/bool: ONNX truncates, the DMA rounds
            return "Cast from float to an integer type"
    return None


def unary_compute(em, node: Node, lw: Lowering, x: AP, y: AP, tmp: AP):
    """y = op(x) on one tile; tmp is FP32 scratch of the same shape."""
    op = node.op
    if op in ACT or op == "Gelu":
        func = ACT[op]
        if op == "Gelu" and node.attrs.get("approximate", b"none") in (b"tanh", "tanh"):
            func = "gelu_tanh"
        em.insn("scalar", "activation", func=func, src=x, dst=y, bias=None, scale=1.0, accum=None)
    elif op == "Pow":
        e = scalar_of(lw, node.inputs[1])
        if e == 2.0:
            em.insn("scalar", "activation", func="square", src=x, dst=y, bias=None, scale=1.0, accum=None)
        elif e == 0.5:
            em.insn("scalar", "activation", func="sqrt", src=x, dst=y, bias=None, scale=1.0, accum=None)
        elif e == -0.5:
            em.insn("scalar", "activation", func="rsqrt", src=x, dst=y, bias=None, scale=1.0, accum=None)
        elif e == 1.0:
            em.insn("vector", "tensor_copy", src=x, dst=y)
        elif e == -1.0:
            em.insn("vector", "reciprocal", src=x, dst=y)
        else:  # 3
            em.insn("scalar", "activation", func="square", src=x, dst=tmp, bias=None, scale=1.0, accum=None)
            em.insn("vector", "tensor_tensor", op="mul", in0=tmp, in1=x, dst=y)
    elif op == "QuantizeLinear":  # round(x / scale), saturating to INT8 by the conversion
        em.insn("vector", "tensor_scalar", op0="div", op1="bypass", src=x, dst=y,
                imm0=scalar_of(lw, node.inputs[1]), imm1=0.0)
    elif op in ("Floor", "Ceil"):  # r = round(x) via INT32 (|x| < 2^31); then one step down (up) where r > x (< x)
        r_int = AP(tmp.space, tmp.part_start, tmp.part_count, tmp.offset, "int32", tmp.dims)
        em.insn("vector", "tensor_copy", src=x, dst=r_int)
        em.insn("vector", "tensor_copy", src=r_int, dst=tmp)
        em.insn("vector", "tensor_tensor", op="gt" if op == "Floor" else "lt", in0=tmp, in1=x, dst=y)
        em.insn("vector", "tensor_tensor", op="sub" if op == "Floor" else "add", in0=tmp, in1=y, dst=y)
    elif op == "Sign":  # (x > 0) - (x < 0)
        em.insn("vector", "tensor_scalar", op0="lt", op1="bypass", src=x, dst=tmp, imm0=0.0, imm1=0.0)
        em.insn("vector", "tensor_scalar", op0="gt", op1="bypass", src=x, dst=y, imm0=0.0, imm1=0.0)
        em.insn("vector", "tensor_tensor", op="sub", in0=y, in1=tmp, dst=y)
    elif op == "Reciprocal":
        em.insn("vector", "reciprocal", src=x, dst=y)
    elif op == "Neg":
        em.insn("vector", "tensor_scalar", op0="mul", op1="bypass", src=x, dst=y, imm0=-1.0, imm1=0.0)
    elif op == "Abs":
        em.insn("vector", "tensor_scalar", op0="mul", op1="bypass", src=x, dst=tmp, imm0=-1.0, imm1=0.0)
        em.insn("vector", "tensor_tensor", op="max", in0=x, in1=tmp, dst=y)
    elif op == "Not":
        em.insn("vector", "tensor_scalar", op0="eq", op1="bypass", src=x, dst=y, imm0=0.0, imm1=0.0)
    elif op == "Clip":
        lo, hi = _clip_bounds(node, lw)
        em.insn("vector", "tensor_scalar", op0="max", op1="min", src=x, dst=y, imm0=max(lo, -3.4e38),
                imm1=min(hi, 3.4e38))
    elif op == "LeakyRelu":
        alpha = float(node.attrs.get("alpha", 0.01))
        em.insn("vector", "tensor_scalar", op0="mul", op1="bypass", src=x, dst=tmp, imm0=alpha, imm1=0.0)
        em.insn("vector", "tensor_tensor", op="max" if alpha <= 1 else "min", in0=x, in1=tmp, dst=y)
    elif op in ("HardSigmoid", "HardSwish"):
        alpha = float(node.attrs.get("alpha", 0.2 if op == "HardSigmoid" else 1 / 6))
        beta = float(node.attrs.get("beta", 0.5))
        hs = y if op == "HardSigmoid" else tmp
        em.insn("vector", "tensor_scalar", op0="mul", op1="add", src=x, dst=hs, imm0=alpha, imm1=beta)
        em.insn("vector", "tensor_scalar", op0="max", op1="min", src=hs, dst=hs, imm0=0.0, imm1=1.0)
        if op == "HardSwish":
            em.insn("vector", "tensor_tensor", op="mul", in0=x, in1=hs, dst=y)
    else:  # Identity-like copies: Identity, Cast
        em.insn("vector", "tensor_copy", src=x, dst=y)


# ----------------------------------------------------------------------- binary

def binary_compute(em, node: Node, xs: List[Optional[AP]], imms: List[Optional[float]], y: AP, tmp: AP):
    op = node.op
    if op == "Where":
        em.insn("vector", "select", pred=xs[0], in0=xs[1], in1=xs[2], dst=y)
        return
    alu = ALU[op]
    a, b = xs
    if imms[1] is not None:  # tensor op scalar
        em.insn("vector", "tensor_scalar", op0=alu, op1="bypass", src=a, dst=y, imm0=imms[1], imm1=0.0)
    elif imms[0] is not None:  # scalar op tensor
        c = imms[0]
        if op in ("Add", "Mul", "Max", "Min", "Equal", "And", "Or"):
            em.insn("vector", "tensor_scalar", op0=alu, op1="bypass", src=b, dst=y, imm0=c, imm1=0.0)
        elif op == "Sub":
            em.insn("vector", "tensor_scalar", op0="mul", op1="add", src=b, dst=y, imm0=-1.0, imm1=c)
        elif op == "Div":
            em.insn("vector", "reciprocal", src=b, dst=tmp)
            em.insn("vector", "tensor_scalar", op0="mul", op1="bypass", src=tmp, dst=y, imm0=c, imm1=0.0)
        else:  # comparisons with the scalar first: swap the comparison
            swapped = {"Less": "gt", "Greater": "lt", "LessOrEqual": "ge", "GreaterOrEqual": "le"}[op]
            em.insn("vector", "tensor_scalar", op0=swapped, op1="bypass", src=b, dst=y, imm0=c, imm1=0.0)
    else:
        em.insn("vector", "tensor_tensor", op=alu, in0=a, in1=b, dst=y)


def emit_elementwise(node: Node, lw: Lowering):
    """Tiles the output; loads every non-immediate operand per tile; computes; stores."""
    em = lw.em
    out_name = node.outputs[0]
    out_shape = lw.shape(out_name)
    if node.op == "Where":
        names, imms = node.inputs[:3], [None] * 3
    elif node.op in ALU:
        names = node.inputs[:2]
        imms = [scalar_of(lw, n) for n in names]
        if imms[0] is not None and imms[1] is not None:
            imms[0] = None  # both constant (folding normally removes this): keep one tensor
    else:
        names, imms = node.inputs[:1], [None]
    y = lw.new_output(out_name)
    ins = [None if imm is not None else lw.view(n).expand(out_shape) for n, imm in zip(names, imms)]
    views = [y] + [v for v in ins if v is not None]
    slots = 2
    # Tile width: FMAX, or what fits in the free SBUF (beside resident values), at most 80% of it.
    per_elem = slots * (sum(max(v.es, 4) for v in views) + 4 * (2 if node.attrs.get("act") else 1))
    fmax = max(64, min(FMAX, int(em.sbuf.available() * 0.8) // per_elem // 64 * 64))
    bufs = [Buffers(em, fmax * max(v.es, 4), slots, f"{node.name} operand") for v in views]
    tmp_buf = Buffers(em, fmax * 4, slots, f"{node.name} scratch")
    act_buf = Buffers(em, fmax * 4, slots, f"{node.name} result") if node.attrs.get("act") else None
    for t in tiles(out_shape, views, fmax, row=resident_row(em, views)):
        aps, k = [], 1
        for v in ins:
            if v is None:
                aps.append(None)
            else:
                aps.append(load(em, v, t, k, bufs[k].next()))
                k += 1
        y_ap = sbuf(0, t.rows, bufs[0].next(), y.dtype, [(t.cols, 1)])
        tmp = sbuf(0, t.rows, tmp_buf.next(), "fp32", [(t.cols, 1)])
        if node.op not in ALU and node.op != "Where":
            unary_compute(em, node, lw, aps[0], y_ap, tmp)
        else:
            act = node.attrs.get("act")
            if act is None:
                binary_compute(em, node, aps, imms, y_ap, tmp)
            else:  # fused activation (passes.fuse_elementwise_activation) on the FP32 result
                res = sbuf(0, t.rows, act_buf.next(), "fp32", [(t.cols, 1)])
                binary_compute(em, node, aps, imms, res, tmp)
                em.insn("scalar", "activation", func=act, src=res, dst=y_ap, bias=None, scale=1.0, accum=None)
        store(em, y_ap, y, t, 0)
    for b in bufs + [tmp_buf, act_buf]:
        if b is not None:
            b.free()


UNARY_OPS = list(ACT) + ["Neg", "Abs", "Clip", "HardSigmoid", "HardSwish", "LeakyRelu", "Reciprocal", "Not", "Cast",
                         "Gelu", "QuantizeLinear", "Floor", "Ceil", "Sign"]
kernel(*UNARY_OPS, check=check_unary)(emit_elementwise)
kernel(*ALU, "Where")(emit_elementwise)
kernel("Pow", check=check_unary)(emit_elementwise)
