"""Host (numpy) reference semantics of ONNX operators, a graph interpreter on top
of them, and constant folding.

Why: the compiler needs (a) golden outputs for any Graph it lowers, computed
from the same IR it compiles rather than from the framework the model came
from, so a wrong import or rewrite shows up as a mismatch; and (b) the shape
arithmetic and weight preprocessing that exporters leave in graphs
(Shape -> Gather -> Concat -> Reshape chains, transposed weights, sliced mask
buffers) evaluated before lowering, so the device only sees real computation.

Semantics follow the ONNX operator specs for opsets 11-17 (and the attribute
forms of older opsets where an argument later became an input: Split, Squeeze,
Unsqueeze, Reduce* axes; Clip min/max; Pad pads/value; Slice starts/ends).
Those pairs are told apart by what the node carries, so they need no opset.
Only Softmax/LogSoftmax depend on the opset itself (before 13 they flatten the
input to 2-D around `axis`): run_graph and fold_constants take Graph.opset
(which load_onnx records) unless given `opset=`.

Dtypes: outputs keep ONNX's output types (float ops on float32 give float32,
integer ops stay in their integer type, comparisons give bool, Shape int64).
Elementwise float ops run in the input's precision; Conv, ConvTranspose,
MatMul and Gemm accumulate in float64 and round once to the input's type (in
float32, convolutions through PyTorch, inside `statistics_precision`: for
calibration).
"""
import contextlib
import dataclasses
import math
import os
from functools import reduce
from typing import Callable, Dict, List, Optional

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
import onnx
from onnx import numpy_helper

from .ir import CompileError, Graph, Node

LATEST_OPSET = 17

OpFn = Callable[..., List[np.ndarray]]
HOST_OPS: Dict[str, OpFn] = {}
_OPSET_DEPENDENT = set()  # ops whose function takes an `opset` keyword


def _op(*names, opset_dependent=False):
    """Registers the decorated function as the implementation of ONNX ops `names`."""
    def register(fn):
        for name in names:
            HOST_OPS[name] = fn
            if opset_dependent:
                _OPSET_DEPENDENT.add(name)
        return fn
    return register


# ---------------------------------------------------------------- helpers

def _attr(node, name, default=None):
    """An attribute, with ONNX string attributes (bytes) decoded to str."""
    v = node.attrs.get(name, default)
    return v.decode() if isinstance(v, bytes) else v


def _arg(inputs, i):
    """Optional input i: None when absent (beyond the list or given as '')."""
    return inputs[i] if i < len(inputs) else None


def _ints(a):
    return None if a is None else [int(v) for v in np.ravel(a)]


def _arg_or_attr(node, inputs, i, name):
    """An argument that was an attribute in older opsets and an input in newer ones."""
    v = _arg(inputs, i)
    return _ints(v) if v is not None else _attr(node, name)


def _tensor(t):
    """A tensor attribute (TensorProto from load_onnx, or an array) as an array."""
    return t if isinstance(t, np.ndarray) else numpy_helper.to_array(t)


def _np_dtype(elem_type):
    return np.dtype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[elem_type])


def _prod(xs):
    return int(np.prod(xs, dtype=np.int64))


def _is_float(x):
    return np.issubdtype(x.dtype, np.floating)


# The products' accumulation type: float64 (reference semantics) unless a caller that
# only needs statistics (INT8 calibration) asks for speed (`statistics_precision`).
_ACCUMULATE = np.float64


@contextlib.contextmanager
def statistics_precision():
    """Inside this block products accumulate in float32, and 2-D convolutions,
    products with a 2-D right operand and erf run through PyTorch on every CPU:
    about as exact as the float32 values themselves, many times faster than the
    float64 reference path (calibrating BERT-base on two sequences: 4.3 s
    instead of 17.5). For calibration."""
    import torch
    global _ACCUMULATE
    saved, _ACCUMULATE = _ACCUMULATE, np.float32
    threads = torch.get_num_threads()
    torch.set_num_threads(max(threads, os.cpu_count() or 1))
    try:
        yield
    finally:
        _ACCUMULATE = saved
        torch.set_num_threads(threads)


def _f64(x):
    """A C-contiguous copy in the accumulation type (float64 but in
    statistics_precision): the layout BLAS products run fastest on (astype would
    keep a transposed view's layout)."""
    return np.ascontiguousarray(x, dtype=_ACCUMULATE)


