"""micro's kernel libraries, one module per instruction-set family.

* :mod:`micro.kernels.dsp`: the DSP extension of Armv7E-M / Armv8-M (Cortex-M4, M7, M33): int8
  convolution, dot product and requantization on SMLAD (C sources under ``c/dsp/``, one file per
  kernel family).

A library contributes a lowering for the operators it takes, tensor intrinsics whose
implementations call its C micro-kernels, and the schedules that use them. Nothing is registered
at import: :func:`register` declares the libraries' C sources to the code generator.
"""

from __future__ import annotations

from . import dsp


def register() -> None:
    """Declare every library's C sources to :mod:`micro.codegen` (idempotent)."""
    dsp.register()
