"""The DSP depthwise convolution kernel (micro.kernels.dsp.depthwise): each shape built alone into
firmware for a Cortex-M4 and compared bit for bit with TVM's host build of the same Relax module."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax
from tvm.script import tirx as T

import micro
from micro.kernels.dsp.depthwise import depthwise_supported, relayout_weights
from micro.kernels.dsp.fill import FILL_KERNEL
from micro.lowering import lower_to_kernel_calls

from .graphs import build_and_compare, conv_block, random_inputs, requires_toolchain

BOARD = "mps2-an386"
KERNEL_CALL = "micro_dsp_depthwise_q15("


def depthwise_block(
    length: int, channels: int, kernel: int, *, stride: int = 1, padding: str = "same",
    height: int = 1, seed: int = 0,
) -> tvm.IRModule:
    """An integer-lowered TFLite ``DepthwiseConv1D`` (:func:`.graphs.conv_block`)."""
    return conv_block(length, channels, channels, kernel, stride=stride, padding=padding,
                      height=height, depthwise=True, seed=seed)


def _build_and_compare(mod: tvm.IRModule, out_dir) -> micro.RunResult:
    return build_and_compare(mod, BOARD, out_dir)


def _assert_micro_kernel_and_no_pad(out_dir, fill: bool = True) -> None:
    """The depthwise micro-kernel is called, no padded copy is made, and the window is filled by
    its micro-kernel (``fill``; 2-D windows keep TVM's loop)."""
    source = (out_dir / "src" / "kernels.c").read_text()
    assert KERNEL_CALL in source
    assert (f"{FILL_KERNEL}(" in source) == fill
    assert "model_run_pad" not in (out_dir / "src" / "model.c").read_text()


@requires_toolchain
@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "channels"),
    [
        (1, 1, "valid", 8),
        (3, 1, "same", 16),
        (3, 2, "same", 3),
        (5, 1, "same", 6),
        (5, 2, "valid", 8),
        (8, 1, "same", 3),
        (8, 2, "same", 16),
        (3, 1, "valid", 6),
    ],
)
def test_depthwise_convolutions_are_bit_exact_on_the_micro_kernel(
    tmp_path, kernel, stride, padding, channels
):
    _build_and_compare(depthwise_block(23, channels, kernel, stride=stride, padding=padding),
                       tmp_path)
    _assert_micro_kernel_and_no_pad(tmp_path)


@requires_toolchain
def test_two_dimensional_depthwise_convolution_is_bit_exact(tmp_path):
    _build_and_compare(depthwise_block(7, 6, 3, height=5), tmp_path)
    _assert_micro_kernel_and_no_pad(tmp_path, fill=False)


_SENTINEL = 0x5A5A
#: (first, cols, channels, width): windows reaching past either end of the row or both, wholly
#: outside it, inside it; channel counts the micro-kernel specialises (1, 8, 16) and others.
_FILL_CASES = [(-2, 9, 16, 12), (3, 12, 8, 12), (-1, 20, 3, 12), (-5, 4, 5, 12), (13, 6, 16, 12),
               (0, 12, 1, 12), (4, 5, 7, 12), (-3, 19, 1, 12), (2, 7, 32, 12)]


def _fill_kernel(case, offset: int, total: int, step: int):
    """A kernel that sets its output to the sentinel, then fills a window of ``step`` values per
    channel (more than ``cols``: what lies between the rows must not change) from the row at
    ``offset`` of its input."""
    first, cols, channels, width = case

    @T.prim_func(private=True)
    def kernel(row: T.Buffer((total,), "int8"), out: T.Buffer((channels * step,), "int16")):
        T.func_attr({"op_pattern": 8})
        for i in range(channels * step):
            out[i] = T.int16(_SENTINEL)
        T.evaluate(T.call_extern("int32", FILL_KERNEL, row.access_ptr("r", offset=offset),
                                 out.access_ptr("w"), first, cols, channels, width, -7, step))

    return kernel


