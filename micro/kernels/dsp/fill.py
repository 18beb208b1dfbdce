"""The per-pass window of a depthwise convolution as one micro-kernel call (the DSP library's
last stage, with the requantization tables).

:func:`.depthwise.depthwise_te` writes the padded input as a channel-major int16 window, and
its schedule computes it per pass of output positions; TVM's loop for it tests the padding for
every value and takes about 9 instructions per value (26,000 per inference on the depthwise
small CNN of the benchmark, as much as the depthwise micro-kernel itself). A tensor intrinsic
cannot take it over: its padding test depends on the pass (column ``pass * step + j``), which
an intrinsic's description, written for one pass, cannot state, and the windows of consecutive
passes overlap (``cols > step``), so the loop nest does not blockize.

:func:`call_window_fills` therefore replaces the loop nest itself, below the pass loop, by an
opaque block calling ``micro_dsp_fill_channels_q15`` (``c/dsp/fill.c``), which fills the
padded columns and copies the row's columns channel by channel. It recognises the nest by the
annotation :data:`FILL_ATTR` that :func:`.depthwise.depthwise_te` puts on the window stage (the
padding's geometry and value) and checks the block's bindings: each iteration variable must be
the pass's start plus at most one of the nest's loops, over the channels and the columns, so
the call covers exactly the block's iterations. The block reads the input row and writes the
pass's window region through a match buffer, so later passes (buffer compaction, match-buffer
lowering) see what it touches, as for a tensorized block. Windows with vertical padding (2-D
kernels) keep TVM's loop.
"""

from __future__ import annotations

import tvm
import tvm_ffi
from tvm import ir, s_tir, tirx
from tvm.sym import Analyzer

FILL_KERNEL = "micro_dsp_fill_channels_q15"
#: Annotation of the window stage :func:`.depthwise.depthwise_te` writes: ``top``, ``left``
#: (padding before the rows and the columns), ``height``, ``width`` (the input's) and ``pad``
#: (the padded value).
FILL_ATTR = "micro.window_fill"


def call_window_fills(mod: tvm.IRModule) -> tvm.IRModule:
    """Replace every annotated window loop nest of a scheduled module by a fill call.

    Parameters
    ----------
    mod : tvm.IRModule
        A scheduled module.

    Returns
    -------
    tvm.IRModule
        The module, each window stage of :func:`.depthwise.depthwise_te` computed per pass by
        one call of :data:`FILL_KERNEL` where its nest qualifies (see the module docstring).
    """
    functions = {}
    for gvar, func in mod.functions.items():
        if isinstance(func, tirx.PrimFunc):
            func = func.with_body(tvm_ffi.structural_mutate(func.body, [(tirx.For, _fill_nest)]))
        functions[gvar] = func
    return tvm.IRModule(functions, attrs=mod.attrs)


def _fill_nest(loop: tirx.For, mutator: tvm_ffi.StructuralMutator) -> tirx.Stmt:
    loops, inner = [], loop
    while isinstance(inner, tirx.For):
        loops.append(inner)
        inner = inner.body
    if isinstance(inner, s_tir.SBlockRealize) and FILL_ATTR in inner.block.annotations:
        call = _fill_block(inner, loops)
        if call is not None:
            return call
    return mutator.default_mutate(loop)


def _fill_block(realize: s_tir.SBlockRealize, loops: list[tirx.For]) -> tirx.Stmt | None:
    """The opaque block calling :data:`FILL_KERNEL` for the nest ``loops`` around the window
    block ``realize``, or None if the nest is not one call's worth (see the module docstring)."""
    block = realize.block
    attrs = block.annotations[FILL_ATTR]
    top, left, height, width, pad = (int(attrs[k]) for k in ("top", "left", "height", "width",
                                                             "pad"))
    if top or height != 1 or len(block.writes) != 1 or len(block.reads) != 1:
        return None
    at_start = Analyzer()  # the nest's loops at 0: where the pass's region starts
    for lp in loops:
        at_start.bind(lp.loop_var, tirx.const(0, str(lp.loop_var.ty)))
    analyzer = Analyzer()
    starts, extents, used = [], [], set()
    for value in realize.iter_values:
        start = at_start.simplify(value)
        offset = analyzer.simplify(value - start)
        extent = 1
        if not (isinstance(offset, tirx.IntImm) and int(offset) == 0):
            match = [lp for lp in loops if offset.same_as(lp.loop_var)]
            if len(match) != 1 or match[0].loop_var in used:
                return None
            used.add(match[0].loop_var)
            extent = int(match[0].extent)
        starts.append(start)
        extents.append(extent)
    if len(used) != len(loops) or len(starts) != 4 or extents[0] != 1 or extents[1] != 1:
        return None
    b, i, c0, j0 = starts
    channels, cols = extents[2], extents[3]
    window = block.writes[0].source
    data = block.reads[0].source
    in_channels = int(data.shape[3])
    if channels != in_channels or not (isinstance(c0, tirx.IntImm) and int(c0) == 0):
        return None
    ty = block.writes[0].ty
    index = str(window.shape[0].ty)
    region = [ir.Range.from_min_extent(b, 1), ir.Range.from_min_extent(i, 1),
              ir.Range.from_min_extent(c0, channels), ir.Range.from_min_extent(j0, cols)]
    dst = tirx.decl_buffer(
        (1, 1, channels, cols), "int16", name="fill_window",
        strides=[tirx.Var("fill_image", index), tirx.Var("fill_row", index),
                 tirx.Var("fill_channel", index), tirx.const(1, index)],
        elem_offset=tirx.Var("fill_offset", index), offset_factor=1)
    row_start = (b * int(data.shape[1]) + i) * int(data.shape[2]) * in_channels
    row = ir.expr.TensorRegion(data, [ir.Range.from_min_extent(b, 1),
                                      ir.Range.from_min_extent(i, 1),
                                      ir.Range.from_min_extent(0, int(data.shape[2])),
                                      ir.Range.from_min_extent(0, in_channels)], ty)
    call = tirx.call_extern(
        "int32", FILL_KERNEL, data.access_ptr("r", offset=row_start), dst.access_ptr("w"),
        tirx.Cast("int32", j0 - left), cols, channels, width, pad,
        tirx.Cast("int32", dst.strides[2]))
    fill = s_tir.SBlock(
        [], [row], [ir.expr.TensorRegion(window, region, ty)], "window_fill",
        tirx.Evaluate(call), None, [], [s_tir.MatchBufferRegion(dst, ir.expr.TensorRegion(
            window, region, ty))], {})
    return s_tir.SBlockRealize([], True, fill)
