"""The DSP convolution kernels (micro.kernels.dsp): each shape built alone into firmware for a
Cortex-M4 and compared bit for bit with TVM's host build of the same Relax module."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import tvm
from tvm import relax, s_tir
from tvm.script import tirx as T

import micro
from micro import codegen
from micro.errors import BuildError
from micro.kernels import dsp, scalar
from micro.kernels.dsp import apply_dsp, convolution
from micro.kernels.dsp.passes import compute_in_passes, output_width_loop
from micro.lowering import lower_to_kernel_calls

from .graphs import build_and_compare, conv_block, random_inputs, requires_toolchain

BOARD = "mps2-an386"


def _build_and_compare(mod: tvm.IRModule, out_dir, reference: tvm.IRModule | None = None):
    return build_and_compare(mod, BOARD, out_dir, reference)


def _kernels_source(out_dir) -> str:
    return (out_dir / "src" / "kernels.c").read_text()


def _zeroes_accumulators(source: str) -> bool:
    """Whether a kernel zeroes the convolution's accumulators (the micro-kernel writes them)."""
    return re.search(r"conv2d_nhwc_\w+\[[^\]]*\] = 0;", source) is not None


@requires_toolchain
@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "channels", "filters"),
    [
        (1, 1, "valid", 8, 6),
        (3, 1, "same", 16, 12),
        (5, 2, "same", 8, 10),
        (8, 1, "same", 4, 2),
        (8, 2, "valid", 12, 8),
    ],
)
def test_micro_kernel_convolutions_are_bit_exact(
    tmp_path, kernel, stride, padding, channels, filters
):
    _build_and_compare(conv_block(23, channels, filters, kernel, stride=stride, padding=padding),
                       tmp_path)
    source = _kernels_source(tmp_path)
    assert "micro_dsp_conv_q15q7(" in source
    assert not _zeroes_accumulators(source)
    assert "model_run_pad" not in (tmp_path / "src" / "model.c").read_text()


@requires_toolchain
@pytest.mark.parametrize(
    ("channels", "filters", "kernel", "stride"), [(2, 8, 8, 1), (3, 6, 5, 2), (6, 4, 3, 1)]
)
def test_input_channels_not_a_multiple_of_four_run_on_columns(
    tmp_path, channels, filters, kernel, stride
):
    """One zero-padded column per position (im2col), on the same micro-kernel."""
    _build_and_compare(conv_block(19, channels, filters, kernel, stride=stride), tmp_path)
    assert "micro_dsp_conv_q15q7(" in _kernels_source(tmp_path)
    assert not _zeroes_accumulators(_kernels_source(tmp_path))
    assert "model_run_pad" not in (tmp_path / "src" / "model.c").read_text()


@requires_toolchain
@pytest.mark.parametrize(
    ("filters", "kernel", "stride", "padding"),
    [(8, 8, 1, "valid"), (16, 5, 1, "same"), (7, 3, 2, "same"), (2, 1, 1, "valid")],
)
def test_one_input_channel_runs_on_the_depthwise_kernel_with_a_shared_row(
    tmp_path, filters, kernel, stride, padding
):
    """A beat's first convolution: every output reads the one widened input row, no im2col
    column per position, bit-exact, with an odd output count too."""
    _build_and_compare(conv_block(19, 1, filters, kernel, stride=stride, padding=padding),
                       tmp_path)
    source = _kernels_source(tmp_path)
    assert "micro_dsp_depthwise_q15(" in source
    assert "micro_dsp_conv_q15q7(" not in source and "columns" not in source
    assert "model_run_pad" not in (tmp_path / "src" / "model.c").read_text()


@requires_toolchain
@pytest.mark.parametrize(("channels", "filters"), [(3, 5), (8, 7)])
def test_odd_output_counts_stay_windowed_in_plain_loops_and_bit_exact(
    tmp_path, channels, filters
):
    """An odd number of outputs: plain TIR loops over the same per-pass window, still without a
    padded copy or a whole int32 accumulator."""
    _build_and_compare(conv_block(19, channels, filters, 3), tmp_path)
    assert "micro_dsp_conv_q15q7(" not in _kernels_source(tmp_path)
    assert "model_run_pad" not in (tmp_path / "src" / "model.c").read_text()


@requires_toolchain
def test_residual_add_runs_in_the_convolution_epilogue(tmp_path):
    """The add and the stage rescaling its other operand run per element of each pass: the
    residual costs a few instructions per output, not a pass over the whole tensor per pass."""
    length, channels = 40, 8
    mod = conv_block(length, channels, channels, 3, residual=True)
    lowered = apply_dsp(mod, micro.get_board(BOARD))
    calls = [b.value for b in lowered["main"].body.blocks[0].bindings]
    assert len(calls) == 1  # pad, convolution, bias, residual add, requantization: one kernel
    with_add = _build_and_compare(mod, tmp_path / "residual")
    without = _build_and_compare(conv_block(length, channels, channels, 3), tmp_path / "plain")
    per_output = (with_add.instructions_per_inference - without.instructions_per_inference) / (
        length * channels)
    assert per_output < 20


