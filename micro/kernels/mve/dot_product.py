"""int8 dot products on Helium (``VMLADAVA.S8``): the schedule and the tensor intrinsics.

The blocks are the ones :func:`micro.kernels.dsp.dot_product.schedule_int8_dots` takes (int8 ×
int8 → int32 reductions over plain ``[n, L]`` or gathered ``[k, n, L]`` weights, e.g. the
cluster-gated operator's centroids and chosen cluster, a dense layer), and so are the schedule
and the intrinsics' descriptions: this module runs that schedule with :data:`MVE_KERNELS`, whose
implementations call ``micro_mve_dot_q7`` (``c/mve/dot_product_mve.c``) with the DSP kernel's
arguments. The weights are re-laid out with the reduction innermost (``[..., d, D]``), never
interleaved: one ``VLDRB.8`` then loads 16 consecutive weights of one output, and the C kernel
handles any ``L`` with tail predication. Packed 4-bit weights (the DSP library's
:func:`~micro.kernels.dsp.dot_product.dot_q7q4_intrin` blocks) call ``micro_mve_dot_q7q4``:
even and odd activations gathered, nibbles unpacked by shifts, ``VMLADAVA.S8``.
"""

from __future__ import annotations

import tvm
from tvm import tirx

from ..dsp.dot_product import DotKernels, Relayout, dot_q7_intrin, schedule_int8_dots
from .requantize import REQUANTIZE_KERNEL

MICRO_KERNEL = "micro_mve_dot_q7"
MICRO_KERNEL_Q4 = "micro_mve_dot_q7q4"
SCHEDULE_RULE = MICRO_KERNEL  # the blocks' "schedule_rule" annotation for MetaSchedule

#: The Helium micro-kernels, in the DSP library's calling conventions.
MVE_KERNELS = DotKernels(
    plain=MICRO_KERNEL, interleaved=None, packed_q4=MICRO_KERNEL_Q4, requantize=REQUANTIZE_KERNEL,
    rule=SCHEDULE_RULE, unit_extents=True,
)


def dot_mve_intrin(length: int, outputs: int, gathered: bool) -> str:
    """Register (once) the Helium dot-product intrinsic for one shape and return its name.

    The description is :func:`micro.kernels.dsp.dot_product.dot_q7_intrin`'s (``C[0, o] +=
    A[0, r] * B[.., o, r]``); the implementation calls ``micro_mve_dot_q7``.

    Parameters
    ----------
    length : int
        Reduction length ``L`` (any).
    outputs : int
        Outputs per call ``n``.
    gathered : bool
        ``B`` is a ``[?, n, L]`` slice selected by a one-element index buffer.

    Returns
    -------
    str
        Name for ``Schedule.tensorize``.
    """
    return dot_q7_intrin(length, outputs, gathered, MICRO_KERNEL)


def schedule_mve_dots(
    func: tirx.PrimFunc, output_tile: int | None = None, *, tensorize: bool = True
) -> tuple[tirx.PrimFunc, list[Relayout]] | None:
    """Tensorize every int8 dot product of a kernel, and its gathered requantization, on Helium.

    Parameters
    ----------
    func : tvm.tirx.PrimFunc
        A kernel, unscheduled.
    output_tile : int, optional
        Outputs per call (the whole output axis by default, or when it does not divide it).
    tensorize : bool
        False: only re-lay out the weights and annotate the blocks with :data:`SCHEDULE_RULE`.

    Returns
    -------
    func : tvm.tirx.PrimFunc
        The scheduled kernel; the whole result is None when no block matched.
    relaid_out : list of (int, tvm.tirx.IndexMap)
        The parameters whose layout changed (reduction innermost), with their maps.
    """
    return schedule_int8_dots(func, output_tile, tensorize=tensorize, kernels=MVE_KERNELS)


def calls(func: tvm.tirx.PrimFunc, symbol: str = MICRO_KERNEL) -> int:
    """How many calls of ``symbol`` a scheduled kernel's TIR makes (for tests and reports)."""
    return func.script().count(f'call_extern("int32", "{symbol}"')
