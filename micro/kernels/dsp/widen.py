"""The window stage of the DSP convolution (int8 → int16 rows in SXTB16's order): intrinsics.

A ``"window"``-form convolution (:func:`.convolution.conv2d_window_te`) widens, per pass of
output positions, the input rows its windows cover into an int16 buffer, each quad of four
channels in SXTB16's order ``(v0, v2, v1, v3)``, the order ``micro_dsp_conv_q15q7`` reads. TVM's
C for that copy costs about ten instructions per value (index arithmetic, the reordering, the
padding test); the rows of an NWC input being contiguous, one ``LDR``, two ``SXTB16`` and the
stores widen four values at once. :func:`widen_rows_intrin` states the copy of a pass's rows
and calls the micro-kernel of ``c/dsp/widen.c``; :func:`tensorize_window` puts a pass's window
stage on it.

Only windows that do not overlap from one pass to the next are tensorized (a pass moves by as
many rows as its window has: a 1x1 convolution, or a kernel as wide as its stride): tensorize
blockizes the rows loop, and the window's row ``pass * step + r`` splits into an outer and an
inner iterator only when ``r < step``. Windows with padding keep TVM's loop as well.
"""

from __future__ import annotations

from importlib import resources

from tvm import s_tir, tirx
from tvm.script import tirx as T

from ...codegen import register_extern_source
from .passes import iter_var, register_intrinsic

WIDEN_KERNEL = "micro_dsp_widen_rows_q7"
_SOURCES = resources.files("micro.kernels").joinpath("c", "dsp")


def register() -> None:
    """Declare the widening micro-kernels' C source to the code generator (idempotent)."""
    register_extern_source(WIDEN_KERNEL, _SOURCES.joinpath("widen.c"),
                           header=_SOURCES.joinpath("widen.h"))


def _pair_order(e):
    """The channel SXTB16's order puts at quad element ``e``: (0, 2, 1, 3), as arithmetic."""
    return (e % 2) * 2 + e // 2


def widen_rows_intrin(rows: int, channels: int, kernel: str = WIDEN_KERNEL) -> str:
    """Register (once) the window-widening intrinsic for one shape and return its name.

    Description: ``W[0, 0, j, q, e] = int16(A[0, 0, j, 4 q + (e % 2) * 2 + e // 2])`` for
    ``j < rows``, ``4 q + e < channels``: ``rows`` rows of an NWC int8 input widened, each quad
    in SXTB16's order. Implementation: :data:`WIDEN_KERNEL`, with the row strides of ``A`` and
    ``W``.

    Parameters
    ----------
    rows : int
        Rows widened per call.
    channels : int
        Values per row, a multiple of 4.
    kernel : str
        The micro-kernel called (:data:`WIDEN_KERNEL`'s contract).

    Returns
    -------
    str
        Name for ``Schedule.tensorize``.
    """
    name = f"{kernel}_{rows}x{channels}"
    return register_intrinsic(name, lambda: _widen_rows_intrin(rows, channels, kernel))


def _widen_rows_intrin(
    rows: int, channels: int, kernel: str
) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
    quads = channels // 4
    a_shape, w_shape = (1, 1, rows, channels), (1, 1, rows, quads, 4)

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, w: T.handle) -> None:
        A = T.match_buffer(a, a_shape, "int8", offset_factor=1)
        W = T.match_buffer(w, w_shape, "int16", offset_factor=1)
        with T.sblock("root"):
            T.reads(A[0, 0, 0:rows, 0:channels])
            T.writes(W[0, 0, 0:rows, 0:quads, 0:4])
            for j, q, e in T.grid(rows, quads, 4):
                with T.sblock("window"):
                    vj = T.meta_var(iter_var(T.axis.spatial, rows, j))
                    vq = T.meta_var(iter_var(T.axis.spatial, quads, q))
                    ve = T.axis.spatial(4, e)
                    T.reads(A[0, 0, vj, vq * 4 + _pair_order(ve)])
                    T.writes(W[0, 0, vj, vq, ve])
                    W[0, 0, vj, vq, ve] = T.Cast("int16", A[0, 0, vj, vq * 4 + _pair_order(ve)])

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, w: T.handle) -> None:
        a_row = T.int32()
        w_row = T.int32()
        A = T.match_buffer(a, a_shape, "int8", offset_factor=1,
                           strides=[T.int32(), T.int32(), a_row, 1])
        W = T.match_buffer(w, w_shape, "int16", offset_factor=1,
                           strides=[T.int32(), T.int32(), w_row, 4, 1])
        with T.sblock("root"):
            T.reads(A[0, 0, 0:rows, 0:channels])
            T.writes(W[0, 0, 0:rows, 0:quads, 0:4])
            T.evaluate(T.call_extern(
                "int32", kernel, A.access_ptr("r"), W.access_ptr("w"), rows, quads,
                T.Cast("int32", a_row), T.Cast("int32", w_row)))

    return desc, impl


def tensorize_window(
    sch: s_tir.Schedule, window: s_tir.SBlockRV, pass_loop: s_tir.LoopRV, kernel_rows: int,
    rows: int, channels: int, step: int, kernel: str = WIDEN_KERNEL,
) -> bool:
    """Put a pass's window stage (computed at ``pass_loop``) on the widening micro-kernel.

    Below the pass loop, the window block has a loop for each of its kernel rows, rows, quads
    and quad elements longer than 1 (in that order); the rows, quads and elements are
    tensorized (:func:`widen_rows_intrin`, the missing loops added as unit loops), and a loop
    over kernel rows stays around the call.

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of a ``"window"``-form convolution kernel after
        :func:`.passes.compute_in_passes`, changed in place.
    window : tvm.s_tir.SBlockRV
        The window block.
    pass_loop : tvm.s_tir.LoopRV
        The pass loop.
    kernel_rows, rows, channels : int
        The window's extents in a pass: kernel rows (the height), rows (the width) and
        channels.
    step : int
        Rows from one pass's window to the next's (positions per pass times the stride).
    kernel : str
        The micro-kernel called (:data:`WIDEN_KERNEL`'s contract).

    Returns
    -------
    bool
        Whether the window now calls the micro-kernel; False, the window unchanged, for
        overlapping windows (``rows != step``), channels not a multiple of 4 or a padding test
        (and, its loops then unchanged but for unit loops, a block that does not match).
    """
    value = sch.get(window).body.value
    if rows != step or channels % 4 or not isinstance(value, tirx.Cast):
        return False
    loops = sch.get_loops(window)
    pass_index = [sch.get(lp).same_as(sch.get(pass_loop)) for lp in loops].index(True)
    below = iter(loops[pass_index + 1:])
    axes = ["kernel_rows", "rows", "quads", "elements"]
    extents = [kernel_rows, rows, channels // 4, 4]
    found = {axis: next(below, None) if extent > 1 else None
             for axis, extent in zip(axes, extents, strict=True)}
    if next(below, None) is not None or any(
            found[axis] is None or int(sch.get(found[axis]).extent) != extent
            for axis, extent in zip(axes, extents, strict=True) if extent > 1):
        return False
    for index in (2, 1):  # quads, then rows
        if found[axes[index]] is None:
            found[axes[index]] = sch.add_unit_loop(found[axes[index + 1]])
    try:
        sch.tensorize(found["rows"], widen_rows_intrin(rows, channels, kernel))
    except s_tir.ScheduleError:
        return False
    return True
