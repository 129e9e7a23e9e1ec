"""infsim.trace / CompiledModel / infsim.load, and the ISA's Python view."""
import numpy as np
import pytest
import torch

import infsim
import mlp
from helpers import assert_close
from infsim import _infsim, isa_gen
from infsim.isa import CoreProgram, psum, sbuf


def test_trace_runs_and_matches_torch(tmp_path):
    model = mlp.build((48, 32, 6))
    x = mlp.example_input(4, 48)
    compiled = infsim.trace(model, x)
    y = compiled(x)
    assert isinstance(y, torch.Tensor) and y.shape == (4, 6)
    with torch.no_grad():
        assert_close(y.numpy(), model(x).numpy(), "bf16")
    assert compiled.last_stats["total_cycles"] > 0
    compiled.save(tmp_path / "m.infx")
    again = infsim.load(tmp_path / "m.infx")
    assert np.array_equal(again(x.numpy()), y.numpy())


def test_trace_wrong_arity():
    compiled = infsim.trace(mlp.build((8, 4)), mlp.example_input(2, 8))
    with pytest.raises(TypeError):
        compiled()


def test_python_view_matches_the_assembler():
    # Every opcode of the generated view assembles with its fields named as listed.
    ap = sbuf(0, 4, 0, "bf16", [(8, 1)])
    values = {"u32": 3, "u16": 1, "u3": 1, "u1": 1, "i32": -2, "f32": 0.5, "ap": ap, "enum:alu_op": "max",
              "enum:act_func": "relu"}
    for name, (opcode, engines, fields) in isa_gen.OPCODES.items():
        prog = CoreProgram(0, 8, ["op"])
        prog.emit(engines[0].name, name, {f: values[k] for f, k in fields}, waits=[("a", 2)], signal="b")
        line = prog.streams[engines[0].name][-1]
        word = _infsim.assemble(line)
        assert len(word) == isa_gen.WORD_BYTES
        assert word[0] == opcode
        assert _infsim.disassemble(word) == line


def test_core_program_semaphores():
    prog = CoreProgram(0, 4, ["op"])
    v1 = prog.emit("dma0", "nop", signal="s")
    v2 = prog.emit("dma0", "nop", signal="s")
    assert (v1, v2) == (1, 2)
    with pytest.raises(RuntimeError):
        prog.emit("tensor", "nop", signal="s")  # one producer per semaphore
    prog.emit("tensor", "nop", waits=[("s", 2), ("t", 1), ("u", 1)])  # three waits spill into a nop
    assert len(prog.streams["tensor"]) == 2
    prog.emit("tensor", "nop", waits=[("s", 1)])  # already satisfied: dropped
    assert "wait" not in prog.streams["tensor"][-1]
    with pytest.raises(ValueError):
        prog.emit("dma0", "load_stationary", {"src": psum(0, 1, 0, [(1, 1)])})


def test_other_configuration_runs_in_a_worker_process():
    # This process's chip is inf1 (earlier tests); an inf2 model still runs,
    # in a worker process, with inf2's 128-column array.
    model = mlp.build((48, 200, 6))
    x = mlp.example_input(3, 48)
    compiled = infsim.trace(model, x, target="inf2")
    with torch.no_grad():
        assert_close(compiled(x).numpy(), model(x).numpy(), "bf16")
    assert compiled.last_stats["config"] == "inf2"


def test_run_errors_are_one_class():
    assert infsim.RunError is _infsim.RunError


def test_larger_batches_are_split_into_compiled_batches():
    model = mlp.build((20, 16, 3))
    compiled = infsim.trace(model, mlp.example_input(4, 20))
    x = mlp.example_input(10, 20, seed=9)  # 4 + 4 + 2 (padded) rows
    y = compiled(x)
    with torch.no_grad():
        assert_close(y.numpy(), model(x).numpy(), "bf16")
    assert y.shape == (10, 3)
    assert compiled.last_stats["runs"] == 3
    single = infsim.trace(model, mlp.example_input(4, 20))
    single(x[:4])
    assert compiled.last_stats["total_cycles"] == 3 * single.last_stats["total_cycles"]


