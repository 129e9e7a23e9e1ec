"""Bad input gets a one-line error and a non-zero exit, never a crash."""
import numpy as np
import pytest
import torch

import mlp
from conftest import cli
from helpers import export


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("err")
    model = mlp.build((30, 20, 4))
    x = mlp.example_input(2, 30)
    onnx_path = export(model, x, d / "m.onnx")
    cli("compile", onnx_path, "-o", d / "m.infx")
    np.savez(d / "in.npz", x=x.numpy())
    return d


def one_line_error(p, *needles):
    assert p.returncode == 1, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert "Traceback" not in p.stderr


def run(d, exe, inputs=None):
    return cli("run", exe, "--inputs", inputs or d / "in.npz", "--outputs", d / "o.npz", check=False)


def test_corrupted_executable(built):
    data = bytearray((built / "m.infx").read_bytes())
    for pos in (len(data) // 2, len(data) - 1, 60):
        bad = bytearray(data)
        bad[pos] ^= 0x40
        (built / "bad.infx").write_bytes(bytes(bad))
        one_line_error(run(built, built / "bad.infx"), "corrupted")


def test_truncated_executable(built):
    data = (built / "m.infx").read_bytes()
    for n in (0, 10, 39, 41, len(data) // 3, len(data) - 1):
        (built / "t.infx").write_bytes(data[:n])
        p = run(built, built / "t.infx")
        assert p.returncode == 1 and "Traceback" not in p.stderr
        assert "truncated" in p.stderr or "shorter than" in p.stderr


def test_not_an_executable(built):
    (built / "x.infx").write_bytes(b"hello world" * 10)
    one_line_error(run(built, built / "x.infx"), "not an infsim executable")
    one_line_error(run(built, built / "missing.infx"), "cannot open")


def test_objdump_rejects_corruption(built):
    data = bytearray((built / "m.infx").read_bytes())
    data[-5] ^= 1
    (built / "c.infx").write_bytes(bytes(data))
    one_line_error(cli("objdump", built / "c.infx", check=False), "corrupted")


def test_wrong_inputs(built):
    np.savez(built / "shape.npz", x=np.zeros((2, 31), np.float32))
    one_line_error(run(built, built / "m.infx", built / "shape.npz"), "shape (2, 31)", "(2, 30)")
    np.savez(built / "shape.npz", x=np.zeros((30,), np.float32))
    one_line_error(run(built, built / "m.infx", built / "shape.npz"), "shape (30,)", "(2, 30)")
    # More rows than compiled is a larger batch, run in pieces.
    np.savez(built / "rows.npz", x=np.zeros((3, 30), np.float32))
    assert run(built, built / "m.infx", built / "rows.npz").returncode == 0
    np.savez(built / "name.npz", y=np.zeros((2, 30), np.float32))
    one_line_error(run(built, built / "m.infx", built / "name.npz"), "unknown input 'y'")
    (built / "junk.npz").write_bytes(b"junk")
    one_line_error(run(built, built / "m.infx", built / "junk.npz"), "cannot read inputs")


def test_unknown_config_key(built, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cores: 4\narray_colums: 128\n")
    p = cli("run", built / "m.infx", "--inputs", built / "in.npz", "--outputs", tmp_path / "o.npz",
            "--config", cfg, check=False)
    one_line_error(p, "unknown parameter 'array_colums'")


class Xor(torch.nn.Module):
    def forward(self, x):
        return torch.logical_xor(x > 0, x > 1).float() + 1


def test_unsupported_operator_named(tmp_path):
    onnx_path = export(Xor(), torch.zeros(2, 5), tmp_path / "c.onnx")
    p = cli("compile", onnx_path, "-o", tmp_path / "c.infx", "--fallback", "none", check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "Xor" in p.stderr and "--fallback none" in p.stderr


def test_bad_model_file(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"\x00\x01garbage")
    p = cli("compile", tmp_path / "bad.onnx", "-o", tmp_path / "b.infx", check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr


def test_model_too_large_for_sbuf(tmp_path):
    model = mlp.build((60000, 8))
    x = mlp.example_input(1, 60000)
    # 469 K tiles of the contraction held on chip: beyond a 96 KiB partition.
    onnx_path = export(model, x, tmp_path / "big.onnx")
    p = cli("compile", onnx_path, "-o", tmp_path / "big.infx", "--fallback", "none", check=False)
    assert p.returncode == 1 and "SBUF" in p.stderr and "Traceback" not in p.stderr
