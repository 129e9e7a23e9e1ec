"""The reference models (reduced variants: same operators, fewer layers and
smaller inputs) compiled entirely onto the device and compared with PyTorch
FP32, at the issue's thresholds. The full-size models run in
`infsim accuracy` and bench/models_bench.py, outside CI."""
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
