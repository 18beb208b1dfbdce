"""micro's kernel library for Helium, the M-profile Vector Extension (Armv8.1-M: Cortex-M55).

MVE's 128-bit vectors hold 16 int8 lanes: ``VMLADAVA.S8`` adds the 16 products of two int8
vectors to a scalar accumulator in one instruction, and a tail-predicated low-overhead loop
(``DLSTP``/``LETP``) runs any length without a scalar tail. The library's micro-kernels (C with
inline assembly, ``micro/kernels/c/mve/``, one file per kernel family) run int8 work on them,
bit-exactly:

* :mod:`.dot_product`: int8 dot products of dense layers and of the cluster-gated operator
  (centroids, the chosen cluster's affine map), four outputs per pass over the activations: 10
  instructions per 64 MACs in the loop (``dot_product_mve.c``); packed 4-bit weights the same
  way, 29 instructions per 128 MACs;
* :mod:`.requantize`: TFLite's per-channel double-rounding requantization of the chosen
  cluster, four channels per vector, 15 instructions per four channels
  (``requantize_mve.c``).

* dense int8 convolutions: lowered and scheduled as :mod:`micro.kernels.dsp.convolution` does
  (passes, the epilogue per pass), in its ``"int8"`` form (the padded window kept int8 in
  natural order, weights ``[O, KH, KW, C]``), with the Helium micro-kernel :data:`CONV_KERNEL`
  (``convolution_mve.c``): two positions by two outputs per pass over 16 window values, 9
  instructions per 64 MACs.

The convolutions' requantization epilogues run on :mod:`.requantize`'s kernel, position by
position. Depthwise convolutions and pooling are not vectorised yet: the M55 has the DSP
extension as well, so they run on :mod:`micro.kernels.dsp`'s micro-kernels.

It mirrors :mod:`micro.kernels.dsp`'s interface, so that the build can pick it by board:
:func:`lower` (Relax → kernel calls, TVM's plain lowering), :func:`schedule_module` (tensorize
what the library takes and re-lay out the Relax constants it changed; kernels already scheduled
are kept), :func:`prepare_for_tuning` / :func:`tensorize_annotated` for MetaSchedule, and
:func:`apply_mve` (both stages). The schedules and the intrinsics' descriptions are the DSP
library's (:class:`micro.kernels.dsp.dot_product.DotKernels`), with this library's symbols.
:func:`register` declares the C sources and the MetaSchedule rule; the entry points call it,
importing registers nothing.

:func:`micro.build` uses it on boards with MVE (:func:`micro.kernels.library_for`).
"""

from __future__ import annotations

from functools import partial
from importlib import resources

import tvm
from tvm import s_tir, tirx

from ...boards import Board
from ...codegen import register_extern_source
from ...errors import BuildError
from ...lowering import lower_to_kernel_calls
from ...schedules import child_block_names
from .. import dsp as dsp_library
from ..dsp import convolution, depthwise, pooling
from ..dsp.dot_product import Relayout, _tensorize
from ..relayout import rewrite_calls as _rewrite_calls
from .dot_product import (
    MICRO_KERNEL,
    MICRO_KERNEL_Q4,
    MVE_KERNELS,
    SCHEDULE_RULE,
    schedule_mve_dots,
)
from .requantize import REQUANTIZE_KERNEL, tensorize_mve_requantizations

__all__ = [
    "CONV_KERNEL", "MICRO_KERNEL", "REQUANTIZE_KERNEL", "SCHEDULE_RULE", "apply_mve",
    "board_uses_mve", "lower", "prepare_for_tuning", "register", "schedule_module",
    "tensorize_annotated", "uses_mve",
]

