"""The reference models (reduced variants: same operators, fewer layers and
smaller inputs) compiled entirely onto the device and compared with PyTorch
FP32, at the issue's thresholds. The full-size models run in
`infsim accuracy` and bench/models_bench.py, outside CI."""
import numpy as np
import pytest

from infsim.accuracy import COSINE_MIN, measure

CONV_MODELS = ["resnet50", "mobilenet_v2", "pose_resnet"]


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("name", ["mlp", "bert_base", "gpt2_block"] + CONV_MODELS)
def test_reference_model(name, dtype):
    r = measure(name, dtype, size="small")
    assert r["host_ops"] == [], f"{name}: ops fell back to the host: {r['host_ops']}"
    assert r["cosine"] >= COSINE_MIN[dtype], r
    assert r["cycles"] > 0


@pytest.mark.parametrize("name", ["bert_base", "resnet50"])
def test_reference_model_int8(name):
    r = measure(name, "int8", size="small")
    assert r["cosine"] >= COSINE_MIN["int8"], r


@pytest.mark.parametrize("name", ["bert_base", "resnet50", "mobilenet_v2"])
def test_timing_only_gives_the_same_cycles_and_counters(name):
    """What-if sweeps run timing-only: every cycle and counter must equal the full run's; and a
    second full run gives the same bits and cycles."""
    import models
    from infsim import runtime
    from infsim.accuracy import CONFIGS, _example
    from infsim.compiler import compile_model
    from models.export import to_onnx
    build_kw, input_kw = CONFIGS["small"][name]
    inputs = _example(models, name, input_kw)
    proto = to_onnx(models.build(name, **build_kw), inputs)
    exe = compile_model(proto, fallback="none")
    feeds = {i.name: x.numpy() for i, x in zip(proto.graph.input, inputs)}
    out, full = runtime.run(exe, feeds)
    _, timing = runtime.run(exe, feeds, timing_only=True)
    assert timing["total_cycles"] == full["total_cycles"]
    assert timing["counters"] == full["counters"]
    again, second = runtime.run(exe, feeds)  # determinism: the same bits and cycles every run
    assert second["total_cycles"] == full["total_cycles"]
    assert all(np.array_equal(again[k], out[k]) for k in out)
