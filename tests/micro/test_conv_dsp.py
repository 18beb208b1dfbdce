"""The DSP convolution kernels (micro.kernels.dsp): each shape built alone into firmware for a
Cortex-M4 and compared bit for bit with TVM's host build of the same Relax module."""

from __future__ import annotations

import json
import re

import pytest
import tvm

import micro
from micro.kernels.dsp import apply_dsp
from micro.lowering import lower_to_kernel_calls

from .graphs import build_and_compare, conv_block, random_inputs, requires_toolchain

BOARD = "mps2-an386"


def _build_and_compare(mod: tvm.IRModule, out_dir, reference: tvm.IRModule | None = None):
    return build_and_compare(mod, BOARD, out_dir, reference)


def _kernels_source(out_dir) -> str:
    return (out_dir / "src" / "kernels.c").read_text()


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
    assert "model_run_pad" not in (tmp_path / "src" / "model.c").read_text()


@requires_toolchain
@pytest.mark.parametrize(
    ("channels", "filters", "kernel", "stride"), [(1, 8, 8, 1), (3, 6, 5, 2), (6, 4, 3, 1)]
)
def test_input_channels_not_a_multiple_of_four_run_on_columns(
    tmp_path, channels, filters, kernel, stride
):
    """One zero-padded column per position (im2col), on the same micro-kernel."""
    _build_and_compare(conv_block(19, channels, filters, kernel, stride=stride), tmp_path)
    assert "micro_dsp_conv_q15q7(" in _kernels_source(tmp_path)
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
    _build_and_compare(conv_block(6, 8, 4, 3, height=6), tmp_path)
    assert "micro_dsp_conv_q15q7(" in _kernels_source(tmp_path)


@requires_toolchain
def test_no_whole_tensor_accumulator_or_padded_copy_remains(tmp_path):
    """The kernel's int32 accumulators and its window cover one pass of positions: the model's
    RAM is its input and output (no padded input, no [140, 16] int32 accumulator)."""
    mod = conv_block(140, 16, 16, 5)
    result = _build_and_compare(mod, tmp_path)
    model = (tmp_path / "src" / "model.c").read_text()
    workspace = re.search(r"_workspace\[(\d+)\]", model)
    assert workspace is None or int(workspace.group(1)) < 1024
    io_bytes = 2 * 140 * 16
    assert result.footprint.model_ram_bytes < io_bytes + 1024


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
