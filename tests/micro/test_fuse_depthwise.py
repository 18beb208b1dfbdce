"""A depthwise pass joined with its tabulated requantization epilogue (micro.kernels.dsp.fuse):
bit-exact firmware on the kernel's paths, and the kernels it must leave as two calls."""

from __future__ import annotations

import pytest

from micro.kernels.dsp.depthwise import DEPTHWISE_KERNEL
from micro.kernels.dsp.fuse import FUSED_KERNEL
from micro.kernels.dsp.requantize import REQUANTIZE_CHANNELS_KERNEL
from micro.kernels.dsp.requantize_table import TABLE_KERNEL

from .graphs import build_and_compare, requires_toolchain
from .test_requantize_dsp import requantized_conv

BOARD = "mps2-an386"


def _calls(out_dir) -> set[str]:
    source = (out_dir / "src" / "kernels.c").read_text()
    return {symbol for symbol in (FUSED_KERNEL, DEPTHWISE_KERNEL, TABLE_KERNEL,
                                  REQUANTIZE_CHANNELS_KERNEL) if f"{symbol}(" in source}


@requires_toolchain
@pytest.mark.parametrize(
    ("length", "channels", "filters", "kernel", "options"),
    [
        (15, 6, 6, 3, {"depthwise": True, "zero_point": 127}),  # 15 positions: a last one alone
        (28, 8, 8, 3, {"depthwise": True}),  # groups of four positions, no clamp
        (20, 5, 5, 8, {"depthwise": True, "relu": True, "zero_point": -9}),  # 4 pairs, a clamp
        (24, 6, 6, 5, {"depthwise": True, "stride": 2, "clip": (-100, 90)}),  # stride 2
        (21, 1, 6, 5, {"relu": True}),  # one input channel: every output reads one row
    ],
)
def test_depthwise_pass_and_its_epilogue_are_one_bit_exact_call(
    tmp_path, length, channels, filters, kernel, options
):
    mod = requantized_conv(length, channels, filters, kernel, fast_shifts=True, **options)
    build_and_compare(mod, BOARD, tmp_path)
    assert _calls(tmp_path) == {FUSED_KERNEL}


@requires_toolchain
def test_an_epilogue_without_a_table_keeps_two_calls(tmp_path):
    """Shifts off the fast path: no table, so the depthwise sums go through the accumulators to
    micro_dsp_requantize_channels_q7, bit-exact as before."""
    build_and_compare(requantized_conv(16, 5, 5, 3, depthwise=True), BOARD, tmp_path)
    assert _calls(tmp_path) == {DEPTHWISE_KERNEL, REQUANTIZE_CHANNELS_KERNEL}
