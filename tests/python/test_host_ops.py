"""Host (numpy) reference ops (compiler/host_ops.py): one small ONNX graph per op
family, built with onnx.helper and run through load_onnx and run_graph, against
PyTorch or numpy; then the reference models end to end (export, load_onnx,
fold_constants, run_graph) against PyTorch."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

import models
from helpers import cosine
from infsim.compiler.host_ops import HOST_OPS, eval_node, fold_constants, run_graph
from infsim.compiler.ir import CompileError, Node
from infsim.compiler.onnx_import import load_onnx
from models.export import to_onnx

ONNX_TYPE = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64,
             np.dtype(np.int32): TensorProto.INT32, np.dtype(bool): TensorProto.BOOL}


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def ints(*values):
    return np.array(values, np.int64)


def run_op(op, args, attrs=None, consts=(), outputs=1, opset=13, out_type=TensorProto.UNDEFINED):
    """Runs a one-node ONNX model through load_onnx and run_graph and returns its outputs.
    `args`: input arrays, None for an absent optional one; those at the positions in
    `consts` become initializers (shape inference needs their values), the others are
    fed as graph inputs. `out_type`: the outputs' declared type, needed where ONNX type
    inference gives none (else left to it)."""
    while args and args[-1] is None:
        args = args[:-1]
    names = ["" if a is None else f"in{i}" for i, a in enumerate(args)]
    inputs, inits, feeds = [], [], {}
    for i, (name, a) in enumerate(zip(names, args)):
        if a is None:
            continue
        a = np.asarray(a)
        if i in consts:
            inits.append(numpy_helper.from_array(a, name))
        else:
            inputs.append(helper.make_tensor_value_info(name, ONNX_TYPE[a.dtype], a.shape))
            feeds[name] = a
    outs = [f"out{i}" for i in range(outputs)]
    node = helper.make_node(op, names, outs, **(attrs or {}))
    graph = helper.make_graph([node], op, inputs, [helper.make_tensor_value_info(o, out_type, None) for o in outs],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    result = run_graph(load_onnx(model), feeds)  # Softmax semantics from the recorded opset
    return [result[o] for o in outs]


def run1(op, args, attrs=None, consts=(), opset=13, out_type=TensorProto.UNDEFINED):
    return run_op(op, args, attrs, consts, 1, opset, out_type)[0]


def check(got, want, tol=1e-5):
    """Same shape and dtype (float32 for torch references), values within tol of the scale."""
    want = want.numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=0, atol=tol * max(1.0, float(np.abs(want).max(initial=0))))


T = torch.from_numpy


# ---------------------------------------------------------------- convolution, pooling, normalisation

@pytest.mark.parametrize("attrs, torch_pad, torch_kw", [
    # torch_pad: F.pad's (left, right, top, bottom) for ONNX pads (top, left, bottom, right)
    (dict(group=2, strides=[2, 1], pads=[1, 0, 2, 1], dilations=[1, 2]), (0, 1, 1, 2),
     dict(stride=(2, 1), dilation=(1, 2), groups=2)),
    (dict(group=6, pads=[1, 1, 1, 1]), (1, 1, 1, 1), dict(groups=6)),  # depthwise
    # 9x8 input, stride 2, k3: H total pad 2 -> (1, 1); W total 1 -> (0, 1) upper, (1, 0) lower
    (dict(group=2, auto_pad="SAME_UPPER", strides=[2, 2]), (0, 1, 1, 1), dict(stride=2, groups=2)),
    (dict(group=2, auto_pad="SAME_LOWER", strides=[2, 2]), (1, 0, 1, 1), dict(stride=2, groups=2)),
    (dict(group=2, auto_pad="VALID", strides=[1, 2]), (0, 0, 0, 0), dict(stride=(1, 2), groups=2)),
])
def test_conv2d(attrs, torch_pad, torch_kw):
    x, b = rand(2, 6, 9, 8), rand(6, seed=2)
    w = rand(6, 6 // attrs["group"], 3, 3, seed=1)
    want = F.conv2d(F.pad(T(x), torch_pad), T(w), T(b), **torch_kw)
    check(run1("Conv", [x, w, b], attrs, consts=(1, 2)), want)


def test_conv1d_no_bias():
    x, w = rand(1, 4, 11), rand(5, 4, 3, seed=1)
    check(run1("Conv", [x, w], dict(strides=[3], pads=[2, 1]), consts=(1,)),
          F.conv1d(F.pad(T(x), (2, 1)), T(w), stride=3))


@pytest.mark.parametrize("attrs, torch_kw, crop", [
    (dict(group=2, strides=[2, 3], pads=[1, 0, 1, 2], output_padding=[1, 0], dilations=[1, 2]),
     dict(stride=(2, 3), dilation=(1, 2), groups=2, output_padding=(1, 0)), (1, 1, 0, 2)),
    (dict(strides=[2, 2], pads=[1, 1, 1, 1]), dict(stride=2), (1, 1, 1, 1)),  # pose_resnet's deconvs (k4)
    # output_shape: full output 2*(5-1)+3 = 11 (x 9), asked 10 (x 8): NOTSET takes the extra pad at the start
    (dict(strides=[2, 2], output_shape=[10, 8]), dict(stride=2), (1, 0, 1, 0)),
])
def test_conv_transpose(attrs, torch_kw, crop):
    group = attrs.get("group", 1)
    x, b = rand(2, 4, 5, 4), rand(6, seed=2)
    w = rand(4, 6 // group, 3 if "output_shape" in attrs else 4, 3, seed=1)
    full = F.conv_transpose2d(T(x), T(w), T(b), **torch_kw)
    top, bottom, left, right = crop
    want = full[:, :, top:full.shape[2] - bottom, left:full.shape[3] - right]
    check(run1("ConvTranspose", [x, w, b], attrs, consts=(1, 2)), want)


def test_batch_normalization():
    x = rand(2, 5, 4, 3)
    scale, bias, mean = rand(5, seed=1), rand(5, seed=2), rand(5, seed=3)
    var = np.random.default_rng(4).uniform(0.5, 1.5, 5).astype(np.float32)
    want = F.batch_norm(T(x), T(mean), T(var), T(scale), T(bias), training=False, eps=1e-3)
    check(run1("BatchNormalization", [x, scale, bias, mean, var], dict(epsilon=1e-3), consts=(1, 2, 3, 4)), want)


@pytest.mark.parametrize("ceil_mode", [0, 1])
def test_max_pool(ceil_mode):
    x = rand(2, 3, 10, 9)
    got = run1("MaxPool", [x], dict(kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1], dilations=[1, 2],
                                    ceil_mode=ceil_mode))
    want = F.max_pool2d(F.pad(T(x), (0, 1, 0, 0), value=-np.inf), (3, 2), 2, padding=(1, 0), dilation=(1, 2),
                        ceil_mode=bool(ceil_mode))
    check(got, want)


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("ceil_mode", [0, 1])
def test_average_pool(count_include_pad, ceil_mode):
    x = rand(2, 3, 10, 9)
    got = run1("AveragePool", [x], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                        count_include_pad=count_include_pad, ceil_mode=ceil_mode))
    want = F.avg_pool2d(T(x), 3, 2, padding=1, ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad))
    check(got, want)


def test_average_pool_same_upper_excludes_pads():
    x = rand(1, 2, 5, 5)
    got = run1("AveragePool", [x], dict(kernel_shape=[2, 2], auto_pad="SAME_UPPER"))  # pads (0, 1) per axis
    pad = (0, 1, 0, 1)
    want = F.avg_pool2d(F.pad(T(x), pad), 2, 1) / F.avg_pool2d(F.pad(torch.ones(1, 1, 5, 5), pad), 2, 1)
    check(got, want)


def test_global_average_pool():
    x = rand(2, 3, 5, 4)
    check(run1("GlobalAveragePool", [x]), x.mean((2, 3), keepdims=True), 1e-6)


def test_layer_normalization_opset17():
    x, scale, bias = rand(2, 3, 4, 5), rand(4, 5, seed=1), rand(4, 5, seed=2)
    y, mean, inv = run_op("LayerNormalization", [x, scale, bias], dict(axis=-2, epsilon=1e-3), consts=(1, 2),
                          outputs=3, opset=17)
    check(y, F.layer_norm(T(x), (4, 5), T(scale), T(bias), eps=1e-3))
    check(mean, x.mean((2, 3), keepdims=True))
    check(inv, 1 / np.sqrt(x.var((2, 3), keepdims=True) + 1e-3), 1e-4)


@pytest.mark.parametrize("opset, axis, flat", [(13, 1, None), (13, -1, None), (11, 1, (2, 12)), (11, 2, (6, 4))])
def test_softmax_axis_semantics(opset, axis, flat):
    """From opset 13 over `axis`; before, over the input flattened to 2-D at `axis`."""
    x = rand(2, 3, 4)
    for op, fn in [("Softmax", torch.softmax), ("LogSoftmax", torch.log_softmax)]:
        want = fn(T(x), axis) if flat is None else fn(T(x).reshape(flat), 1).reshape(x.shape)
        check(run1(op, [x], dict(axis=axis), opset=opset), want)


# ---------------------------------------------------------------- matrix products

@pytest.mark.parametrize("trans_a, trans_b", [(0, 0), (1, 1)])
def test_gemm(trans_a, trans_b):
    a, b, c = rand(3, 4), rand(4, 5, seed=1), rand(5, seed=2)
    a_, b_ = (a.T.copy() if trans_a else a), (b.T.copy() if trans_b else b)
    got = run1("Gemm", [a_, b_, c], dict(transA=trans_a, transB=trans_b, alpha=0.5, beta=2.0), consts=(1, 2))
    check(got, 0.5 * a @ b + 2 * c)
    check(run1("Gemm", [a, b], consts=(1,)), a @ b)  # no C (optional from opset 11)


def test_matmul_batched_broadcast():
    a, b = rand(2, 1, 3, 4), rand(5, 4, 6, seed=1)
    check(run1("MatMul", [a, b]), torch.matmul(T(a), T(b)))
    check(run1("MatMul", [rand(4), b]), torch.matmul(T(rand(4)), T(b)))  # 1-D operand
    ia, ib = ints(1, 2, 3).reshape(1, 3), ints(4, 5, 6).reshape(3, 1)
    check(run1("MatMul", [ia, ib]), ints(32).reshape(1, 1))


# ---------------------------------------------------------------- elementwise

def test_binary_broadcast():
    a, b = rand(2, 3, 4), rand(3, 1, seed=1)
    for op, fn in [("Add", np.add), ("Sub", np.subtract), ("Mul", np.multiply), ("Div", np.divide)]:
        check(run1(op, [a, b]), fn(a, b))
    check(run1("Pow", [np.abs(a), b]), np.abs(a) ** b)
    check(run1("Pow", [a, ints(3)]), a ** 3)  # exponent of another type: the base's type wins
    check(run1("Div", [ints(-7, 7, 6), ints(2)]), ints(-3, 3, 3))  # integer division truncates
    check(run1("Add", [ints(1, 2), ints(10, 20)]), ints(11, 22))


def test_unary():
    x = rand(3, 4) * 3
    x[0, :2] = [-100, 100]
    cases = {"Sqrt": (np.abs(x), torch.sqrt), "Log": (np.abs(x), torch.log), "Reciprocal": (x, torch.reciprocal),
             "Neg": (x, torch.neg), "Abs": (x, torch.abs), "Exp": (x / 10, torch.exp), "Relu": (x, torch.relu),
             "Erf": (x, torch.erf), "Tanh": (x, torch.tanh), "Sigmoid": (x, torch.sigmoid)}
    for op, (v, fn) in cases.items():
        check(run1(op, [v]), fn(T(v)))
    check(run1("HardSwish", [x], opset=14), F.hardswish(T(x)))
    check(run1("LeakyRelu", [x], dict(alpha=0.2)), F.leaky_relu(T(x), 0.2))
    check(run1("HardSigmoid", [x], dict(alpha=0.3, beta=0.4)), np.clip(0.3 * x + 0.4, 0, 1))
    check(run1("Not", [x > 0]), x <= 0)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_opset20(approximate):
    """Gelu is ONNX opset 20 (unknown to onnx 1.12), created by the compiler's passes: a Node."""
    x = rand(3, 4) * 3
    got, = eval_node(Node("Gelu", "g", ["x"], ["y"], {"approximate": approximate.encode()}), [x])
    check(got, F.gelu(T(x), approximate=approximate))