def _product(a, b):
    """np.matmul in the accumulation type. Inside statistics_precision, a product
    with a 2-D right operand runs as a 1x1 convolution through PyTorch: numpy and
    PyTorch's own matrix products both sit on Debian's reference BLAS here
    (about 3 GFLOP/s), its convolutions on oneDNN (35 or more)."""
    if _ACCUMULATE is np.float32 and b.ndim == 2 and a.ndim >= 2:
        import torch
        K, N = b.shape
        rows = np.array(a, np.float32).reshape(-1, K)
        x = torch.from_numpy(np.ascontiguousarray(rows.T)).reshape(1, K, -1, 1)
        w = torch.from_numpy(np.ascontiguousarray(np.array(b, np.float32).T)).reshape(N, K, 1, 1)
        with torch.no_grad():
            y = torch.nn.functional.conv2d(x, w).reshape(N, -1).numpy().T
        return y.reshape(a.shape[:-1] + (N,))
    return np.matmul(_f64(a), _f64(b))


def _pad_or_crop(x, begin, end, mode="constant", value=0):
    """np.pad that also accepts negative amounts (ONNX Pad crops there)."""
    crop = tuple(slice(max(0, -b), x.shape[i] - max(0, -e)) for i, (b, e) in enumerate(zip(begin, end)))
    x = x[crop]
    widths = [(max(0, b), max(0, e)) for b, e in zip(begin, end)]
    if not any(b or e for b, e in widths):
        return x
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=value)
    return np.pad(x, widths, mode=mode)


# ---------------------------------------------------------------- elementwise

def _erf(x):
    """numpy has no erf: math.erf per element, in float64 (exact to rounding, ~0.15 us each);
    PyTorch's float32 erf inside statistics_precision."""
    if _ACCUMULATE is np.float32 and x.dtype == np.float32:
        import torch
        return torch.erf(torch.from_numpy(np.array(x))).numpy()
    return np.frompyfunc(math.erf, 1, 1)(x.astype(np.float64)).astype(x.dtype)


