"""int8 pooling on the Cortex-M DSP extension (M4, M7, M33): row sums and max pooling.

* **Row sums** (:func:`sum_rows_intrin`): global average pooling lowers to an int8 → int32 sum
  per channel over the rows of a ``[1, rows, C]`` tensor (``fused_cast_sum``). The micro-kernel
  ``micro_dsp_sum_rows_q7`` (``c/dsp/pooling.c``) adds a word of four channels to two registers
  of int16 pairs with two ``SXTAB16`` and adds those to the int32 sums every 256 rows, before a
  16-bit lane can overflow: 15 instructions per 16 values in its inner loop, where TVM's loop
  takes about 6 per value.
* **Max pooling** (:func:`max_pool_intrin`): TVM's ``max_pool2d`` over int8 NHWC windows. The
  micro-kernel ``micro_dsp_max_pool_q7`` takes the lane-wise maximum of four channels with
  ``SSUB8`` (the GE flag of each byte lane) and ``SEL``. Two-tap windows (the common
  ``MaxPool1D(2)``) with word-aligned rows and channels a multiple of 8 run in assembly: 7
  instructions per 8 outputs and 4 per window position for up to 32 channels; other windows of
  up to 4 taps cost about 3 instructions per tap and word of four channels, in C. Padding keeps
  TVM's semantics: the kernel's pad stage (value -128, the identity of the maximum) is inlined
  into the pooling block, the description states TVM's padding test, and the micro-kernel skips
  the taps outside the input (a pad stage that cannot be inlined stays, and the micro-kernel
  reads the padded copy).

Both descriptions state the whole reduction, which the micro-kernels write (they do not add to
what the output held): :data:`micro.codegen.OVERWRITES_ATTR` on the implementation lets the code
generator drop the init of the block they replace (0 for a sum, -128 for a max:
:data:`micro.codegen.OVERWRITES_FROM_ATTR`). :func:`schedule_pooling` tries every matching block
on a copy of the schedule first; a block that does not match keeps the default schedule.
"""

from __future__ import annotations

from importlib import resources

import tvm
from tvm import s_tir, tirx
from tvm.script import tirx as T
from tvm.sym.pattern import detect_linear_equation

from ...codegen import OVERWRITES_ATTR, OVERWRITES_FROM_ATTR, register_extern_source
from ...schedules import (
    child_block_names,
    data_parallel,
    fuse_elementwise,
    inline_copies_and_casts,
    reduce_row_by_row,
)
from .passes import iter_var, register_intrinsic

SUM_ROWS_KERNEL = "micro_dsp_sum_rows_q7"
MAX_POOL_KERNEL = "micro_dsp_max_pool_q7"
#: The init of TVM's int8 max pooling: the smallest int8, the identity of the maximum.
INT8_MIN = -128
_SOURCES = resources.files("micro.kernels").joinpath("c", "dsp")


def register() -> None:
    """Declare the pooling micro-kernels' C source to the code generator (idempotent)."""
    for symbol in (SUM_ROWS_KERNEL, MAX_POOL_KERNEL):
        register_extern_source(symbol, _SOURCES.joinpath("pooling.c"),
                               header=_SOURCES.joinpath("pooling.h"))


def sum_rows_intrin(rows: int, channels: int) -> str:
    """Register (once) the row-sum intrinsic for one shape and return its name.

    Description: ``O[0, c] = sum_k int32(A[0, k, c])`` for ``c < channels`` over ``k < rows``,
    the rows outside the channels (the loop order a row-by-row reduction reads contiguously);
    the sums are written, not added. Implementation: :data:`SUM_ROWS_KERNEL`, with the row
    stride of ``A``.

    Parameters
    ----------
    rows : int
        Rows summed.
    channels : int
        Channels (sums).

    Returns
    -------
    str
        Name for ``Schedule.tensorize``.
    """
    name = f"{SUM_ROWS_KERNEL}_{rows}x{channels}"
    return register_intrinsic(name, lambda: _sum_rows_intrin(rows, channels))


