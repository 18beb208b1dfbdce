"""micro's kernel library for the Cortex-M DSP extension (Armv7E-M, Armv8-M DSP: M4, M7, M33).

Scalar int8 code costs at least three instructions per multiply-accumulate (MAC) on a
Cortex-M4, two byte loads and a multiply-accumulate, plus loop overhead. The DSP extension's
``SMLAD`` adds two 16×16-bit products to an accumulator in one instruction and ``SXTB16``
sign-extends two bytes of a word at once; the library's micro-kernels (C with inline assembly,
``micro/kernels/c/dsp/``) run int8 work on them, bit-exactly (the int32 sums are the same; only
the order of additions changes, and int32 addition is associative):

* :mod:`.convolution`: int8 convolutions (dense, 1-D and 2-D NHWC; ``convolution.c``), lowered
  from Relax to a widened per-pass window (:func:`.convolution.lower_conv2d_windows`), with the
  whole epilogue computed per pass; 17 instructions per 16 MACs in the inner loop;
* :mod:`.depthwise`: int8 depthwise convolutions (``depthwise.c``), the same way;
* :mod:`.dot_product`: int8 dot products of dense layers and the cluster-gated operator, and
  int8 activations times packed signed 4-bit weights (``dot_product.c``);
* :mod:`.requantize`: TFLite's requantization, of the operator's chosen cluster and of an int8
  convolution pass's epilogue (``requantize.c``);
* the library's last stages, on the scheduled module: :mod:`.requantize_table` (the epilogues'
  per-channel constants as a compile-time table), :mod:`.fuse` (a depthwise pass and its
  tabulated epilogue as one call) and :mod:`.fill` (the depthwise window's padded fill as one
  call per pass);
* :mod:`.pooling`: int8 pooling (``pooling.c``): global average pooling's row sums on
  ``SXTAB16`` and max pooling on ``SSUB8`` + ``SEL``.

How it fits the compiler: :func:`micro.build` lowers a model (:mod:`micro.lowering`, the DSP
convolution form included where :func:`uses_dsp`), then :func:`schedule_module` tensorizes every
kernel the library takes (the way microTVM's ``arm_cpu`` strategy picked its DSP schedules for
``-mcpu=cortex-m4/m7/m33``), re-laying out the Relax constants whose layout a schedule changed;
:func:`micro.schedules.schedule_unscheduled` schedules the rest. For tuning,
:func:`prepare_for_tuning` does only the layout changes and annotates the blocks, so that
MetaSchedule's ``ApplyCustomRule`` applies the library's rules in every candidate of
:func:`micro.tuning.tune` while its other rules search the rest. :func:`register` declares the
micro-kernels' C sources (:func:`micro.codegen.register_extern_source`) and the MetaSchedule
rules; the entry points call it, importing registers nothing.
"""

from __future__ import annotations

from importlib import resources

import tvm
from tvm import s_tir, tirx

from ...boards import Board
from ...codegen import register_extern_source
from ...errors import BuildError
from ...lowering import lower_to_kernel_calls
from ..relayout import Relayout, rewrite_calls
from . import convolution, depthwise, pooling
from .dot_product import (
    MICRO_KERNEL,
    MICRO_KERNEL_Q4,
    MICRO_KERNEL_X4,
    SCHEDULE_RULE,
    schedule_int8_dots,
    tensorize_annotated_dots,
    tensorize_for_rule,
)
from .fill import FILL_KERNEL, call_window_fills
from .fuse import FUSED_KERNEL, fuse_depthwise_epilogues
from .requantize import REQUANTIZE_CHANNELS_KERNEL, REQUANTIZE_KERNEL
from .requantize import tensorize_requantizations as tensorize_requantizations  # re-exported
from .requantize_table import TABLE_KERNEL, tabulate_requantizations

_SOURCES = resources.files("micro.kernels").joinpath("c", "dsp")
_META_SCHEDULE_RULE = f"s_tir.meta_schedule.cpu.{SCHEDULE_RULE}"


def register() -> None:
    """Declare the micro-kernels' C sources and MetaSchedule's rules (idempotent).

    :func:`micro.build`, :func:`micro.tuning.tune` and :func:`micro.tuning.apply_database` call
    it, so that nothing depends on which modules were imported before.
    """
    for symbol, name in ((MICRO_KERNEL, "dot_product"), (MICRO_KERNEL_X4, "dot_product"),
                         (MICRO_KERNEL_Q4, "dot_product"),
                         (REQUANTIZE_KERNEL, "requantize"),
                         (REQUANTIZE_CHANNELS_KERNEL, "requantize")):
        register_extern_source(symbol, _SOURCES.joinpath(f"{name}.c"),
                               header=_SOURCES.joinpath(f"{name}.h"))
    # Kernels of the last stages, each in its own file (only the builds that call one count its
    # code), with the header of the family's contract.
    for symbol, source, header in ((TABLE_KERNEL, "requantize_table", "requantize"),
                                   (FUSED_KERNEL, "depthwise_requantize", "depthwise"),
                                   (FILL_KERNEL, "fill", "fill")):
        register_extern_source(symbol, _SOURCES.joinpath(f"{source}.c"),
                               header=_SOURCES.joinpath(f"{header}.h"))
    tvm.register_global_func(_META_SCHEDULE_RULE, _meta_schedule_rule, override=True)
    convolution.register()
    depthwise.register()
    pooling.register()