def _sigmoid(x):
    """1 / (1 + e^-x) without overflow: e^-|x| is at most 1."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _fused_gelu(x, approximate):
    if approximate:
        return (0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))).astype(x.dtype)
    return (0.5 * x * (1 + _erf(x / np.sqrt(2)))).astype(x.dtype)


# attrs["act"] of nodes the compiler's passes fused an activation into (scalar engine names)
_FUSED_ACT = {
    "relu": lambda x: np.maximum(x, 0).astype(x.dtype),
    "relu6": lambda x: np.clip(x, 0, 6).astype(x.dtype),
    "sigmoid": lambda x: _sigmoid(x).astype(x.dtype),
    "tanh": np.tanh,
    "silu": lambda x: (x * _sigmoid(x)).astype(x.dtype),
    "gelu": lambda x: _fused_gelu(x, False),
    "gelu_tanh": lambda x: _fused_gelu(x, True),
}


_UNARY = {
    "Neg": np.negative, "Abs": np.abs, "Sqrt": np.sqrt, "Reciprocal": np.reciprocal,
    "Exp": np.exp, "Log": np.log, "Tanh": np.tanh, "Erf": _erf, "Sigmoid": _sigmoid,
    "Floor": np.floor, "Ceil": np.ceil, "Sign": np.sign,
    "Relu": lambda x: np.maximum(x, 0),
    "Not": np.logical_not,
}


def _unary(fn):
    return lambda node, inputs: [fn(inputs[0]).astype(inputs[0].dtype, copy=False)]


for _name, _fn in _UNARY.items():
    HOST_OPS[_name] = _unary(_fn)


@_op("LeakyRelu")
def _leaky_relu(node, inputs):
    x = inputs[0]
    return [np.where(x >= 0, x, x * _attr(node, "alpha", 0.01)).astype(x.dtype)]


@_op("HardSigmoid")
def _hard_sigmoid(node, inputs):
    x = inputs[0]
    return [np.clip(x * _attr(node, "alpha", 0.2) + _attr(node, "beta", 0.5), 0, 1).astype(x.dtype)]


@_op("HardSwish")
def _hard_swish(node, inputs):
    x = inputs[0]
    return [(x * np.clip(x / 6 + 0.5, 0, 1)).astype(x.dtype)]


@_op("Gelu")
def _gelu(node, inputs):
    """ONNX opset 20 (the compiler's fuse_gelu creates it earlier): exact, or with
    approximate="tanh" GPT-2's 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."""
    x = inputs[0]
    if _attr(node, "approximate", "none") == "tanh":
        y = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    else:
        y = 0.5 * x * (1 + _erf(x / np.sqrt(2)))
    return [y.astype(x.dtype)]


@_op("Clip")
def _clip(node, inputs):
    """min/max: optional inputs from opset 11, attributes before."""
    x = inputs[0]
    lo, hi = (_arg(inputs, 1), _arg(inputs, 2)) if len(inputs) > 1 else (_attr(node, "min"), _attr(node, "max"))
    if lo is not None:
        x = np.maximum(x, np.asarray(lo, x.dtype))
    if hi is not None:
        x = np.minimum(x, np.asarray(hi, x.dtype))
    return [x]


def _int_div(a, b):
    """Integer division truncating toward zero, as C (and ONNX runtimes) do."""
    q = a // b
    return q + ((q < 0) & (q * b != a))


def _divide(a, b):
    return a / b if _is_float(a) else _int_div(a, b)


def _power(a, b):
    """The result has the base's type (the exponent may be of another type)."""
    return np.power(a, b.astype(a.dtype)) if _is_float(a) else np.power(a.astype(np.float64), b)


_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": _divide, "Pow": _power}
_COMPARE = {"Equal": np.equal, "Less": np.less, "Greater": np.greater, "LessOrEqual": np.less_equal,
            "GreaterOrEqual": np.greater_equal, "And": np.logical_and, "Or": np.logical_or,
            "Xor": np.logical_xor}


def _binary(fn):
    return lambda node, inputs: [fn(inputs[0], inputs[1]).astype(inputs[0].dtype, copy=False)]


def _compare(fn):
    return lambda node, inputs: [fn(inputs[0], inputs[1])]


def _variadic(fn, mean=False):
    def variadic(node, inputs):
        y = reduce(fn, inputs)
        return [(y / len(inputs) if mean else y).astype(inputs[0].dtype, copy=False)]
    return variadic


for _name, _fn in _BINARY.items():
    HOST_OPS[_name] = _binary(_fn)
for _name, _fn in _COMPARE.items():
    HOST_OPS[_name] = _compare(_fn)
HOST_OPS.update(Min=_variadic(np.minimum), Max=_variadic(np.maximum), Sum=_variadic(np.add),
                Mean=_variadic(np.add, mean=True))


@_op("Where")
def _where(node, inputs):
    return [np.where(*inputs)]


@_op("Cast")
def _cast(node, inputs):
    return [inputs[0].astype(_np_dtype(_attr(node, "to")))]


@_op("CastLike")
def _cast_like(node, inputs):
    return [inputs[0].astype(inputs[1].dtype)]


@_op("Identity")
def _identity(node, inputs):
    return [inputs[0]]


@_op("Dropout")
def _dropout(node, inputs):
    """Inference: the identity, and an all-true mask if asked for."""
    return [inputs[0], np.ones(inputs[0].shape, bool)]


# ---------------------------------------------------------------- normalisation, softmax

def _softmax_axis(node, x, opset):
    """(x viewed so that the softmax runs over one axis, that axis). Before opset 13 the
    input is flattened to 2-D [prod(shape[:axis]), prod(shape[axis:])]."""
    if opset >= 13:
        return x, _attr(node, "axis", -1)
    axis = _attr(node, "axis", 1) % max(x.ndim, 1)
    return x.reshape(_prod(x.shape[:axis]), _prod(x.shape[axis:])), 1


@_op("Softmax", opset_dependent=True)
def _softmax(node, inputs, opset=LATEST_OPSET):
    x, axis = _softmax_axis(node, inputs[0], opset)
    e = np.exp(x - x.max(axis, keepdims=True))
    return [(e / e.sum(axis, keepdims=True)).reshape(inputs[0].shape)]


@_op("LogSoftmax", opset_dependent=True)
def _log_softmax(node, inputs, opset=LATEST_OPSET):
    x, axis = _softmax_axis(node, inputs[0], opset)
    d = x - x.max(axis, keepdims=True)
    return [(d - np.log(np.exp(d).sum(axis, keepdims=True))).reshape(inputs[0].shape)]


@_op("BatchNormalization")
def _batch_norm(node, inputs):
    x, scale, bias, mean, var = inputs[:5]
    if _attr(node, "training_mode", 0):
        raise CompileError(f"node '{node.name}' (BatchNormalization): training mode is not supported")
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = (scale / np.sqrt(var + np.asarray(_attr(node, "epsilon", 1e-5), var.dtype))).reshape(shape)
    return [((x - mean.reshape(shape)) * inv + bias.reshape(shape)).astype(x.dtype)]


@_op("LayerNormalization")
def _layer_norm(node, inputs):
    """Outputs Y, Mean, InvStdDev (the last two with the normalised axes kept as 1)."""
    x, scale, bias = inputs[0], inputs[1], _arg(inputs, 2)
    axes = tuple(range(_attr(node, "axis", -1) % x.ndim, x.ndim))
    mean = x.mean(axes, keepdims=True)
    d = x - mean
    inv = 1 / np.sqrt((d * d).mean(axes, keepdims=True) + np.asarray(_attr(node, "epsilon", 1e-5), x.dtype))
    y = d * inv * scale
    if bias is not None:
        y = y + bias
    return [y.astype(x.dtype), mean, inv]


# ---------------------------------------------------------------- convolution, pooling

def _spatial_attrs(node, nsp):
    return (_attr(node, "strides") or [1] * nsp, _attr(node, "dilations") or [1] * nsp)


def _span(kernel, dilations):
    return [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]


def _auto_pads(node, in_sp, kernel, strides, dilations):
    """(begin, end) padding per spatial axis from auto_pad / pads, for Conv and pooling."""
    nsp = len(in_sp)
    auto = _attr(node, "auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        total = [max(0, (-(-i // s) - 1) * s + sp - i)
                 for i, s, sp in zip(in_sp, strides, _span(kernel, dilations))]
        small = [t // 2 for t in total]
        big = [t - t // 2 for t in total]
        return (small, big) if auto == "SAME_UPPER" else (big, small)
    if auto == "VALID":
        return [0] * nsp, [0] * nsp
    pads = _attr(node, "pads") or [0] * (2 * nsp)
    return list(pads[:nsp]), list(pads[nsp:])


def _windows(x, kernel, strides, dilations):
    """A view [N, C, *out, *kernel] of every (strided, dilated) window of x [N, C, *spatial]."""
    nsp = len(kernel)
    w = sliding_window_view(x, _span(kernel, dilations), axis=tuple(range(2, 2 + nsp)))
    return w[(slice(None),) * 2 + tuple(slice(None, None, s) for s in strides)
             + tuple(slice(None, None, d) for d in dilations)]


def _correlate(x, w, strides, dilations, group):
    """Grouped N-d cross-correlation of padded x [N, C, *S] with w [M, C/group, *K], as one
    batched float64 matrix product per group (im2col). Returns float64 [N, M, *out]."""
    n, c = x.shape[:2]
    m, kernel = w.shape[0], w.shape[2:]
    nsp = len(kernel)
    win = _windows(x, kernel, strides, dilations)
    out_sp = win.shape[2:2 + nsp]
    cg, mg = c // group, m // group
    win = win.reshape((n, group, cg) + win.shape[2:])
    # [N, G, Cg, *O, *K] -> [G, N, *O, Cg, *K]: rows are output positions, columns the window.
    perm = (1, 0) + tuple(range(3, 3 + nsp)) + (2,) + tuple(range(3 + nsp, 3 + 2 * nsp))
    cols = _f64(win.transpose(perm)).reshape(group, n * _prod(out_sp), cg * _prod(kernel))
    wm = _f64(w.reshape(group, mg, cg * _prod(kernel)).transpose(0, 2, 1))
    y = _product(cols, wm).reshape((group, n) + out_sp + (mg,))
    y = y.transpose((1, 0, nsp + 2) + tuple(range(2, nsp + 2)))  # [N, G, Mg, *O]
    return y.reshape((n, m) + out_sp)


def _add_bias(y, b):
    return y if b is None else y + b.reshape((-1,) + (1,) * (y.ndim - 2))


@_op("Conv")
def _conv(node, inputs):
    x, w, b = inputs[0], inputs[1], _arg(inputs, 2)
    nsp = x.ndim - 2
    strides, dilations = _spatial_attrs(node, nsp)
    begin, end = _auto_pads(node, x.shape[2:], w.shape[2:], strides, dilations)
    xp = _pad_or_crop(x, [0, 0] + begin, [0, 0] + end)
    if _ACCUMULATE is np.float32 and nsp == 2 and x.dtype == np.float32:
        import torch
        with torch.no_grad():
            y = torch.nn.functional.conv2d(torch.from_numpy(np.array(xp, np.float32, order="C")),
                                           torch.from_numpy(np.array(w, np.float32, order="C")),
                                           stride=tuple(strides), dilation=tuple(dilations),
                                           groups=_attr(node, "group", 1)).numpy()
    else:
        y = _correlate(xp, w, strides, dilations, _attr(node, "group", 1))
    return [_add_bias(y, b).astype(x.dtype)]


def _conv_transpose_pads(node, in_sp, kernel, strides, dilations, output_padding):
    """(begin, end) padding removed from the full transposed-conv output, per the spec:
    from output_shape or SAME_* auto_pad (output = input * stride), else from pads."""
    nsp = len(in_sp)
    auto = _attr(node, "auto_pad", "NOTSET")
    out_shape = _attr(node, "output_shape")
    if out_shape is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        out_shape = [i * s for i, s in zip(in_sp, strides)]
    if out_shape is None:
        if auto == "VALID":
            return [0] * nsp, [0] * nsp
        pads = _attr(node, "pads") or [0] * (2 * nsp)
        return list(pads[:nsp]), list(pads[nsp:])
    out_shape = list(out_shape)[-nsp:]
    total = [s * (i - 1) + op + sp - o for i, s, op, sp, o
             in zip(in_sp, strides, output_padding, _span(kernel, dilations), out_shape)]
    if auto == "SAME_UPPER":
        return [t // 2 for t in total], [t - t // 2 for t in total]
    return [t - t // 2 for t in total], [t // 2 for t in total]


@_op("ConvTranspose")
def _conv_transpose(node, inputs):
    """By the definition, y[n, m, i * stride + k * dilation] += x[n, c, i] w[c, m, k]: one
    float64 matrix product per group for all kernel offsets, scatter-added offset by offset
    into the full output, which the pads then crop (output_padding extends its end)."""
    x, w, b = inputs[0], inputs[1], _arg(inputs, 2)
    n, c = x.shape[:2]
    in_sp, kernel = x.shape[2:], w.shape[2:]
    nsp = len(kernel)
    group = _attr(node, "group", 1)
    cg, mg = c // group, w.shape[1]
    strides, dilations = _spatial_attrs(node, nsp)
    output_padding = _attr(node, "output_padding") or [0] * nsp
    begin, end = _conv_transpose_pads(node, in_sp, kernel, strides, dilations, output_padding)
    # [N, G, Cg, *S] -> [G, N * prod(S), Cg] times [G, Cg, Mg * prod(K)]
    xm = x.reshape((n, group, cg, -1)).transpose(1, 0, 3, 2).reshape(group, -1, cg)
    prod = _product(xm, _f64(w).reshape(group, cg, -1))
    prod = prod.reshape((group, n) + in_sp + (mg,) + kernel)
    prod = prod.transpose((1, 0, nsp + 2) + tuple(range(2, nsp + 2)) + tuple(range(nsp + 3, 2 * nsp + 3)))
    full = [s * (i - 1) + sp + op for i, s, sp, op in zip(in_sp, strides, _span(kernel, dilations), output_padding)]
    y = np.zeros((n, group, mg) + tuple(full))
    for k in np.ndindex(*kernel):  # prod: [N, G, Mg, *S, *K]
        y[(slice(None),) * 3 + tuple(slice(kk * d, kk * d + s * (i - 1) + 1, s) for kk, d, s, i
                                     in zip(k, dilations, strides, in_sp))] += prod[(Ellipsis,) + k]
    y = _pad_or_crop(y.reshape((n, group * mg) + tuple(full)), [0, 0] + [-p for p in begin],
                     [0, 0] + [-p for p in end])
    return [_add_bias(y, b).astype(x.dtype)]


def _pool(node, x, pad_value):
    """Windows [N, C, *out, *kernel] of x padded with pad_value (explicit or auto pads, plus
    the end padding ceil_mode needs), and the padding as (begin, end, extra end)."""
    kernel = _attr(node, "kernel_shape")
    nsp = len(kernel)
    strides, dilations = _spatial_attrs(node, nsp)
    in_sp = x.shape[2:]
    begin, end = _auto_pads(node, in_sp, kernel, strides, dilations)
    span = _span(kernel, dilations)
    extra = [0] * nsp
    if _attr(node, "ceil_mode", 0):
        for i in range(nsp):
            padded = in_sp[i] + begin[i] + end[i]
            out = -(-(padded - span[i]) // strides[i]) + 1
            if (out - 1) * strides[i] >= in_sp[i] + begin[i]:  # last window would start in the end padding
                out -= 1
            extra[i] = max(0, (out - 1) * strides[i] + span[i] - padded)
    xp = _pad_or_crop(x, [0, 0] + begin, [0, 0] + [e + ex for e, ex in zip(end, extra)], value=pad_value)
    return _windows(xp, kernel, strides, dilations), (begin, end, extra)


@_op("MaxPool")
def _max_pool(node, inputs):
    if len(node.outputs) > 1 and node.outputs[1]:
        raise CompileError(f"node '{node.name}' (MaxPool): the Indices output is not supported")
    x = inputs[0]
    win, _ = _pool(node, x, -np.inf if _is_float(x) else np.iinfo(x.dtype).min)
    nsp = x.ndim - 2
    return [win.max(tuple(range(-nsp, 0)))]


@_op("AveragePool")
def _average_pool(node, inputs):
    """Divides by the window's elements inside the input, or inside input and explicit
    pads with count_include_pad; never counting the padding ceil_mode adds."""
    x = inputs[0]
    nsp = x.ndim - 2
    win, (begin, end, extra) = _pool(node, x, 0)
    axes = tuple(range(-nsp, 0))
    ones = np.ones((1, 1) + x.shape[2:], x.dtype)
    include = _attr(node, "count_include_pad", 0)
    counts = _pad_or_crop(ones, [0, 0] + begin, [0, 0] + end, value=1 if include else 0)
    counts = _pad_or_crop(counts, [0] * (nsp + 2), [0, 0] + extra)
    counts = _windows(counts, _attr(node, "kernel_shape"), *_spatial_attrs(node, nsp)).sum(axes)
    return [(win.sum(axes) / counts).astype(x.dtype)]


@_op("GlobalAveragePool")
def _global_average_pool(node, inputs):
    x = inputs[0]
    return [x.mean(tuple(range(2, x.ndim)), keepdims=True)]


@_op("GlobalMaxPool")
def _global_max_pool(node, inputs):
    x = inputs[0]
    return [x.max(tuple(range(2, x.ndim)), keepdims=True)]


# ---------------------------------------------------------------- matrix products

@_op("MatMul")
def _matmul(node, inputs):
    """numpy's matmul is ONNX's (batched, broadcasting, 1-D operands). float64 accumulation
    for floats, rounded once to a's type; integers stay integers."""
    a, b = inputs
    if _is_float(a):
        return [_product(a, b).astype(a.dtype)]
    return [np.matmul(a, b).astype(a.dtype)]


@_op("Attention")
def _attention(node, inputs):
    """The compiler's fused attention (passes.fuse_attention): softmax(Q K^T * scale + mask) V."""
    q, kt, v, mask = inputs[0], inputs[1], inputs[2], _arg(inputs, 3)
    s = _product(q, kt) * _attr(node, "scale", 1.0)
    if mask is not None:
        s = s + mask.astype(np.float64)
    e = np.exp(s - s.max(-1, keepdims=True))
    return [_product(e / e.sum(-1, keepdims=True), v).astype(q.dtype)]


@_op("Gemm", "FusedMatMul")
def _gemm(node, inputs):
    """Gemm, and the compiler's FusedMatMul (MatMul/Gemm with a fused bias along the last
    axis and an activation, attrs["act"], that eval_node applies): batched operands allowed."""
    a, b, c = inputs[0], inputs[1], _arg(inputs, 2)
    a = np.swapaxes(a, -1, -2) if _attr(node, "transA", 0) else a
    b = np.swapaxes(b, -1, -2) if _attr(node, "transB", 0) else b
    y = _product(a, b) * _attr(node, "alpha", 1.0)
    if c is not None:
        y = y + c.astype(np.float64) * _attr(node, "beta", 1.0)
    return [y.astype(a.dtype)]


@_op("QuantizeLinear")
def _quantize_linear(node, inputs):
    """Per-tensor or per-axis: saturate(round_half_even(x / scale) + zero_point); the
    output type is the zero point's (uint8 when absent)."""
    x, scale, zp = inputs[0], inputs[1], _arg(inputs, 2)
    dtype = np.uint8 if zp is None else zp.dtype
    if scale.ndim == 1 and x.ndim > 1:
        shape = [1] * x.ndim
        shape[_attr(node, "axis", 1)] = -1
        scale = scale.reshape(shape)
        zp = None if zp is None else zp.reshape(shape)
    q = np.rint(x.astype(np.float32) / scale.astype(np.float32)) + (0 if zp is None else zp.astype(np.int32))
    info = np.iinfo(dtype)
    return [np.clip(q, info.min, info.max).astype(dtype)]


# ---------------------------------------------------------------- reductions

def _reduction(fn):
    """axes: attribute, or (ReduceSum from opset 13, all from 18) an optional input; none
    reduces everything unless noop_with_empty_axes."""
    def reduce_op(node, inputs):
        x = inputs[0]
        axes = _arg_or_attr(node, inputs, 1, "axes")
        if not axes:
            if _attr(node, "noop_with_empty_axes", 0):
                return [x]
            axes = range(x.ndim)
        y = fn(x, axis=tuple(axes), keepdims=bool(_attr(node, "keepdims", 1)))
        return [np.asarray(y).astype(x.dtype, copy=False)]
    return reduce_op


HOST_OPS.update(ReduceMean=_reduction(np.mean), ReduceSum=_reduction(np.sum), ReduceMax=_reduction(np.max),
                ReduceMin=_reduction(np.min), ReduceProd=_reduction(np.prod))


# ---------------------------------------------------------------- shapes and data movement

@_op("Reshape")
def _reshape(node, inputs):
    """0 copies the input's dimension unless allowzero (opset 14); -1 is inferred."""
    x, shape = inputs[0], _ints(inputs[1])
    if not _attr(node, "allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [x.reshape(shape)]


@_op("Flatten")
def _flatten(node, inputs):
    x = inputs[0]
    axis = _attr(node, "axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    return [x.reshape(_prod(x.shape[:axis]), _prod(x.shape[axis:]))]


@_op("Transpose")
def _transpose(node, inputs):
    return [np.transpose(inputs[0], _attr(node, "perm"))]


@_op("Concat")
def _concat(node, inputs):
    return [np.concatenate(inputs, axis=_attr(node, "axis"))]


@_op("Split")
def _split(node, inputs):
    """Sizes: input (opset 13), attribute `split` (before), else equal parts: one per output
    or num_outputs (opset 18; the last part may be smaller)."""
    x = inputs[0]
    axis = _attr(node, "axis", 0)
    sizes = _arg_or_attr(node, inputs, 1, "split")
    if sizes is None:
        parts = _attr(node, "num_outputs", len(node.outputs))
        chunk = -(-x.shape[axis] // parts)
        sizes = [chunk] * (parts - 1) + [x.shape[axis] - chunk * (parts - 1)]
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


@_op("Slice")
def _slice(node, inputs):
    """starts/ends/axes/steps: inputs from opset 10 (attributes before). Out-of-range
    starts/ends clamp; with negative steps the end may reach -1 (before index 0)."""
    x = inputs[0]
    starts = _arg_or_attr(node, inputs, 1, "starts")
    ends = _arg_or_attr(node, inputs, 2, "ends")
    axes = _arg_or_attr(node, inputs, 3, "axes") or list(range(len(starts)))
    steps = _ints(_arg(inputs, 4)) or [1] * len(starts)
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        dim = x.shape[axis]
        start, end = (v + dim if v < 0 else v for v in (start, end))
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        else:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
        index[axis] = slice(start, None if end < 0 else end, step)
    return [x[tuple(index)]]


@_op("Gather")
def _gather(node, inputs):
    """np.take: negative indices count from the end, as in ONNX."""
    return [np.take(inputs[0], inputs[1], axis=_attr(node, "axis", 0))]


@_op("Squeeze")
def _squeeze(node, inputs):
    """axes: input from opset 13, attribute before; none squeezes every 1."""
    x = inputs[0]
    axes = _arg_or_attr(node, inputs, 1, "axes")
    return [np.squeeze(x, axis=None if axes is None else tuple(axes))]


@_op("Unsqueeze")
def _unsqueeze(node, inputs):
    """axes (input from opset 13, attribute before) index the output's dimensions."""
    return [np.expand_dims(inputs[0], tuple(_arg_or_attr(node, inputs, 1, "axes")))]


@_op("Expand")
def _expand(node, inputs):
    """Bidirectional broadcast: shape's 1s keep the input's dimension."""
    x = inputs[0]
    return [np.array(np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(_ints(inputs[1])))))]


@_op("Tile")
def _tile(node, inputs):
    return [np.tile(inputs[0], _ints(inputs[1]))]


@_op("Pad")
def _pad(node, inputs):
    """pads (and constant_value, axes) are inputs from opset 11, attributes before;
    negative pads crop."""
    x = inputs[0]
    if len(inputs) > 1:
        pads, value, axes = _ints(inputs[1]), _arg(inputs, 2), _ints(_arg(inputs, 3))
        value = 0 if value is None else value.item()
    else:
        pads, value, axes = _attr(node, "pads"), _attr(node, "value", 0.0), None
    axes = [a % x.ndim for a in axes] if axes else list(range(x.ndim))
    begin, end = [0] * x.ndim, [0] * x.ndim
    for i, a in enumerate(axes):
        begin[a], end[a] = pads[i], pads[i + len(axes)]
    return [_pad_or_crop(x, begin, end, _attr(node, "mode", "constant"), value)]


@_op("Shape")
def _shape(node, inputs):
    """start/end (opset 15) slice the shape like Python, clamped."""
    return [np.array(inputs[0].shape[_attr(node, "start", 0):_attr(node, "end", None)], np.int64)]


@_op("Size")
def _size(node, inputs):
    return [np.array(inputs[0].size, np.int64)]


@_op("ConstantOfShape")
def _constant_of_shape(node, inputs):
    value = node.attrs.get("value")
    value = np.zeros(1, np.float32) if value is None else _tensor(value)
    return [np.full(_ints(inputs[0]), value.ravel()[0], value.dtype)]


@_op("Constant")
def _constant(node, inputs):
    for name, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                        ("value_int", np.int64), ("value_ints", np.int64)):
        if name in node.attrs:
            return [np.array(node.attrs[name], dtype)]
    if "value" not in node.attrs:
        raise CompileError(f"node '{node.name}' (Constant): only tensor and numeric values are supported")
    return [_tensor(node.attrs["value"])]


@_op("Range")
def _range(node, inputs):
    """ceil((limit - start) / delta) elements start + i * delta, of start's type."""
    start, limit, delta = (v.item() for v in inputs[:3])
    n = max(math.ceil((limit - start) / delta), 0) if _is_float(inputs[0]) else max(-((start - limit) // delta), 0)
    return [(start + np.arange(n) * delta).astype(inputs[0].dtype)]


# ---------------------------------------------------------------- interpreter

def _opset_of(graph, opset):
    return opset or graph.opset or LATEST_OPSET


def eval_node(node: Node, inputs: List[Optional[np.ndarray]], opset: int = LATEST_OPSET) -> List[np.ndarray]:
    """The outputs of one node given its input arrays (None for absent optional inputs).
    Raises CompileError for an op without a host implementation, or one that fails."""
    fn = HOST_OPS.get(node.op)
    if fn is None:
        raise CompileError(f"node '{node.name}': operator {node.op} has no host (numpy) implementation")
    try:
        with np.errstate(all="ignore"):  # inf/nan follow IEEE, as on a device
            results = fn(node, inputs, opset=opset) if node.op in _OPSET_DEPENDENT else fn(node, inputs)
    except CompileError:
        raise
    except Exception as e:
        shapes = ", ".join("-" if a is None else f"{a.dtype}{list(a.shape)}" for a in inputs)
        raise CompileError(f"node '{node.name}' ({node.op}) failed on inputs ({shapes}): "
                           f"{type(e).__name__}: {e}") from e
    if node.attrs.get("residual"):  # a residual join fused into a Conv (input 3)
        results = [(results[0] + inputs[3]).astype(results[0].dtype)] + list(results[1:])
        act = node.attrs.get("residual_act")
    else:
        act = node.attrs.get("act")
    if act is not None and act != "identity":  # an activation fused by the compiler's passes
        results = [_FUSED_ACT[act](results[0])] + list(results[1:])
    wanted = max((i + 1 for i, o in enumerate(node.outputs) if o), default=0)
    if len(results) < wanted:
        raise CompileError(f"node '{node.name}' ({node.op}): output {len(results)} ('{node.outputs[len(results)]}') "
                           "is not computed on the host")
    return [np.asarray(r) for r in results]


def _needed_nodes(graph: Graph, wanted) -> List[Node]:
    """The nodes that `wanted` values depend on, in graph order."""
    needed, keep = set(wanted), []
    for node in reversed(graph.nodes):
        if any(o in needed for o in node.outputs):
            keep.append(node)
            needed.update(i for i in node.inputs if i)
    return keep[::-1]


def run_graph(graph: Graph, feeds: Dict[str, np.ndarray], outputs=None, opset: Optional[int] = None
              ) -> Dict[str, np.ndarray]:
    """Interprets `graph` on `feeds` (name -> array; every graph input is required) and
    returns {name: array} for `outputs` (default: the graph outputs; any value name may be
    asked for). Runs only the nodes those outputs depend on, freeing intermediates after
    their last use. `opset`: see the module docstring."""
    opset = _opset_of(graph, opset)
    wanted = [v.name for v in graph.outputs] if outputs is None else list(outputs)
    missing = [v.name for v in graph.inputs if v.name not in feeds]
    if missing:
        raise CompileError(f"run_graph: no value fed for input(s) {', '.join(missing)}")
    env = dict(graph.constants)
    env.update((k, np.asarray(v)) for k, v in feeds.items())
    nodes = _needed_nodes(graph, wanted)
    last_use = {name: i for i, node in enumerate(nodes) for name in node.inputs}
    for i, node in enumerate(nodes):
        try:
            args = [env[name] if name else None for name in node.inputs]
        except KeyError as e:
            raise CompileError(f"node '{node.name}' ({node.op}): input {e} is neither fed, "
                               "a constant nor computed by an earlier node") from None
        results = eval_node(node, args, opset)
        for name, value in zip(node.outputs, results):
            if name:
                env[name] = value
        for name in node.inputs:
            if last_use.get(name) == i and name not in wanted:
                env.pop(name, None)
    absent = [w for w in wanted if w not in env]
    if absent:
        raise CompileError(f"run_graph: no node computes {', '.join(absent)}")
    return {w: env[w] for w in wanted}


def fold_constants(graph: Graph, opset: Optional[int] = None) -> Graph:
    """Evaluates every node whose inputs are all constants, and Shape/Size of values whose
    shape is static (graph inputs and shape-inferred values: shapes are fixed at compile
    time), in graph order so that whole chains fold. Returns a new Graph without those
    nodes, their outputs added to its constants and the constants only they used dropped;
    the input graph is left as it was (the new one has its own node list, constants and
    values dicts; Node, Value and array objects are shared, not copied). Ops without a host
    implementation are left in place (the device compiler may still lower them)."""
    opset = _opset_of(graph, opset)
    constants = dict(graph.constants)
    static = {v.name: v for v in list(graph.values.values()) + list(graph.inputs) if v.shape is not None}
    nodes, touched = [], set()
    for node in graph.nodes:
        names = [n for n in node.inputs if n]
        if node.op not in HOST_OPS:
            nodes.append(node)
            continue
        if all(n in constants for n in names):
            args = [constants[n] if n else None for n in node.inputs]
        elif node.op in ("Shape", "Size") and names[0] in static:
            v = static[names[0]]  # a zero-strided stand-in: only its shape is read
            args = [np.broadcast_to(np.zeros((), v.dtype), v.shape)]
        else:
            nodes.append(node)
            continue
        for name, value in zip(node.outputs, eval_node(node, args, opset)):
            if name:  # a copy when a view, so a slice of a large constant does not keep it alive
                constants[name] = value.copy() if value.base is not None else value
                touched.add(name)
        touched.update(names)
    used = {n for node in nodes for n in node.inputs} | {v.name for v in graph.outputs}
    for name in touched - used:
        constants.pop(name, None)
    return dataclasses.replace(graph, inputs=list(graph.inputs), outputs=list(graph.outputs), nodes=nodes,
                               constants=constants, values=dict(graph.values))
