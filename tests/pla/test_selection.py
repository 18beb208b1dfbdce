"""Cross-validated choice of k and lambda, with and without the size budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pla_tvm.pla.costs import PLAShape, int8_tflite_bytes
from pla_tvm.pla.selection import select_pla


def _data(rng, n=240, dim=8, d=3):
    """Two blobs with opposite linear maps: only k >= 2 classifies well."""
    region = rng.integers(0, 2, n)
    x = rng.normal(size=(n, dim))
    x[:, 0] += np.where(region == 1, 6.0, -6.0)
    sign = np.where(region == 1, 1.0, -1.0)[:, None]
    features = (x[:, 1:] @ rng.normal(size=(dim - 1, d))) * sign
    head = rng.normal(size=(d, 4))
    return x, np.argmax(features @ head, axis=1), features, head


def test_selects_two_clusters_and_applies_budget():
    x, y, features, head = _data(np.random.default_rng(0))
    common = dict(teacher_features=features, head_weights=head, k_values=(1, 2, 3),
                  alphas=(0.01, 100.0), cv=3, n_init=2, n_jobs=1, progress=False)
    result = select_pla(x, y, max_int8_bytes=None, **common)
    assert len(result.grid) == 6 and result.best is result.best_unconstrained
    assert result.best["k"] == 2 and result.best["alpha"] == 0.01
    assert result.best["accuracy_mean"] > 0.95 and result.best["feature_r2_mean"] > 0.99
    assert {row["k"]: row["accuracy_mean"] for row in result.grid if row["alpha"] == 0.01}[1] < 0.9

    budget = int8_tflite_bytes(PLAShape(1, 8, 3, 4))  # room for k = 1 only
    limited = select_pla(x, y, max_int8_bytes=budget, **common)
    assert limited.best["k"] == 1
    assert limited.best_unconstrained["k"] == 2  # the unconstrained choice is kept
    assert {row["k"] for row in limited.grid if not row["within_budget"]} == {2, 3}
    assert all(row["rank"] is None for row in limited.grid if not row["within_budget"])
    json.dumps(limited.to_dict())
    assert "over" in limited.table()


def test_without_teacher_scores_accuracy_only():
    x, y, *_ = _data(np.random.default_rng(1), n=120)
    result = select_pla(x, y, k_values=(1, 2), alphas=(1.0,), cv=2, n_init=1, n_jobs=2,
                        progress=False)
    assert all(row["feature_r2_mean"] is None for row in result.grid)
    assert result.best["k"] == 2


def test_variants_repeats_and_criterion_are_recorded():
    x, y, features, head = _data(np.random.default_rng(2), n=120)
    result = select_pla(x, y, teacher_features=features, head_weights=head, k_values=(1, 2),
                        alphas=(0.01,), cv=2, n_repeats=2, n_init=1, n_jobs=1, progress=False,
                        max_int8_bytes=None, estimator_params={"rank": 2,
                                                               "class_weight": "balanced"},
                        criterion="accuracy")
    assert all(len(row["macro_f1_folds"]) == 4 for row in result.grid)
    assert all(row["low_rank_int8_parameter_bytes"] < row["int8_tflite_bytes"]
               for row in result.grid)
    summary = result.to_dict()
    assert summary["criterion"] == "accuracy" and summary["estimator_params"]["rank"] == 2
    json.dumps(summary)
    best = max(result.grid, key=lambda r: (r["accuracy_mean"], -r["k"]))
    assert result.best is best


@pytest.mark.parametrize("kwargs, match", [
    ({"criterion": "f1"}, "criterion='f1'"),
    ({"estimator_params": {"alpha": 1.0}}, r"should not set \['alpha'\]"),
    ({"n_repeats": 0}, "n_repeats=0"),
])
def test_bad_selection_arguments_are_named(kwargs, match):
    x, y, *_ = _data(np.random.default_rng(3), n=60)
    with pytest.raises(ValueError, match=match):
        select_pla(x, y, k_values=(1,), alphas=(1.0,), cv=2, progress=False, **kwargs)


@pytest.mark.parametrize("target", ["features", "logits"])
def test_low_rank_budget_is_the_factored_int8_file(target):
    from pla_tvm.pla import PLAClassifier
    from pla_tvm.pla.quantize import quantize_pla
    from pla_tvm.pla.tflite_export import int8_tflite

    x, y, features, head = _data(np.random.default_rng(3), n=160)
    full = select_pla(x, y, teacher_features=features, head_weights=head, k_values=(2,),
                      alphas=(1.0,), cv=2, n_init=1, n_jobs=1, progress=False,
                      max_int8_bytes=None, estimator_params={"target": target})
    low = select_pla(x, y, teacher_features=features, head_weights=head, k_values=(2,),
                     alphas=(1.0,), cv=2, n_init=1, n_jobs=1, progress=False,
                     max_int8_bytes=None, estimator_params={"target": target, "rank": 3})
    row = low.grid[0]
    assert full.grid[0]["int8_tflite_bytes"] == int8_tflite_bytes(PLAShape(2, 8, 3, 4))
    assert row["int8_tflite_bytes"] == int8_tflite_bytes(PLAShape(2, 8, 3, 4, 3))
    assert row["int8_tflite_bytes"] != full.grid[0]["int8_tflite_bytes"]
    model = PLAClassifier(n_clusters=2, head_weights=head, random_state=0, target=target,
                          rank=3).fit(x, y, teacher_features=features)
    assert model.n_clusters_ == 2
    exported = int8_tflite(quantize_pla(model, x, teacher_features=features))
    assert row["int8_tflite_bytes"] == len(exported)