def _sum_rows_intrin(rows: int, channels: int) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
    @T.prim_func(s_tir=True)
    def desc(a: T.handle, o: T.handle) -> None:
        A = T.match_buffer(a, (1, rows, channels), "int8", offset_factor=1)
        O = T.match_buffer(o, (1, channels), "int32", offset_factor=1)  # noqa: E741
        with T.sblock("root"):
            T.reads(A[0, 0:rows, 0:channels])
            T.writes(O[0, 0:channels])
            for k, c in T.grid(rows, channels):
                with T.sblock("update"):
                    vc = T.meta_var(iter_var(T.axis.spatial, channels, c))
                    vk = T.meta_var(iter_var(T.axis.reduce, rows, k))
                    T.reads(O[0, vc], A[0, vk, vc])
                    T.writes(O[0, vc])
                    with T.init():
                        O[0, vc] = 0
                    O[0, vc] = O[0, vc] + T.Cast("int32", A[0, vk, vc])

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, o: T.handle) -> None:
        row = T.int32()
        A = T.match_buffer(a, (1, rows, channels), "int8", offset_factor=1,
                           strides=[T.int32(), row, 1])
        O = T.match_buffer(o, (1, channels), "int32", offset_factor=1)  # noqa: E741
        with T.sblock("root"):
            T.reads(A[0, 0:rows, 0:channels])
            T.writes(O[0, 0:channels])
            T.sblock_attr({OVERWRITES_ATTR: True})
            T.evaluate(T.call_extern(
                "int32", SUM_ROWS_KERNEL, A.access_ptr("r"), O.access_ptr("w"), rows, channels,
                T.Cast("int32", row)))

    return desc, impl


