"""MetaSchedule with candidates built as firmware and measured in QEMU."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm.s_tir.meta_schedule.builder import BuilderInput
from tvm.s_tir.meta_schedule.runner import RunnerInput

import micro
from micro.lowering import lower_to_kernel_calls
from micro.toolchain import find_toolchain
from micro.tuning import QemuBuilder, QemuRunner, tune

from .graphs import float_mlp, host_reference, random_inputs, requires_toolchain

pytestmark = requires_toolchain


def test_builder_and_runner_measure_one_kernel(tmp_path):
    board, toolchain = micro.get_board("mps2-an386"), find_toolchain()
    lowered = lower_to_kernel_calls(float_mlp())
    kernel = tvm.IRModule({"main": lowered["fused_matmul_add_relu"]})
    target = tvm.target.Target(board.tvm_target("llvm"))
    builder = QemuBuilder(board, tmp_path, toolchain, "c")
    (built,) = builder.build([BuilderInput(kernel, target)])
    assert built.error_msg is None
    runner = QemuRunner(board, toolchain, 2, 30.0)
    (future,) = runner.run([RunnerInput(built.artifact_path, "cpu", [])])
    result = future.result()
    assert result.error_msg is None
    seconds = [float(s) for s in result.run_secs]
    assert len(seconds) == 2 and seconds[0] == seconds[1] > 0
    # 16 x 24 multiply-accumulates: a few thousand instructions at 25 MHz.
    assert 1_000 < seconds[0] * board.clock_hz < 50_000


@pytest.mark.slow
def test_tuned_model_builds_and_matches_host(tmp_path):
    model = float_mlp(n_in=32, n_hidden=32)
    tuned = tune(model, "mps2-an386", tmp_path / "tune", max_trials=8, trials_per_iteration=4)
    functions = tuned.functions.values()
    assert any(f.attrs and "tirx.is_scheduled" in f.attrs for f in functions)
    inputs = random_inputs(model, 4)
    firmware = micro.build(tuned, board="mps2-an386", out_dir=tmp_path / "firmware")
    result = micro.run(firmware, inputs)
    reference = host_reference(model, inputs)
    np.testing.assert_allclose(result.outputs, reference, rtol=1e-5, atol=1e-5)
