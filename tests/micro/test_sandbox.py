"""A firmware that reads and writes host files reaches nothing outside its run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tvm_ffi

import micro
from micro import contract
from micro.api import _build as build_with_test_hook
from micro.qemu import run_firmware
from micro.rpc_server import MEASURE_FUNCTION, register_measure_function

from .graphs import random_inputs, requires_toolchain

pytestmark = requires_toolchain
BOARD = "mps2-an386"
OUTSIDE = Path(contract.ESCAPE_WRITES[0])


@pytest.fixture(scope="module")
def hostile(float_model, tmp_path_factory) -> micro.Firmware:
    """A firmware whose harness tries to read /etc/passwd and create files outside its folder."""
    out = tmp_path_factory.mktemp("hostile")
    return build_with_test_hook(float_model, BOARD, out, test_hook="host_files")


@pytest.fixture(autouse=True)
def _no_probe_left():
    OUTSIDE.unlink(missing_ok=True)
    yield
    OUTSIDE.unlink(missing_ok=True)


def _escape(hostile: micro.Firmware, work: Path, sandbox: bool) -> tuple[int, int, int]:
    work.mkdir()
    (work / contract.INPUT_FILE).write_bytes(b"")
    report = run_firmware(
        hostile.toolchain, hostile.board, hostile.elf, work, 30.0, sandbox=sandbox
    )
    read, write, up = contract.ESCAPE_RE.search(report.stdout).groups()
    return int(read), int(write), int(up)


def test_the_hook_escapes_without_the_sandbox(hostile, tmp_path):
    """The hostile image is real: unconfined, it reads the host file and writes both files."""
    assert Path(contract.ESCAPE_READ).is_file()
    assert _escape(hostile, tmp_path / "run", sandbox=False) == (1, 1, 1)
    assert OUTSIDE.read_text() == "escaped\n"
    assert (tmp_path / "micro_escape_probe.txt").is_file()


def test_the_sandbox_confines_a_local_run(hostile, tmp_path):
    assert _escape(hostile, tmp_path / "run", sandbox=True) == (0, 0, 0)
    assert not OUTSIDE.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_micro_run_is_sandboxed_by_default(hostile, float_model):
    result = micro.run(hostile, random_inputs(float_model, 2))
    assert result.outputs.shape[0] == 2
    assert not OUTSIDE.exists()
    assert not (hostile.out_dir / "micro_escape_probe.txt").exists()


def test_the_rpc_measuring_function_is_sandboxed(hostile):
    """What a client sends to the RPC server runs confined (the function the server serves)."""
    register_measure_function()
    measure = tvm_ffi.get_global_func(MEASURE_FUNCTION)
    answer = json.loads(measure(bytearray(hostile.elf.read_bytes()), BOARD, 0, 30.0))
    assert "counts" in answer, answer
    assert not OUTSIDE.exists()


def test_a_missing_sandbox_refuses_to_run(hostile, float_model, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # the firmware keeps its tools' absolute paths
    with pytest.raises(micro.SandboxUnavailableError, match="bwrap.*--no-sandbox"):
        micro.run(hostile, random_inputs(float_model, 1))
    assert not OUTSIDE.exists()
