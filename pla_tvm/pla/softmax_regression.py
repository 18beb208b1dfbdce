"""Softmax regression onto target probabilities: PLA's per-cluster map for distillation.

:class:`SoftmaxRegression` fits an affine map ``logits = x @ coef_.T + intercept_`` by minimising
the cross-entropy between ``softmax(logits)`` and given target distributions (a teacher's softened
outputs, mixed with one-hot labels), plus an L2 penalty on ``coef_``. With one-hot targets it is
multinomial logistic regression (as :class:`~sklearn.linear_model.LogisticRegression` with
``C = 1 / alpha``, which cannot take soft targets). It has the interface PLA's ``regressor``
needs: ``fit(X, targets, sample_weight)``, ``coef_`` ``[C, D]`` and ``intercept_`` ``[C]``.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data


class SoftmaxRegression(RegressorMixin, BaseEstimator):
    """Multinomial logistic regression onto soft targets (L-BFGS, L2 penalty).

    Minimises ``sum_i w_i CE(q_i, softmax(x_i W + b)) + alpha / 2 ||W||^2`` over ``W [D, C]`` and
    ``b [C]``; ``b`` is not penalised. The loss is a sum over beats (as scikit-learn's
    ``LogisticRegression``), so ``alpha`` weighs the same against more beats less. Logits are
    defined up to a constant per beat; the fit returns the one whose classes average zero.

    Parameters
    ----------
    alpha : float, default=1.0
        L2 penalty of the weights (``1 / C`` of ``LogisticRegression``).
    max_iter : int, default=1000
        L-BFGS iterations.
    tol : float, default=1e-6
        L-BFGS gradient tolerance (``gtol``), relative to the number of beats.

    Attributes
    ----------
    coef_ : np.ndarray of shape (n_classes, n_features)
    intercept_ : np.ndarray of shape (n_classes,)
    n_iter_ : int
        Iterations used (a :class:`~sklearn.exceptions.ConvergenceWarning` says when L-BFGS
        stopped short of convergence).
    n_features_in_ : int
    """

    def __init__(self, alpha: float = 1.0, *, max_iter: int = 1000, tol: float = 1e-6):
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y, sample_weight=None) -> SoftmaxRegression:
        """Fit the map.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples, n_classes)
            Target distributions: non-negative rows that sum to 1.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        SoftmaxRegression

        Raises
        ------
        ValueError
            If ``alpha`` is negative or the targets are not distributions over >= 2 classes.
        """
        X, Q = validate_data(self, X, y, dtype=np.float64, multi_output=True)
        if not np.isscalar(self.alpha) or not self.alpha >= 0:
            raise ValueError(f"alpha={self.alpha!r} should be a number >= 0.")
        if Q.ndim != 2 or Q.shape[1] < 2:
            raise ValueError(f"y should be target distributions of shape (n_samples, "
                             f"n_classes >= 2), got shape {Q.shape}.")
        if Q.min() < 0 or not np.allclose(Q.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError("y should hold probability distributions: rows >= 0 that sum to 1.")
        n, length = X.shape
        classes = Q.shape[1]
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
        if w.shape != (n,) or w.min() < 0:
            raise ValueError(f"sample_weight should be {n} non-negative weights, got shape "
                             f"{w.shape}.")
        mean = np.average(X, axis=0, weights=w)  # centring decouples b from W (faster L-BFGS)
        centred = X - mean
        weighted_q = w[:, None] * Q

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            W = theta[:length * classes].reshape(length, classes)
            logits = centred @ W + theta[length * classes:]
            value = -np.sum(weighted_q * log_softmax(logits, axis=1)) + 0.5 * self.alpha * np.sum(
                W * W)
            residual = w[:, None] * softmax(logits, axis=1) - weighted_q
            grad = np.concatenate([(centred.T @ residual + self.alpha * W).ravel(),
                                   residual.sum(axis=0)])
            return value, grad

        result = minimize(loss, np.zeros(length * classes + classes), jac=True,
                          method="L-BFGS-B",
                          options={"maxiter": self.max_iter, "gtol": self.tol * max(n, 1),
                                   "ftol": 1e-12})
        if not result.success:
            warnings.warn(f"SoftmaxRegression did not converge in {result.nit} iterations "
                          f"(max_iter={self.max_iter}): {result.message}", ConvergenceWarning,
                          stacklevel=2)
        W = result.x[:length * classes].reshape(length, classes)
        W -= W.mean(axis=1, keepdims=True)
        b = result.x[length * classes:] - mean @ W
        self.coef_, self.intercept_ = W.T.copy(), b - b.mean()
        self.n_iter_ = int(result.nit)
        return self

    def decision_function(self, X) -> np.ndarray:
        """Logits ``[n, C]``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_.T + self.intercept_

    def predict(self, X) -> np.ndarray:
        """Logits ``[n, C]`` (the regression's output; PLA applies its head to them)."""
        return self.decision_function(X)

    def predict_proba(self, X) -> np.ndarray:
        """``softmax`` of the logits."""
        return softmax(self.decision_function(X), axis=1)