@requires_toolchain
def test_two_dimensional_convolution_is_bit_exact(tmp_path):
    """The kernel rows are looped inside the micro-kernel, which writes the whole sums."""
    _build_and_compare(conv_block(6, 8, 4, 3, height=6), tmp_path)
    assert "micro_dsp_conv_q15q7(" in _kernels_source(tmp_path)
    assert not _zeroes_accumulators(_kernels_source(tmp_path))


def test_an_overwriting_call_inside_a_reduction_loop_fails_the_build(tmp_path):
    """TVM's tensorize ignores inits, so it accepts the overwriting intrinsic of one kernel row
    inside a loop over the rows of a 3 x 3 kernel; the code generator must not then drop the
    block's init (each call would erase the previous rows' sums): it refuses the kernel."""
    lowered = dsp.lower(conv_block(6, 8, 4, 3, height=6), micro.get_board(BOARD))
    (name,) = [gv.name_hint for gv, f in lowered.functions.items()
               if isinstance(f, tvm.tirx.PrimFunc) and "conv2d" in gv.name_hint]
    sch = s_tir.Schedule(lowered[name])
    conv = convolution.find_conv_block(sch)
    compute_in_passes(sch, conv, output_width_loop(sch, conv), 2)
    positions, outputs, rows, row, quads, pair = sch.get_loops(conv)[3:]
    calls, inner = sch.split(positions, [None, 2])
    sch.reorder(calls, rows, inner, outputs)
    sch.add_unit_loop(row)
    sch.tensorize(inner, convolution.conv_intrin(2, 4, 1, 3, 8, 1))  # accepted
    kernels = tvm.IRModule({name: sch.mod["main"]})
    with pytest.raises(BuildError, match="reduces over v_rh_o outside it"):
        codegen.generate_kernels(kernels, [name], micro.get_board(BOARD), "c", tmp_path, "m", 8)


@requires_toolchain
def test_no_whole_tensor_accumulator_or_padded_copy_remains(tmp_path):
    """The kernel's int32 accumulators and its window cover one pass of positions, within the
    default pass's budget: the model's RAM is its input and output and that (no padded input,
    no [140, 16] int32 accumulator of 8,960 B)."""
    mod = conv_block(140, 16, 16, 5)
    result = _build_and_compare(mod, tmp_path)
    model = (tmp_path / "src" / "model.c").read_text()
    workspace = re.search(r"_workspace\[(\d+)\]", model)
    assert workspace is None or int(workspace.group(1)) <= convolution.MAX_PASS_BYTES
    io_bytes = 2 * 140 * 16
    assert result.footprint.model_ram_bytes <= io_bytes + convolution.MAX_PASS_BYTES


def test_plain_lowering_keeps_tvm_convolution():
    lowered = lower_to_kernel_calls(conv_block(20, 8, 8, 3))
    names = [gv.name_hint for gv in lowered.functions]
    assert any(name.startswith("pad") for name in names)


@requires_toolchain
def test_tuning_searches_the_positions_per_pass_and_its_best_applies(tmp_path):
    """Every candidate of the convolution kernel calls the micro-kernel (the rule owns the
    kernel, MetaSchedule samples the passes); the tuned build is bit-exact and never slower
    than the default (whose schedule is a measured candidate)."""
    from tvm.s_tir import meta_schedule as ms  # noqa: PLC0415 (MetaSchedule loads slowly)

    from micro.tuning import SUMMARY_FILE, apply_database, tune  # noqa: PLC0415

    mod = conv_block(24, 8, 8, 3)
    db = tmp_path / "tune"
    tune(mod, BOARD, db, max_trials=6, trials_per_iteration=3,
         strategy=ms.search_strategy.ReplayTrace(), progress=False)
    summary = json.loads((db / SUMMARY_FILE).read_text())["kernels"]
    (kernel,) = summary.values()
    assert kernel["failed"] == 0 and kernel["trials"] >= 3
    assert kernel["best_instructions"] <= kernel["default_instructions"]
    applied = apply_database(mod, BOARD, db)
    result = _build_and_compare(applied, tmp_path / "tuned", reference=mod)
    default = micro.run(micro.build(mod, BOARD, tmp_path / "default"), random_inputs(mod, 4))
    assert "micro_dsp_conv_q15q7(" in _kernels_source(tmp_path / "tuned")
    assert result.instructions_per_inference <= default.instructions_per_inference


