"""The linear reference model (:mod:`pla_tvm.references`): fits, row shape, determinism."""

from __future__ import annotations

import numpy as np

from pla_tvm.commands.compress import _summary
from pla_tvm.data.beats import ECG5000_CLASSES
from pla_tvm.references import LINEAR, LinearCosts, linear_reference, references


def _blobs(seed: int = 0, n: int = 150, length: int = 20):
    """Three well-separated classes of ``length``-sample 'beats' (class 3 and 4 absent)."""
    y = np.repeat(np.arange(3), n // 3)
    centres = np.random.default_rng(0).normal(size=(3, length)) * 3
    return centres[y] + np.random.default_rng(seed + 1).normal(size=(y.size, length)), y


def test_costs_of_a_linear_map():
    assert LinearCosts.of(140, 5) == LinearCosts(parameters=705, macs=700, flops=1405)


def test_linear_reference_fits_and_scores_every_class():
    x, y = _blobs()
    test_x, test_y = _blobs(seed=1)
    result = linear_reference(x, y, test_x[:90], test_y[:90], ECG5000_CLASSES, cv=3)
    assert result["test"]["accuracy"] > 0.9
    assert result["parameters"] == 20 * 5 + 5 and result["macs"] == 100
    assert result["C"] in [row["C"] for row in result["cv_accuracy"]]
    assert result["cv_folds"] == 3
    # every class is a row of the metrics, also those absent from the data
    assert list(result["test"]["per_class_recall"]) == list(ECG5000_CLASSES)
    assert result["test"]["n"] == 90
    chosen = max(result["cv_accuracy"], key=lambda row: row["mean"])
    assert chosen["C"] == result["C"]


def test_linear_reference_is_deterministic():
    x, y = _blobs()
    first = linear_reference(x, y, x, y, ECG5000_CLASSES, cv=3, random_state=4)
    second = linear_reference(x, y, x, y, ECG5000_CLASSES, cv=3, random_state=4)
    first.pop("seconds"), second.pop("seconds")
    assert first == second


def test_references_on_ecg5000_and_in_the_compress_summary(ecg5000):
    found = references(ecg5000.train, ecg5000.test)
    reference = found[LINEAR]
    assert reference["parameters"] == 705 and reference["macs"] == 700
    assert reference["cv_folds"] == 5  # a rare class with 2 training beats does not cut the folds
    assert 0.85 < reference["test"]["accuracy"] < 1.0
    assert reference["test"]["n"] == len(ecg5000.test)
    metrics = {"chosen": {"k": 2, "k_used": 2, "alpha": 1.0, "cluster_sizes": [1, 2]},
               "test": {"pla_float": reference["test"]},
               "references": found, "tflite_bytes": {"float32": 10, "int8": 5},
               "parameters": {"total": 3}, "flops_per_beat": {"total": 4},
               "size_budget": {"replaced_model_bytes": 50, "replaced_model_from": "file"},
               "baseline": {"int8_quantization_from_baseline": True}, "targets": {}}
    line = next(line for line in _summary(metrics).splitlines() if "reference" in line)
    assert line.startswith(f"  reference {LINEAR} (C=")
    assert f"test accuracy {reference['test']['accuracy']:.4f}" in line
    assert "parameters 705, MACs/beat 700" in line


def test_folds_fall_back_when_no_class_has_enough_beats():
    x, y = _blobs(n=9)  # 3 beats a class
    assert linear_reference(x, y, x, y, ECG5000_CLASSES, cv=5)["cv_folds"] == 3
