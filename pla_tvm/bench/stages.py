"""The model stages of the benchmark: the paper-size baseline and its PLA compression.

Both cache their run directories under the cache folder, keyed by what determines them (the
baseline's configuration and settings; the baseline file PLA imitates), so a rerun after a change
elsewhere skips the 10-minute training.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pla_tvm.baseline.config import TrainSettings, get_config
from pla_tvm.baseline.pipeline import (
    FLOAT_TFLITE_FILE,
    INT8_TFLITE_FILE,
    KERAS_FILE,
    METRICS_FILE,
    PRUNED_KERAS_FILE,
    PruningSettings,
    run_training,
)
from pla_tvm.errors import ModelError
from pla_tvm.files import output_folder, sha256_of
from pla_tvm.pla.npz_io import load_pla
from pla_tvm.pla.pipeline import METRICS_FILE as PLA_METRICS_FILE
from pla_tvm.pla.pipeline import NPZ_FILE, compress
from pla_tvm.pla.teacher import load_teacher

LOG = logging.getLogger(__name__)

BASELINE_FILES = (KERAS_FILE, FLOAT_TFLITE_FILE, PRUNED_KERAS_FILE, INT8_TFLITE_FILE)


def baseline_stage(cache: Path, dataset, seed: int, fresh: bool) -> dict:
    """Train the paper-size baseline, or reuse a cached run with the same settings."""
    config, settings, pruning = get_config("paper"), TrainSettings(seed=seed), PruningSettings()
    run_dir = cache / f"baseline-paper-seed{seed}"
    metrics_path = run_dir / METRICS_FILE
    if not fresh and metrics_path.is_file():
        cached = json.loads(metrics_path.read_text())
        if (cached.get("config") == json.loads(json.dumps(config.to_dict()))
                and cached.get("settings") == settings.to_dict()
                and all((run_dir / name).is_file() for name in BASELINE_FILES)):
            LOG.info("baseline: reusing %s (same config and settings)", run_dir)
            return cached
    LOG.info("baseline: training the paper-size ResNet into %s (about 10-15 minutes)", run_dir)
    with output_folder(run_dir, option="bench cache", marker=METRICS_FILE, force=True) as work:
        return run_training(dataset, work, config, settings, pruning)


def _readable(npz: Path) -> bool:
    """Whether this version of pla-tvm can load a cached ``pla.npz`` (its format may be older)."""
    try:
        load_pla(npz)
    except ModelError:
        return False
    return True


def pla_stage(cache: Path, dataset, baseline_dir: Path, seed: int, fresh: bool) -> dict:
    """Compress the baseline with PLA, or reuse a run made from the same baseline file by this
    version of the PLA format."""
    run_dir = cache / f"pla-seed{seed}"
    metrics_path = run_dir / PLA_METRICS_FILE
    baseline_sha256 = sha256_of(baseline_dir / KERAS_FILE)
    if not fresh and metrics_path.is_file():
        cached = json.loads(metrics_path.read_text())
        if (cached.get("baseline", {}).get("sha256") == baseline_sha256
                and all((run_dir / name).is_file() for name in cached.get("files", {}))
                and _readable(run_dir / NPZ_FILE)):
            LOG.info("PLA: reusing %s (same baseline and format)", run_dir)
            return cached
    LOG.info("PLA: selecting k and lambda and compressing into %s (about a minute)", run_dir)
    teacher = load_teacher(baseline_dir)
    with output_folder(run_dir, option="bench cache", marker=PLA_METRICS_FILE,
                       force=True) as work:
        return compress(teacher, dataset, work, random_state=seed)
