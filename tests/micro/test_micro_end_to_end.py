"""Relax graph → firmware → QEMU, compared with the host's Relax VM."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest
from tvm.script import ir as I
from tvm.script import relax as R
from tvm.script import tirx as T

import micro

from .graphs import (
    float_mlp,
    host_reference,
    random_inputs,
    requires_toolchain,
    split_argmax,
    tiny_cnn,
)

pytestmark = requires_toolchain

CASES = [
    ("mps2-an385", "c"),
    ("mps2-an386", "c"),
    ("mps3-an547", "c"),
    ("mps2-an505", "c"),
    ("mps2-an386", "llvm"),
    ("mps3-an547", "llvm"),
    ("mps2-an500", "llvm"),
]


@pytest.mark.parametrize("board,backend", CASES)
def test_float_graph_matches_host(float_model, tmp_path, board, backend):
    inputs = random_inputs(float_model, 4)
    firmware = micro.build(float_model, board=board, out_dir=tmp_path, backend=backend)
    result = micro.run(firmware, inputs)
    # LLVM on the M7 (vfma) and M55 (MVE) rounds differently: equal to ~1e-5, not bit-exact.
    reference = host_reference(float_model, inputs)
    np.testing.assert_allclose(result.outputs, reference, rtol=1e-5, atol=1e-5)
    assert result.instructions_per_inference > 0
    assert 0 < result.stack_bytes <= result.stack_total_bytes


@pytest.mark.parametrize("board,backend", CASES)
def test_int8_graph_matches_host_bit_exactly(int8_model, tmp_path, board, backend):
    inputs = random_inputs(int8_model, 4)
    firmware = micro.build(int8_model, board=board, out_dir=tmp_path, backend=backend)
    result = micro.run(firmware, inputs)
    assert result.outputs.dtype == np.int8
    np.testing.assert_array_equal(result.outputs, host_reference(int8_model, inputs))


@pytest.mark.parametrize("backend", ["c", "llvm"])
def test_small_cnn_with_workspace_and_argmax(tmp_path, backend):
    model = tiny_cnn()
    inputs = random_inputs(model, 3)
    firmware = micro.build(model, board="mps2-an386", out_dir=tmp_path, backend=backend)
    result = micro.run(firmware, inputs)
    assert result.outputs.dtype == np.int64
    np.testing.assert_array_equal(result.outputs, host_reference(model, inputs))
    source = (tmp_path / "src" / "model.c").read_text()
    assert "model_run_workspace[" in source and "model_run_arena[" in source


def test_instruction_counts_are_deterministic_and_grow_with_work(tmp_path):
    small = micro.build(float_mlp(n_hidden=8), board="mps2-an386", out_dir=tmp_path / "small")
    large = micro.build(float_mlp(n_hidden=64), board="mps2-an386", out_dir=tmp_path / "large")
    inputs = random_inputs(float_mlp(), 3)
    first, second = micro.run(small, inputs), micro.run(small, inputs)
    assert first.counting == "plugin"
    np.testing.assert_array_equal(first.instruction_counts, second.instruction_counts)
    assert first.ticks_total == second.ticks_total
    bigger = micro.run(large, inputs)
    assert bigger.instructions_min > 4 * first.instructions_max
    # SysTick (whole ticks of 40 instructions on this board) agrees with the exact count.
    systick = first.ticks_total * small.board.instructions_per_tick / 3
    assert abs(systick - first.instructions_per_inference) <= 2 * 40


def test_systick_counts_without_host_compiler(float_model, tmp_path):
    firmware = micro.build(float_model, board="mps2-an385", out_dir=tmp_path)
    without_plugin = dataclasses.replace(firmware, counter_plugin=None)
    result = micro.run(without_plugin, random_inputs(float_model, 2))
    assert result.counting == "systick" and result.instruction_counts is None
    assert result.instructions_per_inference == result.ticks_total * 40 / 2


def test_single_input_and_many_inputs_in_one_run(float_model, tmp_path):
    firmware = micro.build(float_model, board="mps2-an386", out_dir=tmp_path)
    inputs = random_inputs(float_model, 300)
    many = micro.run(firmware, inputs)
    one = micro.run(firmware, inputs[7])
    assert many.outputs.shape == (300, 1, 5)
    np.testing.assert_array_equal(one.outputs[0], many.outputs[7])


def test_footprint_metadata_and_logged_commands(float_model, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="micro")
    firmware = micro.build(
        float_model,
        board="mps2-an386",
        out_dir=tmp_path,
        entry="ecg_run",
        quantization={
            "input": {"scale": 0.05, "zero_point": -3},
            "output": {"scale": np.float32(0.5), "zero_point": np.int8(1)},
        },
    )
    commands = [r.getMessage() for r in caplog.records if r.name == "micro.proc"]
    assert any("arm-none-eabi-gcc" in c and " -c " in c for c in commands)
    fp = firmware.footprint
    constants = (16 * 24 + 24 + 24 * 5) * 4
    assert constants <= fp.model_flash_bytes < fp.image_flash_bytes <= fp.board_flash_bytes
    assert fp.image_ram_bytes >= fp.stack_reserved_bytes + fp.heap_reserved_bytes
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    assert metadata["input"] == {"shape": [1, 16], "dtype": "float32", "bytes": 64}
    assert metadata["footprint"] == fp.as_dict()
    assert metadata["quantization"]["output"] == {"scale": 0.5, "zero_point": 1}
    header = (tmp_path / "src" / "model.h").read_text()
    assert "#define MODEL_INPUT_SCALE 0x1.999999999999ap-5f" in header
    assert "#define MODEL_INPUT_ZERO_POINT -3" in header
    assert "int ecg_run(const void* input, void* output);" in header
    assert micro.run(firmware, random_inputs(float_model, 1)).outputs.shape == (1, 1, 5)


@pytest.mark.parametrize("backend", ["c", "llvm"])
def test_cortex_m0_microbit_runs(float_model, int8_model, tmp_path, backend):
    for name, model in (("float", float_model), ("int8", int8_model)):
        inputs = random_inputs(model, 2)
        firmware = micro.build(model, board="microbit", out_dir=tmp_path / name, backend=backend)
        result = micro.run(firmware, inputs)
        np.testing.assert_array_equal(result.outputs, host_reference(model, inputs))
        assert firmware.footprint.image_ram_bytes <= 16 * 1024


@I.ir_module
class _ScriptModel:
    @R.function
    def main(x: R.Tensor((2, 8), "int8")) -> R.Tensor((2, 8), "int8"):
        with R.dataflow():
            scaled = R.multiply(R.astype(x, "int32"), R.const(3, "int32"))
            clipped = R.clip(R.right_shift(scaled, R.const(1, "int32")), -128, 127)
            out = R.astype(clipped, "int8")
            R.output(out)
        return out


def test_kernel_with_two_outputs(tmp_path):
    model = split_argmax()
    inputs = random_inputs(model, 5)
    firmware = micro.build(model, board="mps2-an386", out_dir=tmp_path)
    result = micro.run(firmware, inputs)
    np.testing.assert_array_equal(result.outputs, host_reference(model, inputs))


def test_tvmscript_module(tmp_path):
    inputs = random_inputs(_ScriptModel, 4)
    firmware = micro.build(_ScriptModel, board="mps2-an385", out_dir=tmp_path)
    result = micro.run(firmware, inputs)
    np.testing.assert_array_equal(result.outputs, host_reference(_ScriptModel, inputs))


@I.ir_module
class _StraightLineReduction:
    @T.prim_func(private=True)
    def running_max(x: T.Buffer((4,), "float32"), y: T.Buffer((1,), "float32")):
        y[0] = x[0]
        y[0] = T.max(y[0], x[1])
        y[0] = T.max(y[0], x[2])
        y[0] = T.min(y[0], x[3])

    @R.function
    def main(x: R.Tensor((4,), "float32")) -> R.Tensor((1,), "float32"):
        cls = _StraightLineReduction
        with R.dataflow():
            y = R.call_tir(cls.running_max, (x,), out_ty=R.Tensor((1,), "float32"))
            R.output(y)
        return y


@pytest.mark.parametrize("backend", ["c", "llvm"])
def test_straight_line_min_max_is_not_miscompiled(tmp_path, backend):
    # Regression: TVM's C printer reused a cached y[0] across the stores (micro.MinMaxToSelect).
    inputs = np.array([[1, 5, 3, 4], [9, 2, 1, 0], [0, 0, 7, 9]], dtype=np.float32)
    model = _StraightLineReduction
    firmware = micro.build(model, board="mps2-an386", out_dir=tmp_path, backend=backend)
    result = micro.run(firmware, inputs)
    np.testing.assert_array_equal(result.outputs, [[4.0], [0.0], [7.0]])


def test_firmware_loads_back_from_its_folder_and_runs_the_same(float_model, tmp_path):
    quantization = {"input": {"scale": 0.05, "zero_point": -3}}
    built = micro.build(float_model, "mps2-an386", tmp_path / "fw", quantization=quantization)
    loaded = micro.Firmware.load(tmp_path / "fw")
    assert loaded == built  # every field: board, tensors, footprint, plugin, marker addresses
    inputs = random_inputs(float_model, 3)
    again, first = micro.run(loaded, inputs), micro.run(built, inputs)
    np.testing.assert_array_equal(again.outputs, first.outputs)
    np.testing.assert_array_equal(again.instruction_counts, first.instruction_counts)
