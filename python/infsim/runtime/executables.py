"""Reading executables and bundles, and moving numpy arrays in and out of
their tensors' raw bytes."""
import json

import numpy as np

from .. import _infsim

NUMPY_OF = {"fp32": np.float32, "fp16": np.float16, "int8": np.int8, "int32": np.int32}

# Bad inputs or a failed run (device fault, timeout); the message says which.
RunError = _infsim.RunError


def load(path: str):
    """An executable, or a bundle (device executables and host steps) by its magic."""
    from ..bundle import MAGIC, Bundle
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise RunError(f"cannot open {path}: {e.strerror}") from None
    if head == MAGIC:
        with open(path, "rb") as f:
            return Bundle.deserialize(f.read())
    return _infsim.Executable.load(path)


def metadata(exe) -> dict:
    return json.loads(exe.metadata_json)


def to_bytes(name, arr, spec) -> bytes:
    if spec["dtype"] not in NUMPY_OF:
        raise RunError(f"input '{name}': device dtype {spec['dtype']} cannot be fed from the host")
    a = np.asarray(arr)
    if tuple(a.shape) != tuple(spec["shape"]):
        raise RunError(f"input '{name}': shape {tuple(a.shape)} does not match the compiled shape "
                       f"{tuple(spec['shape'])}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
        raise RunError(f"input '{name}': dtype {a.dtype} is not numeric")
    return np.ascontiguousarray(a, dtype=NUMPY_OF[spec["dtype"]]).tobytes()


def unpack(raw_outputs, specs):
    return {name: np.frombuffer(data, dtype=NUMPY_OF[specs[name]["dtype"]]).reshape(specs[name]["shape"]).copy()
            for name, data in raw_outputs.items()}
