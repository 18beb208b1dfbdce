"""Compile-time tables of the convolution epilogues' per-channel constants
(micro.kernels.dsp.requantize_table): the table micro-kernel's C contract in firmware, the
rewrite of eligible kernels and calls, and the kernels it must leave alone."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax, tirx
from tvm.script import tirx as T

import micro
from micro.kernels import dsp
from micro.kernels.dsp.fuse import FUSED_KERNEL
from micro.kernels.dsp.requantize import REQUANTIZE_CHANNELS_KERNEL
from micro.kernels.dsp.requantize_table import (
    TABLE_KERNEL,
    channel_table,
    tabulate_requantizations,
)

from .graphs import build_and_compare, requires_toolchain
from .test_requantize_dsp import (
    _CASES,
    _SENTINEL,
    INT32_MAX,
    _case_sizes,
    check_epilogue_kernel,
    requantized_conv,
)

BOARD = "mps2-an386"
#: The epilogue kernel's cases and, without a clamp, groups of four positions (then a pair, one).
_TABLE_CASES = [*_CASES, (8, 5, 5, 5, 7, -128, 127), (9, 3, 4, 4, -128, -128, 127),
                (4, 2, 2, 2, 0, -128, 127), (7, 6, 6, 6, 127, -128, 127)]
#: Shifts and multipliers of the fast path only (the table's channels).
_SHIFTS = [-2, -3, -7, -12, -23, -24, -5, -9, -16]
_MULTIPLIERS = [2**30, 1518500250, 0, 1, 1073741823, 2**31 - 2, 1600000000, INT32_MAX]


def test_table_rows_are_bias_multiplier_shift_and_rounding_word():
    bias = np.array([5, -7, 2**31 - 1], np.int32)
    mult = np.array([2**30, 0, INT32_MAX], np.int32)
    shift = np.array([-2, -24, -9], np.int8)
    table = channel_table(bias, mult, shift, zero_point=-128)
    np.testing.assert_array_equal(table, [[5, 2**30, 1, -255], [-7, 0, 23, -255 << 22],
                                          [2**31 - 1, INT32_MAX, 8, -255 << 7]])
    assert table.dtype == np.int32 and table.flags["C_CONTIGUOUS"]
    for off_path in ([-1, -2, -2], [-2, -25, -3], [0, -2, -2]):
        assert channel_table(bias, mult, np.array(off_path, np.int8), 3) is None
    assert channel_table(bias, np.array([1, -5, 1], np.int32), shift, 3) is None


def _table_case_parameters(rng, channels: int, index: int):
    c = np.arange(channels) + index
    shift = np.array(_SHIFTS, np.int8)[c % len(_SHIFTS)]
    mult = np.array(_MULTIPLIERS, np.int64)[(c * 5) % len(_MULTIPLIERS)].astype(np.int32)
    bias = rng.integers(-3000, 3000, channels).astype(np.int32)
    bias[::3] = rng.integers(-(2**31), 2**31 - 1, len(bias[::3]))
    return bias, mult, shift


def _call_table_kernel(case, offset: int, total: int) -> tvm.tirx.PrimFunc:
    """A kernel that fills its output with the sentinel, then calls the table micro-kernel once."""
    positions, channels, acc_step, out_step, zero_point, qmin, qmax = case
    _, outputs = _case_sizes(case)

    @T.prim_func(private=True)
    def kernel(acc: T.Buffer((total,), "int32"), table: T.Buffer((channels, 4), "int32"),
               out: T.Buffer((outputs,), "int8")):
        T.func_attr({"op_pattern": 8})
        for i in range(outputs):
            out[i] = T.int8(_SENTINEL)
        T.evaluate(T.call_extern(
            "int32", TABLE_KERNEL, acc.access_ptr("r", offset=offset), table.access_ptr("r"),
            out.access_ptr("w"), positions, channels, acc_step, out_step, zero_point, qmin,
            qmax))

    return kernel


@requires_toolchain
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an500"])  # M4, M7
def test_table_micro_kernel_is_bit_exact_on_every_path(tmp_path, board):
    """The C contract of micro_dsp_requantize_table_q7 (requantize.h) on the cases of
    micro_dsp_requantize_channels_q7's test (pairs and a last position, one position, wide
    steps, every clamp, zero points at both ends, unequal steps in C) and groups of four
    positions with fast-path channels:
    each case's outputs equal TVM's host build of micro.fixed_point_tir, nothing else changes."""
    check_epilogue_kernel(
        tmp_path, board, _TABLE_CASES, np.random.default_rng(5), _table_case_parameters,
        _call_table_kernel,
        lambda case, bias, mult, shift: (channel_table(bias, mult, shift, case[4]),))


def _kernels(mod: tvm.IRModule) -> dict[str, tirx.PrimFunc]:
    return {gv.name_hint: f for gv, f in mod.functions.items() if isinstance(f, tirx.PrimFunc)}


@requires_toolchain
@pytest.mark.parametrize(
    ("length", "channels", "filters", "kernel", "options"),
    [
        (24, 8, 12, 1, {}),  # pairs of positions, no clamp
        (23, 8, 12, 3, {"relu": True, "zero_point": -20}),  # odd width, a lower bound
        (20, 6, 6, 5, {"clip": (-100, 90)}),  # both bounds
        (15, 6, 6, 3, {"depthwise": True, "zero_point": 127}),  # 15 positions a pass
        (21, 1, 6, 5, {"relu": True}),  # one input channel
    ],
)
def test_eligible_epilogues_read_one_table_and_stay_bit_exact(
    tmp_path, length, channels, filters, kernel, options
):
    """Fast-path shifts only: the kernel takes one [C, 4] table instead of the bias, multiplier
    and shift, its epilogue calls the table micro-kernel, and the firmware equals TVM's host
    build of the original module."""
    mod = requantized_conv(length, channels, filters, kernel, fast_shifts=True, **options)
    lowered = dsp.lower(mod, micro.get_board(BOARD))
    scheduled = dsp._schedule_module(lowered, None, tensorize=True)
    tabulated = tabulate_requantizations(scheduled)
    (name,) = [n for n in _kernels(scheduled) if "conv2d" in n]
    before, after = _kernels(scheduled)[name], _kernels(tabulated)[name]
    assert len(after.params) == len(before.params) - 2
    assert [tuple(int(s) for s in p.shape) for p in after.params].count((filters, 4)) == 1
    (call,) = [b.value for b in tabulated["main"].body.blocks[0].bindings
               if isinstance(b.value, relax.Call) and b.value.args[0].name_hint == name]
    assert [tuple(a.ty.shape) for a in call.args[1].fields].count((filters, 4)) == 1
    build_and_compare(mod, BOARD, tmp_path)
    source = (tmp_path / "src" / "kernels.c").read_text()
    # Depthwise epilogues run inside the depthwise call (micro.kernels.dsp.fuse), with the table.
    reader = FUSED_KERNEL if options.get("depthwise") or channels == 1 else TABLE_KERNEL
    assert f"{reader}(" in source and "requantize_table" in source
    assert f"{REQUANTIZE_CHANNELS_KERNEL}(" not in source


def test_a_kernel_with_a_channel_off_the_fast_path_is_left_as_it_was():
    """Shifts 0, -1 and -26 (the micro-kernel's other paths): no table, nothing changed."""
    mod = requantized_conv(24, 8, 12, 3)
    scheduled = dsp._schedule_module(dsp.lower(mod, micro.get_board(BOARD)), None,
                                     tensorize=True)
    tvm.ir.assert_structural_equal(tabulate_requantizations(scheduled), scheduled)
