"""FP8 dtypes and stochastic rounding, end to end on the simulated chip.

A process simulates one chip configuration and the test session's is inf1,
so every run here goes to a worker process of its configuration (inf2, or a
YAML file with stochastic rounding on); nothing here makes this process's
chip anything other than inf1.
"""
import numpy as np
import pytest

from infsim import _infsim
from infsim.runtime import solo
from infsim.program import ProgramBuilder

rng = np.random.default_rng(8)


def run_in_worker(h: ProgramBuilder, config: str):
    """ProgramBuilder.run, always in `config`'s worker process."""
    exe = h.finish()
    raw = {k: v.tobytes() for k, v in h.inputs.items()}
    r = solo._worker(("inf1.xlarge", config)).apply(solo._run_in_worker,
                                                      (exe.serialize(), raw, config, False, "inf1.xlarge"))
    shapes = {t["name"]: t["shape"] for t in exe.tensors}
    return {n: np.frombuffer(r["outputs"][n], np.float32).reshape(shapes[n]) for n in h.outputs}, r


# ------------------------------------------------------------ FP8 reference

def fp8_values(exp_bits):
    """Every finite non-negative value of the format, by magnitude pattern."""
    man = 7 - exp_bits
    bias = 2 ** (exp_bits - 1) - 1
    max_pattern = (((1 << exp_bits) - 1) << man) - 1 if exp_bits == 5 else 0x7E
    vals = []
    for p in range(max_pattern + 1):
        e, m = p >> man, p & ((1 << man) - 1)
        vals.append(m * 2.0 ** (1 - bias - man) if e == 0 else (1 + m / 2 ** man) * 2.0 ** (e - bias))
    return np.array(vals)


def fp8_round(x, exp_bits):
    """FP32 -> FP8 -> FP32 by enumeration: nearest value, ties to the even
    pattern; E5M2 overflows to Inf (Inf stands at 2^16), E4M3 saturates at 448."""
    vals = fp8_values(exp_bits)
    ieee = exp_bits == 5
    beyond = 2.0 ** (2 ** (exp_bits - 1))
    ext = np.append(vals, beyond if ieee else np.inf)
    x = np.asarray(x, np.float32)
    a = np.abs(x.astype(np.float64))
    finite = np.isfinite(a)
    af = np.where(finite, a, 0.0)
    lo = np.searchsorted(vals, af, side="right") - 1
    lo_v, hi_v = vals[lo], ext[lo + 1]
    dl, dh = af - lo_v, hi_v - af
    r = np.where((dh < dl) | ((dh == dl) & (lo % 2 == 1)), hi_v, lo_v)
    if ieee:
        r[r == beyond] = np.inf
    r = np.where(np.isinf(a), np.inf if ieee else vals[-1], r)
    r = np.where(np.isnan(a), np.nan, r)
    return np.copysign(r, x).astype(np.float32)


def test_reference_matches_known_values():
    assert fp8_values(4)[-1] == 448 and fp8_values(5)[-1] == 57344
    np.testing.assert_array_equal(fp8_round([1.0625, 1.1875, 464.0, -1e9, np.inf], 4),
                                  [1.0, 1.25, 448.0, -448.0, 448.0])
    np.testing.assert_array_equal(fp8_round([1.125, 61439.0, 61440.0, -np.inf, 2.0 ** -17], 5),
                                  [1.0, 57344.0, np.inf, -np.inf, 0.0])


def fp8_inputs(p, f):
    """Values over both formats' ranges (normal, subnormal, ties, overflow)."""
    a = (rng.standard_normal((p, f)) * np.exp2(rng.integers(-18, 17, (p, f)))).astype(np.float32)
    edges = [0.0, -0.0, 448.0, 464.0, 480.0, -500.0, 57344.0, 61440.0, -70000.0, 1e30, np.inf, -np.inf, np.nan,
             2.0 ** -9, 2.0 ** -10, 3 * 2.0 ** -10, 2.0 ** -16, 2.0 ** -17, 3 * 2.0 ** -17, 1.0625, 1.125, 1.375]
    a.flat[:len(edges)] = edges
    # Exact midpoints between consecutive FP8 values of both formats.
    for e, base in ((4, len(edges)), (5, len(edges) + 126)):
        v = fp8_values(e)
        mids = ((v[:-1] + v[1:]) / 2).astype(np.float32)
        a.flat[base:base + len(mids)] = mids
    return a


