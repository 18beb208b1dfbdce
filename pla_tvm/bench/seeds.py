"""Several training seeds: what each seed's baseline and PLA scored, and their mean ± std.

The benchmark trains the paper-size baseline once per seed and compresses each with PLA
(:mod:`pla_tvm.bench.stages`); the report gives every accuracy and F1 figure as the mean and the
sample standard deviation over the seeds (``ddof=1``; none for a single seed), and its headline
comparisons use the means. Firmware, QEMU and tuning run on the first seed's models only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

#: Default number of seeds (``python -m pla_tvm.bench --seeds N``, or this variable).
SEEDS_ENV = "PLA_TVM_BENCH_SEEDS"
DEFAULT_SEEDS = 3
#: The figures averaged over seeds.
SCORES = ("accuracy", "sensitivity", "precision", "f1", "macro_f1")


def default_seeds() -> int:
    """The number of seeds: ``$PLA_TVM_BENCH_SEEDS`` when set, else :data:`DEFAULT_SEEDS`."""
    value = os.environ.get(SEEDS_ENV, "").strip()
    if not value:
        return DEFAULT_SEEDS
    try:
        seeds = int(value)
    except ValueError:
        raise ValueError(f"{SEEDS_ENV}={value!r} is not a number of seeds") from None
    if seeds < 1:
        raise ValueError(f"{SEEDS_ENV}={value!r}: at least one seed is needed")
    return seeds


def _scores(metrics: dict[str, Any]) -> dict[str, Any]:
    """The averaged figures of one evaluation (and its per-class recall)."""
    return {**{key: metrics[key] for key in SCORES}, "n": metrics["n"],
            "per_class_recall": dict(metrics["per_class_recall"])}


def seed_run(seed: int, baseline: dict[str, Any], pla: dict[str, Any]) -> dict[str, Any]:
    """What the report keeps of one seed: its scores, PLA's choice and sizes, the references.

    Parameters
    ----------
    seed : int
        The training seed.
    baseline : dict
        The baseline's ``metrics.json`` (:func:`pla_tvm.baseline.pipeline.run_training`).
    pla : dict
        The PLA ``metrics.json`` (:func:`pla_tvm.pla.pipeline.compress`).
    """
    evaluations = baseline["evaluations"]
    tflm = evaluations.get("int8_tflm", {})
    return {
        "seed": seed,
        "baseline": {key: _scores(value) for key, value in evaluations.items()},
        "tflm_by_reference_kernels": "tflm_check" in tflm,
        # what TFLite Micro cost: the whole split, or the check of the reference kernels
        "tflm_seconds": tflm.get("tflm_check", {}).get("seconds", tflm.get("seconds")),
        "training": {key: baseline["training"].get(key)
                     for key in ("epochs_run", "best_epoch", "seconds")},
        "baseline_seconds": baseline.get("total_seconds"),
        "pla": {key: _scores(value) for key, value in pla["test"].items()},
        "pla_chosen": {"k": pla["chosen"]["k"], "alpha": pla["chosen"]["alpha"],
                       "int8_tflite_bytes": pla["files"]["pla_int8.tflite"],
                       "parameters": pla["parameters"]["total"]},
        "references": {name: _scores(value["test"]) | {"C": value["C"]}
                       for name, value in pla.get("references", {}).items()},
    }


def spread(values: Iterable[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (None for one value) and the values themselves."""
    values = [float(value) for value in values]
    if not values:
        raise ValueError("no values to average")
    return {"mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "values": values}


def _aggregate_group(runs: Sequence[dict[str, Any]], group: str) -> dict[str, Any]:
    keys = [key for key in runs[0][group] if all(key in run[group] for run in runs)]
    result = {}
    for key in keys:
        rows = [run[group][key] for run in runs]
        result[key] = {score: spread(row[score] for row in rows) for score in SCORES}
        result[key]["per_class_recall"] = {
            name: spread(row["per_class_recall"][name] for row in rows)
            for name in rows[0]["per_class_recall"]}
    return result


def aggregate(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over seeds of every evaluation present in all runs.

    Parameters
    ----------
    runs : sequence of dict
        :func:`seed_run` of each seed.

    Returns
    -------
    dict
        ``seeds`` and, for ``baseline``, ``pla`` and ``references``, per evaluation key: per
        score (:data:`SCORES`) and per class recall, :func:`spread`.
    """
    if not runs:
        raise ValueError("no seeds to aggregate")
    return {"seeds": [run["seed"] for run in runs],
            **{group: _aggregate_group(runs, group)
               for group in ("baseline", "pla", "references")}}


def format_spread(value: dict[str, Any] | None, digits: int = 4) -> str:
    """``mean ± std`` with ``digits`` decimals (``mean`` alone for one seed, ``–`` for none)."""
    if value is None:
        return "–"
    mean = f"{value['mean']:.{digits}f}"
    return mean if value["std"] is None else f"{mean} ± {value['std']:.{digits}f}"
