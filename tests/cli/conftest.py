"""Fixtures of the CLI tests: a tiny trained baseline and its k=2 PLA bundle, made once.

The baseline is the real pipeline's ``tiny`` ResNet (``pla_tvm.baseline.pipeline.run_training``:
tf_keras training, pruning, float and full-int8 TFLite export) and the PLA bundle comes from
``pla_tvm.pla.pipeline.compress`` with k and lambda fixed, so the CLI tests run the product's own
TF → TFLite → PLA → TVM → firmware → QEMU path, only smaller. Both are session-scoped: every test
module of this directory shares one training run (~30 s on two loaded cores).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pla_tvm.cli import main
from tests.micro.graphs import requires_toolchain

BOARD = "mps2-an386"


#: Compiling and running firmware needs the Arm toolchain and QEMU (``make setup``).
needs_micro_tools = requires_toolchain


@pytest.fixture(scope="session")
def int8_pla_firmware(tiny_baseline, tiny_pla, tmp_path_factory) -> Path:
    """``pla-tvm compile baseline_int8.tflite --pla pla.npz`` for mps2-an386."""
    out = tmp_path_factory.mktemp("fw-int8-pla") / "fw"
    assert main(["compile", str(tiny_baseline / "baseline_int8.tflite"), "--pla",
                 str(tiny_pla / "pla.npz"), "--board", BOARD, "--out", str(out)]) == 0
    return out


def cli_json(capsys, *argv: str) -> dict:
    """Run ``pla-tvm ARGV --json`` in-process and return its JSON output."""
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def cli_error(capsys, *argv: str) -> str:
    """Run a ``pla-tvm`` command that must fail as a user error; return its one-line message."""
    capsys.readouterr()
    assert main(list(argv)) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and "Traceback" not in message, message
    return message
