"""Distillation: SoftmaxRegression against LogisticRegression, and PLA's "probabilities" target."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from pla_tvm.pla import PLAClassifier
from pla_tvm.pla.softmax_regression import SoftmaxRegression


def _beats(seed=0, n=240, dim=6, n_classes=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim))
    y = np.argmax(X @ rng.normal(size=(dim, n_classes)) + rng.normal(size=(n, n_classes)), 1)
    return rng, X, y


def _centred(logits):
    return logits - logits.mean(axis=1, keepdims=True)


def test_one_hot_targets_equal_logistic_regression():
    _, X, y = _beats()
    ours = SoftmaxRegression(alpha=2.0).fit(X, np.eye(3)[y])
    theirs = LogisticRegression(C=0.5, tol=1e-10, max_iter=10000).fit(X, y)
    np.testing.assert_allclose(_centred(ours.decision_function(X)),
                               _centred(theirs.decision_function(X)), atol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-5)


def test_soft_targets_equal_one_hot_copies_weighted_by_probability():
    """Cross-entropy onto q is the weighted sum of one-hot losses: one copy of each beat per
    class, weighted q_c (times the beat's own weight)."""
    rng, X, _ = _beats(1)
    Q = softmax(rng.normal(size=(len(X), 3)) * 2, axis=1)
    w = rng.uniform(0.5, 2.0, len(X))
    soft = SoftmaxRegression(alpha=0.5).fit(X, Q, sample_weight=w)
    copies = SoftmaxRegression(alpha=0.5).fit(np.repeat(X, 3, axis=0),
                                              np.tile(np.eye(3), (len(X), 1)),
                                              sample_weight=(Q * w[:, None]).ravel())
    np.testing.assert_allclose(soft.coef_, copies.coef_, atol=1e-5)
    np.testing.assert_allclose(soft.intercept_, copies.intercept_, atol=1e-5)


def test_unconverged_fit_warns():
    _, X, y = _beats(4)
    with pytest.warns(ConvergenceWarning, match="did not converge in 1 iterations"):
        SoftmaxRegression(max_iter=1).fit(X, np.eye(3)[y])


@pytest.mark.parametrize("y, weights, match", [
    (np.ones((10, 1)), None, r"n_classes >= 2\), got shape \(10, 1\)"),
    (np.full((10, 2), 0.6), None, "probability distributions"),
    (np.eye(2)[np.arange(10) % 2], -np.ones(10), "non-negative weights"),
])
def test_bad_targets_are_named(y, weights, match):
    with pytest.raises(ValueError, match=match):
        SoftmaxRegression().fit(np.ones((10, 3)), y, sample_weight=weights)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_distilling_a_linear_teacher_recovers_its_logits(temperature):
    """A teacher whose logits are affine in the beat: the softened probabilities are matched
    exactly by one affine map, which scaled by the temperature and shifted to the teacher's class
    mean is the teacher's logits; the head sees them through the pulled-back features."""
    rng, X, y = _beats(2, dim=5)
    features = X @ rng.normal(size=(5, 8)) + rng.normal(size=8)
    head, bias = rng.normal(size=(8, 3)), rng.normal(size=3)
    model = PLAClassifier(n_clusters=1, alpha=1e-9, head_weights=head, head_bias=bias,
                          target="probabilities", temperature=temperature).fit(
        X, y, teacher_features=features)
    np.testing.assert_allclose(model.logits(X), features @ head + bias, atol=1e-3)
    assert model.coef_.shape == (1, 5, 8)


def test_label_weight_one_is_logistic_regression_per_cluster():
    """label_weight=1 ignores the teacher: each cluster's map is a LogisticRegression on its
    beats' labels (C = 1 / alpha), seen through the head."""
    rng, X, y = _beats(3)
    X[:, 0] += np.where(np.arange(len(X)) % 2, 10.0, -10.0)  # two clusters
    features, head = rng.normal(size=(len(X), 7)), rng.normal(size=(7, 3))
    model = PLAClassifier(n_clusters=2, alpha=4.0, head_weights=head, target="probabilities",
                          label_weight=1.0, random_state=0).fit(X, y, teacher_features=features)
    cluster = model.cluster_index(X)
    for c in range(2):
        logistic = LogisticRegression(C=0.25, tol=1e-10, max_iter=10000).fit(
            X[cluster == c], y[cluster == c])
        np.testing.assert_allclose(_centred(model.logits(X[cluster == c])),
                                   _centred(logistic.decision_function(X[cluster == c])),
                                   atol=1e-4)
