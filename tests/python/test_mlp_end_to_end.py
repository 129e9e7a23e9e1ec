"""Models compiled to .infx files and run in a separate `infsim run` process,
compared with PyTorch FP32 on the CPU."""
import json

import numpy as np
import pytest
import torch

import mlp
from conftest import cli
from helpers import assert_close, cosine, export


def compile_and_run(tmp_path, module, x, dtype="bf16", extra=()):
    onnx_path = export(module, x, tmp_path / "m.onnx")
    exe = tmp_path / "m.infx"
    cli("compile", onnx_path, "-o", exe, "--dtype", dtype, *extra)
    np.savez(tmp_path / "in.npz", x=x.numpy())
    cli("run", exe, "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "out.npz",
        "--stats", tmp_path / "stats.json")
    with np.load(tmp_path / "out.npz") as z:
        got = z["y"]
    with open(tmp_path / "stats.json") as f:
        stats = json.load(f)
    with torch.no_grad():
        ref = module(x).numpy()
    return got, ref, stats


def test_reference_mlp_bf16(tmp_path):
    model = mlp.build()
    x = mlp.example_input(8)
    got, ref, stats = compile_and_run(tmp_path, model, x)
    assert got.shape == (8, 10)
    assert_close(got, ref, "bf16")
    assert cosine(got, ref) > 0.9999
    assert (got.argmax(1) == ref.argmax(1)).all()
    assert stats["total_cycles"] > 0 and stats["simulated_seconds"] > 0
    core = stats["counters"]["chip0"]["core0"]
    # 784*512 + 512*256 + 256*10 multiply-accumulates per sample.
    assert core["tensor"]["macs"] == 8 * (784 * 512 + 512 * 256 + 256 * 10)
    for engine in ("tensor", "vector", "scalar", "dma0", "dma1", "dma2", "dma3"):
        assert core[engine]["instructions"] > 0
        assert core[engine]["busy_cycles"] > 0
    d = stats["derived"]
    assert d["chip0.core0.tensor.tflops"] == pytest.approx(2 * core["tensor"]["macs"] / stats["simulated_seconds"] / 1e12)
    assert 0 < d["chip0.core0.tensor.utilization"] < 1
    assert d["chip0.dram.channel0.gb_per_s"] > 0
    # Every weight byte (bf16) crosses a load queue once, with the input and the biases.
    weights = 2 * (784 * 512 + 512 * 256 + 256 * 10)
    loaded = sum(core[q]["bytes"] for q in ("dma0", "dma1", "dma3"))
    assert weights <= loaded <= weights + 8 * 784 * 4 + 128 * 4 * (512 + 256 + 10)


@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_mlp_other_dtypes(tmp_path, dtype):
    model = mlp.build((64, 96, 10))
    x = mlp.example_input(4, 64)
    got, ref, _ = compile_and_run(tmp_path, model, x, dtype)
    assert_close(got, ref, dtype)


@pytest.mark.parametrize("sizes,batch", [
    ((100, 70, 33), 5),          # nothing a multiple of a tile
    ((1000, 1500, 7), 3),        # weight ring wraps many times, 6 column groups
    ((130, 65, 1), 1),           # one partition over, one column over
    ((40, 300, 20), 600),        # batch over one PSUM bank: two batch tiles
])
def test_mlp_shapes(tmp_path, sizes, batch):
    model = mlp.build(sizes, seed=3)
    x = mlp.example_input(batch, sizes[0], seed=4)
    got, ref, _ = compile_and_run(tmp_path, model, x)
    assert_close(got, ref, "bf16")


def test_dynamic_batch_fixed_by_flag(tmp_path):
    model = mlp.build((20, 10))
    x = mlp.example_input(2, 20)
    onnx_path = export(model, x, tmp_path / "d.onnx", dynamic_batch=True)
    p = cli("compile", onnx_path, "-o", tmp_path / "d.infx", check=False)
    assert p.returncode == 1
    assert "dynamic dimension" in p.stderr and "'x'" in p.stderr and "--batch" in p.stderr
    cli("compile", onnx_path, "-o", tmp_path / "d.infx", "--batch", "6")
    np.savez(tmp_path / "in.npz", x=mlp.example_input(6, 20).numpy())
    cli("run", tmp_path / "d.infx", "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "o.npz")


def test_determinism_across_processes(tmp_path):
    model = mlp.build((50, 40, 5))
    x = mlp.example_input(3, 50)
    got1, _, s1 = compile_and_run(tmp_path, model, x)
    got2, _, s2 = compile_and_run(tmp_path, model, x)
    assert s1["total_cycles"] == s2["total_cycles"]
    assert s1["counters"] == s2["counters"]
    assert got1.tobytes() == got2.tobytes()