def board_uses_dsp(board: Board) -> bool:
    """Whether kernels for this board use the SMLAD micro-kernel by default.

    Parameters
    ----------
    board : Board
        Target board.

    Returns
    -------
    bool
        True for cores with the DSP extension (``Board.dsp``) and without MVE: on Armv6-M and
        Armv7-M (M0, M3) the instructions do not exist, and on MVE cores (M55) vector code does
        more per instruction, so they keep TVM's lowering unless asked (``dsp=True``).
    """
    return board.dsp and not board.mve


def uses_dsp(board: Board, dsp: bool | None = None) -> bool:
    """Resolve a ``dsp=`` option of :func:`micro.build` and :func:`micro.tuning.tune`.

    Parameters
    ----------
    board : Board
        Target board.
    dsp : bool, optional
        None: the board's default (:func:`board_uses_dsp`); False: TVM's plain lowering; True:
        the micro-kernel, which the board's core must have.

    Returns
    -------
    bool
        Whether to schedule int8 dot products on the micro-kernel.

    Raises
    ------
    BuildError
        If ``dsp=True`` and the board's core lacks the DSP extension.
    """
    if dsp is None:
        return board_uses_dsp(board)
    if dsp and not board.dsp:
        raise BuildError(f"dsp=True, but {board.name} ({board.cpu}) has no DSP extension")
    return bool(dsp)


def tensorize_annotated(sch: s_tir.Schedule) -> None:
    """Tensorize, as :func:`apply_dsp` would, every block :func:`prepare_for_tuning` annotated.

    The default schedule of a prepared kernel, as a schedule (with a trace) rather than a
    function: :func:`micro.tuning.tune` measures it and commits it to the database beside the
    searched candidates.

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of a prepared kernel, changed in place.
    """
    if (convolution.schedule_conv2d_kernel(sch) or depthwise.schedule_depthwise(sch)
            or pooling.schedule_pooling(sch)):
        return
    tensorize_annotated_dots(sch)


def _meta_schedule_rule(sch: s_tir.Schedule, block_rv: s_tir.SBlockRV) -> list[s_tir.Schedule]:
    """MetaSchedule's rule for blocks annotated by :func:`prepare_for_tuning`.

    ``ApplyCustomRule`` dispatches on the ``schedule_rule`` annotation and the target key
    ``cpu``; :func:`register` declares it under that name (:func:`.dot_product.
    tensorize_for_rule`).
    """
    return tensorize_for_rule(sch, block_rv)


def lower(mod: tvm.IRModule, board: Board, *, dsp: bool | None = None) -> tvm.IRModule:
    """The lowering stage of :func:`micro.build` for a board: Relax → a chain of kernel calls,
    int8 convolutions in this library's windowed form where the board uses it.

    Parameters
    ----------
    mod : tvm.IRModule
        Relax module, as for :func:`micro.build`.
    board : Board
        Target board.
    dsp : bool, optional
        As for :func:`uses_dsp`.

    Returns
    -------
    tvm.IRModule
        Lowered module (unscheduled kernels).
    """
    rewrites = [convolution.lower_conv2d_windows] if uses_dsp(board, dsp) else []
    return lower_to_kernel_calls(mod, rewrites=rewrites)


def schedule_module(
    lowered: tvm.IRModule,
    board: Board,
    output_tile: int | None = None,
    *,
    dsp: bool | None = None,
    conv_positions: int | None = None,
) -> tvm.IRModule:
    """Tensorize, for the board, every kernel of a lowered module this library takes.

    Kernels already scheduled (attribute ``tirx.is_scheduled``, e.g. applied from a tuning
    database) are left as they are.

    Parameters
    ----------
    lowered : tvm.IRModule
        Output of :func:`lower`.
    board : Board
        Target board.
    output_tile : int, optional
        Outputs per dot-product micro-kernel call (see :func:`.dot_product.schedule_int8_dots`).
    dsp : bool, optional
        As for :func:`uses_dsp`; without the micro-kernels the module is returned unchanged.
    conv_positions : int, optional
        Output positions per pass of the convolution kernels
        (:func:`.convolution.schedule_conv2d`; by default its memory budget decides).

    Returns
    -------
    tvm.IRModule
        The module whose matching kernels call the micro-kernels, with the constants they read
        re-laid out, the convolution epilogues' constants tabulated
        (:func:`.requantize_table.tabulate_requantizations`), depthwise passes joined with their
        epilogues (:func:`.fuse.fuse_depthwise_epilogues`) and the depthwise windows filled by
        their micro-kernel (:func:`.fill.call_window_fills`), on every scheduled kernel.
    """
    if not uses_dsp(board, dsp):
        return lowered
    scheduled = _schedule_module(lowered, output_tile, tensorize=True,
                                 conv_positions=conv_positions)
    return call_window_fills(fuse_depthwise_epilogues(tabulate_requantizations(scheduled)))


