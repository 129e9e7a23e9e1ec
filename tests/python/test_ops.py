"""One test per operator family lowered by the compiler, against PyTorch
FP32 on the CPU (FP32 mode: errors at FP32 rounding level; BF16 mode:
within BF16 tolerance)."""
import numpy as np
import pytest
import torch

from helpers import assert_close, cosine, run_module
from infsim.compiler import CompileError

torch.manual_seed(0)


class Fn(torch.nn.Module):
    """Wraps a function of the inputs as a module."""

    def __init__(self, fn, params=None):
        super().__init__()
        self.fn = fn
        self.p = torch.nn.ParameterList([torch.nn.Parameter(p, requires_grad=False) for p in (params or [])])

    def forward(self, x, y=None, z=None):
        args = [a for a in (x, y, z) if a is not None]
        return self.fn(*args, *self.p)


def check(fn, *inputs, dtype="fp32", params=None, **kw):
    got, ref, stats, exe = run_module(Fn(fn, params), *inputs, dtype=dtype, fallback="none", **kw)
    assert got.shape == ref.shape
    if dtype == "fp32":
        scale = max(float(np.abs(ref).max()), 1e-6)
        assert float(np.abs(got - ref).max()) <= 1e-5 * scale + 1e-6, float(np.abs(got - ref).max())
    else:
        assert_close(got, ref, dtype)
    return got, ref, stats


R = torch.randn


@pytest.mark.parametrize("name,fn", [
    ("relu", torch.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh), ("exp", lambda x: torch.exp(x / 4)),
    ("log", lambda x: torch.log(x.abs() + 0.5)), ("sqrt", lambda x: torch.sqrt(x.abs())),
    ("reciprocal", lambda x: 1.0 / (x.abs() + 0.5)), ("neg", torch.neg), ("abs", torch.abs),
    ("relu6", lambda x: torch.nn.functional.relu6(x * 4)), ("clip", lambda x: x.clamp(-0.5, 0.7)),
    ("hardsigmoid", torch.nn.functional.hardsigmoid), ("hardswish", torch.nn.functional.hardswish),
    ("leaky_relu", lambda x: torch.nn.functional.leaky_relu(x, 0.1)), ("silu", torch.nn.functional.silu),
    ("gelu", torch.nn.functional.gelu), ("pow2", lambda x: x ** 2), ("pow3", lambda x: x ** 3),
    ("rsqrt", lambda x: torch.rsqrt(x.abs() + 0.1)), ("erf", torch.erf),
])
def test_unary(name, fn):
    x = R(3, 40, 70)
    if name in ("gelu", "exp", "log", "sigmoid", "tanh", "silu", "erf"):
        # scalar-engine function tables: error bounds in docs/architecture.md (<= ~1e-6 relative)
        got, ref, _, _ = run_module(Fn(fn), x, dtype="fp32", fallback="none")
        assert np.abs(got - ref).max() <= 2e-6 * max(1.0, np.abs(ref).max())
    else:
        check(fn, x)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "max", "min"])
def test_binary_broadcast(op):
    f = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": lambda a, b: a / (b.abs() + 0.5),
         "max": torch.maximum, "min": torch.minimum}[op]
    check(f, R(2, 3, 50, 64), R(3, 1, 64))  # broadcast on partitions (step 0) and on an outer axis
    check(f, R(2, 30, 1), R(1, 30, 70))  # broadcast along the free axis


def test_scalar_constants():
    check(lambda x: (2.0 - x) / 3.0 + 1.0 / (x.abs() + 1) * 0.5, R(5, 300))


def test_compare_where():
    check(lambda x, y: torch.where(x > y, x, y * 2) + (x < 0.1).float(), R(4, 100), R(4, 100))


def test_matmul_linear_bias_act():
    lin = torch.nn.Linear(200, 300).requires_grad_(False)
    check(lambda x: torch.relu(lin(x)), R(2, 7, 200))
    check(lambda x: torch.nn.functional.gelu(lin(x)), R(130, 200), dtype="bf16")


def test_gemm_transposed_and_batched():
    w = R(150, 96)
    check(lambda x: x @ w.T, R(70, 96))  # B stored transposed at compile time
    check(lambda x, y: x @ y.transpose(-1, -2), R(2, 3, 100, 64), R(2, 3, 90, 64))  # K^T: transposed on chip
    check(lambda x, y: x.transpose(-1, -2) @ y, R(2, 64, 100), R(2, 64, 90))  # A^T stored: loaded directly
    check(lambda x, y: x @ y, R(3, 1, 40, 33), R(5, 33, 20))  # broadcast batch dims


