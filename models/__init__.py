"""Reference PyTorch models with seeded random weights, for compiler tests and benchmarks.

Each module has build(seed=0, ...) -> eval-mode nn.Module and
example_inputs(batch=1, seed=0, ...) -> tuple of tensors (mlp.py predates the
convention: example_input(batch=8, ...) -> one tensor; use `example_inputs`
below for a uniform interface). export.to_onnx turns one into an ONNX model.
"""
from . import bert_base, gpt2_block, mlp, mobilenet_v2, pose_resnet, resnet50

# name -> (module, default example inputs)
MODELS = {
    "resnet50": (resnet50, "x: float32[1, 3, 224, 224] image"),
    "mobilenet_v2": (mobilenet_v2, "x: float32[1, 3, 224, 224] image"),
    "bert_base": (bert_base, "input_ids, token_type_ids, attention_mask: int64[1, 128]"),
    "pose_resnet": (pose_resnet, "x: float32[1, 3, 256, 192] image"),
    "gpt2_block": (gpt2_block, "hidden_states: float32[1, 128, 768]"),
    "mlp": (mlp, "x: float32[8, 784]"),
}


def build(name, **kwargs):
    """The eval-mode model `name` with seeded random weights (kwargs go to its build)."""
    return MODELS[name][0].build(**kwargs)


def example_inputs(name, **kwargs):
    """The tuple of example input tensors for model `name` (kwargs go to its example_inputs)."""
    module = MODELS[name][0]
    if hasattr(module, "example_inputs"):
        return module.example_inputs(**kwargs)
    return (module.example_input(**kwargs),)