# ------------------------------------------------------------------- tests

def test_fp8_dma_and_engine_casts_on_inf2():
    """DMA casts FP32 -> FP8 (RNE) into SBUF; engines widen FP8 exactly and
    narrow FP32 to FP8; DMA widens FP8 back to FP32 on the way out."""
    p, f = 8, 128
    a = fp8_inputs(p, f)
    h = ProgramBuilder()
    x43 = h.input("a43", a, dtype="fp8_e4m3")  # DMA cast
    x52 = h.input("a52", a, dtype="fp8_e5m2")
    x32 = h.input("a32", a)
    w43, w52 = h.alloc(p, f), h.alloc(p, f)
    n43, n52 = h.alloc(p, f, "fp8_e4m3"), h.alloc(p, f, "fp8_e5m2")
    h.emit("vector", "tensor_copy", {"src": x43, "dst": w43})  # engine widening
    h.emit("vector", "tensor_copy", {"src": x32, "dst": n43})  # engine narrowing
    h.emit("scalar", "tensor_copy", {"src": x52, "dst": w52})
    h.emit("scalar", "tensor_copy", {"src": x32, "dst": n52})
    h.output("dma43", w43, "vector")
    h.output("eng43", n43, "vector")  # DMA widening
    h.output("dma52", w52, "scalar")
    h.output("eng52", n52, "scalar")
    h.exe.metadata_json = '{"target": "inf2"}'
    got, _ = run_in_worker(h, "inf2")
    ref43, ref52 = fp8_round(a, 4), fp8_round(a, 5)
    for name, ref in (("dma43", ref43), ("eng43", ref43), ("dma52", ref52), ("eng52", ref52)):
        np.testing.assert_array_equal(got[name], ref, err_msg=name)
        # Signs of zeros too.
        np.testing.assert_array_equal(np.signbit(got[name]), np.signbit(ref), err_msg=name)


def test_fp8_rejected_on_inf1():
    h = ProgramBuilder()
    x = h.input("a", np.ones((4, 16), np.float32), dtype="fp8_e5m2")
    out = h.alloc(4, 16)
    h.emit("vector", "tensor_copy", {"src": x, "dst": out})
    h.output("y", out, "vector")
    exe = h.finish()
    with pytest.raises(_infsim.FormatError, match=r"dma descriptor 0 dst: dtype fp8_e5m2 needs a device with FP8"):
        exe.validate("inf1")
    exe.validate("inf2")
    # An engine operand alone is refused too.
    h = ProgramBuilder()
    x = h.input("a", np.ones((4, 16), np.float32))
    out = h.alloc(4, 16, "fp8_e4m3")
    h.emit("vector", "tensor_copy", {"src": x, "dst": out})
    exe = h.finish()
    with pytest.raises(_infsim.FormatError, match=r"vector instruction 0 \(tensor_copy\) dst: dtype fp8_e4m3"):
        exe.validate("inf1")
    # And a run fails before touching the device (inf1 is the session's chip).
    if _infsim.can_run_here("inf1"):
        with pytest.raises(_infsim.FormatError, match="FP8"):
            _infsim.run(exe, {"a": np.ones((4, 16), np.float32).tobytes()}, "inf1")


def test_fp8_config_parameter():
    assert _infsim.config("inf1")["fp8"] == "0"
    assert _infsim.config("inf2")["fp8"] == "1"
    schema = {p["name"]: p for p in _infsim.param_schema()}
    for name in ("fp8", "stochastic_rounding", "rounding_seed"):
        assert schema[name]["default"] == "0"
    assert "public" in schema["fp8"]["description"]
    assert "assumption" in schema["stochastic_rounding"]["description"]


