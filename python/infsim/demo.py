"""`infsim demo`: the bundled MLP compiled, run from its executable file, and
compared with PyTorch FP32 on the CPU."""
import os
import sys
import time

import numpy as np

from . import runtime
from .compiler import compile_model

MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models")


def run_demo(out_dir="out", dtype="bf16", batch=8):
    sys.path.insert(0, os.path.abspath(MODELS_DIR))
    import mlp
    import torch

    os.makedirs(out_dir, exist_ok=True)
    model = mlp.build()
    x = mlp.example_input(batch)
    onnx_path = os.path.join(out_dir, "mlp.onnx")
    exe_path = os.path.join(out_dir, "mlp.infx")
    torch.onnx.export(model, (x,), onnx_path, input_names=["x"], output_names=["logits"], opset_version=13)

    t0 = time.perf_counter()
    compile_model(onnx_path, "inf1", dtype).save(exe_path)
    t1 = time.perf_counter()
    outputs, stats = runtime.run(runtime.load(exe_path), {"x": x.numpy()})
    t2 = time.perf_counter()
    with torch.no_grad():
        ref = model(x).numpy()
    got = outputs["logits"]

    print(f"MLP 784-512-256-10, batch {batch}, {dtype} on one simulated inf1 NeuronCore")
    print(f"{'sample':>6}  {'argmax sim/cpu':>14}  first 4 logits: simulator | PyTorch FP32 CPU")
    for i in range(batch):
        s = " ".join(f"{v:8.4f}" for v in got[i, :4])
        r = " ".join(f"{v:8.4f}" for v in ref[i, :4])
        print(f"{i:>6}  {got[i].argmax():>6}/{ref[i].argmax():<7}  {s} | {r}")
    err = np.abs(got - ref)
    cos = float(np.dot(got.ravel(), ref.ravel()) / (np.linalg.norm(got) * np.linalg.norm(ref)))
    print(f"max abs error {err.max():.3e}, max rel error {(err / np.maximum(np.abs(ref), 1e-3)).max():.3e}, "
          f"cosine similarity {cos:.6f}")
    print(f"simulated: {stats['total_cycles']} cycles = {stats['simulated_seconds'] * 1e6:.2f} us at "
          f"{runtime.metadata(runtime.load(exe_path))['target_name']} clock; compile {t1 - t0:.2f} s, "
          f"simulate {t2 - t1:.2f} s wall")
    return 0
