"""ONNX -> graph IR, with shape inference. Shapes are fixed at compile time."""
import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from .ir import CompileError, Graph, Node, Value

SUPPORTED_OPSETS = range(7, 18)


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _dims(vi, what, batch=None):
    t = vi.type.tensor_type
    dims = []
    for i, d in enumerate(t.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(d.dim_value)
        elif i == 0 and batch is not None:
            dims.append(batch)
        else:
            sym = d.dim_param or "?"
            raise CompileError(
                f"{what} '{vi.name}' has a dynamic dimension {i} ('{sym}'): shapes are fixed at compile time; "
                f"export the model with a fixed shape or pass --batch N for a dynamic batch dimension")
    return tuple(dims)


def _without_large_weights(model):
    """A copy for shape inference: large initializers keep their shape and
    type but drop their data (inference needs only the data of small ones,
    such as Reshape targets), so the weights are not copied into the checker."""
    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(model)
    for t in skeleton.graph.initializer:
        if np.prod(t.dims, dtype=np.int64) > 4096:
            t.ClearField("raw_data")
            for field in ("float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
                t.ClearField(field)
    return skeleton


def load_onnx(path_or_model, batch=None) -> Graph:
    """Reads an ONNX model (path or ModelProto). `batch` fixes a dynamic first dimension."""
    try:
        model = onnx.load(path_or_model) if isinstance(path_or_model, str) else path_or_model
    except Exception as e:  # onnx raises DecodeError, OSError, ...
        raise CompileError(f"cannot read ONNX model {path_or_model}: {e}") from None
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset not in SUPPORTED_OPSETS:
        raise CompileError(f"ONNX opset {opset} is not supported (supported: 7..17)")
    g = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    inputs = []
    for vi in g.input:
        if vi.name in constants:
            continue
        elem = vi.type.tensor_type.elem_type
        dtype = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[elem]
        inputs.append(Value(vi.name, _dims(vi, "input", batch), np.dtype(dtype)))
    # Fix the input shapes in the model so inference propagates them.
    for vi in g.input:
        for v in inputs:
            if vi.name == v.name:
                for d, n in zip(vi.type.tensor_type.shape.dim, v.shape):
                    d.ClearField("dim_param")
                    d.dim_value = n
    try:
        inferred = shape_inference.infer_shapes(_without_large_weights(model))
    except Exception as e:
        raise CompileError(f"ONNX shape inference failed: {e}") from None
    values = {v.name: v for v in inputs}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            values[vi.name] = Value(vi.name, tuple(d.dim_value for d in t.shape.dim),
                                    np.dtype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[t.elem_type]))
    nodes = []
    for i, n in enumerate(g.node):
        if n.domain not in ("", "ai.onnx"):
            raise CompileError(f"node '{n.name}' uses custom domain '{n.domain}'")
        attrs = _attrs(n)
        if n.op_type == "Constant":
            constants[n.output[0]] = numpy_helper.to_array(attrs["value"])
            continue
        nodes.append(Node(n.op_type, n.name or f"{n.op_type}_{i}", list(n.input), list(n.output), attrs))
    # Shapes ONNX inference cannot give (e.g. Pad with computed pads) are
    # completed after constant folding (passes.complete_shapes).
    outputs = [values.get(vi.name) or Value(vi.name, None, np.dtype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE.get(
        vi.type.tensor_type.elem_type, np.float32))) for vi in g.output]
    return Graph(inputs, outputs, nodes, constants, values, opset)