def test_clip_inputs_and_attributes():
    x = rand(3, 4)
    lo, hi = np.array(-0.5, np.float32), np.array(0.7, np.float32)
    check(run1("Clip", [x, lo, hi], consts=(1, 2)), np.clip(x, -0.5, 0.7))
    check(run1("Clip", [x, None, hi], consts=(2,)), np.minimum(x, 0.7))  # min absent
    check(run1("Clip", [x], dict(min=-0.5, max=0.7), opset=10), np.clip(x, -0.5, 0.7))
    check(run1("Clip", [ints(-5, 3, 9), ints(0), ints(6)], consts=(1, 2)), ints(0, 3, 6))


def test_compare_logic_where_minmax():
    a, b = rand(2, 3), rand(3, seed=1)
    a[0, 0] = b[0]
    for op, fn in [("Equal", np.equal), ("Less", np.less), ("Greater", np.greater)]:
        check(run1(op, [a, b]), fn(a, b))
    check(run1("And", [a > 0, b > 0]), (a > 0) & (b > 0))
    check(run1("Where", [a > 0, a, b]), np.where(a > 0, a, b))
    c = rand(2, 1, seed=2)
    check(run1("Min", [a, b, c]), np.minimum(np.minimum(a, b), c))
    check(run1("Max", [a, b, c]), np.maximum(np.maximum(a, b), c))