def max_pool_intrin(
    outputs: tuple[int, int], channels: int, window: tuple[int, int], strides: tuple[int, int],
    dilation: tuple[int, int], bounds: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> str:
    """Register (once) the max-pooling intrinsic for one shape and return its name.

    Description: TVM's ``max_pool2d`` over an NHWC input for the whole output
    ``[1, OH, OW, C]`` (loops ``i, j, c, rh, rw``), starting from -128:
    ``O[0, i, j, c] = max(O[0, i, j, c], A[0, i * sh + rh * dh, j * sw + rw * dw, c])``, the
    read wrapped, when the kernel's pad stage was inlined, in TVM's padding test
    ``if_then_else(top <= h and h < bottom and left <= w and w < right, A[...], -128)`` (with
    only the tests of the sides that are padded). ``A`` is the region the windows cover, from
    ``(-top, -left)`` of the input when padded. Implementation: :data:`MAX_POOL_KERNEL`, with the
    input's row and column strides and its extent inside the padding.

    Parameters
    ----------
    outputs : tuple of int
        ``(OH, OW)``.
    channels : int
        ``C``.
    window, strides, dilation : tuple of int
        ``(KH, KW)``, ``(sh, sw)``, ``(dh, dw)``.
    bounds : tuple of int
        ``(top, bottom, left, right)``: the padded coordinates where the input starts (0: no
        test) and ends (0: no test, the input reaches the last window).

    Returns
    -------
    str
        Name for ``Schedule.tensorize``.
    """
    shape = "_".join(f"{a}x{b}" for a, b in (outputs, window, strides, dilation))
    padded = "_p" + "x".join(str(b) for b in bounds) if any(bounds) else ""
    name = f"{MAX_POOL_KERNEL}_{shape}_c{channels}{padded}"
    return register_intrinsic(
        name, lambda: _max_pool_intrin(outputs, channels, window, strides, dilation, bounds)
    )


def _index(value: int | tirx.PrimExpr) -> tirx.PrimExpr:
    return tirx.const(value, "int32") if isinstance(value, int) else value


def _padding_test(
    rows: tirx.PrimExpr, cols: tirx.PrimExpr, bounds: tuple[int, int, int, int]
) -> tirx.PrimExpr | None:
    """TVM's test that a padded position ``(rows, cols)`` is inside the input (``topi.nn.pad``:
    per padded side, in this order, folded with ``and``), or None without padding."""
    top, bottom, left, right = bounds
    rows, cols = _index(rows), _index(cols)
    tests = [tirx.LE(tirx.const(top, "int32"), rows)] if top else []
    tests += [tirx.LT(rows, tirx.const(bottom, "int32"))] if bottom else []
    tests += [tirx.LE(tirx.const(left, "int32"), cols)] if left else []
    tests += [tirx.LT(cols, tirx.const(right, "int32"))] if right else []
    if not tests:
        return None
    test = tests[0]
    for more in tests[1:]:
        test = tirx.And(test, more)
    return test


def _max_pool_intrin(
    outputs: tuple[int, int], channels: int, window: tuple[int, int], strides: tuple[int, int],
    dilation: tuple[int, int], bounds: tuple[int, int, int, int],
) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
    (oh, ow), (kh, kw), (sh, sw), (dh, dw) = outputs, window, strides, dilation
    top, bottom, left, right = bounds
    ih, iw = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
    a_shape, o_shape = (1, ih, iw, channels), (1, oh, ow, channels)
    # The input's extent inside the region the windows cover (padded coordinates from 0).
    in_rows = (bottom or ih) - top
    in_cols = (right or iw) - left

    def read(a: tirx.Buffer, vi, vj, vc, vrh, vrw) -> tirx.PrimExpr:
        rows, cols = vi * sh + vrh * dh, vj * sw + vrw * dw
        value = a[0, rows, cols, vc]
        test = _padding_test(rows, cols, bounds)
        return value if test is None else tirx.if_then_else(test, value, tirx.const(INT8_MIN,
                                                                                    "int8"))

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, o: T.handle) -> None:
        A = T.match_buffer(a, a_shape, "int8", offset_factor=1)
        O = T.match_buffer(o, o_shape, "int8", offset_factor=1)  # noqa: E741
        with T.sblock("root"):
            T.reads(A[0, 0:ih, 0:iw, 0:channels])
            T.writes(O[0, 0:oh, 0:ow, 0:channels])
            for i, j, c, rh, rw in T.grid(oh, ow, channels, kh, kw):
                with T.sblock("update"):
                    vi = T.meta_var(iter_var(T.axis.spatial, oh, i))
                    vj = T.meta_var(iter_var(T.axis.spatial, ow, j))
                    vc = T.meta_var(iter_var(T.axis.spatial, channels, c))
                    vrh = T.meta_var(iter_var(T.axis.reduce, kh, rh))
                    vrw = T.meta_var(iter_var(T.axis.reduce, kw, rw))
                    T.reads(O[0, vi, vj, vc], A[0, vi * sh + vrh * dh, vj * sw + vrw * dw, vc])
                    T.writes(O[0, vi, vj, vc])
                    value = T.meta_var(read(A, vi, vj, vc, vrh, vrw))
                    with T.init():
                        O[0, vi, vj, vc] = T.int8(INT8_MIN)
                    O[0, vi, vj, vc] = T.max(O[0, vi, vj, vc], value)

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, o: T.handle) -> None:
        row = T.int32()
        col = T.int32()
        A = T.match_buffer(a, a_shape, "int8", offset_factor=1,
                           strides=[T.int32(), row, col, 1])
        O = T.match_buffer(o, o_shape, "int8", offset_factor=1)  # noqa: E741
        with T.sblock("root"):
            T.reads(A[0, 0:ih, 0:iw, 0:channels])
            T.writes(O[0, 0:oh, 0:ow, 0:channels])
            T.sblock_attr({OVERWRITES_ATTR: True, OVERWRITES_FROM_ATTR: INT8_MIN})
            T.evaluate(T.call_extern(
                "int32", MAX_POOL_KERNEL, A.access_ptr("r", offset=top * row + left * col),
                O.access_ptr("w"), oh, ow, channels, kh, kw, sh, sw, dh, dw, in_rows, in_cols,
                top, left, T.Cast("int32", row), T.Cast("int32", col)))

    return desc, impl


def _loads(expr: tvm.ir.PrimExpr) -> bool:
    return isinstance(expr, tvm.ir.TensorLoad)


def _row_sum(block: tirx.SBlock) -> tuple[int, int] | None:
    """``(rows, channels)`` of ``O[0, c] = O[0, c] + int32(A[0, k, c])`` (int8 ``A``), else None.

    The structure only; whether the loops and accesses fit is left to ``tensorize``.
    """
    body = block.body
    if not (isinstance(body, tirx.BufferStore) and isinstance(body.value, tirx.Add)):
        return None
    acc, value = body.value.a, body.value.b
    if not (_loads(acc) and acc.source.same_as(body.buffer) and isinstance(value, tirx.Cast)
            and _loads(value.value)):
        return None
    if str(value.value.source.dtype) != "int8" or str(body.buffer.dtype) != "int32":
        return None
    kinds = [iv.iter_type for iv in block.iter_vars]
    if kinds != [tirx.IterVar.DataPar, tirx.IterVar.DataPar, tirx.IterVar.CommReduce]:
        return None
    batch, channels, rows = (int(iv.dom.extent) for iv in block.iter_vars)
    return (rows, channels) if batch == 1 and block.init is not None else None


