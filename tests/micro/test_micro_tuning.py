"""MetaSchedule with candidates built as firmware and measured in QEMU."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tvm
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.builder import BuilderInput
from tvm.s_tir.meta_schedule.runner import PyRunner, RunnerInput

import micro
from micro.api import _build as build_with_test_hook
from micro.lowering import lower_to_kernel_calls
from micro.measuring import QemuBuilder, QemuRunner, search_target, submit_all
from micro.toolchain import find_toolchain
from micro.tuning import SUMMARY_FILE, DatabaseNotFoundError, apply_database, tune

from .graphs import float_mlp, host_reference, int8_dense, random_inputs, requires_toolchain

BOARD = "mps2-an386"


def _kernel(model: tvm.IRModule, name: str) -> tvm.IRModule:
    """One kernel of a model as MetaSchedule hands it to the builder."""
    return tvm.IRModule({"main": lower_to_kernel_calls(model)[name]})


def _build(builder: QemuBuilder, mods: list[tvm.IRModule]) -> list:
    target = search_target(micro.get_board(BOARD))
    return builder.build([BuilderInput(mod, target) for mod in mods])


def _run(runner: PyRunner, artifacts: list[str]) -> list:
    return [f.result() for f in runner.run([RunnerInput(a, "cpu", []) for a in artifacts])]


def test_apply_database_refuses_a_folder_without_database(tmp_path, int8_model):
    with pytest.raises(DatabaseNotFoundError, match="database_workload.json"):
        apply_database(int8_model, BOARD, tmp_path)


@requires_toolchain
def test_builder_and_runner_measure_kernels_in_parallel(tmp_path, monkeypatch):
    board, toolchain = micro.get_board(BOARD), find_toolchain()
    matmul = _kernel(float_mlp(), "fused_matmul_add_relu")
    monkeypatch.chdir(tmp_path)  # a relative work folder, as `pla-tvm tune --db DIR` passes it
    builder = QemuBuilder(board, Path("work"), toolchain, "c", max_workers=2)
    built = _build(builder, [matmul, matmul])
    assert [b.error_msg for b in built] == [None, None]
    runner = QemuRunner(board, toolchain, 2, 30.0, max_workers=2)
    results = _run(runner, [b.artifact_path for b in built])
    assert [r.error_msg for r in results] == [None, None]
    seconds = [[float(s) for s in r.run_secs] for r in results]
    # Exact counts: identical between calls and between candidates run side by side.
    assert seconds[0] == seconds[1] and seconds[0][0] == seconds[0][1] > 0
    # 16 x 24 multiply-accumulates: a few thousand instructions at 25 MHz.
    assert 1_000 < seconds[0][0] * board.clock_hz < 50_000


@requires_toolchain
def test_candidate_that_cannot_build_is_a_failed_result(tmp_path):
    board = micro.get_board(BOARD)
    # A kernel whose buffers (8 MiB) exceed the board's 4 MiB of RAM.
    huge = tvm.te.placeholder((2 * 1024 * 1024,), "float32", name="a")
    twice = tvm.te.compute(huge.shape, lambda i: huge[i] * 2.0, name="b")
    kernel = tvm.IRModule({"main": tvm.te.create_prim_func([huge, twice])})
    (built,) = _build(QemuBuilder(board, tmp_path, find_toolchain(), "c"), [kernel])
    assert built.artifact_path is None
    assert built.error_msg.startswith("ModelTooLargeError: ")


@requires_toolchain
@pytest.mark.parametrize("hook,error", [("fault", "FirmwareFaultError"), ("hang", "Timeout")])
def test_faulting_or_hanging_firmware_is_a_failed_result(tmp_path, float_model, hook, error):
    firmware = build_with_test_hook(float_model, BOARD, tmp_path / hook, test_hook=hook)
    runner = QemuRunner(micro.get_board(BOARD), find_toolchain(), 1, 2.0)
    (result,) = _run(runner, [str(firmware.elf)])
    assert result.run_secs is None
    assert error in result.error_msg


@derived_object
class _FirstCandidateFaults(PyRunner):
    """Measures like QemuRunner, except that the search's first candidate is swapped for a
    faulting image (the first batch measures the default schedules)."""

    def __init__(self, runner: QemuRunner, faulty_elf: Path) -> None:
        super().__init__()
        self.runner, self.faulty_elf, self.batches = runner, faulty_elf, 0
        self.pool = ThreadPoolExecutor(2)

    def run(self, runner_inputs):
        artifacts = [Path(c.artifact_path) for c in runner_inputs]
        self.batches += 1
        if self.batches == 2:
            artifacts[0] = self.faulty_elf
        inputs = [RunnerInput(str(a), "cpu", []) for a in artifacts]
        return submit_all(self.pool, self.runner.measure, inputs, self.runner.board)


@requires_toolchain
def test_short_tuning_run_is_bit_exact_and_records_a_faulting_candidate(tmp_path):
    model = int8_dense()
    board, toolchain = micro.get_board(BOARD), find_toolchain()
    faulty = build_with_test_hook(model, board, tmp_path / "faulty", test_hook="fault").elf
    runner = _FirstCandidateFaults(QemuRunner(board, toolchain, 2, 30.0), faulty)
    db = tmp_path / "db"
    tuned = tune(
        model,
        board,
        db,
        max_trials=4,
        trials_per_iteration=2,
        strategy=ms.search_strategy.ReplayTrace(),
        runner=runner,
        progress=False,
    )
    assert (db / "database_tuning_record.json").stat().st_size > 0
    summary = json.loads((db / SUMMARY_FILE).read_text())
    kernels = summary["kernels"].values()
    assert sum(k["trials"] for k in kernels) >= 4
    assert sum(k["failed"] for k in kernels) == 1
    (error,) = [e for k in kernels for e in k["errors"]]
    assert error.startswith("FirmwareFaultError: ")
    assert any(k["best_instructions"] for k in kernels)
    # Every kernel's default schedule was measured and is a candidate in the database, so the
    # applied schedule is never slower than the default.
    assert all(k["default_instructions"] for k in kernels)

    inputs = random_inputs(model, 8)
    untuned = micro.run(micro.build(model, board, tmp_path / "untuned"), inputs)
    applied = apply_database(model, board, db)
    tvm.ir.assert_structural_equal(applied, tuned)
    result = micro.run(micro.build(applied, board, tmp_path / "tuned"), inputs)
    np.testing.assert_array_equal(result.outputs, untuned.outputs)


@pytest.mark.slow
@requires_toolchain
def test_tuned_float_model_builds_and_matches_host(tmp_path):
    model = float_mlp(n_in=32, n_hidden=32)
    tuned = tune(model, BOARD, tmp_path / "tune", max_trials=8, trials_per_iteration=4)
    functions = tuned.functions.values()
    assert any(f.attrs and "tirx.is_scheduled" in f.attrs for f in functions)
    inputs = random_inputs(model, 4)
    firmware = micro.build(tuned, board=BOARD, out_dir=tmp_path / "firmware")
    result = micro.run(firmware, inputs)
    reference = host_reference(model, inputs)
    np.testing.assert_allclose(result.outputs, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@requires_toolchain
def test_every_candidate_timing_out_still_completes(tmp_path, int8_model):
    db = tmp_path / "db"
    tune(int8_model, BOARD, db, max_trials=2, trials_per_iteration=1, timeout=1e-3, progress=False)
    kernels = json.loads((db / SUMMARY_FILE).read_text())["kernels"].values()
    assert sum(k["failed"] for k in kernels) == sum(k["trials"] for k in kernels) > 0
    assert all("FirmwareTimeoutError" in e for k in kernels for e in k["errors"])