def test_cast_identity_dropout():
    x = rand(2, 3) * 4
    check(run1("Cast", [x], dict(to=TensorProto.INT64)), np.trunc(x).astype(np.int64))
    check(run1("Cast", [ints(0, 2)], dict(to=TensorProto.BOOL)), np.array([False, True]))
    check(run1("Identity", [x]), x)
    y, mask = run_op("Dropout", [x, np.array(0.5, np.float32)], consts=(1,), outputs=2)
    check(y, x)
    check(mask, np.ones(x.shape, bool))


# ---------------------------------------------------------------- reductions

def test_reductions():
    x = rand(2, 3, 4)
    for op, fn in [("ReduceMean", np.mean), ("ReduceMax", np.max), ("ReduceMin", np.min)]:
        check(run1(op, [x], dict(axes=[0, -1])), fn(x, (0, 2), keepdims=True))
        check(run1(op, [x], dict(keepdims=0)), np.asarray(fn(x)))  # no axes: all
    check(run1("ReduceSum", [x, ints(1)], consts=(1,)), x.sum(1, keepdims=True))  # axes input (opset 13)
    check(run1("ReduceSum", [x], dict(axes=[1], keepdims=0), opset=11), x.sum(1))  # axes attribute
    check(run1("ReduceSum", [x], dict(noop_with_empty_axes=1)), x)
    check(run1("ReduceSum", [ints(1, 2, 3)], dict(keepdims=0)), np.array(6, np.int64))