def test_softmax_and_logsoftmax():
    check(lambda x: torch.softmax(x, -1), R(4, 50, 33) * 3)
    check(lambda x: torch.softmax(x, 1), R(4, 50, 33))
    check(lambda x: torch.log_softmax(x, -1), R(6, 129))


def test_layernorm():
    ln = torch.nn.LayerNorm(300).requires_grad_(False)
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    check(lambda x: ln(x), R(3, 20, 300) * 2 + 1)
    check(lambda x: ln(x), R(3, 20, 300), dtype="bf16")


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min"])
def test_reductions(op):
    f = getattr(torch, op)
    check(lambda x: f(x, -1) if op in ("sum", "mean") else f(x, -1)[0], R(4, 30, 50))
    if op in ("sum", "mean"):
        check(lambda x: f(x, (1, 2), keepdim=True), R(4, 30, 50))


def test_shape_ops():
    def fn(x):
        y = x.reshape(2, 5, 4, 6).permute(0, 2, 1, 3)
        z = torch.cat([y[:, 1:3], y[:, :1] * 2], 1)
        a, b = torch.split(z, [2, 1], dim=1)
        return torch.cat([b, a], 1).reshape(2, -1).unsqueeze(0).squeeze(0)
    check(fn, R(10, 24))
    check(lambda x: torch.nn.functional.pad(x, (1, 2, 0, 3), value=0.5), R(2, 3, 5, 7))
    check(lambda x: x.expand(3, 4, 50) * 1.0 + torch.cat([x[..., ::2], x[..., 1::2]], -1), R(1, 4, 50))


def test_embedding_gather():
    emb = torch.nn.Embedding(1000, 96)
    got, ref, _, _ = run_module(Fn(lambda ids, w: torch.nn.functional.embedding(ids, w) * 2, [emb.weight]),
                                torch.randint(0, 1000, (3, 100)), dtype="fp32", fallback="none")
    assert np.array_equal(got, ref)


def test_fallback_none_names_the_op():
    with pytest.raises(CompileError, match="Xor"):
        run_module(Fn(lambda x: torch.logical_xor(x > 0, x > 1).float()), R(4, 8), fallback="none")


def test_host_fallback_runs_unsupported_ops():
    report = []
    got, ref, stats, exe = run_module(Fn(lambda x: torch.relu(torch.logical_xor(x > 0, x > 1).float() + x) * 3),
                                      R(4, 64), report=report)
    assert [r[1] for r in report if r[2] == "host"] == ["Xor"]
    assert stats["host_steps"] == 1 and stats["total_cycles"] > 0
    assert np.abs(got - ref).max() < 1e-5


def test_int8_post_training_quantisation():
    lin1 = torch.nn.Linear(300, 200).requires_grad_(False)
    lin2 = torch.nn.Linear(200, 50).requires_grad_(False)
    fn = Fn(lambda x: lin2(torch.relu(lin1(x))))
    x = R(16, 300)
    cal = {"x": R(64, 300).numpy()}
    got, ref, stats, exe = run_module(fn, x, dtype="int8", calibration=cal, fallback="none")
    assert cosine(got, ref) >= 0.999
    # The same products run on the array, as INT8 x INT8 -> INT32.
    _, _, bf, _ = run_module(fn, x, dtype="bf16", fallback="none")
    assert stats["counters"]["chip0"]["core0"]["tensor"]["macs"] == bf["counters"]["chip0"]["core0"]["tensor"]["macs"]
    with pytest.raises(CompileError, match="calibration"):
        run_module(fn, x, dtype="int8")


