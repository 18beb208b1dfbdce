"""The DSP pooling micro-kernels (micro.kernels.dsp.pooling): global average pooling's row sums
and int8 max pooling, each shape built alone into firmware for a Cortex-M4 and compared bit for
bit with TVM's host build of the same Relax module, on random inputs and on inputs at -128 and
127 everywhere (the 16-bit lanes' overflow edges); and the micro-kernels' C contract on paths the
schedule does not take (unaligned rows, strided windows), on the M4, M7 and M33."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax, s_tir
from tvm.script import tirx as T

import micro
from micro.codegen import OVERWRITES_ATTR, OVERWRITES_FROM_ATTR, _drop_overwritten_inits
from micro.kernels import dsp
from micro.kernels.dsp import pooling
from micro.lowering import lower_to_kernel_calls

from .graphs import host_reference, requires_toolchain

BOARD = "mps2-an386"
SUM_CALL = "micro_dsp_sum_rows_q7("
MAX_POOL_CALL = "micro_dsp_max_pool_q7("


def channel_sum(rows: int, channels: int) -> tvm.IRModule:
    """Global average pooling's sum: int8 ``[1, rows, channels]`` widened and summed over rows
    (the int32 sums are the output, so nothing after them can hide an error)."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, rows, channels), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.sum(relax.op.astype(x, "int32"), axis=[1]))
        bb.emit_func_output(out)
    return bb.get()