# ---------------------------------------------------------------- shapes and data movement

def test_reshape_flatten_transpose():
    x = rand(2, 3, 4)
    check(run1("Reshape", [x, ints(0, -1)], consts=(1,)), x.reshape(2, 12))
    check(run1("Reshape", [x, ints(4, 0, -1)], consts=(1,)), x.reshape(4, 3, 2))  # 0 copies dim 1
    e = np.zeros((0, 3), np.float32)
    check(run1("Reshape", [e, ints(3, 0)], dict(allowzero=1), consts=(0, 1), opset=14), e.reshape(3, 0))
    for axis, shape in [(0, (1, 24)), (2, (6, 4)), (-1, (6, 4))]:
        check(run1("Flatten", [x], dict(axis=axis)), x.reshape(shape))
    check(run1("Transpose", [x], dict(perm=[1, 2, 0])), x.transpose(1, 2, 0))
    check(run1("Transpose", [x]), x.T)


def test_concat_split():
    a, b = rand(2, 3), rand(2, 5, seed=1)
    check(run1("Concat", [a, b], dict(axis=-1)), np.concatenate([a, b], 1))
    x = rand(2, 6)
    parts = run_op("Split", [x, ints(1, 2, 3)], dict(axis=1), consts=(1,), outputs=3)
    for got, want in zip(parts, np.split(x, [1, 3], 1)):
        check(got, want)
    parts = run_op("Split", [x], dict(axis=1, split=[4, 2]), outputs=2, opset=11)
    for got, want in zip(parts, np.split(x, [4], 1)):
        check(got, want)
    parts = run_op("Split", [x], dict(axis=-1), outputs=3)  # equal parts
    for got, want in zip(parts, np.split(x, 3, 1)):
        check(got, want)