def apply_dsp(
    mod: tvm.IRModule,
    board: Board,
    output_tile: int | None = None,
    *,
    dsp: bool | None = None,
    conv_positions: int | None = None,
) -> tvm.IRModule:
    """:func:`lower`, then :func:`schedule_module` (same parameters)."""
    return schedule_module(lower(mod, board, dsp=dsp), board, output_tile, dsp=dsp,
                           conv_positions=conv_positions)


def prepare_for_tuning(
    mod: tvm.IRModule, board: Board, *, dsp: bool | None = None
) -> tvm.IRModule:
    """Lower a Relax module and re-lay out its int8 dot products' weights for a MetaSchedule search.

    The weight layout must change together with the Relax constants, which a MetaSchedule
    candidate cannot do (it only replaces PrimFuncs); so it is done here, once, and the blocks
    are annotated with ``schedule_rule = SCHEDULE_RULE``: MetaSchedule's default ``ApplyCustomRule``
    then tensorizes them in every candidate while its other rules schedule the rest (the
    requantization, other kernels). :func:`micro.tuning.tune` and
    :func:`micro.tuning.apply_database` call it, so that the database's kernels match.

    Parameters
    ----------
    mod : tvm.IRModule
        Relax module, as for :func:`micro.build`.
    board : Board
        Target board.
    dsp : bool, optional
        As for :func:`uses_dsp` (without the micro-kernel: the plain lowered module).

    Returns
    -------
    tvm.IRModule
        Lowered module with re-laid-out weights and annotated blocks.
    """
    lowered = lower(mod, board, dsp=dsp)
    if not uses_dsp(board, dsp):
        return lowered
    return _schedule_module(lowered, None, tensorize=False)


def _schedule_module(
    lowered: tvm.IRModule, output_tile: int | None, *, tensorize: bool,
    conv_positions: int | None = None,
) -> tvm.IRModule:
    """Schedule every kernel that is not scheduled yet; re-lay out the constants to match."""
    scheduled: dict[str, tuple[tirx.PrimFunc, list[Relayout]]] = {}
    for gvar, func in lowered.functions.items():
        if not isinstance(func, tirx.PrimFunc) or func.attrs.get("tirx.is_scheduled", False):
            continue
        convolutional = schedule_convolutional(func, tensorize=tensorize,
                                               conv_positions=conv_positions)
        if convolutional is not None:
            scheduled[gvar.name_hint] = (convolutional, [])
            continue
        result = schedule_int8_dots(func, output_tile, tensorize=tensorize)
        if result is not None:
            new, relaid_out = result
            if tensorize:
                new = new.with_attr("tirx.is_scheduled", True)
            scheduled[gvar.name_hint] = (new, relaid_out)
    return rewrite_calls(lowered, scheduled) if scheduled else lowered


def schedule_convolutional(
    func: tirx.PrimFunc, *, tensorize: bool, conv_positions: int | None = None,
    pooling_kernels: bool = True,
) -> tirx.PrimFunc | None:
    """A convolution, depthwise or pooling kernel on this library's micro-kernels, or None.

    Parameters
    ----------
    func : tvm.tirx.PrimFunc
        A lowered kernel.
    tensorize : bool
        True: the kernel scheduled (attribute ``tirx.is_scheduled``). False, for tuning: a
        convolution annotated for :data:`.convolution.CONV_RULE`
        (:func:`.convolution.annotate_for_tuning`); depthwise and pooling kernels are left to
        MetaSchedule's generic rules, which commit their default schedule as a candidate, so
        their intrinsics are registered now (scheduling a throwaway copy registers them) for a
        database loaded in another process.
    conv_positions : int, optional
        Output positions per pass of a convolution (:func:`.convolution.schedule_conv2d`; by
        default its memory budget decides).
    pooling_kernels : bool
        Whether pooling kernels go on this library's pooling micro-kernels (they need the DSP
        extension; a library for other cores leaves them to TVM).

    Returns
    -------
    tvm.tirx.PrimFunc or None
        The scheduled or annotated kernel; None when it is none of those kernels.
    """
    if not tensorize:
        depthwise.schedule_depthwise(s_tir.Schedule(func))
        if pooling_kernels:
            pooling.schedule_pooling(s_tir.Schedule(func))
        return convolution.annotate_for_tuning(func)
    sch = s_tir.Schedule(func)
    if (convolution.schedule_conv2d_kernel(sch, positions=conv_positions)
            or depthwise.schedule_depthwise(sch)
            or (pooling_kernels and pooling.schedule_pooling(sch))):
        return sch.mod["main"].with_attr("tirx.is_scheduled", True)
    return None
