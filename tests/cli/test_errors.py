"""User errors of ``compile``, ``run`` and ``tune``: exit status 2 and one line naming the problem.

None of these needs a trained model or the Arm toolchain: every check runs before any build.
"""

from __future__ import annotations

import json

from pla_tvm.deploy import MANIFEST_FILE, MANIFEST_FORMAT
from tests.cli.conftest import BOARD, cli_error


def test_run_on_a_directory_without_a_manifest(tmp_path, capsys):
    message = cli_error(capsys, "run", str(tmp_path), "--limit", "2")
    assert str(tmp_path / MANIFEST_FILE) in message and "no manifest" in message


def test_run_on_a_missing_directory(tmp_path, capsys):
    message = cli_error(capsys, "run", str(tmp_path / "nowhere"))
    assert "nowhere" in message and "not found" in message


def test_run_refuses_a_manifest_of_another_version(tmp_path, capsys):
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"format": MANIFEST_FORMAT, "version": 99}))
    message = cli_error(capsys, "run", str(tmp_path))
    assert "version 99" in message and "compile again" in message


def test_run_refuses_a_json_file_that_is_no_manifest(tmp_path, capsys):
    (tmp_path / MANIFEST_FILE).write_text("[1, 2")
    assert "unreadable manifest" in cli_error(capsys, "run", str(tmp_path))


def test_compile_with_a_corrupt_pla_file(tmp_path, capsys):
    corrupt = tmp_path / "pla.npz"
    corrupt.write_bytes(b"not a zip archive")
    (tmp_path / "model.tflite").write_bytes(b"\0" * 16)
    message = cli_error(capsys, "compile", str(tmp_path / "model.tflite"), "--pla", str(corrupt),
                        "--board", BOARD, "--out", str(tmp_path / "out"))
    assert str(corrupt) in message


def test_compile_with_a_missing_model(tmp_path, capsys):
    missing = tmp_path / "missing.tflite"
    message = cli_error(capsys, "compile", str(missing), "--board", BOARD,
                        "--out", str(tmp_path / "out"))
    assert str(missing) in message and "not found" in message


def test_compile_with_a_corrupt_model(tmp_path, capsys):
    corrupt = tmp_path / "model.tflite"
    corrupt.write_bytes(b"\0" * 64)
    message = cli_error(capsys, "compile", str(corrupt), "--board", BOARD,
                        "--out", str(tmp_path / "out"))
    assert str(corrupt) in message


def test_compile_for_an_unknown_board(tmp_path, capsys):
    message = cli_error(capsys, "compile", str(tmp_path / "model.tflite"), "--board", "pdp-11",
                        "--out", str(tmp_path / "out"))
    assert "pdp-11" in message


def test_tune_for_an_unknown_board(tmp_path, capsys):
    message = cli_error(capsys, "tune", str(tmp_path / "model.tflite"), "--board", "pdp-11",
                        "--trials", "2", "--db", str(tmp_path / "db"))
    assert "pdp-11" in message


def test_compile_with_a_missing_tuning_database(tmp_path, capsys):
    model = tmp_path / "model.tflite"
    message = cli_error(capsys, "compile", str(model), "--board", BOARD, "--db",
                        str(tmp_path / "nodb"), "--out", str(tmp_path / "out"))
    assert "model.tflite" in message  # the model is checked first; see the end-to-end tests
