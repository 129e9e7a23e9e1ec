"""`infsim demo`: a bundled reference model (ResNet-50 by default) exported
to ONNX, compiled, written to an executable file, run from that file on the
simulated chip, and compared with PyTorch FP32 on the CPU."""
import os
import time

import numpy as np

from . import runtime
from .accuracy import _example, _models_package, cosine
from .compiler import compile_model

DEFAULT_MODEL = "resnet50"


def run_demo(out_dir="out", dtype="bf16", model_name=DEFAULT_MODEL, batch=None):
    import torch
    models = _models_package()
    from models.export import input_names, to_onnx
    if model_name not in models.MODELS:
        raise ValueError(f"unknown model '{model_name}' (choose from {', '.join(models.MODELS)})")
    os.makedirs(out_dir, exist_ok=True)
    model = models.build(model_name)
    kw = {} if batch is None else {"batch": batch}
    inputs = _example(models, model_name, kw)
    proto = to_onnx(model, inputs)
    onnx_path = os.path.join(out_dir, f"{model_name}.onnx")
    exe_path = os.path.join(out_dir, f"{model_name}.infx")
    with open(onnx_path, "wb") as f:
        f.write(proto.SerializeToString())
    names = input_names(proto)

    report = []
    t0 = time.perf_counter()
    compile_model(onnx_path, "inf1", dtype, report=report).save(exe_path)
    t1 = time.perf_counter()
    exe = runtime.load(exe_path)
    outputs, stats = runtime.run(exe, {n: x.numpy() for n, x in zip(names, inputs)})
    t2 = time.perf_counter()
    with torch.no_grad():
        ref = model(*inputs)
        t3 = time.perf_counter()
    ref = (ref[0] if isinstance(ref, (tuple, list)) else ref).numpy()
    got = list(outputs.values())[0]

    on_host = [r for r in report if r[2] == "host"]
    print(f"{model_name}: inputs {', '.join(f'{n}{list(x.shape)}' for n, x in zip(names, inputs))}, {dtype}, "
          f"one simulated inf1 NeuronCore")
    print(f"compiled {onnx_path} -> {exe_path}: {len(report) - len(on_host)} ops on the device, "
          f"{len(on_host)} on the host")
    if got.ndim == 2 and got.shape[1] > 1:  # classifier: top-5 of each sample
        print(f"{'sample':>6}  top-5 classes: simulator | PyTorch FP32 CPU")
        for i in range(got.shape[0]):
            print(f"{i:>6}  {list(np.argsort(-got[i])[:5])} | {list(np.argsort(-ref[i])[:5])}")
    else:
        print(f"first outputs: simulator {np.round(got.ravel()[:4], 4)} | PyTorch FP32 CPU "
              f"{np.round(ref.ravel()[:4], 4)}")
    err = np.abs(got - ref)
    cos = cosine(got, ref)
    print(f"max abs error {err.max():.3e} ({err.max() / np.abs(ref).max():.2e} of the largest output), "
          f"cosine similarity {cos:.6f}")
    util = stats["derived"].get("chip0.core0.tensor.utilization", 0.0)
    print(f"simulated: {stats['total_cycles']} cycles = {stats['simulated_seconds'] * 1e3:.3f} ms at the "
          f"{runtime.metadata(exe)['target_name']} clock, tensor engine {util:.1%} busy with MACs")
    print(f"wall: compile {t1 - t0:.2f} s, simulate {t2 - t1:.2f} s, PyTorch CPU {t3 - t2:.2f} s")
    return 0
