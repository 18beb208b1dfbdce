"""The scalar kernel library (Armv6-M, Armv7-M) and the choice of a board's kernel library."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest
import tvm
from tvm import relax

import micro
from micro import kernels
from micro.boards import _check_isa
from micro.errors import BuildError
from micro.kernels import scalar
from micro.kernels.dsp.dot_product import schedule_int8_dots
from micro.kernels.scalar.dot_product import (
    DOT_KERNEL,
    DOT_X4_KERNEL,
    REQUANTIZE_KERNEL,
    SCALAR_KERNELS,
    SCALAR_KERNELS_V6M,
)
from pla_tvm.commands.compile import add_model_arguments
from relay_passes import make_cluster_gated_linear_int8_kernel

from .graphs import build_and_compare, host_reference, random_inputs, requires_toolchain
from .test_dsp import pla_int8
from .test_requantize_dsp import requantized_conv

SCALAR_BOARDS = ("microbit", "mps2-an385")


@pytest.mark.parametrize(("board", "library"), [
    ("microbit", "scalar"), ("mps2-an385", "scalar"), ("mps2-an386", "dsp"),
    ("mps2-an500", "dsp"), ("mps2-an505", "dsp"), ("mps3-an547", "mve")])
def test_the_board_isa_chooses_the_library(board, library):
    info = micro.get_board(board)
    assert kernels.library_name(kernels.library_for(info)) == library
    assert kernels.library_name(kernels.resolve(info)) == library
    assert kernels.resolve(info, dsp=False) is None
    assert kernels.resolve(info, plain=True) is None


def test_dsp_option_keeps_its_meaning():
    assert kernels.resolve(micro.get_board("mps3-an547"), dsp=True) is kernels.dsp
    with pytest.raises(BuildError, match="no DSP extension"):
        kernels.resolve(micro.get_board("mps2-an385"), dsp=True)
    with pytest.raises(BuildError, match="plain=True"):
        kernels.resolve(micro.get_board("mps2-an386"), dsp=True, plain=True)


def test_isa_must_agree_with_the_board_entry():
    m3 = micro.get_board("mps2-an385")
    raw = {"arch": m3.arch, "dsp": False, "mve": False, "isa": "armv7-m+dsp"}
    with pytest.raises(ValueError, match="'armv7-m'"):
        _check_isa("m3", raw)
    _check_isa("m3", {**raw, "isa": "armv7-m"})
    assert dataclasses.replace(m3, isa="armv9-m").isa == "armv9-m"
    assert kernels.library_for(dataclasses.replace(m3, isa="armv9-m")) is None


@pytest.mark.parametrize("flag", ["--plain", "--no-dsp"])
def test_cli_plain_and_its_old_name(flag):
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    assert parser.parse_args(["m.tflite", "--board", "microbit", flag]).dsp is False
    assert parser.parse_args(["m.tflite", "--board", "microbit"]).dsp is None


def _extern_calls(func: tvm.tirx.PrimFunc, symbol: str) -> int:
    return func.script().count(f'call_extern("int32", "{symbol}"')


def test_operator_kernel_calls_the_scalar_kernels_over_transposed_weights():
    # Armv6-M: transposed (reduction innermost), no interleaving
    kernel = make_cluster_gated_linear_int8_kernel(1, 140, 3, 16, -5, True)
    scheduled, relaid_out = schedule_int8_dots(kernel, kernels=SCALAR_KERNELS_V6M)
    assert _extern_calls(scheduled, DOT_KERNEL) == 2  # centroids, the chosen cluster's map
    assert _extern_calls(scheduled, REQUANTIZE_KERNEL) == 1
    assert "micro_dsp" not in scheduled.script()
    assert [index for index, _ in relaid_out] == [3]
    assert [int(s) for s in scheduled.params[3].shape] == [3, 16, 140]  # reduction innermost


def test_armv7m_interleaves_the_gathered_weights():
    kernel = make_cluster_gated_linear_int8_kernel(1, 140, 3, 16, -5, True)
    scheduled, relaid_out = schedule_int8_dots(kernel, kernels=SCALAR_KERNELS)
    assert _extern_calls(scheduled, DOT_X4_KERNEL) == 1  # the chosen cluster's map
    assert _extern_calls(scheduled, DOT_KERNEL) == 1  # centroids
    assert "micro_dsp" not in scheduled.script()
    assert [index for index, _ in relaid_out] == [3]
    assert [int(s) for s in scheduled.params[3].shape] == [3, 4, 35, 4, 4]


def _dense_heads(length: int, outputs: tuple[int, ...], seed: int) -> tuple[tvm.IRModule, list]:
    """x[1, L] int8 times several int8 [L, n] matrices, int32 results concatenated."""
    rng = np.random.default_rng(seed)
    weights = [rng.integers(-128, 128, (length, n), dtype=np.int8) for n in outputs]
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, length), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            parts = [bb.emit(relax.op.matmul(x, relax.const(w), out_dtype="int32"))
                     for w in weights]
            out = bb.emit_output(relax.op.concat(parts, axis=1))
        bb.emit_func_output(out)
    return bb.get(), weights


@requires_toolchain
@pytest.mark.parametrize("board", SCALAR_BOARDS)
@pytest.mark.parametrize(("length", "seed"), [
    (2, 0), (7, 1), (140, 2), (5, 3), (12, 4), (9, 5), (6, 7), (16, 8)])
def test_dot_products_are_bit_exact_on_edge_shapes(tmp_path, board, length, seed):
    # n = 1, 3 (< 4), 5 and 9 (tails after whole groups of four); odd, tiny and long reductions;
    # every len % 8 (the Armv6-M loop: a single input, a pair and a quad before whole eights)
    model, weights = _dense_heads(length, (1, 3, 5, 9), seed)
    inputs = random_inputs(model, 5, seed=seed)
    inputs[0] = -128  # the extremes: -128 * -128 sums
    firmware = micro.build(model, board, tmp_path / board)
    kernels_c = (firmware.out_dir / "src" / "kernels.c").read_text()
    # n = 1 has no output loop left after legalization: TVM's loop computes it (as on DSP boards)
    assert kernels_c.count(f"{DOT_KERNEL}((") == 3
    got = micro.run(firmware, inputs).outputs
    x = inputs.reshape(len(inputs), length).astype(np.int64)
    expected = np.concatenate([x @ w.astype(np.int64) for w in weights], axis=1)
    np.testing.assert_array_equal(got.reshape(expected.shape), expected.astype(np.int32))


@requires_toolchain
@pytest.mark.parametrize("board", SCALAR_BOARDS)
@pytest.mark.parametrize(("k", "dim", "d"), [
    (3, 61, 7), (1, 5, 1), (4, 140, 16),
    # interleaved on Armv7-M: one group of four, 8 + 4, 8 + 8 + 8; odd and even quad counts
    (2, 12, 4), (3, 20, 12), (2, 8, 24), (3, 140, 128)])
def test_operator_is_bit_exact_end_to_end(tmp_path, board, k, dim, d):
    model = pla_int8(k, dim, d, seed=k + d, head=5 if d > 1 else 0)
    inputs = random_inputs(model, 8)
    firmware = micro.build(model, board, tmp_path / "scalar")
    kernels_c = (firmware.out_dir / "src" / "kernels.c").read_text()
    # one output (d = 1) has no output loop left: TVM's code, as on DSP boards
    assert (f"{REQUANTIZE_KERNEL}((" in kernels_c) == (d > 1)
    np.testing.assert_array_equal(micro.run(firmware, inputs).outputs,
                                  host_reference(model, inputs))


@requires_toolchain
@pytest.mark.parametrize("board", SCALAR_BOARDS)
def test_every_output_count_is_bit_exact(tmp_path, board):
    # n = 2..8 (1 is TVM's): every number of rows left over after groups of four (1 to 3)
    model, weights = _dense_heads(11, (2, 3, 4, 5, 6, 7, 8), 6)
    inputs = random_inputs(model, 4, seed=6)
    inputs[0] = -128
    firmware = micro.build(model, board, tmp_path / board)
    got = micro.run(firmware, inputs).outputs
    x = inputs.reshape(len(inputs), 11).astype(np.int64)
    expected = np.concatenate([x @ w.astype(np.int64) for w in weights], axis=1)
    np.testing.assert_array_equal(got.reshape(expected.shape), expected.astype(np.int32))


@requires_toolchain
def test_plain_build_calls_no_micro_kernel(tmp_path):
    model = pla_int8(2, 30, 8, seed=3)
    inputs = random_inputs(model, 4)
    plain = micro.build(model, "microbit", tmp_path / "plain", plain=True)
    assert not (plain.out_dir / "src" / "dot_product.c").exists()
    np.testing.assert_array_equal(micro.run(plain, inputs).outputs, host_reference(model, inputs))


def _scalar_requantize_call(n: int, zero_point: int, qmin: int, qmax: int):
    """A kernel that fills its output with a sentinel, then calls the scalar micro-kernel."""
    from tvm.script import tirx as T

    from .test_mve_kernels import _SENTINEL

    @T.prim_func(private=True)
    def kernel(acc: T.Buffer((n,), "int32"), bias: T.Buffer((n,), "int32"),
               mult: T.Buffer((n,), "int32"), shift: T.Buffer((n,), "int8"),
               out: T.Buffer((n + 1,), "int8")):
        T.func_attr({"op_pattern": 8})
        for i in range(n + 1):
            out[i] = T.int8(_SENTINEL)
        T.evaluate(T.call_extern(
            "int32", REQUANTIZE_KERNEL, acc.access_ptr("r"), bias.access_ptr("r"),
            mult.access_ptr("r"), shift.access_ptr("r"), out.access_ptr("w"), n, zero_point,
            qmin, qmax))

    return kernel


@requires_toolchain
@pytest.mark.parametrize("board", SCALAR_BOARDS)
@pytest.mark.parametrize(("zero_point", "qmin", "qmax"), [(-128, -128, 127), (7, -20, 100)])
def test_requantize_kernel_alone_is_bit_exact(tmp_path, board, zero_point, qmin, qmax):
    # every right shift 0..31, multipliers from 0 and 1 to INT32_MAX and INT32_MIN, accumulators
    # at rounding ties and the int32 limits (test_mve_kernels' cases); nothing written after n
    from micro.kernels import scalar

    from .test_mve_kernels import (
        _SENTINEL,
        _host_requantize,
        _requantize_parameters,
        _requantize_rows,
        _wrap,
    )
    scalar.register()
    rng = np.random.default_rng(12)
    n = 67
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((n,), "int32"))
    parameters, rows = [], []
    with bb.function("main", [x]):
        with bb.dataflow():
            parts = []
            for fallback in (False, True):
                bias, mult, shift = _requantize_parameters(rng, n, fallback)
                mult[7] = -1234567  # negative multipliers too: the kernel is exact for any
                parameters.append((bias, mult, shift))
                rows.append(_requantize_rows(rng, n, bias, mult, shift))
                gvar = bb.add_func(_scalar_requantize_call(n, zero_point, qmin, qmax),
                                   f"requantize_{int(fallback)}")
                parts.append(bb.emit(relax.call_tir(
                    gvar, [x] + [relax.const(v) for v in (bias, mult, shift)],
                    relax.TensorType((n + 1,), "int8"))))
            out = bb.emit_output(relax.op.concat(parts, axis=0))
        bb.emit_func_output(out)
    inputs = np.concatenate(rows)
    result = micro.run(micro.build(bb.get(), board, tmp_path), inputs)
    for acc, outputs in zip(inputs, result.outputs, strict=True):
        for part, (bias, mult, shift) in zip(np.split(outputs, 2), parameters, strict=True):
            wrapped = _wrap(acc.astype(np.int64) + bias)
            expected = _host_requantize(wrapped, np.zeros(n, np.int32), mult, shift, zero_point,
                                        qmin, qmax)
            np.testing.assert_array_equal(part[:n], expected)
            assert part[n] == _SENTINEL


@requires_toolchain
@pytest.mark.parametrize("board", SCALAR_BOARDS)
@pytest.mark.parametrize(
    ("length", "channels", "filters", "kernel", "stride", "options"),
    [
        (24, 8, 12, 3, 1, {"zero_point": 127}),  # window form, the epilogue kernel
        (23, 3, 4, 5, 1, {"relu": True, "zero_point": 7}),  # columns form, an odd width
        (20, 6, 6, 5, 2, {"clip": (-100, 90)}),  # stride 2, 6 channels, a clip after
        (16, 5, 5, 3, 1, {"depthwise": True, "relu": True, "zero_point": -9}),
        (24, 8, 8, 3, 1, {"residual": True}),
        (21, 1, 6, 5, 1, {"relu": True}),  # one input channel: the depthwise kernel, shared row
    ],
    ids=["window", "columns", "stride2", "depthwise", "residual", "one_channel"],
)
def test_convolutions_run_on_the_scalar_kernels_bit_exactly(
    tmp_path, board, length, channels, filters, kernel, stride, options
):
    """TFLite-style int8 convolutions on the M3 and M0: the DSP library's lowering and schedule
    with this library's convolution, depthwise and requantization kernels (convolution.c,
    requantize.c), bit-exact with TVM's host build."""
    mod = requantized_conv(length, channels, filters, kernel, stride=stride, **options)
    build_and_compare(mod, board, tmp_path)
    source = (tmp_path / "src" / "kernels.c").read_text()
    symbols = scalar.CONV_KERNELS
    used = symbols.depthwise if options.get("depthwise") or channels == 1 else symbols.conv
    assert f"{used}(" in source and f"{symbols.requantize}(" in source
    assert "micro_dsp_" not in source


@requires_toolchain
@pytest.mark.parametrize("board", SCALAR_BOARDS)
def test_window_widening_kernel_is_bit_exact(tmp_path, board):
    """An unpadded 1x1 convolution's window rows go on micro_scalar_widen_rows_q7."""
    mod = requantized_conv(24, 8, 6, 1)
    build_and_compare(mod, board, tmp_path)
    assert f"{scalar.CONV_KERNELS.widen}(" in (tmp_path / "src" / "kernels.c").read_text()
