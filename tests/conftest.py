"""Shared fixtures: where the real data lives (``../shared/data`` or ``$PLA_TVM_DATA``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path:
    """The data root the tests read: ``$PLA_TVM_DATA`` or ``../shared/data`` beside the repo."""
    return Path(os.environ.get("PLA_TVM_DATA") or REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if not (root / "ecg5000").is_dir():
        pytest.fail(f"test data not found at {root}: put the shared data there or set PLA_TVM_DATA")
    return root


@pytest.fixture(scope="session")
def ecg5000(data_root):
    from pla_tvm.data import load_ecg5000

    return load_ecg5000(data_root / "ecg5000")


@pytest.fixture(scope="session")
def mitdb_record(data_root) -> Path:
    return data_root / "mitdb" / "100"


@pytest.fixture(scope="session")
def tiny_baseline(ecg5000, tmp_path_factory) -> Path:
    """Output directory of the pipeline's ``tiny`` baseline (float and int8 TFLite)."""
    from pla_tvm.baseline.config import PruningSettings, TrainSettings, get_config
    from pla_tvm.baseline.pipeline import run_training

    out = tmp_path_factory.mktemp("cli-baseline")
    run_training(ecg5000, out, get_config("tiny"), TrainSettings(epochs=8, patience=8, verbose=0),
                 PruningSettings(target_sparsity=0.5, finetune_epochs=2), tflm_limit=10)
    return out


@pytest.fixture(scope="session")
def tiny_pla(tiny_baseline, ecg5000, tmp_path_factory) -> Path:
    """Output directory of ``compress`` with k=2, lambda=1 (``pla.npz``, ``pla_int8.tflite``)."""
    from pla_tvm.pla.pipeline import compress
    from pla_tvm.pla.teacher import load_teacher

    out = tmp_path_factory.mktemp("cli-pla")
    compress(load_teacher(tiny_baseline), ecg5000, out, k=2, alpha=1.0, cv=2, n_jobs=1,
             progress=False)
    return out