@pytest.mark.parametrize("starts, ends, axes, steps, index", [
    ((1, -3), (100, -1), (0, 2), (1, 1), np.s_[1:, :, -3:-1]),
    ((-1,), (-100,), (1,), (-1,), np.s_[:, ::-1]),  # negative step reaching index 0
    ((5, 0), (1, 10), (-1, 0), (-2, 2), np.s_[::2, :, 5:1:-2]),
    ((-100,), (2,), None, None, np.s_[:2]),
])
def test_slice(starts, ends, axes, steps, index):
    x = rand(4, 3, 6)
    optional = [None if v is None else ints(*v) for v in (axes, steps)]
    args = [x, ints(*starts), ints(*ends)] + optional
    check(run1("Slice", args, consts=(1, 2, 3, 4)), x[index])


def test_slice_attributes_opset9():
    x = rand(4, 3, 6)
    check(run1("Slice", [x], dict(starts=[1, -2], ends=[3, 100], axes=[0, 2]), opset=9, out_type=TensorProto.FLOAT),
          x[1:3, :, -2:])


def test_gather():
    x = rand(5, 4, 3)
    check(run1("Gather", [x, ints(4, -1, 0)], consts=(1,)), x[[4, 4, 0]])
    check(run1("Gather", [x, ints(1, -2).reshape(2, 1)], dict(axis=1), consts=(1,)), x[:, [[1], [2]]])
    check(run1("Gather", [x, np.array(2, np.int64)], consts=(1,)), x[2])  # scalar index drops the axis


def test_squeeze_unsqueeze_opsets():
    x = rand(2, 1, 3, 1)
    check(run1("Squeeze", [x, ints(-1)], consts=(1,)), x[:, :, :, 0])
    check(run1("Squeeze", [x]), x.reshape(2, 3))
    check(run1("Squeeze", [x], dict(axes=[1]), opset=11), x[:, 0])
    y = rand(2, 3)
    check(run1("Unsqueeze", [y, ints(0, -1)], consts=(1,)), y.reshape(1, 2, 3, 1))
    check(run1("Unsqueeze", [y], dict(axes=[1]), opset=11), y.reshape(2, 1, 3))


