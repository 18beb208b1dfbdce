"""Reference models beside the baseline and PLA: how far a plain linear model on the raw beats gets.

ECG5000 is 58 % normal beats and its classes separate largely by shape, so a multinomial
logistic regression on the 140 raw samples already reaches most of the ResNet's accuracy at a
thousandth of its size. The compress summary and the benchmark report it beside the baseline and
PLA, so that their accuracy is read against what a linear model gets for free.

:func:`linear_reference` fits scikit-learn's ``LogisticRegression`` with ``C`` chosen by
stratified cross-validation on the training split, and scores it on the test split with
:func:`pla_tvm.metrics.classification_metrics`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pla_tvm.metrics import classification_metrics

#: Inverse regularisation strengths the cross-validation chooses from.
C_VALUES: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)
#: Name of the linear reference in ``metrics.json`` ``references`` and in the report.
LINEAR = "logistic_regression"
#: How the report and the summary call it.
LINEAR_LABEL = "linear reference (logistic regression, raw beats)"


@dataclass(frozen=True)
class LinearCosts:
    """Size and arithmetic of a linear classifier on ``length`` samples and ``n_classes``.

    Attributes
    ----------
    parameters : int
        Weights and biases: ``length * n_classes + n_classes``.
    macs : int
        Multiply-accumulates per beat: ``length * n_classes``.
    flops : int
        ``2 * macs + n_classes`` (the bias adds), counted like PLA's
        (:func:`pla_tvm.pla.costs.flops_per_beat`); the argmax is not arithmetic.
    """

    parameters: int
    macs: int
    flops: int

    @classmethod
    def of(cls, length: int, n_classes: int) -> LinearCosts:
        """The costs of a ``length`` -> ``n_classes`` linear map with bias."""
        macs = length * n_classes
        return cls(parameters=macs + n_classes, macs=macs, flops=2 * macs + n_classes)


def linear_reference(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                     test_y: np.ndarray, class_names: Sequence[str], *,
                     c_values: Sequence[float] = C_VALUES, cv: int = 5,
                     random_state: int = 0) -> dict[str, Any]:
    """Fit the linear reference on the training beats and score it on the test beats.

    Parameters
    ----------
    train_x, test_x : np.ndarray
        Beats ``[n, L]`` (as the baseline sees them: z-normalised raw samples).
    train_y, test_y : np.ndarray
        Class indices ``[n]``.
    class_names : sequence of str
        Names of the classes, in index order (every class is scored, see
        :func:`pla_tvm.metrics.classification_metrics`).
    c_values : sequence of float
        Inverse regularisation strengths to choose from.
    cv : int
        Stratified folds of the choice (shuffled with ``random_state``), also when a rare class
        has fewer training beats than folds; fewer only when no class has ``cv`` beats.
    random_state : int
        Seed of the folds (the fit itself, L-BFGS on a convex loss, is deterministic).

    Returns
    -------
    dict
        ``model`` (what was fitted), ``C`` (chosen), ``cv_accuracy`` (mean and standard
        deviation over the folds for every ``C``), ``parameters``, ``macs``, ``flops``, ``test``
        (:func:`~pla_tvm.metrics.classification_metrics` on the test beats) and ``seconds``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    started = time.perf_counter()
    train_x = np.asarray(train_x, np.float64).reshape(len(train_x), -1)
    test_x = np.asarray(test_x, np.float64).reshape(len(test_x), -1)
    train_y = np.asarray(train_y).ravel()
    # Like PLA's selection: ``cv`` folds even when a rare class has fewer beats than folds
    # (ECG5000's training split has 2 'unclassified' beats); fewer only when no class has enough.
    folds = max(2, min(cv, int(np.bincount(train_y).max())))
    search = GridSearchCV(
        LogisticRegression(max_iter=5000),
        {"C": list(c_values)}, scoring="accuracy",
        cv=StratifiedKFold(folds, shuffle=True, random_state=random_state), n_jobs=1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class",
                                category=UserWarning)
        search.fit(train_x, train_y)
    model = search.best_estimator_
    predictions = model.classes_[np.argmax(model.decision_function(test_x), axis=1)]
    costs = LinearCosts.of(train_x.shape[1], len(class_names))
    cv_results = search.cv_results_
    return {
        "model": f"LogisticRegression(C={search.best_params_['C']:g}, lbfgs, multinomial) on the "
                 f"{train_x.shape[1]} raw samples",
        "C": float(search.best_params_["C"]),
        "cv_folds": folds,
        "cv_accuracy": [{"C": float(c), "mean": float(mean), "std": float(std)}
                        for c, mean, std in zip(cv_results["param_C"],
                                                cv_results["mean_test_score"],
                                                cv_results["std_test_score"])],
        "parameters": costs.parameters,
        "macs": costs.macs,
        "flops": costs.flops,
        "test": classification_metrics(test_y, predictions, class_names),
        "seconds": round(time.perf_counter() - started, 2),
    }


def references(train, test, *, random_state: int = 0) -> dict[str, dict[str, Any]]:
    """Every reference model fitted on ``train`` and scored on ``test`` (beat sets with ``x``,
    ``y`` and ``class_names``), by name: today the linear one (:data:`LINEAR`)."""
    return {LINEAR: linear_reference(train.x, train.y, test.x, test.y, test.class_names,
                                     random_state=random_state)}


def summary_line(name: str, reference: dict[str, Any]) -> str:
    """One line for ``pla-tvm compress``'s summary: test accuracy, macro F1, size, MACs."""
    test = reference["test"]
    return (f"  reference {name} (C={reference['C']:g}): test accuracy {test['accuracy']:.4f}  "
            f"macro F1 {test['macro_f1']:.4f}  parameters {reference['parameters']:,}, "
            f"MACs/beat {reference['macs']:,}")
