"""Serving on the simulated instance: models loaded once onto core groups,
requests from any number of host threads, and load generated in simulated
time. A thin layer over the C++ runtime (sim/system/runtime.h), which owns
the one simulation thread."""
import os
import threading

import numpy as np

from .. import _infsim
from .executables import NUMPY_OF, RunError, metadata, to_bytes, unpack
from .stats import nest

# Request statuses, as the Neuron runtime names them.
STATUSES = {
    "NRT_SUCCESS": "success",
    "NRT_EXEC_BAD_INPUT": "bad input: unknown or missing input name, wrong size",
    "NRT_TIMEOUT": "not answered within the model's timeout (simulated), counted from arrival",
    "NRT_QUEUE_FULL": "the model's request queue was full",
    "NRT_LOAD_NOT_ENOUGH_NC": "load: not enough free NeuronCores",
    "NRT_HW_ERROR": "a device fault on the model's cores",
    "NRT_EXEC_COMPLETED_WITH_NUM_ERR": "completed, but an output holds NaN or Inf",
    "NRT_INVALID_HANDLE": "the model was unloaded",
    "NRT_FAILURE": "a bundle's host step raised an error",
}


class RequestError(RunError):
    """A request answered with a status other than NRT_SUCCESS."""

    def __init__(self, record, outputs=None):
        super().__init__(f"{record['status']}: {record['message']}")
        self.status = record["status"]
        self.record = record
        self.outputs = outputs


def instances():
    """The bundled instance types, smallest first."""
    return list(_infsim.instances())


def instance_config(name_or_path) -> dict:
    return dict(_infsim.instance_config(name_or_path))


def parse_cores(spec: str, total: int):
    """'0-3', '0,2,5-7' -> sorted core numbers (global: 4 x chip + core)."""
    cores = set()
    for part in str(spec).replace(" ", "").split(","):
        if not part:
            continue
        try:
            lo, _, hi = part.partition("-")
            lo, hi = int(lo), int(hi or lo)
        except ValueError:
            raise RunError(f"bad core list '{spec}' (expected e.g. 0-3 or 0,2,5-7)") from None
        if lo > hi or hi >= total:
            raise RunError(f"cores {part} are not on this instance (cores 0-{total - 1})")
        cores.update(range(lo, hi + 1))
    return sorted(cores)


def visible_cores(total: int, cores=None):
    """The cores this process may use: `cores` (a list or a '0-3' string),
    else INFSIM_VISIBLE_CORES (as NEURON_RT_VISIBLE_CORES), else all."""
    if cores is None:
        cores = os.environ.get("INFSIM_VISIBLE_CORES")
    if cores is None:
        return list(range(total))
    if isinstance(cores, str):
        return parse_cores(cores, total)
    cores = sorted(int(c) for c in cores)
    if cores and (cores[0] < 0 or cores[-1] >= total):
        raise RunError(f"cores {cores} are not on this instance (cores 0-{total - 1})")
    return cores


def cores_needed(exe) -> int:
    """Cores one replica of an executable or bundle occupies."""
    if isinstance(exe, _infsim.Executable):
        return exe.num_cores
    return sum(st["exe"].num_cores for st in exe.steps if st["kind"] == "device")


class Future:
    """The answer to one request; result() blocks (GIL released)."""

    def __init__(self, fut, model):
        self._fut = fut
        self._model = model

    def done(self):
        return self._fut.done()

    def record(self, timeout=None) -> dict:
        """The request's record (status, times in simulated seconds, raw outputs)."""
        return self._fut.result(timeout)

    def result(self, timeout=None):
        """The outputs as numpy arrays; RequestError for any status but NRT_SUCCESS."""
        r = self.record(timeout)
        outputs = self._model.unpack(r["outputs"]) if r["outputs"] else {}
        if r["status"] != "NRT_SUCCESS":
            raise RequestError(r, outputs)
        return outputs


class _Answered(Future):
    """A request refused before it reached the simulation."""

    def __init__(self, record, model):
        self._record = record
        self._model = model

    def done(self):
        return True

    def record(self, timeout=None):
        return self._record


