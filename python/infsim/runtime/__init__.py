"""The runtime: the one entry point through which the Python API and the
CLI tools reach the simulated instance (it plays libnrt; see docs/runtime.md).

    from infsim import runtime
    outputs, stats = runtime.run(exe, inputs)              # one request alone
    rt = runtime.Runtime("inf1.xlarge")                     # the process's instance
    m = rt.load(exe, cores=[0, 1, 2, 3])                    # four replicas, constants placed once
    fut = m.submit(inputs); outputs = fut.result()          # from any thread
    rows = rt.run_workload([...])                           # load generated in simulated time

It never imports the compiler (host-fallback steps of a bundle import the
host op library when they first run), so `infsim run` starts quickly.
"""
from .executables import NUMPY_OF, RunError, load, metadata, to_bytes, unpack  # noqa: F401
from .solo import run, run_raw  # noqa: F401
from .stats import combine_stats, derived_figures, make_stats  # noqa: F401
from .serving import (STATUSES, Future, LoadedModel, cores_needed, RequestError, Runtime, instance_config,  # noqa: F401
                      instances, parse_cores, visible_cores)
