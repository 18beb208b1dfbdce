"""``pla-tvm tune`` then ``pla-tvm compile --db``: a database is written and applies cleanly.

A handful of randomly sampled schedules (``--strategy replay-trace``) is enough to check the
plumbing; the tuned kernels reorder loops but keep the integer arithmetic, so the int8 firmware
must give exactly the untuned firmware's outputs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from pla_tvm.cli import main
from tests.cli.conftest import BOARD, cli_error, cli_json, needs_micro_tools

pytestmark = needs_micro_tools

TRIALS = 4


def _run_outputs(capsys, directory, tmp_path) -> np.ndarray:
    saved = tmp_path / f"{directory.name}.npz"
    cli_json(capsys, "run", str(directory), "--limit", "20", "--outputs", str(saved))
    with np.load(saved) as arrays:
        return arrays["outputs"]


@pytest.mark.slow  # 4 trials: 4-8 min of search on two loaded cores
def test_tuned_int8_pla_firmware_equals_the_untuned_one(tiny_baseline, tiny_pla, capsys,
                                                         tmp_path):
    model, pla, db = tiny_baseline / "baseline_int8.tflite", tiny_pla / "pla.npz", tmp_path / "db"
    # In a subprocess: MetaSchedule reconfigures logging (dictConfig), which closes pytest's
    # log-capture handlers and breaks the test's teardown when run in-process.
    tune = subprocess.run(
        [sys.executable, "-m", "pla_tvm.cli", "tune", str(model), "--pla", str(pla), "--board",
         BOARD, "--trials", str(TRIALS), "--trials-per-iteration", str(TRIALS), "--strategy",
         "replay-trace", "--db", str(db), "--json"],
        capture_output=True, text=True, check=False)
    assert tune.returncode == 0, tune.stderr[-2000:]
    result = json.loads(tune.stdout)
    assert (db / "database_tuning_record.json").stat().st_size > 0
    assert result["kernels"], "no kernel was tuned"
    assert any(count for count in result["kernels"].values()), result["kernels"]

    common = [str(model), "--pla", str(pla), "--board", BOARD]
    assert main(["compile", *common, "--out", str(tmp_path / "untuned")]) == 0
    manifest = cli_json(capsys, "compile", *common, "--db", str(db),
                        "--out", str(tmp_path / "tuned"))
    assert manifest["db"] == str(db.resolve())
    other_board = [str(model), "--pla", str(pla), "--board", "mps2-an385"]
    assert "not for mps2-an385's cortex-m3" in cli_error(
        capsys, "compile", *other_board, "--db", str(db), "--out", str(tmp_path / "m3"))
    np.testing.assert_array_equal(_run_outputs(capsys, tmp_path / "tuned", tmp_path),
                                  _run_outputs(capsys, tmp_path / "untuned", tmp_path))


def test_compile_with_a_directory_that_holds_no_database(tiny_baseline, tiny_pla, capsys,
                                                         tmp_path):
    """The fast part of the tune → compile path: a wrong ``--db`` is one clear error."""
    empty = tmp_path / "not-a-db"
    empty.mkdir()
    message = cli_error(capsys, "compile", str(tiny_baseline / "baseline_int8.tflite"),
                        "--pla", str(tiny_pla / "pla.npz"), "--board", BOARD,
                        "--db", str(empty), "--out", str(tmp_path / "out"))
    assert str(empty) in message and "database" in message
