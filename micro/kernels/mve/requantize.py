"""TFLite's int8 requantization on Helium: the gathered requantization of the cluster-gated
operator's chosen cluster, four channels per vector (``micro_mve_requantize_q7``,
``c/mve/requantize_mve.c``).

The description is :func:`micro.kernels.dsp.requantize.requantize_intrin`'s, i.e.
:func:`micro.fixed_point_tir.requantize` (TFLite's double rounding, right shifts only); the C
kernel's vector sequence (``VQRDMULH``, ``VAND``/``VSHR``/``VQADD`` fixup, ``VRSHL``, ``VMIN``/
``VMAX``, ``VADD``, ``VSTRB.32``) equals it for every input (the proof is in the C file; a
saturation, possible only for ``INT32_MIN`` operands, sends the call to its scalar path).
"""

from __future__ import annotations

from tvm import s_tir

from ..dsp.requantize import requantize_intrin, tensorize_requantizations

REQUANTIZE_KERNEL = "micro_mve_requantize_q7"


def requantize_mve_intrin(outputs: int, zero_point: int, qmin: int, qmax: int) -> str:
    """Register (once) the Helium requantization intrinsic for one shape; return its name.

    Parameters
    ----------
    outputs : int
        Values per call ``n`` (any: the kernel predicates the last vector).
    zero_point, qmin, qmax : int
        The output zero point and clamp range.

    Returns
    -------
    str
        Name for ``Schedule.tensorize``.
    """
    return requantize_intrin(outputs, zero_point, qmin, qmax, REQUANTIZE_KERNEL)


def tensorize_mve_requantizations(sch: s_tir.Schedule) -> None:
    """Run every gathered requantization of a kernel on ``micro_mve_requantize_q7``.

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of one kernel, changed in place (blocks the intrinsic does not match are left
        as they were).
    """
    tensorize_requantizations(sch, REQUANTIZE_KERNEL)
