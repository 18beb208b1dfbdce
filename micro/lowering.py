"""Relax → a static chain of TIR kernel calls.

The ahead-of-time generator only understands a ``main`` that is a straight sequence of
``R.call_tir`` on static shapes. This module runs the Relax passes that produce exactly that from
any static Relax module: operators become TIR (LegalizeOps), neighbouring element-wise work is
fused into one kernel (FuseOps/FuseTIR) and constants are folded, so that every remaining tensor
is an input, a constant, a kernel output or the model output.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from .kernels import dsp as dsp_kernels
from .kernels import dsp_depthwise

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


def lower_to_kernel_calls(mod: tvm.IRModule, *, conv_windows: bool = False) -> tvm.IRModule:
    """Legalize, fuse and clean a Relax module until ``main`` only calls TIR kernels.

    A module already in that form is returned unchanged, so that kernels scheduled by hand or by
    :func:`micro.tuning.tune` keep their schedules.

    Parameters
    ----------
    mod : tvm.IRModule
        A Relax module with a ``main`` function on static shapes.
    conv_windows : bool
        Lower the int8 convolutions the DSP kernel library takes to its windowed form first
        (:func:`lower_conv2d_windows`).

    Returns
    -------
    tvm.IRModule
        The module with ``main`` as a chain of ``R.call_tir`` and one PrimFunc per kernel.
    """
    if is_kernel_calls(mod):
        return mod
    if conv_windows:
        mod = lower_conv2d_windows(mod)
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


def _const_value(expr: relax.Expr, bindings: dict) -> np.ndarray | None:
    while isinstance(expr, relax.Var) and expr in bindings:
        expr = bindings[expr]
    if isinstance(expr, tvm.ir.expr.GenericConst):
        return expr.value.numpy()
    return None


@relax.expr_functor.mutator
class _Conv2DWindowLowerer(relax.PyExprMutator):
    """Rebinds each int8 ``conv2d`` the DSP library takes to its windowed TE kernel."""

    def __init__(self, mod: tvm.IRModule) -> None:
        super().__init__(mod)
        self.mod = mod
        self.bindings: dict = {}

    def transform(self) -> tvm.IRModule:
        for gvar, func in self.mod.functions_items():
            if isinstance(func, relax.Function):
                self.bindings = relax.analysis.get_var2val(func)
                self.builder_.update_func(gvar, self.visit_expr(func))
        return self.builder_.get()

    def visit_call_(self, call: relax.Call) -> relax.Expr:
        lowered = None
        if getattr(call.op, "name", "") == "relax.nn.conv2d":
            lowered = self._windowed(call)
        return super().visit_call_(call) if lowered is None else lowered

    def _windowed(self, call: relax.Call) -> relax.Expr | None:
        attrs = call.attrs
        data, weight = call.args
        kernel_layout = "HWOI" if int(attrs.groups) > 1 else "HWIO"  # grouped: depthwise
        if (attrs.data_layout, attrs.kernel_layout, attrs.out_layout) != ("NHWC", kernel_layout,
                                                                          "NHWC"):
            return None
        if str(call.ty.dtype) != "int32" or str(data.ty.dtype) != "int8":
            return None
        weights = _const_value(weight, self.bindings)
        if weights is None or weights.dtype != np.int8:
            return None
        padding = [int(p) for p in attrs.padding]
        pad_value = 0
        source = self.bindings.get(data) if isinstance(data, relax.Var) else None
        if getattr(getattr(source, "op", None), "name", "") == "relax.nn.pad":
            widths = [int(w) for w in source.attrs.pad_width]
            spatial = widths[2:6]  # NHWC: (before, after) of H, then of W
            if (source.attrs.pad_mode == "constant" and not any(widths[:2] + widths[6:])
                    and not any(padding)):
                value = float(source.attrs.pad_value)
                if value == int(value) and -128 <= value <= 127:
                    data, pad_value = source.args[0], int(value)
                    padding = [spatial[0], spatial[2], spatial[1], spatial[3]]
        shape = [int(s) for s in data.ty.shape]
        if int(attrs.groups) > 1:
            if not dsp_depthwise.depthwise_supported(shape, weights.shape, attrs.strides,
                                                     attrs.dilation, int(attrs.groups)):
                return None
            return self.builder_.call_te(
                dsp_depthwise.depthwise_te, self.visit_expr(data),
                relax.const(dsp_depthwise.relayout_weights(weights)),
                [int(s) for s in attrs.strides], padding, pad_value, weights.shape[:2],
                primfunc_name_hint="depthwise_conv2d",
            )
        if not dsp_kernels.conv2d_supported(shape, weights.shape, attrs.strides, attrs.dilation,
                                            int(attrs.groups)):
            return None
        form = dsp_kernels.conv2d_form(weights.shape)
        return self.builder_.call_te(
            dsp_kernels.conv2d_window_te, self.visit_expr(data),
            relax.const(dsp_kernels.relayout_weights(weights, form)),
            [int(s) for s in attrs.strides], padding, pad_value, form, weights.shape[:2],
            primfunc_name_hint=f"conv2d_{form}",
        )


def lower_conv2d_windows(mod: tvm.IRModule) -> tvm.IRModule:
    """Rewrite int8 ``conv2d`` (with a constant ``pad`` before it folded in) to windowed kernels.

    The convolutions :func:`micro.kernels.dsp.conv2d_supported` takes become
    :func:`micro.kernels.dsp.conv2d_window_te` kernels with re-laid-out weight constants; a
    ``pad`` whose only job was to feed one of them is left unused (dead code elimination removes
    it). Run before ``LegalizeOps``.

    Parameters
    ----------
    mod : tvm.IRModule
        Relax module.

    Returns
    -------
    tvm.IRModule
        The rewritten module.
    """
    rewritten = _Conv2DWindowLowerer(mod).transform()
    return relax.transform.DeadCodeElimination()(rewritten)