def max_pool(
    shape: tuple[int, int, int], window: tuple[int, int], strides: tuple[int, int], *,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0), dilation: tuple[int, int] = (1, 1),
    ceil_mode: bool = False,
) -> tvm.IRModule:
    """TVM's int8 ``max_pool2d`` over an NHWC ``[1, H, W, C]`` input."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, *shape), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.nn.max_pool2d(
                x, window, strides, padding, dilation, ceil_mode, layout="NHWC"))
        bb.emit_func_output(out)
    return bb.get()


def edge_inputs(mod: tvm.IRModule, seed: int = 2) -> np.ndarray:
    """Two random inputs, then -128 everywhere and 127 everywhere."""
    ty = mod["main"].params[0].ty
    shape = tuple(int(d.value) for d in ty.shape.values)
    rng = np.random.default_rng(seed)
    random = rng.integers(-128, 128, (2, *shape), dtype=np.int8)
    return np.concatenate([random, np.full((1, *shape), -128, np.int8),
                           np.full((1, *shape), 127, np.int8)])


def build_and_compare(mod: tvm.IRModule, out_dir) -> micro.RunResult:
    inputs = edge_inputs(mod)
    result = micro.run(micro.build(mod, BOARD, out_dir), inputs)
    np.testing.assert_array_equal(result.outputs, host_reference(mod, inputs))
    return result


def _kernels_source(out_dir) -> str:
    return (out_dir / "src" / "kernels.c").read_text()


@requires_toolchain
@pytest.mark.parametrize(
    ("rows", "channels"),
    [(1, 32), (3, 5), (256, 13), (257, 32), (257, 3), (300, 4), (300, 1)],
)
def test_row_sums_are_bit_exact_on_the_micro_kernel(tmp_path, rows, channels):
    """One row (no pair), three (a pair and one), 256 (one full chunk of 16-bit lanes), 257
    (a chunk and one row more), 300; eight channels at a time, four, and single ones."""
    build_and_compare(channel_sum(rows, channels), tmp_path)
    source = _kernels_source(tmp_path)
    assert SUM_CALL in source


@requires_toolchain
def test_row_sum_is_cheaper_than_the_row_by_row_schedule(tmp_path):
    """70 × 32 (the plain small CNN's global average pooling): about 1.1 instructions per
    value where the row-by-row TIR loop took about 6."""
    mod = channel_sum(70, 32)
    dsp_run = build_and_compare(mod, tmp_path / "dsp")
    plain = micro.run(micro.build(mod, BOARD, tmp_path / "plain", dsp=False), edge_inputs(mod))
    np.testing.assert_array_equal(plain.outputs, dsp_run.outputs)
    assert SUM_CALL not in _kernels_source(tmp_path / "plain")
    assert dsp_run.instructions_per_inference * 3 < plain.instructions_per_inference


@requires_toolchain
@pytest.mark.parametrize(
    ("shape", "window", "strides", "padding", "dilation", "ceil_mode"),
    [
        ((140, 1, 16), (2, 1), (2, 1), (0, 0, 0, 0), (1, 1), False),  # the small CNN's
        ((23, 1, 5), (2, 1), (2, 1), (0, 0, 0, 0), (1, 1), False),
        ((21, 1, 8), (3, 1), (2, 1), (1, 0, 1, 0), (1, 1), False),
        ((20, 1, 3), (3, 1), (1, 1), (0, 0, 0, 0), (1, 1), False),
        ((19, 1, 24), (2, 1), (1, 1), (0, 0, 0, 0), (1, 1), False),
        ((19, 1, 12), (2, 1), (2, 1), (0, 0, 0, 0), (1, 1), True),
        ((1, 17, 40), (1, 2), (1, 2), (0, 0, 0, 0), (1, 1), False),
        ((15, 1, 8), (2, 1), (1, 1), (0, 0, 0, 0), (3, 1), False),
        ((7, 6, 6), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), False),
        ((6, 8, 16), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False),
        ((140, 1, 16), (3, 1), (2, 1), (0, 0, 1, 0), (1, 1), False),  # TFLite's "same"
        ((9, 1, 16), (2, 1), (1, 1), (0, 0, 1, 0), (1, 1), False),
    ],
)
def test_max_pooling_is_bit_exact_on_the_micro_kernel(
    tmp_path, shape, window, strides, padding, dilation, ceil_mode
):
    """Windows of 2 and 3 taps (and 2 × 2, 3 × 3), strides 1 and 2, channels that are and are
    not multiples of 4 and 8, TVM's padding and ceil mode (a pad stage of -128, read as bounds),
    a dilation."""
    mod = max_pool(shape, window, strides, padding=padding, dilation=dilation,
                   ceil_mode=ceil_mode)
    build_and_compare(mod, tmp_path)
    source = _kernels_source(tmp_path)
    assert MAX_POOL_CALL in source
    assert "pad_temp" not in source  # TVM's pad stage is the micro-kernel's bounds


@requires_toolchain
def test_max_pooling_is_cheaper_than_tvm_loops(tmp_path):
    """The small CNN's MaxPool1D(2) over 140 × 16: about 1.2 instructions per output where
    TVM's loop took about 10."""
    mod = max_pool((140, 1, 16), (2, 1), (2, 1))
    dsp_run = build_and_compare(mod, tmp_path / "dsp")
    plain = micro.run(micro.build(mod, BOARD, tmp_path / "plain", dsp=False), edge_inputs(mod))
    assert dsp_run.instructions_per_inference * 4 < plain.instructions_per_inference
    assert dsp_run.instructions_per_inference < 1.5 * 70 * 16


def _scheduled(mod: tvm.IRModule) -> tvm.IRModule:
    return dsp.schedule_module(dsp.lower(mod, micro.get_board(BOARD)), micro.get_board(BOARD))


def test_other_reductions_keep_the_default_schedule():
    """A sum over channels (not rows), an int8 average pooling and a float max pooling are
    left to micro's default schedule."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 40, 16), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            wide = relax.op.astype(x, "int32")
            across = bb.emit(relax.op.sum(wide, axis=[2]))
            image = relax.op.reshape(x, (1, 40, 1, 16))
            average = bb.emit(relax.op.nn.avg_pool2d(image, (2, 1), (2, 1), layout="NHWC"))
            floats = relax.op.astype(image, "float32")
            maximum = bb.emit(relax.op.nn.max_pool2d(floats, (2, 1), (2, 1), layout="NHWC"))
            out = bb.emit_output(relax.Tuple([across, average, maximum]))
        bb.emit_func_output(out)
    scheduled = _scheduled(bb.get())
    for gvar, func in scheduled.functions.items():
        if isinstance(func, tvm.tirx.PrimFunc):
            text = func.script()
            assert "micro_dsp_sum_rows_q7" not in text, gvar.name_hint
            assert "micro_dsp_max_pool_q7" not in text, gvar.name_hint


def test_pooling_kernels_are_tensorized_and_keep_no_init():
    scheduled = _scheduled(channel_sum(70, 32))
    (text,) = [f.script() for f in scheduled.functions.values()
               if isinstance(f, tvm.tirx.PrimFunc) and "sum" in f.script()]
    assert "micro_dsp_sum_rows_q7" in text and OVERWRITES_ATTR in text
    pooled = _scheduled(max_pool((140, 1, 16), (2, 1), (2, 1)))
    (text,) = [f.script() for gv, f in pooled.functions.items() if "max_pool" in gv.name_hint]
    assert "micro_dsp_max_pool_q7" in text and OVERWRITES_FROM_ATTR in text
    lowered = lower_to_kernel_calls(max_pool((140, 1, 16), (2, 1), (2, 1)))
    (name,) = [gv.name_hint for gv in lowered.functions if "max_pool" in gv.name_hint]
    sch = s_tir.Schedule(lowered[name])
    assert pooling.schedule_pooling(sch)
    cleaned = _drop_overwritten_inits(tvm.IRModule({"main": sch.mod["main"]}))
    assert "T.init()" in sch.mod["main"].script()
    assert "T.init()" not in cleaned["main"].script()  # the -128 init is dead: dropped


def test_an_overwriting_max_needs_the_init_it_starts_from():
    """micro.DropOverwrittenInits drops an init only if it stores the value the implementation
    starts from (micro.overwrites_from): here -128 is declared but the init stores 0."""

    @T.prim_func(s_tir=True)
    def wrong(a: T.Buffer((4, 8), "int8"), o: T.Buffer((8,), "int8")) -> None:
        for k0 in range(1):
            with T.sblock("outer"):
                vk = T.axis.reduce(1, k0)
                T.reads(a[0:4, 0:8])
                T.writes(o[0:8])
                T.sblock_attr({OVERWRITES_ATTR: True, OVERWRITES_FROM_ATTR: -128})
                with T.init():
                    for c in range(8):
                        o[c] = T.int8(0)
                T.evaluate(T.call_extern("int32", "micro_dsp_max_pool_q7", vk))

    # Called directly, the pass's BuildError comes back through TVM's FFI as a RuntimeError
    # (micro.build's code generation turns it into a BuildError again).
    with pytest.raises(RuntimeError, match="init is not -128"):
        _drop_overwritten_inits(tvm.IRModule({"main": wrong}))


#: Row-sum cases beyond what the schedule makes, as (offset, rows, channels, row_step): rows
#: that start at every alignment, a row step wider than the channels (a strided view), one row,
#: two chunks and a remainder.
_SUM_CASES = [
    (1, 5, 13, 13),
    (2, 3, 8, 11),
    (3, 1, 12, 12),
    (0, 513, 9, 10),
    (5, 258, 4, 7),
    (6, 7, 3, 5),
]
#: Max-pooling cases, as (offset, out_rows, out_cols, channels, window_rows, window_cols,
#: stride_rows, stride_cols, dilation_rows, dilation_cols, in_rows, in_cols, pad_top, pad_left,
#: row_stride, col_stride): two-tap runs down the rows and along rows (the aligned assembly with
#: 8 to 48 channels, and C), gaps between positions, a dilation, 3 x 2 windows, one tap; padding
#: at the top, bottom, left and right, windows wholly in the padding, a padded 3 x 3 window.
_POOL_CASES = [
    (0, 5, 1, 16, 2, 1, 2, 1, 1, 1, 10, 1, 0, 0, 16, 16),
    (4, 3, 1, 8, 2, 1, 2, 1, 1, 1, 6, 1, 0, 0, 8, 8),
    (8, 2, 1, 24, 2, 1, 2, 1, 1, 1, 4, 1, 0, 0, 24, 24),
    (12, 2, 3, 32, 1, 2, 1, 2, 1, 1, 2, 6, 0, 0, 192, 32),
    (0, 2, 1, 48, 2, 1, 2, 1, 1, 1, 4, 1, 0, 0, 48, 48),
    (1, 4, 1, 7, 2, 1, 1, 1, 1, 1, 5, 1, 0, 0, 9, 9),
    (2, 3, 2, 6, 2, 1, 3, 1, 2, 1, 9, 3, 0, 0, 23, 7),
    (3, 2, 2, 5, 3, 2, 2, 2, 1, 1, 6, 5, 0, 0, 47, 9),
    (0, 3, 1, 4, 1, 1, 1, 1, 1, 1, 3, 1, 0, 0, 5, 5),
    (0, 11, 1, 8, 3, 1, 2, 1, 1, 1, 21, 1, 1, 0, 8, 8),
    (1, 4, 3, 6, 3, 3, 2, 2, 1, 1, 7, 6, 1, 1, 36, 6),
    (0, 10, 1, 12, 2, 1, 2, 1, 1, 1, 19, 1, 0, 0, 12, 12),
    (0, 6, 1, 5, 2, 1, 1, 1, 1, 1, 4, 1, 3, 0, 5, 5),
    (2, 2, 4, 16, 1, 2, 1, 2, 1, 1, 2, 7, 0, 1, 112, 16),
    (0, 2, 4, 16, 1, 2, 1, 2, 1, 1, 2, 7, 0, 1, 112, 16),
    (0, 5, 1, 4, 2, 1, 2, 1, 3, 1, 9, 1, 2, 0, 4, 4),
]
_SENTINEL = 0x5A


def _input_length(case) -> int:
    offset, *_, in_rows, in_cols, _, _, row_stride, col_stride = case
    return offset + (in_rows - 1) * row_stride + (in_cols - 1) * col_stride + case[3]


def _sum_length(case) -> int:
    offset, rows, channels, row_step = case
    return offset + (rows - 1) * row_step + channels


def _sum_call(case, total: int) -> tvm.tirx.PrimFunc:
    offset, rows, channels, row_step = case

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((total,), "int8"), out: T.Buffer((channels + 2,), "int32")):
        T.func_attr({"op_pattern": 8})
        for i in range(channels + 2):
            out[i] = 0x5A5A5A5A
        T.evaluate(T.call_extern(
            "int32", "micro_dsp_sum_rows_q7", x.access_ptr("r", offset=offset),
            out.access_ptr("w", offset=1), rows, channels, row_step))

    return kernel


def _pool_call(case, total: int) -> tvm.tirx.PrimFunc:
    offset, rows_out, cols_out, channels, *geometry = case
    outputs = rows_out * cols_out * channels

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((total,), "int8"), out: T.Buffer((outputs + 8,), "int8")):
        T.func_attr({"op_pattern": 8})
        for i in range(outputs + 8):
            out[i] = T.int8(_SENTINEL)
        T.evaluate(T.call_extern(
            "int32", "micro_dsp_max_pool_q7", x.access_ptr("r", offset=offset),
            out.access_ptr("w", offset=4), rows_out, cols_out, channels, *geometry))

    return kernel


def _sum_reference(case, x: np.ndarray) -> np.ndarray:
    offset, rows, channels, row_step = case
    out = np.full(channels + 2, 0x5A5A5A5A, dtype=np.int64)
    for c in range(channels):
        out[1 + c] = sum(int(x[offset + k * row_step + c]) for k in range(rows))
    return out.astype(np.int32)


def _pool_reference(case, x: np.ndarray) -> np.ndarray:
    """pooling.h's statement in numpy: the taps inside the input, from -128."""
    (offset, rows_out, cols_out, channels, wr, wc, sh, sw, dh, dw, in_rows, in_cols, top, left,
     row_stride, col_stride) = case
    out = np.full(rows_out * cols_out * channels + 8, _SENTINEL, dtype=np.int8)
    for i in range(rows_out):
        for j in range(cols_out):
            for c in range(channels):
                m = -128
                for a in range(wr):
                    for b in range(wc):
                        r, q = i * sh + a * dh - top, j * sw + b * dw - left
                        if 0 <= r < in_rows and 0 <= q < in_cols:
                            m = max(m, int(x[offset + r * row_stride + q * col_stride + c]))
                out[4 + (i * cols_out + j) * channels + c] = m
    return out


@requires_toolchain
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an500", "mps2-an505"])  # M4, M7, M33
def test_micro_kernels_write_their_outputs_on_every_path(tmp_path, board):
    """The C contracts of pooling.h beyond the shapes the schedule makes: each case's outputs
    equal the reference, and the elements around them keep their sentinel."""
    sum_lengths = [_sum_length(case) for case in _SUM_CASES]
    pool_lengths = [_input_length(case) for case in _POOL_CASES]
    total = max(sum_lengths + pool_lengths)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((total,), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            sums = [bb.emit(relax.call_tir(
                bb.add_func(_sum_call(case, total), f"sum_case{index}"), [x],
                relax.TensorType((case[2] + 2,), "int32")))
                for index, case in enumerate(_SUM_CASES)]
            pools = [bb.emit(relax.call_tir(
                bb.add_func(_pool_call(case, total), f"pool_case{index}"), [x],
                relax.TensorType((case[1] * case[2] * case[3] + 8,), "int8")))
                for index, case in enumerate(_POOL_CASES)]
            wide = [relax.op.astype(p, "int32") for p in pools]
            out = bb.emit_output(relax.op.concat([*sums, *wide], axis=0))
        bb.emit_func_output(out)
    rng = np.random.default_rng(7)
    inputs = np.concatenate([
        rng.integers(-128, 128, (2, total), dtype=np.int8),
        np.full((1, total), -128, np.int8), np.full((1, total), 127, np.int8),
    ])
    result = micro.run(micro.build(bb.get(), board, tmp_path), inputs)
    for x_, outputs in zip(inputs, result.outputs, strict=True):
        expected = [_sum_reference(case, x_) for case in _SUM_CASES]
        expected += [_pool_reference(case, x_).astype(np.int32) for case in _POOL_CASES]
        np.testing.assert_array_equal(outputs, np.concatenate(expected))
