"""PyTorch reference model -> ONNX ModelProto, with fixed shapes."""
import inspect
import io

import onnx
import torch


def to_onnx(model, example_inputs, opset=13) -> onnx.ModelProto:
    """Exports `model` (eval mode) traced on the tuple `example_inputs`, every dimension
    fixed. Input names are forward's parameter names; outputs are named `output`, or
    output0, output1, ... when there are several. torch folds constants, including
    eval-mode BatchNorm into the preceding Conv (not into ConvTranspose)."""
    model = model.eval()
    example_inputs = tuple(example_inputs)
    input_names = list(inspect.signature(model.forward).parameters)[:len(example_inputs)]
    buf = io.BytesIO()
    torch.onnx.export(model, example_inputs, buf, opset_version=opset, do_constant_folding=True,
                      input_names=input_names)
    proto = onnx.load_from_string(buf.getvalue())
    _rename_outputs(proto.graph)
    return proto


def _rename_outputs(graph):
    """Names the graph outputs output / output0, output1, ... (torch.onnx.export needs the
    count up front, which would cost an extra forward pass to find)."""
    outs = graph.output
    new = {o.name: ("output" if len(outs) == 1 else f"output{i}") for i, o in enumerate(outs)}
    for node in graph.node:
        node.input[:] = [new.get(n, n) for n in node.input]
        node.output[:] = [new.get(n, n) for n in node.output]
    for o in outs:
        o.name = new[o.name]


def input_names(proto) -> list:
    """The model's real inputs, in order (graph inputs that are not initializers)."""
    weights = {t.name for t in proto.graph.initializer}
    return [i.name for i in proto.graph.input if i.name not in weights]
