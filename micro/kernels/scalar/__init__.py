"""micro's kernel library for cores without the DSP extension: Armv6-M (Cortex-M0/M0+) and
Armv7-M (Cortex-M3).

TVM's plain lowering of an int8 dot product loads both operands of every multiply-accumulate
(MAC) and, on Armv6-M, extends and multiplies them through 64-bit helpers for the
requantization. The library's C micro-kernels (``micro/kernels/c/scalar/``, one source per
kernel family, Armv6-M and Armv7-M code under ``#if``, a plain C reference otherwise) do the
same integers with what these cores have:

* :mod:`.dot_product`: int8 dot products of dense layers and of the cluster-gated operator
  (plain ``[n, L]`` and gathered ``[k, n, L]`` weights, the reduction innermost), four outputs
  per pass sharing each activation's load: LDRSB + MLA on Armv7-M (2.5 instructions per MAC),
  LDRSB with a register offset + MULS + ADD into high registers on Armv6-M (3.53); on Armv7-M
  gathered weights with lengths that are multiples of 4 are interleaved as dsp's
  ``[k, n/4, L/4, 4, 4]`` and take eight outputs per pass (2.16 per MAC);
* the operator's requantization (``requantize.c``): SMULL on Armv7-M, four 16x16-bit MULS on
  Armv6-M (no 32x32->64 multiply; naked assembly there), TFLite's double rounding branch-free;
  the same per position for a convolution pass's epilogue;
* int8 convolutions (``convolution.c``): dense and depthwise, lowered and scheduled as
  :mod:`micro.kernels.dsp.convolution` and :mod:`~micro.kernels.dsp.depthwise` do (the int16
  window, the epilogue per pass), with micro-kernels of the same C contracts
  (:data:`CONV_KERNELS`): LDRSH/LDRSB + MLA, two positions by two outputs per pass (about 2.3
  instructions per MAC on Armv7-M), the window widened byte by byte.

The intrinsics and the schedule are the DSP library's (:mod:`micro.kernels.dsp.dot_product`,
:func:`~micro.kernels.dsp.dot_product.schedule_int8_dots`), called with this library's kernels
(:func:`.dot_product.kernels_for` the board's ISA): the interleaved layout on Armv7-M only
(other gathered weights are transposed, reduction innermost), packed 4-bit weights on
``micro_scalar_dot_q7q4``, no pooling kernels (TVM's lowering). The interface is the one
:mod:`micro.kernels` dispatches to: :func:`register`, :func:`lower`, :func:`schedule_module`,
:func:`prepare_for_tuning`, :func:`tensorize_annotated`. Importing registers nothing.
"""

from __future__ import annotations

from functools import partial
from importlib import resources

import tvm
from tvm import s_tir

from ...boards import Board
from ...codegen import register_extern_source
from ...lowering import lower_to_kernel_calls
from ..dsp import convolution, depthwise, schedule_convolutional
from ..dsp.dot_product import schedule_int8_dots, tensorize_annotated_dots, tensorize_for_rule
from ..relayout import schedule_unscheduled_kernels
from .dot_product import (
    DOT_KERNEL,
    DOT_Q4_KERNEL,
    DOT_X4_KERNEL,
    REQUANTIZE_KERNEL,
    SCALAR_KERNELS,
    kernels_for,
)

NAME = "scalar"
_SOURCES = resources.files("micro.kernels").joinpath("c", "scalar")
_META_SCHEDULE_RULE = f"s_tir.meta_schedule.cpu.{SCALAR_KERNELS.rule}"
#: The convolutions' micro-kernels (``c/scalar/convolution.c``, ``requantize.c``), with the
#: contracts of the DSP library's.
CONV_KERNELS = convolution.ConvKernels(
    conv="micro_scalar_conv_q15q7", widen="micro_scalar_widen_rows_q7",
    depthwise="micro_scalar_depthwise_q15", requantize="micro_scalar_requantize_channels_q7",
)


