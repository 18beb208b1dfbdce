"""The window stage of the DSP convolution on its micro-kernel (micro.kernels.dsp.widen): 1x1 and
stride-wide convolutions built alone into firmware for a Cortex-M4 and compared bit for bit with
TVM's host build of the same Relax module, and the micro-kernel's C contract (widen.h) on paths
the schedule does not take (odd quads, gaps between rows, unaligned input) on the M4, M7 and
M33."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax, s_tir
from tvm.script import tirx as T

import micro
from micro.boards import get_board
from micro.kernels import dsp
from micro.kernels.dsp import convolution, widen

from .graphs import build_and_compare, conv_block, requires_toolchain

BOARD = "mps2-an386"
WIDEN_CALL = f"{widen.WIDEN_KERNEL}("


def _kernels_source(out_dir) -> str:
    return (out_dir / "src" / "kernels.c").read_text()


@requires_toolchain
@pytest.mark.parametrize(
    ("length", "channels", "filters", "kernel", "stride"),
    [
        (23, 4, 6, 1, 1),   # odd width: one position per pass, one row per call
        (24, 8, 4, 1, 1),   # two positions per pass, two rows
        (22, 12, 8, 1, 1),  # three quads per row (an odd quad after a pair)
        (24, 8, 6, 2, 2),   # a kernel as wide as its stride: windows that do not overlap
        (15, 4, 2, 3, 3),
    ],
)
def test_windows_that_do_not_overlap_widen_on_the_micro_kernel(
    tmp_path, length, channels, filters, kernel, stride
):
    _build_and_compare(conv_block(length, channels, filters, kernel, stride=stride,
                                  padding="valid"), tmp_path)
    source = _kernels_source(tmp_path)
    assert WIDEN_CALL in source
    assert "micro_dsp_conv_q15q7(" in source


def _build_and_compare(mod: tvm.IRModule, out_dir):
    return build_and_compare(mod, BOARD, out_dir)


def _window_scheduled(mod: tvm.IRModule) -> str:
    lowered = dsp.lower(mod, get_board(BOARD))
    scheduled = dsp.schedule_module(lowered, get_board(BOARD))
    return "\n".join(f.script() for gv, f in scheduled.functions.items()
                     if "conv2d" in gv.name_hint)


@pytest.mark.parametrize(("kernel", "padding"), [(3, "same"), (3, "valid"), (5, "same")])
def test_overlapping_windows_keep_the_tir_copy(kernel, padding):
    """A pass's window shares rows with the next one's: tensorize cannot split its rows into an
    outer and an inner iterator, so the copy stays TIR (and the build is unchanged)."""
    script = _window_scheduled(conv_block(24, 8, 6, kernel, padding=padding))
    assert widen.WIDEN_KERNEL not in script
    assert convolution.CONV_KERNEL in script


def test_two_dimensional_one_by_one_convolution_widens_per_kernel_row():
    script = _window_scheduled(conv_block(6, 8, 6, 1, height=4, padding="valid"))
    assert widen.WIDEN_KERNEL in script


#: (rows, quads, in_step, out_step, input offset): one row and one quad, pairs of quads and an
#: odd one after them, gaps between rows in the input and in the window, an input at any byte,
#: rows contiguous in both.
_KERNEL_CASES = [
    (1, 1, 4, 4, 0),
    (2, 1, 4, 4, 1),
    (3, 2, 8, 10, 2),
    (1, 3, 12, 12, 3),
    (4, 4, 20, 18, 0),
    (2, 5, 24, 20, 1),
    (5, 36, 144, 144, 0),
    (3, 2, 8, 8, 1),  # contiguous rows: widened as one row
]
#: What the window holds before the kernel runs: only the rows' values may change.
_SENTINEL = 0x5A5A


def _window_length(rows, quads, _in_step, out_step, _offset) -> int:
    return (rows - 1) * out_step + 4 * quads


def _input_length(rows, quads, in_step, _out_step, offset) -> int:
    return offset + (rows - 1) * in_step + 4 * quads


def _kernel_call(case, start: int, total: int) -> tvm.tirx.PrimFunc:
    """A kernel that fills its output with the sentinel, then calls the micro-kernel once (an
    opaque operator: fusion leaves it alone)."""
    rows, quads, in_step, out_step, offset = case
    length = _window_length(*case)

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((total,), "int8"), y: T.Buffer((length,), "int16")):
        T.func_attr({"op_pattern": 8})
        for i in range(length):
            y[i] = T.int16(_SENTINEL)
        T.evaluate(T.call_extern(
            "int32", widen.WIDEN_KERNEL, x.access_ptr("r", offset=start + offset),
            y.access_ptr("w"), rows, quads, in_step, out_step))

    return kernel


def _kernel_reference(case, x: np.ndarray) -> np.ndarray:
    """widen.h's contract in numpy: each row's quads as (v0, v2, v1, v3), the sentinel
    between rows."""
    rows, quads, in_step, out_step, offset = case
    y = np.full(_window_length(*case), _SENTINEL, dtype=np.int16)
    for r in range(rows):
        row = x[offset + r * in_step:][:4 * quads].astype(np.int16).reshape(quads, 4)
        y[r * out_step:r * out_step + 4 * quads] = row[:, [0, 2, 1, 3]].reshape(-1)
    return y


@requires_toolchain
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an500", "mps2-an505"])  # M4, M7, M33
def test_micro_kernel_widens_every_row_and_nothing_else(tmp_path, board):
    lengths = [_input_length(*case) for case in _KERNEL_CASES]
    starts = np.cumsum([0, *lengths[:-1]]).tolist()
    total = sum(lengths)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((total,), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            outputs = []
            for index, (case, start) in enumerate(zip(_KERNEL_CASES, starts, strict=True)):
                gvar = bb.add_func(_kernel_call(case, start, total), f"widen_case{index}")
                outputs.append(bb.emit(relax.call_tir(
                    gvar, [x], relax.TensorType((_window_length(*case),), "int16"))))
            out = bb.emit_output(relax.op.concat(outputs, axis=0))
        bb.emit_func_output(out)
    rng = np.random.default_rng(7)
    inputs = rng.integers(-128, 128, (2, total), dtype=np.int8)
    inputs[1, ::2] = -128  # the extremes of the sign extension
    inputs[1, 1::2] = 127
    result = micro.run(micro.build(bb.get(), board, tmp_path), inputs)
    for values, outputs in zip(inputs, result.outputs, strict=True):
        expected = [_kernel_reference(case, values[start:])
                    for case, start in zip(_KERNEL_CASES, starts, strict=True)]
        np.testing.assert_array_equal(outputs, np.concatenate(expected))


def test_intrinsic_is_registered_once_per_shape():
    assert widen.widen_rows_intrin(2, 8) == widen.widen_rows_intrin(2, 8)
    assert widen.widen_rows_intrin(2, 8) != widen.widen_rows_intrin(1, 8)
    assert s_tir.TensorIntrin.get(widen.widen_rows_intrin(3, 12)) is not None
