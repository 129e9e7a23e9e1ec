"""Bands: padded input rows of NCHW images moved into SBUF slots laid out
[ci tile][image][row][Wp] (kernels/conv.py explains the layout), their pad
columns and rows memset, INT8 quantised on the way in, and the replicated
bands of folded kernel rows."""
from typing import Dict, Optional

from ...isa import dtype_size, onchip, sbuf
from ..emitter import coalesce
from ..views import DView
from .common import image_groups
from .conv_geometry import ConvGeom
from .conv_plan import ConvPlan

MEMSET_MAX = 32768  # elements per partition of one memset instruction

# ============================================================================ bands

class BandLoader:
    """Loads bands of a padded NCHW input into SBUF slots laid out
    [tile][image][row][Wp]: slot row i of a band starting at padded row y0
    holds padded row y0 + rstep*i."""

    def __init__(self, em, x: DView, g: ConvGeom, dtype: str, rstep: int, rows: int, nb: int, ntiles: int,
                 parts: int, pad_value: float = 0.0, quant_scale: Optional[float] = None):
        self.em, self.x, self.g, self.dt = em, x, g, dtype
        # INT8: rows arrive in a staging copy, then x / scale + pad_value (the zero point) into the slot
        self.quant_scale = quant_scale
        self.staging: Dict[int, int] = {}  # slot address -> its staging copy (same element offsets)
        self.es = dtype_size(dtype)
        self.rstep, self.rows, self.nb, self.parts, self.pad = rstep, rows, nb, parts, pad_value
        self.img = rows * g.Wp  # elements of one image in a slot
        self.tile = nb * self.img  # elements of one ci tile in a slot
        self.ntiles = ntiles

    def _memset(self, addr, dims):
        self.em.insn("vector", "memset", dst=sbuf(0, self.parts, addr, self.dt, coalesce(dims)), value=self.pad)

    def init_slot(self, addr):
        """Pads no band DMA writes: the pad columns (or, with zero insertion,
        everything), once per slot."""
        g = self.g
        n = self.ntiles * self.tile
        if g.u > 1:
            for e0 in range(0, n, MEMSET_MAX):
                self._memset(addr + e0 * self.es, [(min(MEMSET_MAX, n - e0), 1)])
            return
        lines = self.ntiles * self.nb * self.rows
        right = g.pl + g.Wl
        if g.pl:
            self._memset(addr, [(lines, g.Wp), (g.pl, 1)])
        if right < g.Wp:
            self._memset(addr + right * self.es, [(lines, g.Wp), (g.Wp - right, 1)])

    def load(self, addr, t, c0, cc, n0, nb, y0, i0, i1):
        """Slot rows [i0, i1) of the band that starts at padded row y0 (slot row
        i = padded row y0 + rstep*i), channels [c0, c0+cc) of images
        [n0, n0+nb), into ci tile t of the slot at addr."""
        g, x, u, rs = self.g, self.x, self.g.u, self.rstep
        base = addr + t * self.tile * self.es
        last = g.pt + u * (g.H - 1)  # padded row of the last input row
        if u == 1:
            lo = max(i0, -(-(g.pt - y0) // rs))
            hi = min(i1, (last - y0) // rs + 1) if last >= y0 else i0
            h0, istep = y0 + rs * lo - g.pt, 1
            cnt = hi - lo
        else:  # zero insertion: input rows land every u-th padded row (rstep is 1)
            p0 = g.pt + u * max(0, -(-(y0 + i0 - g.pt) // u))  # first input row at or after slot row i0
            p1 = g.pt + u * ((min(y0 + i1 - 1, last) - g.pt) // u)  # last one before slot row i1
            cnt = (p1 - p0) // u + 1 if y0 + i1 - 1 >= g.pt and p1 >= p0 else 0
            lo, hi, h0, istep = p0 - y0, p1 - y0 + 1, (p0 - g.pt) // u, u
        if cnt <= 0:
            lo = hi = i1
        # Pad rows above and below the image (an earlier band may have left data there;
        # with zero insertion the rows between input rows are never written).
        if lo > i0 and y0 + rs * i0 < g.pt:
            self._memset(base + i0 * g.Wp * self.es, [(nb, self.img), ((lo - i0) * g.Wp, 1)])
        if hi < i1 and y0 + rs * (i1 - 1) > last:
            self._memset(base + hi * g.Wp * self.es, [(nb, self.img), ((i1 - hi) * g.Wp, 1)])
        if cnt <= 0:
            return
        sN, sC, sH, sW = x.strides
        first = t * self.tile + lo * g.Wp + g.pl  # element offset in the slot
        if self.quant_scale is not None and addr not in self.staging:
            self.staging[addr] = self.em.sbuf.alloc(self.ntiles * self.tile * x.es, "INT8 band staging")
        for i, k in image_groups(x, nb):
            src = x.endpoint((n0 + i) * sN + c0 * sC + h0 * sH, (cc, sC), [(k, sN), (cnt, rs * sH), (g.Wl, sW)])
            dims = coalesce([(k, self.img), (cnt, istep * g.Wp), (g.Wl, u)])
            at = first + i * self.img
            dst = sbuf(0, cc, addr + at * self.es, self.dt, dims)
            if self.quant_scale is None:
                self.em.dma(src, onchip(dst))
                continue
            stage = sbuf(0, cc, self.staging[addr] + at * x.es, x.dtype, dims)
            self.em.dma(src, onchip(stage))
            # x / scale + zero point, rounded once when stored as INT8 (saturating)
            self.em.insn("vector", "tensor_scalar", op0="div", op1="add" if self.pad else "bypass", src=stage,
                         dst=dst, imm0=self.quant_scale, imm1=float(self.pad))

    def free(self):
        for a in self.staging.values():
            self.em.sbuf.free(a, self.ntiles * self.tile * self.x.es)
        self.staging = {}



def load_folded(em, loader: BandLoader, stage, slot, g: ConvGeom, plan: ConvPlan, dt, n0, nb, y0, rr0, rr, done):
    """Rows [rr0, rr0+rr) of a folded band: the ordinary band rows they need
    (beyond the `done` already loaded) into `stage`, then one on-chip DMA per
    kernel row f: partitions [f*C, (f+1)*C) get padded rows y0 + f*dh + sh*i,
    so kernel row f becomes a partition shift. Returns the stage rows loaded."""
    es = dtype_size(dt)
    need = plan.stage_rows(g, rr0 + rr)
    loader.load(stage, 0, 0, g.C, n0, nb, y0, done, need)
    Wp, simg, img = g.Wp, loader.img, plan.R * g.Wp  # image strides of the stage and the folded slot
    for f in range(plan.fold):
        src = sbuf(0, g.C, stage + (f * g.dh + rr0 * g.sh) * Wp * es, dt,
                   coalesce([(nb, simg), (rr, g.sh * Wp), (Wp, 1)]))
        dst = sbuf(f * g.C, g.C, slot + rr0 * Wp * es, dt, coalesce([(nb, img), (rr * Wp, 1)]))
        em.dma(onchip(src), onchip(dst))
    return need