_SOURCES = resources.files("micro.kernels").joinpath("c", "mve")
#: The dense convolutions' micro-kernel, on the DSP lowering's ``"int8"`` form
#: (:func:`micro.kernels.dsp.convolution.conv_int8_intrin`; ``c/mve/convolution_mve.c``).
CONV_KERNEL = "micro_mve_conv_q7"
#: The micro-kernels of a lowered convolution: the Helium dense convolution on int8 windows and
#: epilogue requantization (``requantize_mve.c``, per position), the DSP library's depthwise.
CONV_KERNELS = convolution.ConvKernels(
    conv=CONV_KERNEL, requantize="micro_mve_requantize_channels_q7", int8_window=True)
_META_SCHEDULE_RULE = f"s_tir.meta_schedule.cpu.{SCHEDULE_RULE}"


def register() -> None:
    """Declare the micro-kernels' C sources and the MetaSchedule rule, and the DSP library's
    convolution, depthwise and pooling kernels this library uses (idempotent)."""
    dsp_library.register()
    for symbol, name in ((MICRO_KERNEL, "dot_product_mve"), (MICRO_KERNEL_Q4, "dot_product_mve"),
                         (REQUANTIZE_KERNEL, "requantize_mve"),
                         (CONV_KERNEL, "convolution_mve"),
                         (CONV_KERNELS.requantize, "requantize_mve")):
        register_extern_source(symbol, _SOURCES.joinpath(f"{name}.c"),
                               header=_SOURCES.joinpath(f"{name}.h"))
    tvm.register_global_func(_META_SCHEDULE_RULE, _meta_schedule_rule, override=True)


def board_uses_mve(board: Board) -> bool:
    """Whether this library's kernels run on the board by default: cores with MVE (``Board.mve``).

    Parameters
    ----------
    board : Board
        Target board.

    Returns
    -------
    bool
        ``board.mve``.
    """
    return bool(board.mve)


def uses_mve(board: Board, mve: bool | None = None) -> bool:
    """Resolve an ``mve=`` option.

    Parameters
    ----------
    board : Board
        Target board.
    mve : bool, optional
        None: the board's default (:func:`board_uses_mve`); False: TVM's plain lowering; True:
        the Helium kernels, which the board's core must have.

    Returns
    -------
    bool
        Whether to schedule int8 dot products on the Helium kernels.

    Raises
    ------
    BuildError
        If ``mve=True`` and the board's core lacks MVE.
    """
    if mve is None:
        return board_uses_mve(board)
    if mve and not board.mve:
        raise BuildError(f"mve=True, but {board.name} ({board.cpu}) has no MVE (Helium)")
    return bool(mve)


def lower(mod: tvm.IRModule, board: Board, *, mve: bool | None = None) -> tvm.IRModule:
    """The lowering stage: Relax → a chain of kernel calls, int8 convolutions in the DSP
    library's windowed form (:func:`micro.kernels.dsp.convolution.lower_conv2d_windows`: the
    Cortex-M55 has the DSP extension too, and its convolution kernels run there until Helium
    versions exist).

    Parameters
    ----------
    mod : tvm.IRModule
        Relax module, as for :func:`micro.build`.
    board : Board
        Target board.
    mve : bool, optional
        As for :func:`uses_mve` (checked, so that ``mve=True`` fails early on other cores).

    Returns
    -------
    tvm.IRModule
        Lowered module (unscheduled kernels).
    """
    rewrites = [partial(convolution.lower_conv2d_windows, kernels=CONV_KERNELS)] if uses_mve(
        board, mve) else []
    return lower_to_kernel_calls(mod, rewrites=rewrites)


def schedule_module(
    lowered: tvm.IRModule, board: Board, output_tile: int | None = None, *,
    mve: bool | None = None,
) -> tvm.IRModule:
    """Tensorize, for the board, every kernel of a lowered module this library takes.

    Kernels already scheduled (attribute ``tirx.is_scheduled``) are left as they are.

    Parameters
    ----------
    lowered : tvm.IRModule
        Output of :func:`lower`.
    board : Board
        Target board.
    output_tile : int, optional
        Outputs per dot-product call (the whole output axis by default).
    mve : bool, optional
        As for :func:`uses_mve`; without the Helium kernels the module is returned unchanged.

    Returns
    -------
    tvm.IRModule
        The module whose matching kernels call the micro-kernels, with the constants they read
        re-laid out.
    """
    if not uses_mve(board, mve):
        return lowered
    register()
    return _schedule_module(lowered, output_tile, tensorize=True)


