"""Device kernels, one module per op family; importing registers them in lower.KERNELS."""
from . import elementwise, matmul, reduce, shape_ops  # noqa: F401
from . import attention, conv, pool  # noqa: F401
