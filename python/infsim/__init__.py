"""infsim: a cycle-accurate Inferentia-class chip simulator and its toolchain.

    import infsim
    model = infsim.trace(torch_module, example_inputs)   # compile for the simulated chip
    y = model(x)                                          # run on the simulator
    model.save("m.infx"); model = infsim.load("m.infx")
"""
__version__ = "0.1.0"

from .errors import CompileError  # noqa: E402
from .runtime import RunError  # noqa: E402

# The compiler (and what needs it) loads on first use, so that running an
# executable (`infsim run`) does not pay for importing it.
_LAZY = {"compile_model": ".compiler", "CompiledModel": ".model", "load": ".model", "trace": ".model",
         "DataParallel": ".parallel"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'infsim' has no attribute '{name}'")

__all__ = ["trace", "load", "CompiledModel", "DataParallel", "compile_model", "CompileError", "RunError",
           "__version__"]
