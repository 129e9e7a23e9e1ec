"""infsim compiler: ONNX / PyTorch models to .infx executables."""
from .driver import compile_model
from .ir import CompileError

__all__ = ["compile_model", "CompileError"]
