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


#: PLA variants compressed for every seed besides the default (``metrics.json`` of each).
VARIANT_GROUPS = ("pla_16k", "pla_4bit")


def _chosen(pla: dict[str, Any]) -> dict[str, Any]:
    """PLA's choice and sizes (the deployed file: the INT4 one for 4-bit maps)."""
    int8_bytes = pla["files"]["pla_int8.tflite"]
    return {"k": pla["chosen"]["k"], "alpha": pla["chosen"]["alpha"],
            "int8_tflite_bytes": int8_bytes,
            "deployed_bytes": pla.get("tflite_bytes", {}).get("deployed", int8_bytes),
            "parameters": pla["parameters"]["total"]}


def seed_run(seed: int, baseline: dict[str, Any], pla: dict[str, Any],
             variants: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """What the report keeps of one seed: its scores, PLA's choice and sizes, the references.

    Parameters
    ----------
    seed : int
        The training seed.
    baseline : dict
        The baseline's ``metrics.json`` (:func:`pla_tvm.baseline.pipeline.run_training`).
    pla : dict
        The PLA ``metrics.json`` (:func:`pla_tvm.pla.pipeline.compress`).
    variants : dict, optional
        ``metrics.json`` of PLA variants of the same baseline, by group name
        (:data:`VARIANT_GROUPS`): their scores under that name, their choice under
        ``<name>_chosen``.
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
        "pla_chosen": _chosen(pla),
        "references": {name: _scores(value["test"]) | {"C": value["C"]}
                       for name, value in pla.get("references", {}).items()},
        **{name: {key: _scores(value) for key, value in metrics["test"].items()}
           for name, metrics in (variants or {}).items()},
        **{f"{name}_chosen": _chosen(metrics) for name, metrics in (variants or {}).items()},
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
        ``seeds`` and, for ``baseline``, ``pla``, ``references`` and each variant group of
        :data:`VARIANT_GROUPS` every run has, per evaluation key: per score (:data:`SCORES`)
        and per class recall, :func:`spread`.
    """
    if not runs:
        raise ValueError("no seeds to aggregate")
    groups = ("baseline", "pla", "references",
              *(name for name in VARIANT_GROUPS if all(name in run for run in runs)))
    return {"seeds": [run["seed"] for run in runs],
            **{group: _aggregate_group(runs, group) for group in groups}}


def format_spread(value: dict[str, Any] | None, digits: int = 4) -> str:
    """``mean ± std`` with ``digits`` decimals (``mean`` alone for one seed, ``–`` for none)."""
    if value is None:
        return "–"
    mean = f"{value['mean']:.{digits}f}"
    return mean if value["std"] is None else f"{mean} ± {value['std']:.{digits}f}"