def test_mse_calibration_searches_the_code_each_consumer_uses():
    """A ReLU output feeding a product is coded symmetrically (127 steps), so its MSE
    threshold is the symmetric one even though it is never negative; an unknown
    method is refused whatever the dtype."""
    from helpers import to_onnx
    from infsim import cli
    from infsim.compiler import compile_model
    from infsim.compiler.host_ops import run_graph, statistics_precision
    from infsim.compiler.onnx_import import load_onnx
    from infsim.compiler.quantize import CALIBRATION_METHODS, calibrate, mse_threshold
    assert cli.CALIBRATION_METHODS == CALIBRATION_METHODS
    m = torch.nn.Sequential(torch.nn.Linear(64, 48), torch.nn.ReLU(), torch.nn.Linear(48, 8)).eval()
    proto, names = to_onnx(m, (R(4, 64),))
    g = load_onnx(proto, None)
    cal = {names[0]: (R(256, 64) ** 5).numpy()}  # heavy tails: the best threshold clips
    ranges = calibrate(g, cal, "mse")
    relu = [k for k, r in ranges.items() if r.nonnegative]
    assert len(relu) == 1
    with statistics_precision():  # as calibrate runs the graph, batch by batch
        x = np.concatenate([run_graph(g, {names[0]: cal[names[0]][b:b + 4]}, outputs=relu)[relu[0]].reshape(-1)
                            for b in range(0, 256, 4)])
    assert ranges[relu[0]].amax == mse_threshold(x, unsigned=False) != mse_threshold(x, unsigned=True)
    with pytest.raises(CompileError, match="calibration-method"):
        compile_model(proto, dtype="bf16", calibration_method="entropy")


def test_residual_add_relu_fused():
    report = []
    got, ref, stats, exe = run_module(Fn(lambda x, y: torch.relu(x + y)), R(2, 64, 9, 9), R(2, 64, 9, 9),
                                      fallback="none", report=report)
    assert np.abs(got - ref).max() == 0
    assert [r[1] for r in report] == ["Add"]  # one kernel: the Relu rides on the Add


def test_floor_ceil_sign():
    x = R(4, 300) * 5
    x[0, :4] = torch.tensor([2.5, -2.5, 3.0, -0.0])  # ties and integers
    check(lambda x: torch.floor(x) + 0.5 * torch.ceil(x) + 0.25 * torch.sign(x), x)


def test_variadic_reductions_and_tile():
    """ONNX Sum/Mean/Max/Min of three inputs become chains of binary ops; Tile copies in one pass."""
    import onnx
    from onnx import TensorProto, helper
    from infsim import runtime
    from infsim.compiler import compile_model
    xs = [np.random.default_rng(i).standard_normal((3, 40)).astype(np.float32) for i in range(3)]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3, 40]) for n in "abc"]
    outs, nodes = [], []
    for op in ("Sum", "Mean", "Max", "Min"):
        nodes.append(helper.make_node(op, ["a", "b", "c"], [op.lower()]))
        outs.append(helper.make_tensor_value_info(op.lower(), TensorProto.FLOAT, [3, 40]))
    nodes.append(helper.make_node("ReduceProd", ["a"], ["prod"], axes=[1], keepdims=0))
    outs.append(helper.make_tensor_value_info("prod", TensorProto.FLOAT, [3]))
    reps = helper.make_tensor("reps", TensorProto.INT64, [2], [2, 3])
    nodes.append(helper.make_node("Tile", ["a", "reps"], ["tile"]))
    outs.append(helper.make_tensor_value_info("tile", TensorProto.FLOAT, [6, 120]))
    model = helper.make_model(helper.make_graph(nodes, "g", vi, outs, initializer=[reps]),
                              opset_imports=[helper.make_opsetid("", 13)])
    exe = compile_model(model, dtype="fp32", fallback="none")
    got, _ = runtime.run(exe, dict(zip("abc", xs)))
    a, b, c = xs
    np.testing.assert_allclose(got["sum"], a + b + c, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got["mean"], (a + b + c) / 3, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got["max"], np.maximum(np.maximum(a, b), c))
    np.testing.assert_array_equal(got["min"], np.minimum(np.minimum(a, b), c))
    np.testing.assert_allclose(got["prod"], a.prod(1), rtol=1e-5)
    np.testing.assert_array_equal(got["tile"], np.tile(a, (2, 3)))


def test_each_kernel_finds_the_whole_sbuf_in_one_piece():
    """Kernels plan their tiles for the largest free range: buffers of the kernel before
    (freed) must not leave it split (a pose-net ConvTranspose once failed on that)."""
    from infsim.compiler.emitter import SbufAllocator
    sb = SbufAllocator(98304)
    for kernel_sizes in ([35000, 64], [16, 65536, 20000], [98304], [64, 64, 98304 - 128]):
        sb.next_kernel()
        assert sb.available() == 98304
        addrs = [(sb.alloc(n), n) for n in kernel_sizes]
        for a, n in addrs:
            sb.free(a, n)
