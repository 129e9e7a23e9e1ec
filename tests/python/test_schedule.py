"""The schedule's decisions change where values live and in what order
images flow, never the values: residency in SBUF, micro-batched stages and
fused attention are checked against the plain schedule (every value in
DRAM), bit for bit where the arithmetic is the same, and for what they save."""
import json
import random

import numpy as np
import pytest
import torch

import models
from infsim import runtime
from infsim.accuracy import CONFIGS, _example
from infsim.compiler import compile_model
from infsim.compiler.residency import ResidentSpace
from models.export import input_names, to_onnx


def _compile_and_run(name, batch, share, dtype="bf16"):
    build_kw, input_kw = CONFIGS["small"][name]
    inputs = _example(models, name, dict(input_kw, batch=batch))
    proto = to_onnx(models.build(name, **build_kw), inputs)
    exe = compile_model(proto, dtype=dtype, fallback="none", resident_share=share)
    feeds = {n: t.numpy() for n, t in zip(input_names(proto), inputs)}
    out, st = runtime.run(exe, feeds)
    return out, st, json.loads(exe.metadata_json)


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2"])
def test_residency_and_micro_batches_give_the_same_bits_with_less_dram(name):
    plain, st0, _ = _compile_and_run(name, 4, 0.0)
    out, st1, meta = _compile_and_run(name, 4, 0.5)
    for k in plain:
        np.testing.assert_array_equal(out[k], plain[k])
    assert meta["resident"]["values"] > 0 and meta["resident"]["split_dmas"] == 0
    assert meta["resident"]["high_water"] <= meta["resident"]["sbuf_bytes"]
    moved = [sum(v["read_bytes"] + v["write_bytes"] for v in s["counters"]["chip0"]["dram"].values())
             for s in (st0, st1)]
    assert moved[1] < moved[0] and st1["total_cycles"] < st0["total_cycles"]


def test_stages_cover_the_graph_once():
    _, _, meta = _compile_and_run("resnet50", 4, 0.5)
    stages = meta["stages"]
    assert stages[0]["nodes"][0] == 0
    for a, b in zip(stages, stages[1:]):
        assert a["nodes"][1] == b["nodes"][0]
    assert all(1 <= s["micro_batch"] <= 4 for s in stages)


def test_attention_is_fused_and_matches_pytorch():
    from infsim.compiler.onnx_import import load_onnx
    from infsim.compiler.passes import optimize
    build_kw, input_kw = CONFIGS["small"]["bert_base"]
    inputs = _example(models, "bert_base", dict(input_kw, batch=2))
    net = models.build("bert_base", **build_kw)
    proto = to_onnx(net, inputs)
    ops = [n.op for n in optimize(load_onnx(proto, None)).nodes]
    assert "Attention" in ops and "Softmax" not in ops
    exe = compile_model(proto, dtype="fp32", fallback="none")
    out, _ = runtime.run(exe, {n: t.numpy() for n, t in zip(input_names(proto), inputs)})
    with torch.no_grad():
        ref = net(*inputs)
    ref = (ref[0] if isinstance(ref, (tuple, list)) else ref).numpy()
    got = list(out.values())[0]
    assert np.abs(got - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


def test_split_dmas_move_every_element_to_its_place():
    """Accesses that are not rows of a resident buffer are split into pieces that are; the
    pieces together move each element exactly where the original transfer would."""
    rng = random.Random(1)
    checked = 0
    for _ in range(300):
        sp = ResidentSpace(0, 1 << 16)
        L, rows = rng.choice([3, 8, 64, 100]), rng.randint(1, 300)
        buf = sp.alloc(rows * L, 2, L, "v")
        pc, n1, n2 = rng.randint(1, 4), rng.randint(1, 5), rng.randint(1, 6)
        s1, s2, ps = rng.choice([1, 2, L, 3]), rng.choice([1, L + 1, 7]), rng.choice([0, L, 5, 2 * L])
        span = (pc - 1) * ps + (n1 - 1) * s1 + (n2 - 1) * s2
        if span >= rows * L:
            continue
        e0 = rng.randint(0, rows * L - 1 - span)
        src = {"loc": "dram", "dtype": "bf16", "address": buf.vbase + 2 * e0, "part_count": pc, "part_step": ps,
               "dims": [(n1, s1), (n2, s2)]}
        dst = {"loc": "dram", "dtype": "bf16", "address": 4096, "part_count": 1, "part_step": 0,
               "dims": [(pc * n1 * n2, 1)]}
        want = list(zip(*sp._places(src)[:2]))
        got = []
        for a, b in sp.split(src, dst):
            assert a["loc"] == "sbuf" and b["loc"] == "dram"
            pa, pb = sp._places(a), sp._places(b)
            got += list(zip(pa[0], pa[1], pb[1]))
        assert [(p, o) for p, o, _ in sorted(got, key=lambda x: x[2])] == want
        checked += 1
    assert checked > 100
