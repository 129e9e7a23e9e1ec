"""infsim: a cycle-accurate Inferentia-class chip simulator and its toolchain.

    import infsim
    model = infsim.trace(torch_module, example_inputs)   # compile for the simulated chip
    y = model(x)                                          # run on the simulator
    model.save("m.infx"); model = infsim.load("m.infx")
"""
__version__ = "0.1.0"

from .compiler import CompileError, compile_model  # noqa: E402
from .model import CompiledModel, load, trace  # noqa: E402
from .parallel import DataParallel  # noqa: E402
from .runtime import RunError  # noqa: E402

__all__ = ["trace", "load", "CompiledModel", "DataParallel", "compile_model", "CompileError", "RunError",
           "__version__"]