def test_expand_tile():
    x = rand(3, 1)
    check(run1("Expand", [x, ints(2, 1, 4)], consts=(1,)), np.broadcast_to(x, (2, 3, 4)))
    check(run1("Tile", [x, ints(2, 3)], consts=(1,)), np.tile(x, (2, 3)))


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad(mode):
    x = rand(2, 3, 5)
    pads = ints(0, 1, 2, 0, 2, 1)
    value = np.array(1.5, np.float32)
    got = run1("Pad", [x, pads, value if mode == "constant" else None], dict(mode=mode), consts=(1, 2))
    kw = dict(constant_values=1.5) if mode == "constant" else {}
    check(got, np.pad(x, [(0, 0), (1, 2), (2, 1)], mode=mode, **kw))


def test_pad_attributes_and_crop():
    x = rand(2, 3, 5)
    got = run1("Pad", [x], dict(pads=[0, 1, 0, 0, 0, 0], value=2.0), opset=10)
    check(got, np.pad(x, [(0, 0), (1, 0), (0, 0)], constant_values=2.0))
    check(run1("Pad", [x, ints(0, 0, -1, 0, 1, -2)], consts=(1,)), np.pad(x[:, :, 1:3], [(0, 0), (0, 1), (0, 0)]))


def test_shape_constant_of_shape_range():
    x = rand(2, 3, 4)
    check(run1("Shape", [x]), ints(2, 3, 4))
    check(run1("Shape", [x], dict(start=1, end=-1), opset=15), ints(3))
    value = numpy_helper.from_array(np.array([7], np.int32))
    check(run1("ConstantOfShape", [ints(2, 3)], dict(value=value), consts=(0,)), np.full((2, 3), 7, np.int32))
    check(run1("ConstantOfShape", [ints(2)], consts=(0,)), np.zeros(2, np.float32))
    check(run1("Range", [ints(10), ints(1), ints(-3)], consts=(0, 1, 2), out_type=TensorProto.INT64), ints(10, 7, 4))
    start, limit, delta = (np.array(v, np.float32) for v in (0.5, 2.0, 0.5))
    check(run1("Range", [start, limit, delta], consts=(0, 1, 2), out_type=TensorProto.FLOAT),
          np.array([0.5, 1.0, 1.5], np.float32))


# ---------------------------------------------------------------- interpreter, folding, errors

def test_unknown_op_names_op_and_node():
    assert "Einsum" not in HOST_OPS
    with pytest.raises(CompileError, match="my_einsum.*Einsum"):
        eval_node(Node("Einsum", "my_einsum", ["a"], ["b"], {}), [rand(2)])


def test_failing_op_names_node_and_shapes():
    with pytest.raises(CompileError, match=r"'mm' \(MatMul\).*float32\[2, 3\], float32\[2, 3\]"):
        eval_node(Node("MatMul", "mm", ["a", "b"], ["c"], {}), [rand(2, 3), rand(2, 3)])


