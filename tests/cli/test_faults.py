"""Fault injection: bad inputs, interruptions and races leave one line, an exit code, and no
half-written or inconsistent folder.

Every case asserts the exit status (2 for a user error, 130 for an interrupt), a one-line
message naming the file or value, and that what remains is either absent or complete: no
``.NAME.partial-*`` folder, an output folder untouched or holding a manifest whose board and
hash match its ELF. The sandbox cases (a firmware reading and writing host files, locally and
through the RPC measuring function) are in tests/micro/test_sandbox.py.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pla_tvm.cli import main
from pla_tvm.files import sha256_of

from .conftest import BOARD, cli_json, needs_micro_tools

pytestmark = needs_micro_tools
REPO = Path(__file__).resolve().parents[2]


def _compile_args(tiny_baseline: Path, tiny_pla: Path, out: Path) -> list[str]:
    return ["compile", str(tiny_baseline / "baseline_int8.tflite"), "--pla",
            str(tiny_pla / "pla.npz"), "--board", BOARD, "--out", str(out)]


def _no_partial_folders(parent: Path) -> None:
    left = [p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]
    assert not left, left


def _consistent_firmware(folder: Path) -> None:
    """The folder's manifest, metadata and ELF agree, and ``run`` accepts it."""
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["board"] == BOARD
    assert sha256_of(folder / manifest["firmware"]["elf"]) == manifest["firmware"]["elf_sha256"]
    assert json.loads((folder / "metadata.json").read_text())["board"] == BOARD
    assert main(["run", str(folder), "--limit", "3"]) == 0