@requires_toolchain
def test_window_fill_micro_kernel_is_exact_at_both_ends(tmp_path):
    """micro_dsp_fill_channels_q15's contract (fill.h) on windows starting before the row,
    ending after it, both, and outside it, against numpy."""
    sizes = [w * c for _, _, c, w in _FILL_CASES]
    total = sum(sizes)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((total,), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            outs, offset = [], 0
            for index, case in enumerate(_FILL_CASES):
                step = case[1] + 3
                gvar = bb.add_func(_fill_kernel(case, offset, total, step), f"fill{index}")
                outs.append(bb.emit(relax.call_tir(gvar, [x], relax.TensorType(
                    (case[2] * step,), "int16"))))
                offset += sizes[index]
            out = bb.emit_output(relax.op.concat(outs, axis=0))
        bb.emit_func_output(out)
    inputs = np.random.default_rng(2).integers(-128, 128, (2, total), dtype=np.int8)
    result = micro.run(micro.build(bb.get(), BOARD, tmp_path), inputs)
    for values, outputs in zip(inputs, result.outputs, strict=True):
        expected, offset = [], 0
        for (first, cols, channels, width), size in zip(_FILL_CASES, sizes, strict=True):
            row = values[offset:offset + size].reshape(width, channels)
            window = np.full((channels, cols + 3), _SENTINEL, np.int16)
            for j in range(cols):
                k = first + j
                window[:, j] = row[k] if 0 <= k < width else -7
            expected.append(window.ravel())
            offset += size
        np.testing.assert_array_equal(outputs, np.concatenate(expected))


@requires_toolchain
def test_depthwise_layer_is_cheaper_than_tvm_lowering_and_taps_cost_little(tmp_path):
    """The layer (window, bias, shift and clamp included) against TVM's plain lowering of the same
    graph, and the marginal cost of taps: going from 3 to 8 taps adds about 1.6 instructions per
    added MAC (measured; the wider window included), TVM's lowering about 4."""
    length, channels = 140, 16
    mod = depthwise_block(length, channels, 3)
    dsp = _build_and_compare(mod, tmp_path / "dsp")
    _assert_micro_kernel_and_no_pad(tmp_path / "dsp")
    plain = micro.run(micro.build(mod, BOARD, tmp_path / "plain", dsp=False),
                      random_inputs(mod, 4))
    assert dsp.instructions_per_inference * 1.5 < plain.instructions_per_inference
    wide = _build_and_compare(depthwise_block(length, channels, 8), tmp_path / "wide")
    added_macs = length * channels * (8 - 3)
    per_added_mac = (wide.instructions_per_inference - dsp.instructions_per_inference) / added_macs
    assert per_added_mac < 2


def test_plain_lowering_keeps_tvm_grouped_convolution():
    lowered = lower_to_kernel_calls(depthwise_block(20, 8, 3))
    assert any(gv.name_hint.startswith("pad") for gv in lowered.functions)


def test_only_depth_multiplier_one_is_taken():
    assert depthwise_supported((1, 1, 20, 8), (1, 3, 8, 1), (1, 1), (1, 1), 8)
    assert not depthwise_supported((1, 1, 20, 8), (1, 3, 16, 1), (1, 1), (1, 1), 8)
    assert not depthwise_supported((1, 1, 20, 8), (1, 3, 8, 1), (1, 1), (1, 2), 8)
    assert not depthwise_supported((1, 1, 20, 8), (1, 3, 8, 1), (1, 1), (1, 1), 1)


def test_weights_become_int16_tap_pairs_per_channel():
    weight = np.arange(2 * 3 * 4, dtype=np.int8).reshape(2, 3, 4, 1)
    taps = relayout_weights(weight)
    assert taps.dtype == np.int16 and taps.shape == (4, 2, 4)
    np.testing.assert_array_equal(taps[:, :, :3], weight[..., 0].transpose(2, 0, 1))
    assert not taps[:, :, 3].any()
