"""Choose k and lambda by cross-validation on the training beats, under a flash budget.

Every (k, lambda) pair is scored by stratified k-fold cross-validation: the classifier's accuracy
(what selection ranks by) and how well the imitated features fit the teacher's (R^2 and MSE, when
teacher features are given). The search is a plain loop over (k, lambda, fold) fits rather than
:class:`~sklearn.model_selection.GridSearchCV` because the feature fit needs the held-out fold's
teacher features, which a scorer does not receive, and because each fit's
:class:`~pla_tvm.pla.SmallClusterWarning` (the k actually used) must be recorded per fold.

The size budget: cross-validation on ECG5000 tends to prefer k = 5, whose int8 model (d = 144) is
far over a 64 KB flash budget. Pairs whose int8 ``.tflite`` (size exact, from the shape) exceeds
``max_int8_bytes`` are marked ``within_budget = False`` and not chosen; the full grid, the
unconstrained best and the budgeted best are all kept in the result.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import StratifiedKFold

from pla_tvm.pla.costs import PLAShape, int8_tflite_bytes, parameter_counts
from pla_tvm.pla.estimator import PLAClassifier, SmallClusterWarning

#: The paper's grid.
K_VALUES: tuple[int, ...] = (1, 2, 3, 4, 5)
ALPHAS: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
#: Default flash budget of the int8 model (the paper's target device class).
DEFAULT_MAX_INT8_BYTES = 64 * 1024


@dataclass(frozen=True)
class SelectionResult:
    """The scored grid and the chosen pairs.

    Attributes
    ----------
    grid : list of dict
        One row per (k, alpha): ``k``, ``alpha``, ``accuracy_mean``/``_std``/``_folds``,
        ``feature_r2_mean`` and ``feature_mse_mean`` (None without teacher), ``k_used_folds``
        (k after small-cluster merging, per fold), ``parameters``, ``int8_tflite_bytes``,
        ``within_budget``, ``rank`` (among pairs within budget, 1 = chosen; None outside) and
        ``rank_unconstrained``.
    best : dict or None
        The chosen row (best within budget); None when no pair fits.
    best_unconstrained : dict
        The best row ignoring the budget.
    max_int8_bytes : int or None
        The budget applied.
    cv : int
        Number of folds.
    seconds : float
        Wall time of the search.
    """

    grid: list[dict[str, Any]]
    best: dict[str, Any] | None
    best_unconstrained: dict[str, Any]
    max_int8_bytes: int | None
    cv: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``metrics.json``)."""
        return {"cv_folds": self.cv, "max_int8_bytes": self.max_int8_bytes,
                "seconds": round(self.seconds, 2), "best": self.best,
                "best_unconstrained": self.best_unconstrained, "grid": self.grid}

    def table(self) -> str:
        """The grid as a text table, best first within budget."""
        lines = [f"{'k':>2} {'lambda':>8} {'accuracy':>15} {'feat R2':>8} {'k used':>12} "
                 f"{'int8 KB':>8} {'budget':>6} {'rank':>4} {'rank*':>5}"]
        for row in sorted(self.grid, key=lambda r: r["rank_unconstrained"]):
            r2 = "-" if row["feature_r2_mean"] is None else f"{row['feature_r2_mean']:.4f}"
            used = ",".join(str(k) for k in row["k_used_folds"])
            budget = "ok" if row["within_budget"] else "over"
            lines.append(
                f"{row['k']:>2} {row['alpha']:>8g} {row['accuracy_mean']:>8.4f}"
                f"±{row['accuracy_std']:.4f} {r2:>8} {used:>12} "
                f"{row['int8_tflite_bytes'] / 1024:>8.1f} {budget:>6}"
                f" {row['rank'] or '-':>4} {row['rank_unconstrained']:>5}")
        lines.append("rank: among pairs within the int8 size budget; rank*: unconstrained")
        return "\n".join(lines)


def _score_fold(estimator: PLAClassifier, X: np.ndarray, y: np.ndarray,
                teacher: np.ndarray | None, train: np.ndarray, test: np.ndarray) -> dict:
    """Fit on one fold's training part; score on its held-out part."""
    fit_params = {} if teacher is None else {"teacher_features": teacher[train]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallClusterWarning)  # recorded as k_used instead
        estimator.fit(X[train], y[train], **fit_params)
    scores = {"accuracy": estimator.score(X[test], y[test]), "k_used": estimator.n_clusters_}
    if teacher is not None:
        features = estimator.transform(X[test])
        scores["r2"] = r2_score(teacher[test], features, multioutput="variance_weighted")
        scores["mse"] = mean_squared_error(teacher[test], features)
    return scores


