"""PLAClassifier: scikit-learn conventions and behaviour against known answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from pla_tvm.pla import PLAClassifier, SmallClusterWarning


@parametrize_with_checks([PLAClassifier(n_clusters=2, alpha=0.1, min_cluster_size=2,
                                        n_init=2, random_state=0),
                          PLAClassifier(n_clusters=2, alpha=0.1, min_cluster_size=2, n_init=2,
                                        random_state=0, class_weight="balanced",
                                        partition="class", target="logits", rank=2),
                          PLAClassifier(n_clusters=2, alpha=0.1, min_cluster_size=2, n_init=2,
                                        random_state=0, target="probabilities"),
                          PLAClassifier(clusterer=KMeans(n_clusters=2, n_init=2),
                                        regressor=Ridge(alpha=0.1), min_cluster_size=2,
                                        random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _piecewise_data(rng, n=600, dim=6, d=3):
    """Two well separated blobs, each with its own exact affine map to the features.

    The maps have opposite signs, so no single affine map fits both blobs.
    """
    centres = np.zeros((2, dim))
    centres[:, 0] = [-6.0, 6.0]
    region = rng.integers(0, 2, n)
    X = centres[region] + rng.normal(size=(n, dim))
    maps = rng.normal(size=(dim, d)) * np.array([1.0, -1.0])[:, None, None]  # no global line
    offsets = rng.normal(size=(2, d))
    features = np.einsum("ni,nio->no", X, maps[region]) + offsets[region]
    return X, region, features, maps, offsets, centres


def test_recovers_piecewise_linear_map():
    rng = np.random.default_rng(0)
    X, region, features, maps, offsets, centres = _piecewise_data(rng)
    head = rng.normal(size=(3, 4))
    y = np.argmax(features @ head, axis=1)
    model = PLAClassifier(n_clusters=2, alpha=1e-6, head_weights=head, random_state=0)
    model.fit(X, y, teacher_features=features)
    order = np.argsort(model.centroids_[:, 0])  # cluster 0 <-> the blob at -4
    np.testing.assert_allclose(model.coef_[order], maps, atol=1e-5)
    np.testing.assert_allclose(model.intercept_[order], offsets, atol=1e-4)
    np.testing.assert_allclose(model.transform(X), features, atol=1e-4)
    assert model.score(X, y) == 1.0


def test_one_cluster_equals_ridge():
    rng = np.random.default_rng(1)
    X, _, features, *_ = _piecewise_data(rng)
    head = rng.normal(size=(3, 4))
    y = np.argmax(features @ head, axis=1)
    model = PLAClassifier(n_clusters=1, alpha=3.0, head_weights=head).fit(
        X, y, teacher_features=features)
    ridge = Ridge(alpha=3.0).fit(X, features)
    np.testing.assert_allclose(model.transform(X), ridge.predict(X), rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(model.predict(X), np.argmax(ridge.predict(X) @ head, axis=1))


def test_grid_search_tunes_k_and_alpha_with_teacher_features():
    rng = np.random.default_rng(2)
    X, _, features, *_ = _piecewise_data(rng, n=300)
    head = rng.normal(size=(3, 4))
    y = np.argmax(features @ head, axis=1)
    search = GridSearchCV(PLAClassifier(head_weights=head, n_init=2, random_state=0),
                          {"n_clusters": [1, 2], "alpha": [1e-3, 1e3]}, cv=3)
    search.fit(X, y, teacher_features=features)
    assert search.best_params_ == {"n_clusters": 2, "alpha": 1e-3}, search.cv_results_
    assert search.cv_results_["mean_test_score"].shape == (4,)


def test_tiny_cluster_lowers_k_with_warning():
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(size=(100, 5)), rng.normal(size=(3, 5)) + 50.0])
    y = (X[:, 0] > 0).astype(int)
    model = PLAClassifier(n_clusters=3, min_cluster_size=10, random_state=0)
    with pytest.warns(SmallClusterWarning, match="below min_cluster_size=10"):
        model.fit(X, y)
    assert model.n_clusters_ < 3
    assert model.cluster_sizes_.min() >= 10 or model.n_clusters_ == 1


def test_duplicate_beats_leave_no_empty_cluster():
    X = np.repeat(np.eye(2, 5), 20, axis=0)  # two distinct beats, asked for four clusters
    y = np.repeat([0, 1], 20)
    with pytest.warns(SmallClusterWarning):
        model = PLAClassifier(n_clusters=4, random_state=0).fit(X, y)
    assert model.n_clusters_ == 2 and model.cluster_sizes_.tolist() == [20, 20]
    assert model.score(X, y) == 1.0


@pytest.mark.parametrize("kwargs, fit_kwargs, match", [
    ({"head_weights": np.ones((3, 2))}, {}, "no teacher_features"),
    ({}, {"teacher_features": np.ones((40, 3))}, "head_weights is None"),
    ({"head_weights": np.ones((4, 2))}, {"teacher_features": np.ones((40, 3))},
     r"head_weights should have shape \(d=3"),
    ({"n_clusters": 0}, {}, "n_clusters=0"),
    ({"n_clusters": 41}, {}, "n_samples=40 should be >= n_clusters=41"),
])
def test_bad_arguments_are_named(kwargs, fit_kwargs, match):
    X = np.random.default_rng(4).normal(size=(40, 5))
    y = np.arange(40) % 2
    with pytest.raises(ValueError, match=match):
        PLAClassifier(**kwargs).fit(X, y, **fit_kwargs)
