"""Each instruction's semantics against a NumPy reference (FP32 arithmetic,
the ISA's orders and roundings), bit for bit unless stated."""
import math

import numpy as np
import pytest

from infsim import _infsim
from infsim.isa import AP, dram, onchip, psum
from infsim.program import ProgramBuilder as Harness

rng = np.random.default_rng(42)


def rand(p, f, scale=1.0):
    return (rng.standard_normal((p, f)) * scale).astype(np.float32)


def bf16(a):
    """FP32 -> BF16 -> FP32 with round-to-nearest-even."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return r.astype(np.uint32).view(np.float32)


ALU = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "max": np.fmax, "min": np.fmin,
    "eq": lambda a, b: (a == b).astype(np.float32), "ne": lambda a, b: (a != b).astype(np.float32),
    "lt": lambda a, b: (a < b).astype(np.float32), "le": lambda a, b: (a <= b).astype(np.float32),
    "gt": lambda a, b: (a > b).astype(np.float32), "ge": lambda a, b: (a >= b).astype(np.float32),
    "bitwise_and": lambda a, b: (np.rint(a).astype(np.int32) & np.rint(b).astype(np.int32)).astype(np.float32),
    "bitwise_or": lambda a, b: (np.rint(a).astype(np.int32) | np.rint(b).astype(np.int32)).astype(np.float32),
    "bitwise_xor": lambda a, b: (np.rint(a).astype(np.int32) ^ np.rint(b).astype(np.int32)).astype(np.float32),
    "bypass": lambda a, b: a,
}


@pytest.mark.parametrize("op", sorted(ALU))
def test_tensor_tensor(op):
    h = Harness()
    a, b = rand(16, 40, 8), rand(16, 40, 8)
    b[:, :5] = a[:, :5]  # some equal pairs for the comparisons
    x, y = h.input("a", a), h.input("b", b)
    out = h.alloc(16, 40)
    h.emit("vector", "tensor_tensor", {"op": op, "in0": x, "in1": y, "dst": out})
    h.output("y", out, "vector")
    got, _ = h.run()
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_array_equal(got["y"], ALU[op](a, b))


@pytest.mark.parametrize("op0,op1", [("mul", "add"), ("sub", "max"), ("div", "bypass"), ("ge", "mul")])
def test_tensor_scalar(op0, op1):
    h = Harness()
    a = rand(8, 33)
    col = rand(8, 1)
    x, c = h.input("a", a), h.input("c", col)
    out = h.alloc(8, 33)
    h.emit("vector", "tensor_scalar", {"op0": op0, "op1": op1, "src": x, "dst": out, "imm0": 0.0, "imm1": 1.5,
                                       "col0": c})
    h.output("y", out, "vector")
    got, _ = h.run()
    np.testing.assert_array_equal(got["y"], ALU[op1](ALU[op0](a, col), np.float32(1.5)))


@pytest.mark.parametrize("op", ["add", "max", "min", "mul"])
def test_tensor_reduce(op):
    h = Harness()
    a = rand(4, 24)
    x = h.input("a", a)
    src = AP("sbuf", 0, 4, x.offset, "fp32", ((4, 6), (6, 1)))  # [4, 4x6]: reduce the inner 6
    out = h.alloc(4, 4)
    h.emit("vector", "tensor_reduce", {"op": op, "axes": 1, "src": src, "dst": out})
    h.output("y", out, "vector")
    got, _ = h.run()
    ref = a.reshape(4, 4, 6)
    acc = ref[..., 0].copy()
    for i in range(1, 6):  # in order, FP32
        acc = ALU[op](acc, ref[..., i])
    np.testing.assert_array_equal(got["y"], acc)


def test_tensor_copy_casts_and_transposes_through_patterns():
    h = Harness()
    a = rand(8, 12, 100)
    x = h.input("a", a)
    mid = h.alloc(8, 12, "bf16")
    h.emit("vector", "tensor_copy", {"src": x, "dst": mid})
    back = h.alloc(8, 12)
    # Reversed free order: step -1 from the last element.
    rev = AP("sbuf", 0, 8, mid.offset + 11 * 2, "bf16", ((12, -1),))
    h.prog.emit("scalar", "tensor_copy", {"src": rev, "dst": back}, waits=[("done_vector", 1)], signal="done_scalar")
    h.output("y", back, "scalar")
    got, _ = h.run()
    np.testing.assert_array_equal(got["y"], bf16(a)[:, ::-1])


def test_transpose_32x32():
    h = Harness()
    a = rand(20, 32)
    x = h.input("a", a)
    out = h.alloc(32, 20)
    h.emit("vector", "transpose", {"src": x, "dst": out})
    h.output("y", out, "vector")
    got, _ = h.run()
    np.testing.assert_array_equal(got["y"], a.T)


def welford(row):
    mean, m2 = np.float32(0), np.float32(0)
    for i, v in enumerate(row):
        d = np.float32(v - mean)
        mean = np.float32(mean + np.float32(d / np.float32(i + 1)))
        m2 = np.float32(m2 + np.float32(d * np.float32(v - mean)))
    return np.float32(len(row)), mean, np.float32(m2 / np.float32(len(row)))


def test_bn_stats_and_aggr():
    h = Harness()
    a = rand(4, 64, 3) + 5
    x = h.input("a", a)
    halves = [AP("sbuf", 0, 4, x.offset + k * 32 * 4, "fp32", ((32, 1),)) for k in range(2)]
    stats = h.alloc(4, 6)
    for k in range(2):
        h.emit("vector", "bn_stats", {"src": halves[k],
                                      "dst": AP("sbuf", 0, 4, stats.offset + k * 12, "fp32", ((3, 1),))})
    agg = h.alloc(4, 2)
    h.emit("vector", "bn_aggr", {"src": stats, "dst": agg})
    h.output("stats", stats, "vector")
    h.output("agg", agg, "vector")
    got, _ = h.run()
    for p in range(4):
        s0, s1 = welford(a[p, :32]), welford(a[p, 32:])
        np.testing.assert_array_equal(got["stats"][p], np.array(s0 + s1, np.float32))
    np.testing.assert_allclose(got["agg"][:, 0], a.astype(np.float64).mean(1), rtol=1e-6)
    np.testing.assert_allclose(got["agg"][:, 1], a.astype(np.float64).var(1), rtol=1e-5)


def test_select_memset_iota_reciprocal():
    h = Harness()
    pred = (rand(8, 16) > 0).astype(np.float32)
    a, b = rand(8, 16), rand(8, 16)
    pr, x, y = h.input("p", pred), h.input("a", a), h.input("b", b)
    sel, mem, io, rec = h.alloc(8, 16), h.alloc(8, 16), h.alloc(8, 16, "int32"), h.alloc(8, 16)
    h.emit("vector", "select", {"pred": pr, "in0": x, "in1": y, "dst": sel})
    h.emit("vector", "memset", {"dst": mem, "value": -2.25})
    h.emit("vector", "iota", {"dst": io, "base": 5, "part_mul": 100, "free_mul": -3})
    h.emit("vector", "reciprocal", {"src": x, "dst": rec})
    for name, ap in (("sel", sel), ("mem", mem), ("io", io), ("rec", rec)):
        h.output(name, ap, "vector")
    got, _ = h.run()
    np.testing.assert_array_equal(got["sel"], np.where(pred != 0, a, b))
    np.testing.assert_array_equal(got["mem"], np.full((8, 16), -2.25, np.float32))
    np.testing.assert_array_equal(got["io"], 5 + 100 * np.arange(8)[:, None] - 3 * np.arange(16)[None, :])
    np.testing.assert_array_equal(got["rec"], np.float32(1) / a)


REF = {
    "identity": lambda x: x, "relu": lambda x: np.maximum(x, 0),
    "gelu": lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "tanh": np.tanh, "exp": np.exp,
    "log": np.log, "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x), "silu": lambda x: x / (1 + np.exp(-x)),
    "softplus": lambda x: np.log1p(np.exp(x)), "square": np.square, "reciprocal": lambda x: 1 / x,
}
POSITIVE_ONLY = {"log", "sqrt", "rsqrt"}


@pytest.mark.parametrize("func", sorted(REF))
def test_activation_functions(func):
    h = Harness()
    a = rand(16, 64, 3)
    if func in POSITIVE_ONLY:
        a = np.abs(a) + np.float32(0.01)
    x = h.input("a", a)
    out = h.alloc(16, 64)
    acc = h.alloc(16, 1)
    h.emit("scalar", "activation", {"func": func, "src": x, "dst": out, "scale": 1.0, "accum": acc})
    h.output("y", out, "scalar")
    h.output("acc", acc, "scalar")
    got, _ = h.run()
    ref = REF[func](a.astype(np.float64))
    np.testing.assert_allclose(got["y"], ref, rtol=2e-6, atol=1e-7)
    sums = np.zeros(16, np.float32)
    for i in range(64):  # accumulation in order, FP32
        sums = np.float32(sums + got["y"][:, i])
    np.testing.assert_array_equal(got["acc"][:, 0], sums)


def test_activation_scale_bias_into_bf16():
    h = Harness()
    a, bias = rand(32, 50), rand(32, 1)
    x, b = h.input("a", a), h.input("b", bias)
    out = h.alloc(32, 50, "bf16")
    h.emit("scalar", "activation", {"func": "relu", "src": x, "dst": out, "bias": b, "scale": -0.75})
    back = h.alloc(32, 50)
    h.prog.emit("vector", "tensor_copy", {"src": out, "dst": back}, waits=[("done_scalar", 1)], signal="done_vector")
    h.output("y", back, "vector")
    got, _ = h.run()
    ref = np.maximum(np.float32(a * np.float32(-0.75)) + bias, 0)
    np.testing.assert_array_equal(got["y"], bf16(ref))


@pytest.mark.parametrize("k,m,n", [(128, 64, 512), (5, 3, 7), (100, 64, 1)])
def test_matmul_accumulates_in_order(k, m, n):
    h = Harness()
    w, x = rand(k, m), rand(k, n)
    ws, xs = h.input("w", w, "bf16"), h.input("x", x, "bf16")
    out = AP("psum", 0, m, 0, "fp32", ((n, 1),))
    h.emit("tensor", "load_stationary", {"src": ws})
    h.emit("tensor", "multiply_moving", {"src": xs, "dst": out, "accumulate": 0})
    h.emit("tensor", "multiply_moving", {"src": xs, "dst": out, "accumulate": 1})
    h.output("y", out, "tensor")
    got, _ = h.run()
    wb, xb = bf16(w), bf16(x)
    acc = np.zeros((m, n), np.float32)
    for kk in range(k):  # products exact, sums down the array in FP32 in increasing k
        acc = np.float32(acc + np.outer(wb[kk], xb[kk]).astype(np.float32))
    # PSUM's read-accumulate-write adds the second column sum to the first.
    np.testing.assert_array_equal(got["y"], np.float32(acc + acc))


def gather_program(table, idx):
    h = Harness()
    addr = h.dram_input("table", table)
    index = h.input("idx", idx, dtype="int32")
    out = h.alloc(len(idx), table.shape[1])
    d = h.exe.add_dma(dram(addr, "fp32", table.shape[0], table.shape[1], [(table.shape[1], 1)]), onchip(out))
    h.prog.emit("dma2", "dma_gather", {"desc": d, "index": index}, waits=[("in", h.loaded)], signal="done_dma2")
    h.output("y", out, "dma2")
    return h


def test_dma_gather_embedding_rows():
    table = rand(50, 16)
    idx = np.array([[3], [0], [49], [3], [17]], np.float32)
    got, _ = gather_program(table, idx).run()
    np.testing.assert_array_equal(got["y"], table[idx[:, 0].astype(int)])


def test_dma_gather_index_out_of_range_is_a_device_fault():
    table = rand(10, 4)
    with pytest.raises(_infsim.RunError, match="device fault.*dma2.*gather index 10"):
        gather_program(table, np.array([[1], [10]], np.float32)).run()
    # The chip is usable again after the fault.
    got, _ = gather_program(table, np.array([[9], [0]], np.float32)).run()
    np.testing.assert_array_equal(got["y"], table[[9, 0]])


def test_matmul_int8_accumulates_exactly_in_int32():
    h = Harness()
    w = rng.integers(-128, 128, (128, 64)).astype(np.float32)
    x = rng.integers(-128, 128, (128, 300)).astype(np.float32)
    ws, xs = h.input("w", w, "int8"), h.input("x", x, "int8")
    acc = AP("psum", 0, 64, 0, "int32", ((300, 1),))
    h.emit("tensor", "load_stationary", {"src": ws})
    for i in range(3):
        h.emit("tensor", "multiply_moving", {"src": xs, "dst": acc, "accumulate": int(i > 0)})
    out = h.alloc(64, 300)  # int32 -> fp32 copy: |values| < 2^24 here
    h.prog.emit("vector", "tensor_copy", {"src": acc, "dst": out}, waits=[("done_tensor", 4)], signal="done_vector")
    h.output("y", out, "vector")
    got, r = h.run()
    np.testing.assert_array_equal(got["y"], 3 * (w.astype(np.int64).T @ x.astype(np.int64)))


def test_matmul_fp32_rounds_products():
    h = Harness()
    w, x = rand(16, 8), rand(16, 20)
    ws, xs = h.input("w", w), h.input("x", x)
    out = AP("psum", 0, 8, 0, "fp32", ((20, 1),))
    h.emit("tensor", "load_stationary", {"src": ws})
    h.emit("tensor", "multiply_moving", {"src": xs, "dst": out, "accumulate": 0})
    h.output("y", out, "tensor")
    got, _ = h.run()
    acc = np.zeros((8, 20), np.float32)
    for k in range(16):
        acc = np.float32(acc + np.float32(np.outer(w[k], x[k])))
    np.testing.assert_array_equal(got["y"], acc)


def test_pe_transpose():
    h = Harness()
    a = rand(100, 64)
    x = h.input("a", a, "bf16")
    out = AP("psum", 0, 64, 0, "fp32", ((100, 1),))
    h.emit("tensor", "pe_transpose", {"src": x, "dst": out})
    h.output("y", out, "tensor")
    got, _ = h.run()
    np.testing.assert_array_equal(got["y"], bf16(a).T)


def test_mixed_int8_and_float_operands_fault():
    h = Harness()
    ws, xs = h.input("w", rand(4, 4), "int8"), h.input("x", rand(4, 4), "bf16")
    h.emit("tensor", "load_stationary", {"src": ws})
    h.emit("tensor", "multiply_moving", {"src": xs, "dst": psum(0, 4, 0, [(4, 1)]), "accumulate": 0})
    h.output("y", psum(0, 4, 0, [(4, 1)]), "tensor")
    with pytest.raises(_infsim.RunError, match="device fault.*int8 operands go together"):
        h.run()


def test_engines_run_on_their_own_clocks(tmp_path):
    # The same vector instruction on a chip whose vector engine runs at half
    # the tensor clock: the same count of vector cycles, twice the time.
    cfg = tmp_path / "slow_vector.yaml"
    cfg.write_text("name: slow-vector\nvector_clock_mhz: 488.28125\n")

    def program():
        h = Harness()
        x = h.input("a", rand(8, 500))
        out = h.alloc(8, 500)
        h.emit("vector", "tensor_tensor", {"op": "add", "in0": x, "in1": x, "dst": out})
        h.output("y", out, "vector")
        return h

    _, fast = program().run("inf1")
    _, slow = program().run(str(cfg))
    fast_busy = [c[4] for c in fast["counters"] if c[0] == "chip0.core0.vector" and c[1] == "busy_cycles"][0]
    slow_busy = [c[4] for c in slow["counters"] if c[0] == "chip0.core0.vector" and c[1] == "busy_cycles"][0]
    assert fast_busy == slow_busy == 1000  # 2 cycles per element, own clock
    # 1000 busy + 60 latency vector cycles, each half a vector period longer.
    extra = slow["simulated_seconds"] - fast["simulated_seconds"]
    delta = 1 / 488.28125e6 - 1 / 976.5625e6
    assert 1060 * delta <= extra <= 1060 * delta + 4 / 488.28125e6


def counter(result, path, name):
    return [c[4] for c in result["counters"] if c[0] == path and c[1] == name][0]


def test_vector_and_scalar_share_the_psum_port():
    h = Harness()
    a = h.input("a", rand(16, 500), space="psum")
    b = h.input("b", rand(16, 500))
    v_out, s_out = h.alloc(16, 500), h.alloc(16, 500)
    h.emit("vector", "tensor_tensor", {"op": "add", "in0": a, "in1": b, "dst": v_out})
    h.emit("scalar", "activation", {"func": "identity", "src": a, "dst": s_out, "scale": 1.0})
    h.output("v", v_out, "vector")
    h.output("s", s_out, "scalar")
    _, r = h.run()
    stalls = sorted(counter(r, f"chip0.core0.{e}", "stall_port_cycles") for e in ("vector", "scalar"))
    # Both streams take 500 cycles (one operand in PSUM); the second waits for the first.
    assert stalls == [0, 500]


def test_engine_partition_ranges_follow_the_quadrant_rule():
    h = Harness()
    a = h.input("a", rand(64, 8))
    bad = AP("sbuf", 16, 4, a.offset, "fp32", ((8, 1),))
    h.emit("vector", "tensor_copy", {"src": bad, "dst": h.alloc(4, 8)})
    with pytest.raises(_infsim.FormatError, match="must start at partition 0, 32, 64 or 96"):
        h.run()


def test_cycles_do_not_depend_on_earlier_runs_with_mixed_clocks():
    # inf2's engines run on different clocks; a run's clock edges count from
    # its own start, so the same program takes the same cycles every time.
    def program(n):
        h = Harness()
        x = h.input("a", rand(8, n))
        out = h.alloc(8, n)
        h.emit("vector", "tensor_tensor", {"op": "mul", "in0": x, "in1": x, "dst": out})
        h.prog.emit("scalar", "activation", {"func": "exp", "src": out, "dst": out, "scale": 1.0},
                    waits=[("done_vector", 1)], signal="done_scalar")
        h.output("y", out, "scalar")
        return h

    first = program(300).run("inf2")[1]["total_cycles"]
    program(77).run("inf2")
    again = program(300).run("inf2")[1]["total_cycles"]
    assert first == again


def test_each_run_starts_with_zeroed_sram():
    first = Harness()
    x = first.input("a", rand(4, 8))
    region = first.alloc(128, 256)
    first.emit("vector", "memset", {"dst": region, "value": 7.0})
    first.output("y", AP("sbuf", 0, 1, region.offset, "fp32", ((1, 1),)), "vector")
    assert first.run()[0]["y"][0, 0] == 7.0
    second = Harness()
    second.input("a", rand(4, 8))
    later = second.alloc(128, 256)  # the same place in SBUF, never written by this run
    assert later == region
    second.output("y", later, "vector")
    np.testing.assert_array_equal(second.run()[0]["y"], np.zeros((128, 256), np.float32))