def _rank(rows: list[dict], key: str) -> None:
    """Write 1-based ranks: accuracy, then fewer clusters, then better feature fit."""
    order = sorted(rows, key=lambda r: (-r["accuracy_mean"], r["k"],
                                        -(r["feature_r2_mean"] or 0.0)))
    for rank, row in enumerate(order, start=1):
        row[key] = rank


def select_pla(X: np.ndarray, y: np.ndarray, *, teacher_features: np.ndarray | None = None,
               head_weights: np.ndarray | None = None, head_bias: np.ndarray | None = None,
               k_values: Sequence[int] = K_VALUES, alphas: Sequence[float] = ALPHAS,
               cv: int = 5, max_int8_bytes: int | None = DEFAULT_MAX_INT8_BYTES,
               n_init: int = 10, n_jobs: int = 2, random_state: int = 0,
               progress: bool = True) -> SelectionResult:
    """Cross-validate every (k, lambda) pair and choose the best one within the size budget.

    Parameters
    ----------
    X : np.ndarray
        ``[n, D]`` training beats.
    y : np.ndarray
        ``[n]`` class labels.
    teacher_features, head_weights, head_bias : np.ndarray, optional
        Teacher features ``[n, d]`` and head, as for :meth:`PLAClassifier.fit`.
    k_values, alphas : sequence
        The grid (default: the paper's k = 1..5 and lambda = 0.01..1000).
    cv : int, default=5
        Stratified folds (shuffled with ``random_state``).
    max_int8_bytes : int or None, default=64 KiB
        Largest int8 ``.tflite`` allowed; None for no budget.
    n_init : int, default=10
        k-means restarts per fit.
    n_jobs : int, default=2
        Parallel fits (joblib processes).
    random_state : int, default=0
        Seeds the folds and k-means.
    progress : bool, default=True
        Show a tqdm progress bar.

    Returns
    -------
    SelectionResult
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    teacher = None if teacher_features is None else np.asarray(teacher_features, np.float64)
    base = PLAClassifier(head_weights=head_weights, head_bias=head_bias, n_init=n_init,
                         random_state=random_state)
    folds = list(StratifiedKFold(cv, shuffle=True, random_state=random_state).split(X, y))
    tasks = [(k, alpha, fold) for k in k_values for alpha in alphas for fold in range(cv)]
    start = time.perf_counter()
    jobs = (delayed(_score_fold)(clone(base).set_params(n_clusters=k, alpha=alpha), X, y,
                                 teacher, *folds[fold]) for k, alpha, fold in tasks)
    results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=len(tasks), desc="PLA grid (k, lambda, fold)", unit="fit")
    by_pair: dict[tuple[int, float], list[dict]] = {}
    for (k, alpha, _), scores in zip(tasks, results):
        by_pair.setdefault((k, alpha), []).append(scores)
    seconds = time.perf_counter() - start
    d = head_weights.shape[0] if head_weights is not None else np.unique(y).size
    n_classes = head_weights.shape[1] if head_weights is not None else np.unique(y).size
    rows = [_grid_row(k, alpha, scores, PLAShape(k, X.shape[1], d, n_classes), max_int8_bytes)
            for (k, alpha), scores in by_pair.items()]
    _rank(rows, "rank_unconstrained")
    fitting = [row for row in rows if row["within_budget"]]
    _rank(fitting, "rank")
    best = next((row for row in fitting if row["rank"] == 1), None)
    best_unconstrained = next(row for row in rows if row["rank_unconstrained"] == 1)
    return SelectionResult(rows, best, best_unconstrained, max_int8_bytes, cv, seconds)


def _grid_row(k: int, alpha: float, scores: list[dict], shape: PLAShape,
              max_int8_bytes: int | None) -> dict[str, Any]:
    accuracy = np.array([s["accuracy"] for s in scores])
    size = int8_tflite_bytes(shape)
    has_teacher = "r2" in scores[0]
    return {
        "k": k, "alpha": alpha,
        "accuracy_mean": float(accuracy.mean()), "accuracy_std": float(accuracy.std()),
        "accuracy_folds": [float(a) for a in accuracy],
        "feature_r2_mean": float(np.mean([s["r2"] for s in scores])) if has_teacher else None,
        "feature_mse_mean": float(np.mean([s["mse"] for s in scores])) if has_teacher else None,
        "k_used_folds": [int(s["k_used"]) for s in scores],
        "parameters": parameter_counts(shape)["total"],
        "int8_tflite_bytes": size,
        "within_budget": max_int8_bytes is None or size <= max_int8_bytes,
        "rank": None,
    }