class LoadedModel:
    """A model loaded on one or more core groups (its replicas), sharing one request queue."""

    def __init__(self, runtime, exe, mid, name, groups, timing_only, batch=1):
        self.runtime = runtime
        self.executable = exe
        self.id = mid
        self.name = name
        self.groups = groups
        self.timing_only = timing_only
        self.batch = batch  # > 1: server-side batching; a request carries 1/batch of each tensor's rows
        per_request = lambda t: dict(t, shape=[t["shape"][0] // batch] + list(t["shape"][1:])) if batch > 1 else t  # noqa: E731
        self.specs = {t["name"]: per_request(t) for t in exe.tensors}
        self.inputs = {n: t for n, t in self.specs.items() if t["kind"] == "input"}
        self.loaded = True

    def raw_inputs(self, inputs):
        """Raw bytes per input; RunError for a shape or dtype that does not fit
        (unknown and missing names are the device runtime's to report)."""
        return {n: to_bytes(n, a, self.inputs[n]) if n in self.inputs else np.asarray(a).tobytes()
                for n, a in inputs.items()}

    def submit(self, inputs, keep_outputs=True) -> Future:
        """Queues one request (numpy inputs by name); thread-safe. Bad inputs
        are answered at once with NRT_EXEC_BAD_INPUT."""
        try:
            raw = self.raw_inputs(inputs)
        except RunError as e:
            return _Answered({"status": "NRT_EXEC_BAD_INPUT", "message": str(e), "outputs": {}, "model": self.id}, self)
        return Future(self.runtime._rt.submit(self.id, raw, keep_outputs), self)

    def unpack(self, raw_outputs):
        return unpack(raw_outputs, self.specs)

    def submit_all(self, batch, keep_outputs=True):
        """Queues several requests that arrive at the same simulated time."""
        raws = [self.raw_inputs(x) for x in batch]
        return [Future(f, self) for f in self.runtime._rt.submit_all(self.id, raws, keep_outputs)]

    def __call__(self, inputs):
        return self.submit(inputs).result()

    def unload(self):
        if self.loaded:
            self.runtime._rt.unload(self.id)
            self.loaded = False

    def swap_to(self, new: "LoadedModel"):
        """Blue/green: requests to this model go to `new` from now on; this one
        answers what it has queued, then unloads."""
        self.runtime._rt.swap(self.id, new.id)
        self.loaded = False


class BundleModel(LoadedModel):
    """A bundle served by the runtime: its device steps on consecutive cores
    of each group, its host steps on the instance's vCPUs. A host step's
    simulated time is its CPU time measured on zero inputs of its shapes (a
    warm-up run, then the median of five), once per step in a process: fixed,
    so that a workload's timing does not depend on how busy this machine is
    while it runs, or on how often the bundle was loaded."""

    def __init__(self, runtime, bundle, groups, name, timing_only, timeout_s, queue_depth):
        import time
        self.bundle = bundle
        # name -> (numpy dtype, shape) of every value crossing a step boundary
        self.kinds = {n: (np.dtype(d), tuple(s)) for n, (s, d) in bundle.inputs.items()}
        steps = []
        for st in bundle.steps:
            if st["kind"] == "device":
                for t in st["exe"].tensors:
                    if t["kind"] == "output":
                        self.kinds[t["name"]] = (np.dtype(NUMPY_OF[t["dtype"]]), tuple(t["shape"]))
                steps.append((st["exe"], 0.0))
                continue
            g = _host_graph(st)
            zeros = {v.name: np.zeros(v.shape, v.dtype) for v in g.inputs}
            out = bundle.run_host_step(st, zeros)  # warm-up, and the outputs' types
            for n, v in out.items():
                self.kinds[n] = (np.asarray(v).dtype, np.shape(v))
            if "host_seconds" not in st:  # measured once per process, kept with the step
                runs = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    bundle.run_host_step(st, zeros)
                    runs.append(time.perf_counter() - t0)
                st["host_seconds"] = float(np.median(runs))
            steps.append((None, st["host_seconds"]))
        self.host_seconds = [s for e, s in steps if e is None]
        inputs = {n: int(np.prod(s, dtype=np.int64)) * np.dtype(d).itemsize for n, (s, d) in bundle.inputs.items()}
        mid = runtime._rt.load_bundle(steps, inputs, list(bundle.outputs), self._host, self._device_inputs, groups,
                                      name, timing_only, timeout_s, queue_depth)
        super().__init__(runtime, bundle, mid, name, groups, timing_only)
        # Tensors as the host sees them: the bundle's declared numpy dtypes.
        self.specs = {n: {"dtype": None, "shape": s, "numpy": np.dtype(d)} for n, (s, d) in bundle.outputs.items()}
        self.inputs = {n: {"shape": s, "numpy": np.dtype(d)} for n, (s, d) in bundle.inputs.items()}

    def _decode(self, name, data):
        dtype, shape = self.kinds[name]
        return np.frombuffer(data, dtype).reshape(shape)

    def _host(self, step, values):
        st = self.bundle.steps[step]
        out = self.bundle.run_host_step(st, {n: self._decode(n, values[n]) for n in st["inputs"]})
        res = {}
        for n, v in out.items():
            v = np.ascontiguousarray(v)
            self.kinds[n] = (v.dtype, v.shape)
            res[n] = v.tobytes()
        return res

    def _device_inputs(self, step, values):
        exe = self.bundle.steps[step]["exe"]
        return {t["name"]: to_bytes(t["name"], self._decode(t["name"], values[t["name"]]), t)
                for t in exe.tensors if t["kind"] == "input"}

    def raw_inputs(self, inputs):
        raw = {}
        for n, a in inputs.items():
            if n not in self.inputs:
                raw[n] = np.asarray(a).tobytes()
                continue
            a = np.asarray(a)
            if tuple(a.shape) != tuple(self.inputs[n]["shape"]):
                raise RunError(f"input '{n}': shape {tuple(a.shape)} does not match the compiled shape "
                               f"{tuple(self.inputs[n]['shape'])}")
            raw[n] = np.ascontiguousarray(a, self.inputs[n]["numpy"]).tobytes()
        return raw

    def unpack(self, raw_outputs):
        return {n: np.frombuffer(b, self.specs[n]["numpy"]).reshape(self.specs[n]["shape"]).copy()
                for n, b in raw_outputs.items()}


def _host_graph(step):
    from ..compiler.onnx_import import load_onnx
    if "graph" not in step:
        step["graph"] = load_onnx(__import__("onnx").load_from_string(step["onnx"]))
    return step["graph"]


class Runtime:
    """The process's simulated instance and its runtime. SystemC elaborates
    one instance per process: asking for another instance (or chip
    configuration) in the same process is a RunError."""

    def __init__(self, instance="inf1.xlarge", config=None):
        self._rt = _infsim.Runtime.get(instance, config or "")
        self.instance = self._rt.instance
        self.config = self._rt.chip_config
        self.num_cores = self._rt.num_cores
        self.instance_config = instance_config(instance)
        self._lock = threading.Lock()

    def load(self, exe, cores=None, group_size=None, name=None, timing_only=False, timeout_s=1.0,
             queue_depth=4096, replicas=None, max_delay_s=None) -> LoadedModel:
        """Loads `exe` once per core group: the visible cores (`cores`, else
        INFSIM_VISIBLE_CORES, else all) split into groups of `group_size`
        (default: the cores the executable uses), `replicas` of them at most.
        max_delay_s: server-side batching; requests then carry one row of the
        compiled batch each, and a replica coalesces up to the batch of them,
        waiting at most max_delay_s (simulated) after the oldest for more."""
        bundle = None if isinstance(exe, _infsim.Executable) else exe
        need = cores_needed(exe)
        size = group_size or need
        if size < need:
            raise RunError(f"NRT_LOAD_NOT_ENOUGH_NC: the model needs {need} cores per group, groups have {size}")
        used = set(self._rt.used_cores())
        vis = [c for c in visible_cores(self.num_cores, cores) if c not in used]
        # Groups of `size` consecutive free cores, from the lowest core up: on one
        # chip, except a pipeline's, whose stages may span chips (cores 2-5).
        per_chip = int(_infsim.config(self.config)["cores"])
        spans = bundle is None and exe.pipeline
        groups, i = [], 0
        while i + size <= len(vis):
            run = vis[i:i + size]
            if run == list(range(run[0], run[0] + size)) and (spans or run[0] // per_chip == run[-1] // per_chip):
                groups.append(run[0])
                i += size
            else:
                i += 1
        if replicas is not None:
            if replicas > len(groups):
                raise RunError(f"NRT_LOAD_NOT_ENOUGH_NC: {replicas} replicas of {size} cores asked for, "
                               f"{len(groups)} groups visible")
            groups = groups[:replicas]
        if not groups:
            raise RunError(f"NRT_LOAD_NOT_ENOUGH_NC: no group of {size} consecutive visible cores")
        name = name or metadata(exe).get("model", "model")
        if bundle is not None:
            if max_delay_s is not None:
                raise RunError("server-side batching of models with host steps is not supported")
            return BundleModel(self, bundle, groups, name, timing_only, timeout_s, queue_depth)
        batch = 1
        if max_delay_s is not None:
            batch = int(exe.tensors[0]["shape"][0]) if exe.tensors and exe.tensors[0]["shape"] else 1
        mid = self._rt.load(exe, groups, name, timing_only, timeout_s, queue_depth, batch, max_delay_s or 0.0)
        return LoadedModel(self, exe, mid, name, groups, timing_only, batch)

    def run_workload(self, loads, sample_period_s=0.0) -> dict:
        """Runs load generators in simulated time. Each load: {model:
        LoadedModel, inputs: numpy dict, workers: N | rate: R | trace:
        [arrival s], requests: N | duration_s: S, seed, keep_outputs}.
        sample_period_s > 0: also every counter's value each period, as
        "samples": [(time s, [values in counter_list() order])]."""
        spec = []
        for l in loads:
            d = dict(l)
            m = d.pop("model")
            d["model"] = m.id
            d["inputs"] = m.raw_inputs(d["inputs"])
            spec.append(d)
        return self._rt.run_workload(spec, sample_period_s)

    def counter_list(self):
        return self._rt.counters()

    def counters(self) -> dict:
        return nest(self._rt.counters())

    def now_s(self) -> float:
        return self._rt.now_s()