#: Every path of the micro-kernel, as (quads, rows, row_step, positions, window_step, pairs,
#: acc_step): one quad (nothing after the first), each count of further quads a dispatch can
#: take, one to five positions (a lone position in C, one and two pairs of positions then one
#: more in C), overlapping windows (window_step below the window) and disjoint ones, several
#: kernel rows with a gap between them, many pairs of outputs, sums with gaps between rows.
_KERNEL_CASES = [
    (1, 1, 0, 2, 4, 9, 18),
    (2, 1, 0, 2, 2, 1, 2),
    (3, 1, 0, 3, 2, 2, 5),
    (5, 1, 0, 5, 20, 1, 2),
    (8, 1, 0, 2, 32, 4, 8),
    (13, 1, 0, 4, 6, 3, 6),
    (2, 3, 26, 4, 4, 3, 7),
    (4, 2, 16, 3, 8, 2, 4),
    (13, 2, 60, 1, 0, 2, 4),
]
#: What the output holds before the kernel runs: the sums must replace it (and only them).
_SENTINEL = 0x5A5A5A5A


def _window_length(quads, rows, row_step, positions, window_step, *_):
    length = (rows - 1) * row_step + (positions - 1) * window_step + 4 * quads
    return length + length % 2  # the next window stays 4-byte aligned


def _kernel_call(case, offset: int, window_total: int, symbol: str) -> tvm.tirx.PrimFunc:
    """A kernel that fills its output with the sentinel, then calls the micro-kernel once (an
    opaque operator: fusion leaves it alone)."""
    quads, rows, row_step, positions, window_step, pairs, acc_step = case
    weights = 8 * pairs * rows * quads
    sums = (positions - 1) * acc_step + 2 * pairs

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((window_total,), "int16"), w: T.Buffer((weights,), "int8"),
               acc: T.Buffer((sums,), "int32")):
        T.func_attr({"op_pattern": 8})
        for i in range(sums):
            acc[i] = _SENTINEL
        T.evaluate(T.call_extern(
            "int32", symbol, x.access_ptr("r", offset=offset),
            w.access_ptr("r"), acc.access_ptr("w"), quads, rows, row_step, positions,
            window_step, pairs, acc_step))

    return kernel


def _kernel_reference(case, window: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The header's contract in numpy: each stored quad (v0, v2, v1, v3) against the weight
    bytes (w0, w1, w2, w3) of its output, over every kernel row; the sentinel elsewhere."""
    quads, rows, row_step, positions, window_step, pairs, acc_step = case
    acc = np.full((positions - 1) * acc_step + 2 * pairs, _SENTINEL, dtype=np.int64)
    w = weight.astype(np.int64).reshape(pairs, rows, quads, 2, 4)
    for p in range(positions):
        for o in range(2 * pairs):
            total = 0
            for k in range(rows):
                start = k * row_step + p * window_step
                v = window[start:start + 4 * quads].astype(np.int64).reshape(quads, 4)
                total += int((v[:, [0, 2, 1, 3]] * w[o // 2, k, :, o % 2]).sum())
            acc[p * acc_step + o] = total
    return acc.astype(np.int32)


@requires_toolchain
@pytest.mark.parametrize(
    ("board", "symbol"),
    [("mps2-an386", convolution.CONV_KERNEL), ("mps2-an500", convolution.CONV_KERNEL),
     ("mps2-an505", convolution.CONV_KERNEL), ("mps2-an385", scalar.CONV_KERNELS.conv),
     ("microbit", scalar.CONV_KERNELS.conv)],
)  # M4, M7, M33 (DSP); M3, M0 (scalar)
def test_micro_kernel_writes_its_sums_on_every_path(tmp_path, board, symbol):
    """The C contract of micro_dsp_conv_q15q7 (convolution.h), which the scalar kernel shares,
    beyond the shapes the schedule makes: each case's sums equal the reference, and no other
    element of the output changes."""
    rng = np.random.default_rng(5)
    lengths = [_window_length(*case) for case in _KERNEL_CASES]
    total = sum(lengths)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((total,), "int16"))
    weights, offset = [], 0
    with bb.function("main", [x]):
        with bb.dataflow():
            outputs = []
            for index, (case, length) in enumerate(zip(_KERNEL_CASES, lengths, strict=True)):
                quads, rows, _, positions, _, pairs, acc_step = case
                weight = rng.integers(-128, 128, 8 * pairs * rows * quads, dtype=np.int8)
                weights.append((offset, weight))
                gvar = bb.add_func(_kernel_call(case, offset, total, symbol),
                                   f"conv_case{index}")
                sums = (positions - 1) * acc_step + 2 * pairs
                outputs.append(bb.emit(relax.call_tir(
                    gvar, [x, relax.const(weight)], relax.TensorType((sums,), "int32"))))
                offset += length
            out = bb.emit_output(relax.op.concat(outputs, axis=0))
        bb.emit_func_output(out)
    mod = bb.get()
    inputs = rng.integers(-32768, 32768, (2, total), dtype=np.int16)  # every int16 value
    result = micro.run(micro.build(mod, board, tmp_path), inputs)
    for window, outputs in zip(inputs, result.outputs, strict=True):
        expected = [_kernel_reference(case, window[start:], weight)
                    for case, (start, weight) in zip(_KERNEL_CASES, weights, strict=True)]
        np.testing.assert_array_equal(outputs, np.concatenate(expected))