def _linear(
    index: tirx.PrimExpr, outer: tirx.Var, inner: tirx.Var
) -> tuple[int, int, int] | None:
    """``(a, b, base)`` of ``index = outer * a + inner * b + base``, else None."""
    coefficients = detect_linear_equation(index, [outer, inner])
    if len(coefficients) != 3 or not all(isinstance(c, tirx.IntImm) for c in coefficients):
        return None
    a, b, base = (int(c) for c in coefficients)
    return a, b, base


def _conjuncts(test: tirx.PrimExpr) -> list[tirx.PrimExpr]:
    """The terms of ``t0 and t1 and ...``, left to right."""
    if isinstance(test, tirx.And):
        return _conjuncts(test.a) + _conjuncts(test.b)
    return [test]


def _bounds(test: tirx.PrimExpr, rows: tuple, cols: tuple) -> tuple[int, int, int, int] | None:
    """``(top, bottom, left, right)`` of TVM's padding test on the padded position, else None.

    ``rows`` and ``cols`` are the (output, window) iteration variables of each axis; a term
    ``k <= h`` sets ``top`` (or ``left``), ``h < k`` ``bottom`` (or ``right``).
    """
    bounds = [0, 0, 0, 0]
    for term in _conjuncts(test):
        if isinstance(term, tirx.LE) and isinstance(term.a, tirx.IntImm):
            bound, position, side = int(term.a), term.b, 0
        elif isinstance(term, tirx.LT) and isinstance(term.b, tirx.IntImm):
            bound, position, side = int(term.b), term.a, 1
        else:
            return None
        for axis, variables in enumerate((rows, cols)):
            linear = _linear(position, *variables)
            if linear is not None and linear[2] == 0 and bound > 0:
                bounds[2 * axis + side] = bound
                break
        else:
            return None
    return bounds[0], bounds[1], bounds[2], bounds[3]


def _max_pool(block: tirx.SBlock) -> dict | None:
    """The intrinsic's parameters for an int8 NHWC max pooling block from -128, else None.

    The block reads the input directly, or through TVM's padding test once the kernel's pad
    stage is inlined (the padded value being -128).
    """
    body = block.body
    if not (isinstance(body, tirx.BufferStore) and isinstance(body.value, tirx.Max)):
        return None
    acc, value = body.value.a, body.value.b
    if not (_loads(acc) and acc.source.same_as(body.buffer) and str(body.buffer.dtype) == "int8"):
        return None
    init = block.init
    if not (isinstance(init, tirx.BufferStore) and isinstance(init.value, tirx.IntImm)
            and int(init.value) == INT8_MIN):
        return None
    kinds = [iv.iter_type for iv in block.iter_vars]
    if kinds != [tirx.IterVar.DataPar] * 4 + [tirx.IterVar.CommReduce] * 2:
        return None
    n, i, j, c, rh, rw = (iv.var for iv in block.iter_vars)
    test = None
    if isinstance(value, tvm.ir.Call) and getattr(value.op, "name", "") == "prim.if_then_else":
        test, value, padding = value.args
        if not (isinstance(padding, tirx.IntImm) and int(padding) == INT8_MIN):
            return None
    if not (_loads(value) and str(value.source.dtype) == "int8" and len(value.indices) == 4):
        return None
    extents = [int(iv.dom.extent) for iv in block.iter_vars]
    rows, cols = _linear(value.indices[1], i, rh), _linear(value.indices[2], j, rw)
    if extents[0] != 1 or rows is None or cols is None:
        return None
    bounds = (0, 0, 0, 0) if test is None else _bounds(test, (i, rh), (j, rw))
    if bounds is None or (rows[2], cols[2]) != (-bounds[0], -bounds[2]):
        return None
    # A unit extent's coefficient is irrelevant (its variable is 0): name it 1.
    sh, dh = (rows[0] if extents[1] > 1 else 1), (rows[1] if extents[4] > 1 else 1)
    sw, dw = (cols[0] if extents[2] > 1 else 1), (cols[1] if extents[5] > 1 else 1)
    return {
        "outputs": (extents[1], extents[2]), "channels": extents[3],
        "window": (extents[4], extents[5]), "strides": (sh, sw), "dilation": (dh, dw),
        "bounds": bounds,
    }


