"""PLA variants of issue 15 against references: Ridge, the full map, sample weights, the ranking."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.utils.class_weight import compute_sample_weight

from pla_tvm.pla import PLAClassifier
from pla_tvm.pla.costs import (
    PLAShape,
    low_rank_parameter_bytes,
    low_rank_parameter_counts,
    parameter_bytes,
)
from pla_tvm.pla.quantize import quantize_pla
from pla_tvm.pla.reference import int8_logits
from pla_tvm.pla.selection import _rank


def _data(seed=0, n=300, dim=8, d=6, n_classes=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim))
    X[:, 0] += rng.integers(0, 2, n) * 8.0  # two regions
    features = np.tanh(X @ rng.normal(size=(dim, d)) * 0.3)
    head = rng.normal(size=(d, n_classes))
    bias = rng.normal(size=n_classes) * 0.1
    y = np.argmax(features @ head + bias, axis=1)
    return X, y, features, head, bias


def test_one_cluster_class_weights_equal_weighted_ridge():
    X, y, features, head, bias = _data()
    model = PLAClassifier(n_clusters=1, alpha=2.0, head_weights=head, head_bias=bias,
                          class_weight="balanced").fit(X, y, teacher_features=features)
    weights = compute_sample_weight("balanced", y)
    ridge = Ridge(alpha=2.0).fit(X, features, sample_weight=weights)
    np.testing.assert_allclose(model.transform(X), ridge.predict(X), atol=1e-10)
    unweighted = PLAClassifier(n_clusters=1, alpha=2.0, head_weights=head, head_bias=bias).fit(
        X, y, teacher_features=features)
    assert not np.allclose(unweighted.coef_, model.coef_)  # the weights do change the fit


def test_class_weight_dict_equals_sample_weight_per_cluster():
    X, y, features, head, bias = _data(1)
    class_weight = {0: 1.0, 1: 3.0, 2: 0.5, 3: 2.0}
    model = PLAClassifier(n_clusters=2, alpha=0.5, head_weights=head, head_bias=bias,
                          class_weight=class_weight, random_state=0).fit(
        X, y, teacher_features=features)
    labels = model.cluster_index(X)
    weights = np.array([class_weight[c] for c in y])
    for c in range(model.n_clusters_):
        ridge = Ridge(alpha=0.5).fit(X[labels == c], features[labels == c],
                                     sample_weight=weights[labels == c])
        np.testing.assert_allclose(model.coef_[c], ridge.coef_.T, atol=1e-10)
        np.testing.assert_allclose(model.intercept_[c], ridge.intercept_, atol=1e-10)


@pytest.mark.parametrize("target", ["features", "logits"])
@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_full_rank_low_rank_equals_full_map(target, class_weight):
    X, y, features, head, bias = _data(2)
    common = dict(n_clusters=2, alpha=1.0, head_weights=head, head_bias=bias, random_state=0,
                  target=target, class_weight=class_weight)
    full = PLAClassifier(**common).fit(X, y, teacher_features=features)
    low = PLAClassifier(rank=features.shape[1], **common).fit(X, y, teacher_features=features)
    # The rank is taken in the regression's target space: d features, or C logits.
    targets = 6 if target == "features" else head.shape[1]
    assert full.coef_left_ is None and low.coef_left_.shape == (2, 8, targets)
    np.testing.assert_allclose(low.coef_, full.coef_, atol=1e-9)
    np.testing.assert_allclose(low.intercept_, full.intercept_, atol=1e-9)
    np.testing.assert_allclose(low.transform(X), full.transform(X), atol=1e-9)


def test_low_rank_map_has_the_rank_and_is_reduced_rank_ridge():
    X, y, features, head, bias = _data(3)
    model = PLAClassifier(n_clusters=1, alpha=1e-8, head_weights=head, head_bias=bias,
                          rank=2).fit(X, y, teacher_features=features)
    assert model.coef_left_.shape == (1, 8, 2) and model.coef_right_.shape == (1, 2, 6)
    np.testing.assert_allclose(model.coef_, model.coef_left_ @ model.coef_right_, atol=1e-12)
    assert np.linalg.matrix_rank(model.coef_[0]) == 2
    np.testing.assert_allclose(model.transform(X),
                               X @ model.coef_[0] + model.intercept_[0], atol=1e-10)
    # Reduced-rank regression (alpha -> 0): OLS fitted values projected on their top-2 PCs.
    ols = Ridge(alpha=1e-8).fit(X, features)
    centred = ols.predict(X) - features.mean(axis=0)
    top = np.linalg.svd(centred, full_matrices=False)[2][:2]
    expected = features.mean(axis=0) + centred @ top.T @ top
    np.testing.assert_allclose(model.transform(X), expected, atol=1e-6)


def test_logits_target_is_ridge_on_teacher_logits():
    X, y, features, head, bias = _data(4)
    model = PLAClassifier(n_clusters=1, alpha=3.0, head_weights=head, head_bias=bias,
                          target="logits").fit(X, y, teacher_features=features)
    ridge = Ridge(alpha=3.0).fit(X, features @ head)
    np.testing.assert_allclose(model.logits(X), ridge.predict(X) + bias, atol=1e-9)
    assert model.coef_.shape == (1, 8, 6)
    assert np.linalg.matrix_rank(model.coef_[0]) <= head.shape[1]
    # The component the head cannot see is the features' mean there (a constant).
    null = np.eye(6) - head @ np.linalg.pinv(head)
    np.testing.assert_allclose(model.transform(X) @ null,
                               np.broadcast_to(features.mean(axis=0) @ null, (len(X), 6)),
                               atol=1e-9)


def test_class_partition_gives_a_rare_class_its_own_centre():
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(size=(200, 6)), rng.normal(size=(20, 6)) + 10.0])
    y = np.r_[np.zeros(200, int), np.ones(20, int)]
    plain = PLAClassifier(n_clusters=1, random_state=0).fit(X, y)
    model = PLAClassifier(n_clusters=1, partition="class", random_state=0).fit(X, y)
    assert plain.n_clusters_ == 1 and model.n_clusters_ == 2 and model.n_extra_clusters_ == 1
    np.testing.assert_allclose(model.centroids_[1], X[200:].mean(axis=0))
    assert model.cluster_sizes_.tolist() == [200, 20]
    # A rare class below min_cluster_size gets no centre.
    small = PLAClassifier(n_clusters=1, partition="class", min_cluster_size=21).fit(X, y)
    assert small.n_clusters_ == 1


def test_sub_estimators_are_cloned_and_tuned_by_grid_search():
    X, y, features, head, bias = _data(6)
    clusterer, regressor = KMeans(n_init=2), Ridge()
    estimator = PLAClassifier(head_weights=head, head_bias=bias, clusterer=clusterer,
                              regressor=regressor, random_state=0)
    fitted = clone(estimator).set_params(clusterer__n_clusters=2).fit(
        X, y, teacher_features=features)
    assert not hasattr(clusterer, "cluster_centers_") and not hasattr(regressor, "coef_")
    assert fitted.n_clusters_ == 2
    search = GridSearchCV(estimator, {"clusterer__n_clusters": [1, 2],
                                      "regressor__alpha": [1e-3, 1e3]}, cv=3)
    search.fit(X, y, teacher_features=features)
    assert search.cv_results_["mean_test_score"].shape == (4,)
    assert search.best_params_["clusterer__n_clusters"] == 2
    # Default sub-estimators reproduce the n_clusters / alpha parameters exactly.
    same = PLAClassifier(n_clusters=2, alpha=0.7, head_weights=head, head_bias=bias,
                         random_state=0).fit(X, y, teacher_features=features)
    explicit = PLAClassifier(head_weights=head, head_bias=bias, random_state=0,
                             clusterer=KMeans(n_clusters=2, n_init=10),
                             regressor=Ridge(alpha=0.7)).fit(X, y, teacher_features=features)
    np.testing.assert_allclose(explicit.coef_, same.coef_)


@pytest.mark.parametrize("params, match", [
    ({"partition": "labels"}, "partition='labels'"),
    ({"target": "labels"}, "target=.labels."),
    ({"target": "probabilities", "temperature": 0.0}, "temperature=0.0"),
    ({"target": "probabilities", "label_weight": 1.5}, "label_weight=1.5"),
    ({"rank": 0}, "rank=0"),
    ({"clusterer": Ridge()}, "should have an integer parameter n_clusters"),
])
def test_bad_variant_parameters_are_named(params, match):
    X, y, *_ = _data(7, n=60)
    with pytest.raises(ValueError, match=match):
        PLAClassifier(**params).fit(X, y)


@pytest.mark.parametrize("params", [{"rank": 3}, {"target": "logits"},
                                    {"target": "probabilities", "temperature": 2.0},
                                    {"partition": "class", "class_weight": "balanced"}])
def test_int8_path_works_for_variants(params):
    X, y, features, head, bias = _data(8, n=400)
    model = PLAClassifier(n_clusters=2, head_weights=head, head_bias=bias, random_state=0,
                          **params).fit(X, y, teacher_features=features)
    quantized = quantize_pla(model, X, teacher_features=features)
    logits = int8_logits(quantized, quantized.input.quantize(X))
    assert np.mean(np.argmax(logits, axis=1) == model.predict(X)) > 0.9


def test_low_rank_costs():
    shape = PLAShape(k=3, D=140, d=128, C=5)
    counts = low_rank_parameter_counts(shape, 8)
    assert counts["cluster_left"] == 3 * 140 * 8 and counts["cluster_right"] == 3 * 8 * 128
    assert low_rank_parameter_bytes(shape, 8)["int8"] < parameter_bytes(shape)["int8"]
    assert low_rank_parameter_counts(shape, 1000)["cluster_left"] == 3 * 140 * 128


def _row(k, accuracy, macro_f1, r2=0.5):
    return {"k": k, "accuracy_mean": accuracy, "macro_f1_mean": macro_f1, "feature_r2_mean": r2}


def test_macro_f1_criterion_ranks_as_stated():
    rows = [_row(1, 0.940, 0.50), _row(2, 0.936, 0.60), _row(3, 0.930, 0.70),
            _row(4, 0.9351, 0.55)]
    _rank(rows, "rank", "macro_f1", 0.005)
    # Best accuracy 0.940: rows within 0.5 point (>= 0.935) ranked by macro F1, then the rest.
    assert [r["rank"] for r in rows] == [3, 1, 4, 2]
    assert [r["eligible"] for r in rows] == [True, True, False, True]
    _rank(rows, "rank", "accuracy")
    assert [r["rank"] for r in rows] == [1, 2, 4, 3]
    with pytest.raises(ValueError, match="criterion='f1'"):
        _rank(rows, "rank", "f1")


def test_compare_variants_rows_and_table():
    from pla_tvm.pla.variants import compare_variants, mean_rows, variants_table

    X, y, features, head, bias = _data(9, n=300)
    names = ["a", "b", "c", "d"]
    rows = compare_variants(X[:200], y[:200], X[200:], y[200:], teacher_features=features[:200],
                            head_weights=head, head_bias=bias, class_names=names,
                            variants={"default": {}, "rank2": {"rank": 2, "n_clusters": 1}},
                            n_clusters=2, select=True,
                            select_params={"k_values": (1, 2), "alphas": (1.0,), "cv": 2,
                                           "n_jobs": 1, "max_int8_bytes": None})
    assert [row["name"] for row in rows] == ["default", "rank2", "logistic(C=1)"]
    assert rows[1]["k"] == 1  # fixed by the variant, not selected
    assert rows[0]["cv"]["folds"] == 2 and rows[0]["int8"]["accuracy"] > 0.5
    assert rows[1]["low_rank_int8_parameter_bytes"] < rows[1]["int8_tflite_bytes"]
    assert rows[2]["int8"] is None and set(rows[2]["float"]["recall"]) == set(names)
    table = variants_table(rows, recall_of=["c"])
    assert table.count("\n") == 4 and "recall c" in table
    twice = mean_rows([rows, rows])  # two baselines (seeds) averaged
    assert twice[1]["k"] == "1,1" and twice[1]["alpha"] == "1,1"
    assert twice[0]["int8"]["accuracy"] == pytest.approx(rows[0]["int8"]["accuracy"])
    assert twice[0]["int8"]["recall"] == pytest.approx(rows[0]["int8"]["recall"])
    assert variants_table(twice).count("\n") == 4


@pytest.mark.parametrize("factored", [True, False])
@pytest.mark.parametrize("params", [{"rank": 4}, {"target": "logits", "rank": 5},
                                    {"target": "probabilities", "rank": 5},
                                    {"rank": 3, "n_clusters": 2}])
def test_variant_exports_run_in_tflite_micro(synthetic_pla, params, factored):
    """Float TFLite (factored when the model has a rank) matches the estimator's factored
    transform; TFLite Micro is bit-exact with the int8 reference, factored or as the full
    product, and the factored int8 file is the exact size costs.int8_tflite_bytes predicts."""
    from pla_tvm.inference import TFLiteRunner
    from pla_tvm.pla.costs import PLAShape, int8_tflite_bytes
    from pla_tvm.pla.tflite_export import float_tflite, int8_tflite
    from relay_passes import QuantizedFactoredClusterGatedLinearParams

    base, x, y, features = synthetic_pla
    model = clone(base).set_params(**params).fit(x, y, teacher_features=features)
    beats = x[:40]
    float_logits = TFLiteRunner(float_tflite(model), "pla.tflite", "tflm").raw_outputs(beats)
    np.testing.assert_allclose(float_logits, model.logits(beats), atol=1e-4)
    quantized = quantize_pla(model, x, teacher_features=features, factored=factored)
    assert isinstance(quantized.operator, QuantizedFactoredClusterGatedLinearParams) == factored
    beats_q = quantized.input.quantize(beats)
    flatbuffer = int8_tflite(quantized)
    np.testing.assert_array_equal(
        TFLiteRunner(flatbuffer, "pla.tflite", "tflm").raw_outputs(beats_q),
        int8_logits(quantized, beats_q))
    shape = PLAShape.of(model, factored=factored)
    assert (shape.r is not None) == factored
    assert len(flatbuffer) == int8_tflite_bytes(shape)
    assert np.mean(np.argmax(int8_logits(quantized, quantized.input.quantize(x)), 1)
                   == model.predict(x)) > 0.9


def test_full_rank_factored_model_equals_full_map_in_float(synthetic_pla):
    """rank >= d: the factored float TFLite model computes the full-rank PLA's logits."""
    from pla_tvm.inference import TFLiteRunner
    from pla_tvm.pla.tflite_export import float_tflite

    base, x, y, features = synthetic_pla
    full = clone(base).fit(x, y, teacher_features=features)
    factored = clone(base).set_params(rank=features.shape[1]).fit(x, y, teacher_features=features)
    assert factored.coef_left_.shape[2] == features.shape[1]
    beats = x[:40]
    np.testing.assert_allclose(factored.transform(beats), full.transform(beats), atol=1e-8)
    np.testing.assert_allclose(
        TFLiteRunner(float_tflite(factored), "pla.tflite", "tflm").raw_outputs(beats),
        full.logits(beats), atol=1e-4)
