"""Measuring candidates through a TVM RPC tracker and a micro RPC server on loopback."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import tvm
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.builder import BuilderInput
from tvm.s_tir.meta_schedule.runner import RunnerInput

import micro
from micro import contract
from micro.api import _build as build_with_test_hook
from micro.lowering import lower_to_kernel_calls
from micro.measuring import QemuBuilder, QemuRunner, search_target
from micro.rpc_runner import RPCQemuRunner
from micro.rpc_server import start_server
from micro.toolchain import find_toolchain
from micro.tuning import SUMMARY_FILE, tune

from .graphs import int8_dense, requires_toolchain

pytestmark = requires_toolchain
# TVM's tracker is a tornado application; the wheel does not declare the dependency.
Tracker = pytest.importorskip("tvm.rpc.tracker", reason="TVM's RPC tracker needs tornado").Tracker

BOARD = "mps2-an386"
KEY = "micro-test"
LOOPBACK = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def tracker() -> Iterator[tuple[str, int]]:
    """A tracker and one measuring server registered with it, both on ephemeral ports."""
    port = _free_port()
    tracker = Tracker(LOOPBACK, port=port, port_end=port + 1, silent=True)
    server_port = _free_port()
    server = start_server(
        (LOOPBACK, tracker.port),
        KEY,
        host=LOOPBACK,
        port=server_port,
        port_end=server_port + 1,
        silent=True,
    )
    yield LOOPBACK, tracker.port
    server.terminate()
    tracker.terminate()


def _runner_results(runner, artifacts: list[str]) -> list:
    return [f.result() for f in runner.run([RunnerInput(a, "cpu", []) for a in artifacts])]


def test_rpc_counts_equal_local_counts_and_faults_fail_the_candidate(tmp_path, tracker):
    board, toolchain = micro.get_board(BOARD), find_toolchain()
    kernels = lower_to_kernel_calls(int8_dense())
    kernel = tvm.IRModule({"main": kernels["fused_matmul_add_right_shift_tir_clip_cast2"]})
    builder = QemuBuilder(board, tmp_path / "candidates", toolchain, "c")
    (built,) = builder.build([BuilderInput(kernel, search_target(board))])
    assert built.error_msg is None
    faulty = build_with_test_hook(int8_dense(), board, tmp_path / "faulty", test_hook="fault").elf
    artifacts = [built.artifact_path, str(faulty)]

    local = _runner_results(QemuRunner(board, toolchain, 2, 30.0), artifacts)
    remote = _runner_results(RPCQemuRunner(tracker, board, KEY, 2, 30.0, max_workers=2), artifacts)

    assert local[0].error_msg is None and remote[0].error_msg is None
    assert [float(s) for s in remote[0].run_secs] == [float(s) for s in local[0].run_secs]
    assert remote[1].run_secs is None
    assert remote[1].error_msg.startswith("RemoteMeasureError: ")
    assert "FirmwareFaultError" in remote[1].error_msg


def test_an_image_sent_to_the_server_cannot_touch_host_files(tmp_path, tracker):
    """The server on loopback runs what a client sends in the sandbox (tests/micro/
    test_sandbox.py proves the same image escapes without it)."""
    outside = Path(contract.ESCAPE_WRITES[0])
    outside.unlink(missing_ok=True)
    board = micro.get_board(BOARD)
    hostile = build_with_test_hook(int8_dense(), board, tmp_path / "hostile",
                                   test_hook="host_files")
    runner = RPCQemuRunner(tracker, board, KEY, 1, 30.0)
    (result,) = _runner_results(runner, [str(hostile.elf)])
    # it ran: past the hook, the one-byte benchmark input is a truncated record
    assert "truncated input record" in result.error_msg, result.error_msg
    assert not outside.exists()


@pytest.mark.slow
def test_tuning_through_the_tracker(tmp_path, tracker):
    db = tmp_path / "db"
    runner = RPCQemuRunner(tracker, BOARD, KEY, 2, 30.0)
    tune(
        int8_dense(),
        BOARD,
        db,
        max_trials=4,
        trials_per_iteration=1,  # at least one trial for each of the model's kernels
        strategy=ms.search_strategy.ReplayTrace(),
        runner=runner,
        progress=False,
    )
    kernels = json.loads((db / SUMMARY_FILE).read_text())["kernels"].values()
    # Every kernel's default schedule is measured through the tracker first; a kernel whose
    # search space holds nothing else (a trace without decisions) gets no further trial.
    assert all(k["default_instructions"] > 0 and k["failed"] == 0 for k in kernels)
    searched = [k for k in kernels if k["trials"] >= 1]
    assert searched and all(k["best_instructions"] > 0 for k in searched)