def apply_mve(
    mod: tvm.IRModule, board: Board, output_tile: int | None = None, *, mve: bool | None = None
) -> tvm.IRModule:
    """:func:`lower`, then :func:`schedule_module` (same parameters)."""
    return schedule_module(lower(mod, board, mve=mve), board, output_tile, mve=mve)


def prepare_for_tuning(
    mod: tvm.IRModule, board: Board, *, mve: bool | None = None
) -> tvm.IRModule:
    """Lower a Relax module and re-lay out its int8 dot products' weights for a MetaSchedule search.

    As :func:`micro.kernels.dsp.prepare_for_tuning`: the layout changes are made once, here, and
    the blocks annotated with ``schedule_rule = SCHEDULE_RULE``, so that MetaSchedule's
    ``ApplyCustomRule`` tensorizes them (:func:`register` declares the rule) in every candidate.

    Parameters
    ----------
    mod : tvm.IRModule
        Relax module.
    board : Board
        Target board.
    mve : bool, optional
        As for :func:`uses_mve` (without the kernels: the plain lowered module).

    Returns
    -------
    tvm.IRModule
        Lowered module with re-laid-out weights and annotated blocks.
    """
    lowered = lower(mod, board, mve=mve)
    if not uses_mve(board, mve):
        return lowered
    register()
    return _schedule_module(lowered, None, tensorize=False)


def tensorize_annotated(sch: s_tir.Schedule) -> None:
    """Tensorize, as :func:`apply_mve` would, every block :func:`prepare_for_tuning` annotated.

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of a prepared kernel, changed in place.
    """
    if (convolution.schedule_conv2d_kernel(sch) or depthwise.schedule_depthwise(sch)
            or pooling.schedule_pooling(sch)):
        return
    annotated = False
    for name in child_block_names(sch):
        block_rv = sch.get_sblock(name)
        if sch.get(block_rv).annotations.get("schedule_rule") == SCHEDULE_RULE:
            _tensorize(sch, block_rv, None, MVE_KERNELS)
            annotated = True
    if annotated:  # as micro.kernels.dsp.dot_product.tensorize_annotated_dots
        tensorize_mve_requantizations(sch)


def _meta_schedule_rule(sch: s_tir.Schedule, block_rv: s_tir.SBlockRV) -> list[s_tir.Schedule]:
    """MetaSchedule's rule for blocks annotated by :func:`prepare_for_tuning` (one sketch, the
    whole output axis per call, as the DSP library's rule)."""
    _tensorize(sch, block_rv, None, MVE_KERNELS)
    tensorize_mve_requantizations(sch)
    return [sch]


def _schedule_module(
    lowered: tvm.IRModule, output_tile: int | None, *, tensorize: bool
) -> tvm.IRModule:
    """Schedule every kernel that is not scheduled yet; re-lay out the constants to match."""
    scheduled: dict[str, tuple[tirx.PrimFunc, list[Relayout]]] = {}
    for gvar, func in lowered.functions.items():
        if not isinstance(func, tirx.PrimFunc) or func.attrs.get("tirx.is_scheduled", False):
            continue
        convolutional = dsp_library.schedule_convolutional(func, tensorize=tensorize)
        if convolutional is not None:
            scheduled[gvar.name_hint] = (convolutional, [])
            continue
        result = schedule_mve_dots(func, output_tile, tensorize=tensorize)
        if result is None:
            continue
        new, relaid_out = result
        if tensorize:
            new = new.with_attr("tirx.is_scheduled", True)
        scheduled[gvar.name_hint] = (new, relaid_out)
    return _rewrite_calls(lowered, scheduled) if scheduled else lowered