def test_fold_constants_shape_chains():
    """x.view(x.size(0), -1) @ W.T as exporters write it: Shape -> Gather -> Unsqueeze ->
    Concat -> Reshape, and a Transpose of the weight. Folding leaves Reshape and MatMul with
    constant operands, drops the constants only the folded nodes used, and keeps the input
    graph intact."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["flat"]),
             helper.make_node("Transpose", ["w"], ["wt"]),
             helper.make_node("MatMul", ["flat", "wt"], ["y"])]
    w = rand(5, 12, seed=1)
    inits = [numpy_helper.from_array(a, n) for n, a in
             [("zero", np.array(0, np.int64)), ("zero1", ints(0)), ("minus1", ints(-1)), ("w", w)]]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    graph = load_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    folded = fold_constants(graph)
    assert [n.op for n in folded.nodes] == ["Reshape", "MatMul"]
    assert [n.op for n in graph.nodes] == ["Shape", "Gather", "Unsqueeze", "Concat", "Reshape", "Transpose", "MatMul"]
    check(folded.constants["shape"], ints(2, -1))
    assert set(folded.constants) == {"shape", "wt"}
    x = rand(2, 3, 4)
    check(run_graph(folded, {"x": x})["y"], x.reshape(2, 12) @ w.T)
    check(run_graph(graph, {"x": x}, outputs=["shape"])["shape"], ints(2, -1))  # any value, only its ancestors


def test_run_graph_missing_feed():
    graph = load_onnx(helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]), opset_imports=[helper.make_opsetid("", 13)]))
    with pytest.raises(CompileError, match="no value fed for input.* x"):
        run_graph(graph, {})


# ---------------------------------------------------------------- reference models end to end

# name -> (build kwargs, example_inputs kwargs): reduced sizes that keep the file quick
SMALL = {
    "resnet50": ({}, dict(size=64)),
    "mobilenet_v2": ({}, dict(size=64)),
    "bert_base": (dict(layers=2), dict(seq=64)),
    "pose_resnet": (dict(depth=18), dict(height=64, width=48)),
    "gpt2_block": ({}, dict(seq=64)),
    "mlp": ({}, {}),
}


@pytest.fixture(scope="module")
def reference():
    """name -> (model, example inputs, PyTorch output), built once per model."""
    cache = {}

    def get(name):
        if name not in cache:
            build_kw, input_kw = SMALL[name]
            model = models.build(name, **build_kw)
            x = models.example_inputs(name, **input_kw)
            with torch.no_grad():
                cache[name] = model, x, model(*x).numpy()
        return cache[name]
    return get


@pytest.mark.parametrize("opset", [13, 14])
@pytest.mark.parametrize("name", list(SMALL))
def test_reference_model(reference, name, opset):
    model, x, want = reference(name)
    assert 1e-2 < want.std() < 1e2, f"{name}: badly scaled reference output (std {want.std():.3g})"
    proto = to_onnx(model, x, opset)
    assert [o.name for o in proto.graph.output] == ["output"]
    folded = fold_constants(load_onnx(proto))
    assert not {"Shape", "ConstantOfShape", "Constant"} & {n.op for n in folded.nodes}, name
    feeds = {v.name: t.numpy() for v, t in zip(folded.inputs, x)}
    got = run_graph(folded, feeds)["output"]
    assert got.shape == want.shape and got.dtype == np.float32
    scale = float(np.abs(want).max())
    err = float(np.abs(got - want).max())
    assert err <= 1e-3 * scale, f"{name}: max abs error {err:.3e} > 1e-3 x {scale:.3e}"
    assert cosine(got, want) >= 0.99999


def test_statistics_precision_agrees_with_the_reference_and_restores_it():
    """Calibration's fast path (float32, PyTorch convolutions and products) gives the
    reference's values to float32 accuracy, and leaves the reference path and
    PyTorch's thread count as they were."""
    from infsim.compiler import host_ops
    net = models.build("mlp")
    x = torch.randn(4, 784)
    g = load_onnx(to_onnx(net, (x,)), None)
    feeds = {g.inputs[0].name: x.numpy()}
    ref = run_graph(g, feeds)
    threads = torch.get_num_threads()
    with host_ops.statistics_precision():
        fast = run_graph(g, feeds)
        conv = eval_node(Node("Conv", "c", ["x", "w"], ["y"], {"pads": [1, 1, 1, 1]}),
                         [rand(2, 8, 9, 9), rand(16, 8, 3, 3, seed=1)], 13)[0]
    assert host_ops._ACCUMULATE is np.float64 and torch.get_num_threads() == threads
    slow = eval_node(Node("Conv", "c", ["x", "w"], ["y"], {"pads": [1, 1, 1, 1]}),
                     [rand(2, 8, 9, 9), rand(16, 8, 3, 3, seed=1)], 13)[0]
    for k in ref:
        np.testing.assert_allclose(fast[k], ref[k], rtol=1e-4, atol=1e-4 * np.abs(ref[k]).max())
    np.testing.assert_allclose(conv, slow, rtol=1e-4, atol=1e-4 * np.abs(slow).max())