def _error(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse
        status = exit_.code
    captured = capsys.readouterr()
    message = captured.err.strip()
    assert status == 2, message
    assert captured.out == ""
    assert "\n" not in message and "Traceback" not in message, message
    return message


@pytest.mark.parametrize("case, expected", [
    ("limit-zero", "--limit: must be at least 1"),
    ("limit-negative", "--limit: must be at least 1"),
    ("outputs-in-missing-folder", "does not exist"),
    ("out-is-a-file", "is a file, expected a folder"),
    ("out-under-read-only", "cannot create the parent folder"),
    ("out-holds-foreign-files", "holds files this command did not write"),
    ("compress-half-trained", "not a complete 'pla-tvm train' output"),
    ("train-on-unlabelled-source", "needs a labelled source with train and test splits"),
    ("db-empty", "no tuning records"),
    ("trials-zero", "--trials: must be at least 1"),
    ("compress-truncated-int8", "corrupt or truncated TFLite flatbuffer"),
    ("pla-with-nan", "NaN or infinite"),
    ("wfdb-fs-zero", "sampling frequency (fs) is 0"),
])
def test_bad_input_is_one_line_and_writes_nothing(case, expected, capsys, tmp_path,
                                                  tiny_baseline, tiny_pla, int8_pla_firmware,
                                                  mitdb_record):
    foreign = tmp_path / "theirs"
    foreign.mkdir()
    (foreign / "metadata.json").write_text("a user's file\n")
    compile_to = lambda out: _compile_args(tiny_baseline, tiny_pla, out)  # noqa: E731
    half = tmp_path / "half-trained"
    half.mkdir()
    for name in ("baseline.keras", "baseline_float.tflite"):
        (half / name).write_bytes((tiny_baseline / name).read_bytes())
    empty_db = tmp_path / "db"
    empty_db.mkdir()
    for name in ("database_workload.json", "database_tuning_record.json"):
        (empty_db / name).write_bytes(b"")
    (tmp_path / "a-file").write_text("x")
    truncated = tmp_path / "truncated-baseline"
    shutil.copytree(tiny_baseline, truncated)
    int8 = truncated / "baseline_int8.tflite"
    int8.write_bytes(int8.read_bytes()[: int8.stat().st_size // 2])
    with np.load(tiny_pla / "pla.npz") as npz:
        arrays = dict(npz)
    arrays["weights"] = arrays["weights"].copy()
    arrays["weights"].flat[0] = np.nan
    np.savez(tmp_path / "nan.npz", **arrays)
    fs_zero = tmp_path / "fs0"
    fs_zero.mkdir()
    shutil.copy(mitdb_record.with_suffix(".dat"), fs_zero / "100.dat")
    header = mitdb_record.with_suffix(".hea").read_text().splitlines()
    header = [re.sub(r"^100 2 360 ", "100 2 0 ", line) for line in header]
    (fs_zero / "100.hea").write_text("\n".join(header) + "\n")
    argv = {
        "limit-zero": ["run", str(int8_pla_firmware), "--limit", "0"],
        "limit-negative": ["run", str(int8_pla_firmware), "--limit", "-3"],
        "outputs-in-missing-folder": ["run", str(int8_pla_firmware), "--limit", "2",
                                      "--outputs", str(tmp_path / "missing" / "o.npz")],
        "out-is-a-file": compile_to(tmp_path / "a-file"),
        "out-under-read-only": compile_to(Path("/proc/pla-tvm-test/out")),
        "out-holds-foreign-files": compile_to(foreign),
        "compress-half-trained": ["compress", "--baseline", str(half), "--out",
                                  str(tmp_path / "pla"), "--k", "2", "--lam", "1"],
        "train-on-unlabelled-source": ["train", "--source", f"wfdb:{mitdb_record}", "--beats",
                                       "detect", "--out", str(tmp_path / "trained")],
        "db-empty": [*compile_to(tmp_path / "fw"), "--db", str(empty_db)],
        "trials-zero": ["tune", str(tiny_baseline / "baseline_int8.tflite"), "--board", BOARD,
                        "--trials", "0", "--db", str(tmp_path / "db2")],
        "compress-truncated-int8": ["compress", "--baseline", str(truncated), "--out",
                                    str(tmp_path / "pla"), "--k", "2", "--lam", "1"],
        "pla-with-nan": ["compile", str(tiny_baseline / "baseline_int8.tflite"), "--pla",
                         str(tmp_path / "nan.npz"), "--board", BOARD, "--out",
                         str(tmp_path / "fw")],
        "wfdb-fs-zero": ["data", "summary", "--source", f"wfdb:{fs_zero / '100'}"],
    }[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert expected in _error(capsys, argv)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (foreign / "metadata.json").read_text() == "a user's file\n"
    _no_partial_folders(tmp_path)


def test_a_pla_bundle_of_another_baseline_is_warned_about(caplog, tmp_path, tiny_baseline,
                                                         tiny_pla):
    import dataclasses

    from pla_tvm.deploy import prepare
    from pla_tvm.pla.npz_io import load_pla, save_pla

    # The same int8 model in another folder is the model PLA was fitted to: no warning.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(tiny_baseline / "baseline_int8.tflite", elsewhere)
    with caplog.at_level(logging.WARNING, logger="pla_tvm.deploy"):
        prepare(elsewhere / "baseline_int8.tflite", tiny_pla / "pla.npz")
    assert "was fitted" not in caplog.text
    # A bundle fitted to another int8 model is warned about, with both hashes.
    bundle = load_pla(tiny_pla / "pla.npz")
    other = dataclasses.replace(bundle, baseline=dataclasses.replace(
        bundle.baseline, int8_sha256="ab" * 32, sha256="cd" * 32))
    save_pla(tmp_path / "other.npz", other)
    with caplog.at_level(logging.WARNING, logger="pla_tvm.deploy"):
        prepare(tiny_baseline / "baseline_int8.tflite", tmp_path / "other.npz")
    assert "was fitted to the int8 model with sha256 abababababab" in caplog.text


def test_force_replaces_a_foreign_folder(capsys, tmp_path, tiny_baseline, tiny_pla):
    foreign = tmp_path / "theirs"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine\n")
    assert main([*_compile_args(tiny_baseline, tiny_pla, foreign), "--force"]) == 0
    assert not (foreign / "notes.txt").exists()
    _consistent_firmware(foreign)
    _no_partial_folders(tmp_path)


def test_unlabelled_beats_report_predictions(capsys, int8_pla_firmware, mitdb_record, tmp_path):
    outputs = tmp_path / "outputs.npz"
    report = cli_json(capsys, "run", str(int8_pla_firmware), "--source", f"wfdb:{mitdb_record}",
                      "--beats", "detect", "--limit", "20", "--outputs", str(outputs))
    assert report["n"] == 20 and report["n_scored"] == 0
    assert "accuracy" not in report
    assert sum(report["class_counts"].values()) == 20
    assert report["instructions_per_inference"] > 0
    assert outputs.is_file()


def _start_compile(tiny_baseline: Path, tiny_pla: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, "-m", "pla_tvm.cli", *_compile_args(tiny_baseline, tiny_pla, out)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_partial(parent: Path, name: str, process: subprocess.Popen,
                      inside: str = "") -> None:
    """Poll until the command has started writing (its temporary folder, and ``inside`` it)."""
    deadline = time.monotonic() + 300  # a loaded machine: the tuner builds every task first
    while not any(p.name.startswith(f".{name}.partial-") and (p / inside).exists()
                  for p in parent.iterdir()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the compile never started writing"
        time.sleep(0.02)


@pytest.mark.parametrize("sig, stage", [
    (signal.SIGINT, ""),  # importing the model
    (signal.SIGINT, "src/kernels.c"),  # compiling the firmware with gcc
    (signal.SIGTERM, "src/kernels.c"),
])
def test_interrupted_compile_exits_130_and_keeps_the_old_folder(sig, stage, tmp_path,
                                                                tiny_baseline, tiny_pla,
                                                                int8_pla_firmware):
    out = tmp_path / "fw"
    out.mkdir()
    for item in int8_pla_firmware.iterdir():  # a previous, complete output
        subprocess.run(["cp", "-a", str(item), str(out)], check=True)
    before = {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob("*")}
    process = _start_compile(tiny_baseline, tiny_pla, out)
    _wait_for_partial(tmp_path, "fw", process, stage)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("pla-tvm compile: interrupted"), stderr
    assert "Traceback" not in stderr
    _no_partial_folders(tmp_path)
    assert {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob("*")} == before
    _consistent_firmware(out)


def test_interrupted_tune_exits_130_and_leaves_no_database(tmp_path, tiny_baseline, tiny_pla):
    db = tmp_path / "db"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pla_tvm.cli", "tune", str(tiny_baseline / "baseline_int8.tflite"),
         "--pla", str(tiny_pla / "pla.npz"), "--board", BOARD, "--trials", "64",
         "--strategy", "replay-trace", "--db", str(db)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_partial(tmp_path, "db", process, "candidates")  # measuring has begun
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:  # a failed wait must not leave the tuner running
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("pla-tvm tune: interrupted"), stderr
    assert "Traceback" not in stderr
    assert not db.exists()
    _no_partial_folders(tmp_path)


@pytest.mark.parametrize("command", ["train", "compress"])
def test_interrupted_train_or_compress_leaves_nothing(command, tmp_path, tiny_baseline,
                                                      data_root):
    out = tmp_path / "out"
    argv = {"train": ["train", "--config", "tiny", "--epochs", "50", "--out", str(out)],
            "compress": ["compress", "--baseline", str(tiny_baseline), "--out", str(out)]}[command]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pla_tvm.cli", *argv, "--data-dir", str(data_root / "ecg5000")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_partial(tmp_path, "out", process)
    time.sleep(2.0)  # into the fitting
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith(f"pla-tvm {command}: interrupted"), stderr
    assert "Traceback" not in stderr
    assert not out.exists()
    _no_partial_folders(tmp_path)


def test_json_output_is_only_json(tmp_path, tiny_baseline):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "pla_tvm.cli", "evaluate", str(tiny_baseline / "baseline.keras"),
         "--limit", "20", "--json"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["n"] == 20


def test_concurrent_compiles_into_one_folder(capsys, tmp_path, tiny_baseline, tiny_pla):
    out = tmp_path / "fw"
    first = _start_compile(tiny_baseline, tiny_pla, out)
    _wait_for_partial(tmp_path, "fw", first)
    message = _error(capsys, [*_compile_args(tiny_baseline, tiny_pla, out), "--no-dsp"])
    assert "is being written by another pla-tvm command" in message
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    _consistent_firmware(out)
    _no_partial_folders(tmp_path)
