"""Tensors in DRAM as strided views.

Every graph value on the device lives in DRAM as a view: a base address,
a shape and element strides over a buffer. Transpose, Slice, Expand,
Squeeze/Unsqueeze and most Reshapes only make a new view of the same
buffer, so they move no data; kernels read and write any view through DMA
access patterns (the DMA is fastest when the innermost dimension is
contiguous).
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..isa import dtype_size


def contiguous_strides(shape) -> Tuple[int, ...]:
    strides, s = [], 1
    for d in reversed(shape):
        strides.append(s)
        s *= d
    return tuple(reversed(strides))


@dataclass(frozen=True)
class DView:
    addr: int  # byte address of element (0, ..., 0)
    shape: Tuple[int, ...]
    strides: Tuple[int, ...]  # in elements
    dtype: str

    @classmethod
    def contiguous(cls, addr, shape, dtype) -> "DView":
        return cls(addr, tuple(int(d) for d in shape), contiguous_strides(shape), dtype)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def es(self) -> int:
        return dtype_size(self.dtype)

    def is_contiguous(self) -> bool:
        return all(s == c for s, c, d in zip(self.strides, contiguous_strides(self.shape), self.shape) if d > 1)

    def permute(self, perm: Sequence[int]) -> "DView":
        return DView(self.addr, tuple(self.shape[p] for p in perm), tuple(self.strides[p] for p in perm), self.dtype)

    def slice(self, axis: int, start: int, stop: int, step: int = 1) -> "DView":
        n = len(range(start, stop, step))
        shape = list(self.shape)
        strides = list(self.strides)
        shape[axis] = n
        strides[axis] = self.strides[axis] * step
        return DView(self.addr + start * self.strides[axis] * self.es, tuple(shape), tuple(strides), self.dtype)

    def index(self, axis: int, i: int) -> "DView":
        """The view with `axis` fixed at i (that axis removed)."""
        return DView(self.addr + i * self.strides[axis] * self.es, self.shape[:axis] + self.shape[axis + 1:],
                     self.strides[:axis] + self.strides[axis + 1:], self.dtype)

    def expand(self, shape: Sequence[int]) -> "DView":
        """Numpy broadcasting to `shape`: new and size-1 axes get stride 0."""
        shape = tuple(int(d) for d in shape)
        pad = len(shape) - self.ndim
        src_shape = (1,) * pad + self.shape
        src_strides = (0,) * pad + self.strides
        strides = []
        for d, sd, st in zip(shape, src_shape, src_strides):
            if sd == d:
                strides.append(st if d > 1 else 0)
            elif sd == 1:
                strides.append(0)
            else:
                raise ValueError(f"cannot broadcast {self.shape} to {shape}")
        return DView(self.addr, shape, tuple(strides), self.dtype)

    def reshape(self, shape: Sequence[int]) -> Optional["DView"]:
        """The same elements in row-major order under a new shape, or None
        when the strides cannot express it (the data must then be copied)."""
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape, dtype=np.int64)) != self.size:
            raise ValueError(f"reshape {self.shape} -> {shape}")
        if self.is_contiguous():
            return DView(self.addr, shape, contiguous_strides(shape), self.dtype)
        strides = _nocopy_reshape(self.shape, self.strides, shape)
        return None if strides is None else DView(self.addr, shape, tuple(strides), self.dtype)

    def endpoint(self, offset: int, part: Tuple[int, int], dims: Sequence[Tuple[int, int]], dtype=None) -> dict:
        """DMA endpoint at element `offset` from the view's base: partitions
        (count, step) and free dims [(num, step)], steps in elements."""
        from .emitter import coalesce
        return {"loc": "dram", "dtype": self.dtype, "address": self.addr + offset * self.es,
                "part_count": int(part[0]), "part_step": int(part[1]), "dims": coalesce(dims)}


def split_dims(shape: Sequence[int], strides_list: Sequence[Sequence[int]]):
    """Coalesces axes that are contiguous with their inner neighbour in every
    view at once; returns (shape, [strides per view]) with size-1 axes dropped."""
    keep = [i for i, d in enumerate(shape) if d != 1]
    shape = [shape[i] for i in keep]
    strides_list = [[s[i] for i in keep] for s in strides_list]
    out_shape: List[int] = []
    out_strides: List[List[int]] = [[] for _ in strides_list]
    for ax, d in enumerate(shape):
        if out_shape and all(st[-1] == d * s[ax] for st, s in zip(out_strides, strides_list)):
            out_shape[-1] *= d
            for st, s in zip(out_strides, strides_list):
                st[-1] = s[ax]
        else:
            out_shape.append(d)
            for st, s in zip(out_strides, strides_list):
                st.append(s[ax])
    if not out_shape:
        return [1], [[1] for _ in strides_list]
    return out_shape, out_strides


def _nocopy_reshape(old_shape, old_strides, new_shape):
    """Strides giving `new_shape` over the same elements in row-major order,
    or None (numpy's attempt_nocopy_reshape): groups of old axes whose
    product equals a group of new axes must be contiguous among themselves."""
    old = [(d, s) for d, s in zip(old_shape, old_strides) if d != 1]
    new_strides = [0] * len(new_shape)
    oi, oj, ni, nj = 0, 1, 0, 1
    while ni < len(new_shape) and oi < len(old):
        n_prod, o_prod = new_shape[ni], old[oi][0]
        while n_prod != o_prod:
            if n_prod < o_prod:
                n_prod *= new_shape[nj]
                nj += 1
            else:
                o_prod *= old[oj][0]
                oj += 1
        for k in range(oi, oj - 1):
            if old[k][1] != old[k + 1][0] * old[k + 1][1]:
                return None
        new_strides[nj - 1] = old[oj - 1][1]
        for k in range(nj - 1, ni, -1):
            new_strides[k - 1] = new_strides[k] * new_shape[k]
        ni, nj, oi, oj = nj, nj + 1, oj, oj + 1
    return [s if d != 1 else 0 for s, d in zip(new_strides, new_shape)]