def sr_program(n_parts=128, free=256):
    """FP32 values a quarter of the way between two BF16 neighbours, cast to
    BF16 by a DMA and by the vector engine, and to FP8 E5M2 by the scalar engine."""
    h = ProgramBuilder()
    a = np.full((n_parts, free), 1.0 + 2.0 ** -9, np.float32)  # 1 + ulp/4 in BF16 (ulp 2^-7)
    a[:, free // 2:] = -3.375  # exact in BF16; 3/4 of the way from -3 to -3.5 in E5M2
    xb = h.input("ab", a, dtype="bf16")
    x = h.input("a", a)
    vb = h.alloc(n_parts, free, "bf16")
    s8 = h.alloc(n_parts, free, "fp8_e5m2")
    wb, w8 = h.alloc(n_parts, free), h.alloc(n_parts, free)
    h.emit("vector", "tensor_copy", {"src": x, "dst": vb})
    h.emit("scalar", "tensor_copy", {"src": x, "dst": s8})
    h.output("dma_bf16", xb, "vector")
    h.output("vec_bf16", vb, "vector")
    h.output("sca_e5m2", s8, "scalar")
    return h, a


def test_stochastic_rounding_is_unbiased_and_deterministic(tmp_path):
    cfg = "name: sr\nfp8: 1\nstochastic_rounding: 1\nrounding_seed: 12345\n"
    paths = [tmp_path / "sr_a.yaml", tmp_path / "sr_b.yaml"]
    for p in paths:
        p.write_text(cfg)
    h, a = sr_program()
    got, _ = run_in_worker(h, str(paths[0]))
    again, _ = run_in_worker(sr_program()[0], str(paths[0]))  # same process: generators reset per run
    other, _ = run_in_worker(sr_program()[0], str(paths[1]))  # another process
    for name in got:
        np.testing.assert_array_equal(got[name], again[name], err_msg=name)
        np.testing.assert_array_equal(got[name], other[name], err_msg=name)

    half = a.shape[1] // 2
    n = a[:, :half].size
    sd = np.sqrt(0.25 * 0.75 / n)
    for name in ("dma_bf16", "vec_bf16"):
        y = got[name][:, :half]
        assert set(np.unique(y)) <= {np.float32(1.0), np.float32(1.0078125)}, name
        assert abs(np.mean(y == np.float32(1.0078125)) - 0.25) < 5 * sd, name
        np.testing.assert_array_equal(got[name][:, half:], -3.375)  # exact in BF16: never moves
    # E5M2 steps: 1 -> 1.25 (1 + 2^-9 rounds up with probability 2^-9 / 2^-2),
    # -3 -> -3.5 (-3.375 goes to -3.5 with probability 3/4).
    y = got["sca_e5m2"]
    assert set(np.unique(y[:, :half])) <= {np.float32(1.0), np.float32(1.25)}
    assert set(np.unique(y[:, half:])) <= {np.float32(-3.0), np.float32(-3.5)}
    assert abs(np.mean(y[:, half:] == -3.5) - 0.75) < 5 * sd
    assert abs(np.mean(y[:, :half] == 1.25) - 2.0 ** -7) < 5 * np.sqrt(2.0 ** -7 / n)
    # Writers draw from their own streams: the DMA's and the vector engine's bits differ.
    assert not np.array_equal(got["dma_bf16"], got["vec_bf16"])


def test_round_to_nearest_even_is_the_default():
    """The same program on a configuration without stochastic rounding gives RNE."""
    h, a = sr_program(8, 64)
    got, _ = run_in_worker(h, "inf2")
    half = a.shape[1] // 2
    np.testing.assert_array_equal(got["dma_bf16"][:, :half], 1.0)
    np.testing.assert_array_equal(got["vec_bf16"][:, :half], 1.0)
    np.testing.assert_array_equal(got["sca_e5m2"][:, half:], -3.5)
    np.testing.assert_array_equal(got["sca_e5m2"][:, :half], 1.0)