def register() -> None:
    """Declare the micro-kernels' C sources and the MetaSchedule rules, this library's and the
    DSP library's convolution rule, which reads the kernels from the lowered block (idempotent).
    """
    convolution.register()
    for symbol, name in ((DOT_KERNEL, "dot_product"), (DOT_X4_KERNEL, "dot_product"),
                         (DOT_Q4_KERNEL, "dot_product"),
                         (REQUANTIZE_KERNEL, "requantize"),
                         (CONV_KERNELS.requantize, "requantize"),
                         (CONV_KERNELS.conv, "convolution"), (CONV_KERNELS.widen, "convolution"),
                         (CONV_KERNELS.depthwise, "convolution")):
        register_extern_source(symbol, _SOURCES.joinpath(f"{name}.c"),
                               header=_SOURCES.joinpath(f"{name}.h"))
    tvm.register_global_func(_META_SCHEDULE_RULE, _meta_schedule_rule, override=True)


def _meta_schedule_rule(sch: s_tir.Schedule, block_rv: s_tir.SBlockRV) -> list[s_tir.Schedule]:
    """MetaSchedule's rule for blocks annotated by :func:`prepare_for_tuning`."""
    return tensorize_for_rule(sch, block_rv, SCALAR_KERNELS)


def lower(mod: tvm.IRModule, board: Board) -> tvm.IRModule:
    """Relax → a chain of kernel calls, int8 convolutions in the DSP library's windowed form
    with this library's micro-kernels (:data:`CONV_KERNELS`).

    Parameters
    ----------
    mod : tvm.IRModule
        Relax module, as for :func:`micro.build`.
    board : Board
        Target board.

    Returns
    -------
    tvm.IRModule
        Lowered module (unscheduled kernels).
    """
    del board  # the same lowering on every core this library serves
    return lower_to_kernel_calls(
        mod, rewrites=[partial(convolution.lower_conv2d_windows, kernels=CONV_KERNELS)])


def schedule_module(
    lowered: tvm.IRModule, board: Board, output_tile: int | None = None
) -> tvm.IRModule:
    """Tensorize every kernel's int8 dot products and requantization on the micro-kernels.

    Kernels already scheduled (attribute ``tirx.is_scheduled``) are left as they are.

    Parameters
    ----------
    lowered : tvm.IRModule
        Output of :func:`lower`.
    board : Board
        Target board.
    output_tile : int, optional
        Outputs per micro-kernel call (:func:`~micro.kernels.dsp.dot_product.
        schedule_int8_dots`); the whole output axis by default.

    Returns
    -------
    tvm.IRModule
        The module whose matching kernels call the micro-kernels, the weights they read
        re-laid out (reduction innermost).
    """
    return _schedule_module(lowered, output_tile, tensorize=True, kernels=kernels_for(board.isa))


def prepare_for_tuning(mod: tvm.IRModule, board: Board) -> tvm.IRModule:
    """:func:`lower`, re-lay out the dot products' weights and annotate their blocks for
    MetaSchedule's ``ApplyCustomRule`` (as :func:`micro.kernels.dsp.prepare_for_tuning`).

    Parameters
    ----------
    mod : tvm.IRModule
        Relax module, as for :func:`micro.build`.
    board : Board
        Target board.

    Returns
    -------
    tvm.IRModule
        Lowered module with re-laid-out weights and annotated blocks.
    """
    return _schedule_module(lower(mod, board), None, tensorize=False,
                            kernels=kernels_for(board.isa))


def tensorize_annotated(sch: s_tir.Schedule) -> None:
    """The default schedule of a kernel :func:`prepare_for_tuning` annotated (with a trace).

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of a prepared kernel, changed in place.
    """
    if convolution.schedule_conv2d_kernel(sch) or depthwise.schedule_depthwise(sch):
        return
    tensorize_annotated_dots(sch, SCALAR_KERNELS)


def _schedule_module(
    lowered: tvm.IRModule, output_tile: int | None, *, tensorize: bool,
    kernels=SCALAR_KERNELS,
) -> tvm.IRModule:
    """Schedule every kernel not scheduled yet; re-lay out the constants to match."""

    def schedule(func):
        convolutional = schedule_convolutional(func, tensorize=tensorize, pooling_kernels=False)
        if convolutional is not None:
            return convolutional, []
        return schedule_int8_dots(func, output_tile, tensorize=tensorize, kernels=kernels)

    return schedule_unscheduled_kernels(lowered, schedule, mark_scheduled=tensorize)
