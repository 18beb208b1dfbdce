"""Relax → a static chain of TIR kernel calls.

The ahead-of-time generator only understands a ``main`` that is a straight sequence of
``R.call_tir`` on static shapes. This module runs the Relax passes that produce exactly that from
any static Relax module: operators become TIR (LegalizeOps), neighbouring element-wise work is
fused into one kernel (FuseOps/FuseTIR) and constants are folded, so that every remaining tensor
is an input, a constant, a kernel output or the model output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tvm
from tvm import relax

_KERNEL_FORM = (relax.Var, relax.TupleGetItem, tvm.ir.expr.GenericConst)


def is_kernel_calls(mod: tvm.IRModule) -> bool:
    """Whether ``main`` already is a chain of ``R.call_tir`` (e.g. a lowered, tuned module).

    Parameters
    ----------
    mod : tvm.IRModule
        A Relax module.

    Returns
    -------
    bool
        True when every binding of ``main`` is a kernel call, a tuple item, a variable or a
        constant.
    """
    for block in mod["main"].body.blocks:
        for binding in block.bindings:
            value = binding.value
            call_tir = isinstance(value, tvm.ir.Call) and getattr(value.op, "name", "") == (
                "relax.call_tir"
            )
            if not (call_tir or isinstance(value, _KERNEL_FORM)):
                return False
    return True


def lower_to_kernel_calls(
    mod: tvm.IRModule, *, rewrites: Sequence[Callable[[tvm.IRModule], tvm.IRModule]] = ()
) -> tvm.IRModule:
    """Legalize, fuse and clean a Relax module until ``main`` only calls TIR kernels.

    A module already in that form is returned unchanged, so that kernels scheduled by hand or by
    :func:`micro.tuning.tune` keep their schedules.

    Parameters
    ----------
    mod : tvm.IRModule
        A Relax module with a ``main`` function on static shapes.
    rewrites : sequence of callables
        Relax-to-Relax rewrites of a kernel library, run first (e.g. the DSP library's
        convolutions, :func:`micro.kernels.dsp.convolution.lower_conv2d_windows`).

    Returns
    -------
    tvm.IRModule
        The module with ``main`` as a chain of ``R.call_tir`` and one PrimFunc per kernel.
    """
    if is_kernel_calls(mod):
        return mod
    for rewrite in rewrites:
        mod = rewrite(mod)
    passes = tvm.transform.Sequential(
        [
            relax.transform.LegalizeOps(),
            relax.transform.AnnotateTIROpPattern(),
            relax.transform.FoldConstant(),
            relax.transform.FuseOps(),
            relax.transform.FuseTIR(),
            relax.transform.DeadCodeElimination(),
        ],
        name="micro.LowerToKernelCalls",
    )
    with tvm.transform.PassContext(opt_level=3):
        return passes(mod)
