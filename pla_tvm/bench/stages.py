"""The model stages of the benchmark: the paper-size baseline and its PLA compression, per seed.

Both cache their run directories under the cache folder, keyed by what determines them (the
baseline's configuration and settings, seed included; the baseline file PLA imitates), so a rerun
after a change elsewhere skips the 10-minute training.

The first seed is evaluated everywhere (TFLite Micro over the whole test split, then firmware,
QEMU and tuning); the extra seeds only for their accuracy: TFLite Micro runs on
:data:`TFLM_CHECK_BEATS` evenly spaced beats, and when its int8 outputs equal the TFLite
reference kernels' there, the reference kernels' metrics over the whole split stand for TFLite
Micro's (:func:`pla_tvm.baseline.pipeline.tflm_by_reference_kernels`), ~5 minutes less a seed.
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
from pla_tvm.files import output_folder, sha256_of, write_json_atomically
from pla_tvm.pla.npz_io import load_pla
from pla_tvm.pla.pipeline import METRICS_FILE as PLA_METRICS_FILE
from pla_tvm.pla.pipeline import NPZ_FILE, compress, resolve_variant
from pla_tvm.pla.selection import DEFAULT_CRITERION, DEFAULT_MAX_INT8_BYTES
from pla_tvm.pla.teacher import load_teacher, teacher_file
from pla_tvm.references import references

LOG = logging.getLogger(__name__)

BASELINE_FILES = (KERAS_FILE, FLOAT_TFLITE_FILE, PRUNED_KERAS_FILE, INT8_TFLITE_FILE)
#: Beats TFLite Micro runs for an extra seed, to check the reference kernels stand for it.
TFLM_CHECK_BEATS = 200


def baseline_dir(cache: Path, seed: int) -> Path:
    """The cached run directory of the paper-size baseline trained with ``seed``."""
    return Path(cache) / f"baseline-paper-seed{seed}"


def pla_dir(cache: Path, seed: int) -> Path:
    """The cached PLA run directory of the baseline of ``seed``."""
    return Path(cache) / f"pla-seed{seed}"


#: The flash budget of the small PLA issue 15 asks for (``--max-int8-bytes 16384``).
SMALL_PLA_BYTES = 16 * 1024


def small_pla_dir(cache: Path, seed: int) -> Path:
    """The cached run directory of the 16 KiB PLA of the baseline of ``seed``."""
    return Path(cache) / f"pla-16k-seed{seed}"


def small_pla_params(n_classes: int) -> dict:
    """The variant the 16 KiB PLA uses: the default (maps distilled onto the teacher's class
    probabilities), factored at rank C.

    A map onto C logits has rank at most C, so rank C loses nothing against the full map
    (``tests/pla/test_variants.py``) while it stores ``k (D + d') C`` weights instead of
    ``k D d``: k = 3 fits 16 KiB (docs/pla.md).
    """
    return {"rank": int(n_classes)}


def pla4_dir(cache: Path, seed: int) -> Path:
    """The cached run directory of the PLA with 4-bit maps of the baseline of ``seed``."""
    return Path(cache) / f"pla-4bit-seed{seed}"


#: The variant of the 4-bit PLA: every default but the maps' width (64 KiB budget as the default).
PLA4_PARAMS = {"weight_bits": 4}


def _variant_stage(run_dir: Path, label: str, baseline_run: Path, dataset, seed: int,
                   fresh: bool, max_int8_bytes: int, estimator_params: dict) -> dict:
    """Compress the baseline with a PLA variant under a budget (k and lambda by
    cross-validation), or reuse a run of the same teacher, criterion, budget and variant."""
    metrics_path = run_dir / PLA_METRICS_FILE
    teacher_sha256 = sha256_of(teacher_file(baseline_run))
    if not fresh and metrics_path.is_file():
        cached = json.loads(metrics_path.read_text())
        selection = cached.get("selection") or {}
        if (cached.get("baseline", {}).get("sha256") == teacher_sha256
                and selection.get("criterion") == DEFAULT_CRITERION
                and selection.get("max_int8_bytes") == max_int8_bytes
                and cached.get("chosen", {}).get("estimator_params")
                == resolve_variant(estimator_params)
                and all((run_dir / name).is_file() for name in cached.get("files", {}))
                and _readable(run_dir / NPZ_FILE)):
            LOG.info("%s: reusing %s", label, run_dir)
            return cached
    LOG.info("%s: selecting k and lambda and compressing into %s (a few minutes)", label,
             run_dir)
    teacher = load_teacher(baseline_run)
    with output_folder(run_dir, option="bench cache", marker=PLA_METRICS_FILE,
                       force=True) as work:
        return compress(teacher, dataset, work, max_int8_bytes=max_int8_bytes,
                        random_state=seed, estimator_params=estimator_params)


def small_pla_stage(cache: Path, dataset, baseline_run: Path, seed: int, fresh: bool) -> dict:
    """Compress the baseline into at most :data:`SMALL_PLA_BYTES` of int8 TFLite (k and lambda
    by cross-validation, the variant of :func:`small_pla_params`), or reuse the same run."""
    n_classes = len(dataset["train"].class_names)
    return _variant_stage(small_pla_dir(cache, seed), "PLA 16 KiB", baseline_run, dataset, seed,
                          fresh, SMALL_PLA_BYTES, small_pla_params(n_classes))


def pla4_stage(cache: Path, dataset, baseline_run: Path, seed: int, fresh: bool) -> dict:
    """Compress the baseline with 4-bit maps (:data:`PLA4_PARAMS`, the default budget), or
    reuse the same run."""
    return _variant_stage(pla4_dir(cache, seed), "PLA 4-bit", baseline_run, dataset, seed,
                          fresh, DEFAULT_MAX_INT8_BYTES, dict(PLA4_PARAMS))


def baseline_stage(cache: Path, dataset, seed: int, fresh: bool, *,
                   tflm_check: int | None = None) -> dict:
    """Train the paper-size baseline, or reuse a cached run with the same settings.

    Parameters
    ----------
    cache : Path
        The benchmark's cache folder.
    dataset : Dataset
        ECG5000.
    seed : int
        Seed of the training (:class:`~pla_tvm.baseline.config.TrainSettings`).
    fresh : bool
        Train even when a cached run matches.
    tflm_check : int or None
        None: TFLite Micro over the whole test split (a cached run whose TFLite Micro figures
        came from the reference kernels is not reused). A number (extra seeds): TFLite Micro on
        that many beats, standing in by the reference kernels when bit-identical there; any
        cached run is reused.
    """
    config, settings, pruning = get_config("paper"), TrainSettings(seed=seed), PruningSettings()
    run_dir = baseline_dir(cache, seed)
    metrics_path = run_dir / METRICS_FILE
    if not fresh and metrics_path.is_file():
        cached = json.loads(metrics_path.read_text())
        full_tflm = "tflm_check" not in cached.get("evaluations", {}).get("int8_tflm", {})
        if (cached.get("config") == json.loads(json.dumps(config.to_dict()))
                and cached.get("settings") == settings.to_dict()
                and all((run_dir / name).is_file() for name in BASELINE_FILES)
                and (full_tflm or tflm_check is not None)):
            LOG.info("baseline: reusing %s (same config and settings)", run_dir)
            return cached
    LOG.info("baseline: training the paper-size ResNet into %s (about %s minutes)", run_dir,
             "10-15" if tflm_check is None else "5-8")
    with output_folder(run_dir, option="bench cache", marker=METRICS_FILE, force=True) as work:
        return run_training(dataset, work, config, settings, pruning, tflm_check=tflm_check)


def _readable(npz: Path) -> bool:
    """Whether this version of pla-tvm can load a cached ``pla.npz`` (its format may be older)."""
    try:
        load_pla(npz)
    except ModelError:
        return False
    return True


def pla_stage(cache: Path, dataset, baseline_run: Path, seed: int, fresh: bool) -> dict:
    """Compress the baseline with PLA, or reuse a run made from the same teacher file
    (:func:`~pla_tvm.pla.teacher.teacher_file`) with the same selection criterion by this version
    of the PLA format.

    A cached run from before the reference models (:mod:`pla_tvm.references`, which depend on
    the data alone) gets them fitted and added to its ``metrics.json``.
    """
    run_dir = pla_dir(cache, seed)
    metrics_path = run_dir / PLA_METRICS_FILE
    baseline_sha256 = sha256_of(teacher_file(baseline_run))
    if not fresh and metrics_path.is_file():
        cached = json.loads(metrics_path.read_text())
        if (cached.get("baseline", {}).get("sha256") == baseline_sha256
                and (cached.get("selection") or {}).get("criterion") == DEFAULT_CRITERION
                and cached.get("chosen", {}).get("estimator_params") == resolve_variant(None)
                and all((run_dir / name).is_file() for name in cached.get("files", {}))
                and _readable(run_dir / NPZ_FILE)):
            LOG.info("PLA: reusing %s (same baseline, variant and format)", run_dir)
            if "references" not in cached:
                cached["references"] = references(dataset["train"], dataset["test"],
                                                  random_state=seed)
                write_json_atomically(metrics_path, cached)
            return cached
    LOG.info("PLA: selecting k and lambda and compressing into %s (about a minute)", run_dir)
    teacher = load_teacher(baseline_run)
    with output_folder(run_dir, option="bench cache", marker=PLA_METRICS_FILE,
                       force=True) as work:
        return compress(teacher, dataset, work, random_state=seed)