def test_timing_only_gives_the_same_cycles_and_counters():
    from infsim import runtime
    model = mlp.build((300, 200, 40))
    compiled = infsim.trace(model, mlp.example_input(16, 300))
    x = {"x": mlp.example_input(16, 300).numpy()}
    _, full = runtime.run(compiled.executable, x)
    _, fast = runtime.run(compiled.executable, x, timing_only=True)
    assert fast["total_cycles"] == full["total_cycles"]
    assert fast["counters"] == full["counters"]


def test_timing_only_keeps_gather_indices_that_engines_compute():
    # iota writes the row numbers a gather then reads: timing-only still computes it.
    from infsim.isa import AP, dram, onchip
    from infsim.program import ProgramBuilder
    import numpy as np

    def program():
        h = ProgramBuilder()
        h.input("a", np.zeros((4, 4), np.float32))
        idx = h.alloc(128, 1, "int32")
        h.emit("vector", "iota", {"dst": idx, "base": 0, "part_mul": 30000, "free_mul": 0})
        out = h.alloc(128, 16)
        d = h.exe.add_dma(dram(1 << 24, "fp32", 1 << 22, 16, [(16, 1)]), onchip(out))
        h.prog.emit("dma2", "dma_gather", {"desc": d, "index": idx}, waits=[("done_vector", 1)], signal="done_dma2")
        h.output("y", AP("sbuf", 0, 1, out.offset, "fp32", ((1, 1),)), "dma2")
        return h.finish(), {k: v.tobytes() for k, v in h.inputs.items()}

    exe, raw = program()
    full = runtime_run(exe, raw, False)
    exe, raw = program()
    fast = runtime_run(exe, raw, True)
    assert fast["total_cycles"] == full["total_cycles"]
    assert [c for c in fast["counters"] if c[0].startswith("chip0.dram")] == \
        [c for c in full["counters"] if c[0].startswith("chip0.dram")]


def runtime_run(exe, raw, timing_only):
    from infsim import runtime
    return runtime.run_raw(exe, raw, "inf1", timing_only)


class XorNet(torch.nn.Module):
    """An op the device has no kernel for (Xor) between two device segments."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(32, 48)
        self.b = torch.nn.Linear(48, 8)

    def forward(self, x):
        h = self.a(x)
        return self.b(torch.logical_xor(h > 0, h > 0.5).float())


def test_bundle_with_host_step_round_trips_through_a_file(tmp_path):
    import infsim
    from conftest import cli
    model = XorNet().eval()
    x = torch.randn(4, 32)
    compiled = infsim.trace(model, x, dtype="fp32")
    assert not isinstance(compiled.executable, infsim._infsim.Executable)  # a bundle
    compiled.save(tmp_path / "m.infx")
    again = infsim.load(tmp_path / "m.infx")
    with torch.no_grad():
        ref = model(x).numpy()
    np.testing.assert_allclose(again(x).numpy(), ref, atol=1e-5)
    assert again.last_stats["host_steps"] == 1 and again.last_stats["total_cycles"] > 0
    np.savez(tmp_path / "in.npz", x=x.numpy())
    cli("run", tmp_path / "m.infx", "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "out.npz")
    with np.load(tmp_path / "out.npz") as z:
        np.testing.assert_allclose(z["output"], ref, atol=1e-5)
    assert "infsim bundle, 3 steps" in cli("objdump", tmp_path / "m.infx").stdout
    assert "valid for inf1" in cli("info", tmp_path / "m.infx").stdout
    data = (tmp_path / "m.infx").read_bytes()
    (tmp_path / "t.infx").write_bytes(data[:len(data) // 2])
    p = cli("run", tmp_path / "t.infx", "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "o.npz",
            check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr and "truncated" in p.stderr
