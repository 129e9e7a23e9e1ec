"""Lowering of a graph onto one NeuronCore: values become DRAM views, nodes
become kernels (compiler/kernels/), in graph order.

Placement: a node runs on the device when a kernel accepts it (its `check`
returns None), else on the host CPU between device segments (see
compiler/plan.py). View-only ops (Reshape, Transpose, Slice, ...) make new
views of their input's buffer and move no data.

Storage: float values are stored in DRAM in the storage dtype (the compute
dtype, or FP32 under the "matmul" auto-cast policy, where only matmul and
convolution operands are narrowed); integer values as INT32; the model's
inputs and outputs keep their host types (FP32, INT32).
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .emitter import Emitter, Target
from .ir import CompileError, Graph, Node
from .residency import RESIDENT_BASE
from .schedule import FEATURE_MAP_OPS, Stage, plan_stages
from ..isa import dtype_size
from .views import DView


@dataclass
class Kernel:
    """How one op type lowers: `check(node, lw)` says why it cannot (None: it
    can), `emit(node, lw)` emits it."""
    check: Callable[[Node, "Lowering"], Optional[str]]
    emit: Callable[[Node, "Lowering"], None]


KERNELS: Dict[str, Kernel] = {}


def kernel(*ops, check=None):
    """Registers the decorated emit function for `ops`."""
    def wrap(fn):
        for op in ops:
            KERNELS[op] = Kernel(check or (lambda node, lw: None), fn)
        return fn
    return wrap


def is_float(dtype) -> bool:
    return np.issubdtype(np.dtype(dtype), np.floating)


RESIDENT_SHARE = 0.5  # of SBUF per partition for resident values; kernels plan in the rest
MIN_RESIDENT_BYTES = 16384  # smaller values stay in DRAM


@dataclass
class Options:
    dtype: str = "bf16"  # compute dtype of matmul/conv operands
    autocast: str = "all"  # "all": every float value stored in dtype; "matmul": only matmul/conv operands narrowed
    quant: Optional[dict] = None  # int8: value name -> calibrated amax (quantize.calibrate)
    resident_share: float = RESIDENT_SHARE  # of SBUF kept for values resident between kernels (0: all in DRAM)
    weight_share: float = 0.0  # of SBUF for weights resident from the load program on (pipeline stages)

    @property
    def storage(self) -> str:
        if self.autocast != "all":
            return "fp32"
        return "bf16" if self.dtype == "int8" else self.dtype  # INT8 quantises on chip, from BF16 values

    @property
    def matmul_dtype(self) -> str:
        return "bf16" if self.dtype == "int8" else self.dtype


class Lowering:
    """State while lowering one device segment: the emitter, the DRAM view of
    every value produced so far, constants placed, liveness."""

    def __init__(self, graph: Graph, target: Target, options: Options, seg_nodes: Sequence[Node],
                 seg_inputs: Sequence[str], seg_outputs: Sequence[str], in_dram: Sequence[str] = (),
                 stored: Sequence[str] = ()):
        self.g = graph
        self.stored = set(stored)  # segment inputs/outputs kept in the storage dtype (pipeline stages' own)
        self.t = target
        self.opt = options
        self.em = Emitter(target, resident_bytes=int(target.sbuf_bytes * options.resident_share),
                          weight_bytes=int(target.sbuf_bytes * options.weight_share))
        self.in_dram = set(in_dram)  # values never made resident (a previous lowering found them badly accessed)
        self.current: Optional[Node] = None
        # Micro-batching (compiler/schedule.py): the images [b0, b1) being lowered, the values the
        # current stage touches, those it produces, and those of them used after it (whole batch).
        self.micro: Optional[tuple] = None
        self.stage_values: set = set()
        self.inside: set = set()
        self.crossing: set = set()
        self.stages: List[Stage] = []
        self.views: Dict[str, DView] = {}
        self.buffer_of: Dict[str, int] = {}  # value -> buffer id (aliases share)
        self.buffers: Dict[int, tuple] = {}  # id -> (addr, bytes, live value count)
        self._const_cache: Dict[tuple, DView] = {}
        self._next_buffer = 0
        self.nodes = list(seg_nodes)
        self.inputs = list(seg_inputs)
        self.outputs = list(seg_outputs)
        self.last_use: Dict[str, int] = {}
        for i, n in enumerate(self.nodes):
            for v in n.inputs:
                if v:
                    self.last_use[v] = i
        for v in self.outputs:
            self.last_use[v] = len(self.nodes)
        self.layout_hints = self._layout_hints()

    # ---------------------------------------------------------------- values
    def shape(self, name) -> tuple:
        if name in self.g.constants:
            return tuple(self.g.constants[name].shape)
        s = tuple(self.g.values[name].shape)
        if self.micro is not None and name in self.stage_values:  # one micro-batch of the stage
            return (self.micro[1] - self.micro[0],) + s[1:]
        return s

    def value_dtype(self, name) -> np.dtype:
        if name in self.g.constants:
            return self.g.constants[name].dtype
        return np.dtype(self.g.values[name].dtype)

    def storage_dtype(self, name) -> str:
        """How value `name` is stored in DRAM."""
        if not is_float(self.value_dtype(name)):
            return "int8" if self.value_dtype(name) == np.int8 else "int32"
        if (name in self.inputs or name in self.outputs) and name not in self.stored:
            return "fp32"
        return self.opt.storage

    def is_const(self, name) -> bool:
        return name in self.g.constants

    def const(self, name) -> np.ndarray:
        return self.g.constants[name]

    def view(self, name, dtype: Optional[str] = None) -> DView:
        """The DRAM view of an input value (constants are placed on first use)."""
        if name in self.views:
            if self.micro is not None and name in self.stage_values and \
                    (name not in self.inside or name in self.crossing):
                return self.views[name].slice(0, *self.micro)  # a whole-batch value: this micro-batch's slice
            return self.views[name]
        if name in self.g.constants:
            a = self.g.constants[name]
            dt = dtype or ("int32" if not is_float(a.dtype) else self.opt.storage)
            key = (name, dt)
            if key not in self._const_cache:
                self._const_cache[key] = DView.contiguous(self.em.constant(a, dt), a.shape, dt)
            return self._const_cache[key]
        raise CompileError(f"value '{name}' has not been produced on the device")

    def _layout_hints(self) -> Dict[str, tuple]:
        """Values whose only consumer is a Transpose: their producer writes
        them straight into the transposed layout (value -> (transposed value,
        perm)), so the Transpose is a view of a contiguous buffer and a Reshape
        after it costs nothing (attention's [B, H, S, D] -> [B, S, H*D])."""
        users: Dict[str, List[Node]] = {}
        for n in self.nodes:
            for v in n.inputs:
                users.setdefault(v, []).append(n)
        hints = {}
        for n in self.nodes:
            v = n.inputs[0] if n.inputs else None
            if n.op == "Transpose" and len(users.get(v, [])) == 1 and v not in self.outputs and \
                    v not in self.inputs and v not in self.g.constants:
                perm = n.attrs.get("perm") or list(reversed(range(len(self.shape(v)))))
                hints[v] = (n.outputs[0], [int(p) for p in perm])
        return hints

    def new_output(self, name, shape=None) -> DView:
        """A fresh buffer for value `name`: contiguous, or laid out for the
        Transpose that consumes it (layout_hints)."""
        if self.micro is not None and name in self.crossing:
            # Produced by a micro-batched stage, used after it: one whole-batch buffer
            # (resident when it fits), each micro-batch writing its slice.
            if name not in self.views:
                full = tuple(self.g.values[name].shape)
                view, bid = self._alloc(full, self.storage_dtype(name), name)
                self._attach(name, view, bid)
            return self.views[name].slice(0, *self.micro)
        if shape is None and name in self.layout_hints:
            target, perm = self.layout_hints[name]
            # Resident rows follow the producer's rows (the value's second-last axis, e.g. tokens).
            tshape = self.shape(target)
            row = int(np.prod(tshape[perm.index(len(perm) - 2) + 1:])) if len(perm) >= 2 else 0
            t, bid = self._alloc(tshape, self.storage_dtype(target), name, row)
            view = t.permute([perm.index(i) for i in range(len(perm))])
        else:
            view, bid = self._alloc(self.shape(name) if shape is None else shape, self.storage_dtype(name), name)
        self._attach(name, view, bid)
        return view

    def _alloc(self, shape, dtype, name=None, row=0):
        """A buffer for value `name`: resident in SBUF (rows of `row` elements, or
        chosen here) when it may and fits, else in DRAM."""
        v = DView.contiguous(0, tuple(shape), dtype)
        nbytes = max(v.size * v.es, 1)
        self._next_buffer += 1
        res = self._alloc_resident(v, name, row)
        if res is not None:
            self.buffers[self._next_buffer] = (res.addr, nbytes, 0)
            return res, self._next_buffer
        addr = self.em.dram.alloc(nbytes)
        self.buffers[self._next_buffer] = (addr, nbytes, 0)
        return DView(addr, v.shape, v.strides, dtype), self._next_buffer

    def _alloc_resident(self, v: DView, name, row=0) -> Optional[DView]:
        # Small values stay in DRAM: they save little, and are often read broadcast
        # (an attention mask), which is no row of a resident buffer.
        if name is None or name in self.outputs or name in self.in_dram or v.size * v.es < MIN_RESIDENT_BYTES \
                or self.em.resident.hi == self.em.resident.lo:
            return None
        shape = v.shape
        if len(shape) == 4 and self.current is not None and self.current.op in FEATURE_MAP_OPS:
            N, C, H, W = shape
            buf = self.em.resident.alloc(v.size, v.es, N * H * W, name)
            strides = (H * W, N * H * W, W, 1)  # CNHW
        else:
            L = row or next((d for d in reversed(shape) if d > 1), 1)
            buf = self.em.resident.alloc(v.size, v.es, L, name)
            strides = v.strides
        if buf is None:
            return None
        return DView(buf.vbase, shape, strides, v.dtype)

    def _attach(self, name, view, bid):
        self.views[name] = view
        addr, nbytes, live = self.buffers[bid]
        self.buffers[bid] = (addr, nbytes, live + 1)
        self.buffer_of[name] = bid

    def bind(self, name, view: DView, alias_of: str):
        """Makes `view` (of `alias_of`'s buffer) the value `name`."""
        self.views[name] = view
        if alias_of in self.buffer_of:  # constants and segment inputs are never freed
            self._attach(name, view, self.buffer_of[alias_of])

    def _release(self, name):
        bid = self.buffer_of.pop(name, None)
        if bid is None:
            return
        addr, nbytes, live = self.buffers[bid]
        if live == 1:
            if addr >= RESIDENT_BASE:
                self.em.resident.free(addr)
            else:
                self.em.dram.free(addr, nbytes)
            del self.buffers[bid]
        else:
            self.buffers[bid] = (addr, nbytes, live - 1)

    # ---------------------------------------------------------------- driver
    def run(self, io_addrs: Dict[str, DView]):
        for name, v in io_addrs.items():
            if name in self.inputs:
                self.views[name] = v
        batch = self._batch()
        self.stages = plan_stages(self.g, self.nodes, self.outputs, batch,
                                  self.em.resident.hi - self.em.resident.lo,
                                  dtype_size(self.opt.storage), dtype_size(self.opt.matmul_dtype)) \
            if batch > 1 else [Stage(0, len(self.nodes), batch)]
        for st in self.stages:
            if st.micro >= batch:
                for i in range(st.first, st.last):
                    self._emit_node(i, last_pass=True)
                continue
            self.inside = inside = {o for n in self.nodes[st.first:st.last] for o in n.outputs if o}
            self.stage_values = {v for n in self.nodes[st.first:st.last] for v in list(n.inputs) + list(n.outputs)
                                 if v and v not in self.g.constants}
            self.crossing = {v for v in inside if self.last_use.get(v, -1) >= st.last}
            for b0 in range(0, batch, st.micro):
                self.micro = (b0, min(batch, b0 + st.micro))
                for i in range(st.first, st.last):
                    self._emit_node(i, last_pass=self.micro[1] == batch, inside=inside)
            self.micro, self.stage_values, self.inside, self.crossing = None, set(), set(), set()
        return self.views

    def _batch(self) -> int:
        s = self.g.values[self.inputs[0]].shape if self.inputs and self.inputs[0] in self.g.values else ()
        return int(s[0]) if s else 1

    def _emit_node(self, i: int, last_pass: bool, inside=()):
        n = self.nodes[i]
        self.em.begin_op(n.name)
        self.current = n
        try:
            KERNELS[n.op].emit(n, self)
        except CompileError as e:
            raise CompileError(f"{n.op} '{n.name}': {e}") from None
        except (ValueError, KeyError, IndexError) as e:  # a kernel's check let through what it cannot do
            raise CompileError(f"{n.op} '{n.name}' (inputs {[self.shape(i) for i in n.inputs if i]}) could "
                               f"not be lowered: {type(e).__name__}: {e}; please report it") from None
        for v in set(n.inputs) | set(n.outputs):
            # (a micro-batch frees its own values; whole-batch ones after the last micro-batch)
            if v and self.last_use.get(v, -1) <= i and v not in self.outputs and \
                    (last_pass or (v in inside and v not in self.crossing)):
                self._release(v)


def check_node(node: Node, lw_like) -> Optional[str]:
    """Why `node` cannot run on the device, or None."""
    k = KERNELS.get(node.op)
    if k is None:
        return f"no device kernel for {node.op}"
    return k.check(node, lw_like)