def _inline_padding(sch: s_tir.Schedule, block_rv: s_tir.SBlockRV) -> None:
    """Inline the pad stages a pooling reads (``if_then_else(inside, x, value)``, e.g. TVM's
    ``pad_temp``): the padding test is then part of the pooling's block."""
    for producer in sch.get_producers(block_rv):
        store = sch.get(producer).body
        value = store.value if isinstance(store, tirx.BufferStore) else None
        if (isinstance(value, tvm.ir.Call) and getattr(value.op, "name", "") == "prim.if_then_else"
                and data_parallel(sch.get(producer))):
            sch.compute_inline(producer)


def _tensorize_row_sum(sch: s_tir.Schedule, name: str) -> None:
    block_rv = sch.get_sblock(name)
    rows, channels = _row_sum(sch.get(block_rv))
    _, channel_loop, row_loop = sch.get_loops(block_rv)
    sch.reorder(row_loop, channel_loop)
    sch.tensorize(row_loop, sum_rows_intrin(rows, channels))


def _tensorize_max_pool(sch: s_tir.Schedule, name: str, *, inline_padding: bool) -> None:
    block_rv = sch.get_sblock(name)
    if inline_padding:
        _inline_padding(sch, block_rv)
    params = _max_pool(sch.get(block_rv))
    loops = sch.get_loops(block_rv)
    if params is None or len(loops) != 6:
        raise s_tir.ScheduleError("not TVM's max pooling with a loop per iteration variable")
    sch.tensorize(loops[1], max_pool_intrin(**params))


def _tensorize_padded_max_pool(sch: s_tir.Schedule, name: str) -> None:
    _tensorize_max_pool(sch, name, inline_padding=True)


def _tensorize_max_pool_as_is(sch: s_tir.Schedule, name: str) -> None:
    _tensorize_max_pool(sch, name, inline_padding=False)


def _tensorizable(sch: s_tir.Schedule) -> list[tuple[str, object]]:
    """The pooling blocks of ``sch`` whose tensorization succeeds, each tried on a copy."""
    found = []
    for name in child_block_names(sch):
        block = sch.get(sch.get_sblock(name))
        if _row_sum(block) is not None:
            steps = [_tensorize_row_sum]
        elif _max_pool(block) is not None:  # its pad stage inlined if it has one, else as is
            steps = [_tensorize_padded_max_pool, _tensorize_max_pool_as_is]
        else:
            continue
        for step in steps:
            trial = s_tir.Schedule(sch.mod)
            try:
                step(trial, name)
            except (s_tir.ScheduleError, ValueError):
                continue  # not the micro-kernel's pattern
            found.append((name, step))
            break
    return found


def schedule_pooling(sch: s_tir.Schedule) -> bool:
    """Put every row sum and int8 max pooling of a kernel on its micro-kernel.

    Casts read by a reduction are inlined first (``fused_cast_sum``'s int8 → int32 widening
    is read inside the sum), then each block that :func:`sum_rows_intrin` or
    :func:`max_pool_intrin` matches is tensorized (a sum with its rows moved outside its
    channels), and the rest of the kernel gets micro's default schedule
    (:mod:`micro.schedules`). Trying also registers the intrinsics, which a tuning database
    needs before it is loaded in another process.

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of one kernel, changed in place only when a block matched.

    Returns
    -------
    bool
        Whether any block was tensorized.
    """
    prepared = s_tir.Schedule(sch.mod)
    inline_copies_and_casts(prepared)
    found = _tensorizable(prepared)
    if not found:
        return False
    inline_copies_and_casts(sch)
    for name, step in found:
        step(sch, name)
    inline_copies_and_casts(sch)
    reduce_row_by_row(sch)
    fuse_elementwise(sch)
    return True
