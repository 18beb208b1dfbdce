"""Choose k and lambda by cross-validation on the training beats, under a flash budget.

Every (k, lambda) pair is scored by stratified k-fold cross-validation: the classifier's accuracy
and macro F1 (what selection ranks by, see :data:`CRITERIA`) and how well the imitated features
fit the teacher's (R^2 and MSE, when teacher features are given). The search is a plain loop
over (k, lambda, fold) fits rather than :class:`~sklearn.model_selection.GridSearchCV` because
the feature fit needs the held-out fold's teacher features, which a scorer does not receive, and
because each fit's :class:`~pla_tvm.pla.SmallClusterWarning` (the k actually used) must be
recorded per fold.

The size budget: cross-validation on ECG5000 tends to prefer k = 5, whose int8 model (d = 144) is
far over a 64 KB flash budget. Pairs whose int8 ``.tflite`` (size exact, from the shape) exceeds
``max_int8_bytes`` are marked ``within_budget = False`` and not chosen; the full grid, the
unconstrained best and the budgeted best are all kept in the result.

The criterion (``criterion``): ``"macro_f1"`` (default) ranks by cross-validated macro F1 among
the pairs whose accuracy is within ``accuracy_tolerance`` (0.5 point) of the best accuracy in the
ranked set, then the others by accuracy; ``"accuracy"`` ranks by accuracy alone (the paper's
rule). ECG5000 is 58 % normal beats: accuracy alone prefers models that give up the rare classes.
Ties go to fewer clusters, then better feature fit. Variants of the estimator (``class_weight``,
``rank``, ...) are passed as ``estimator_params``; the budget applies to the int8 model as deployed:
with ``rank`` that is the factored model (two int8 layers per cluster, ``k (D + d) r`` weights
instead of ``k D d``; :func:`~pla_tvm.pla.costs.int8_tflite_bytes` of the shape with its
effective rank ``min(rank, d)``, or ``min(rank, C)`` with ``target="logits"`` or
``"probabilities"``).
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
from sklearn.metrics import f1_score, mean_squared_error, r2_score
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold

from pla_tvm.pla.costs import (
    PLAShape,
    int8_tflite_bytes,
    low_rank_parameter_bytes,
    parameter_counts,
)
from pla_tvm.pla.estimator import PLAClassifier, SmallClusterWarning

#: The paper's grid.
K_VALUES: tuple[int, ...] = (1, 2, 3, 4, 5)
ALPHAS: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
#: The lambda of the distilled maps (``target="probabilities"``) unless given: scikit-learn's
#: ``LogisticRegression`` default penalty (``C = 1``); not cross-validated (docs/pla.md,
#: "Distillation": on 500 training beats the cross-validated macro F1 cannot rank lambdas).
DISTILLATION_ALPHAS: tuple[float, ...] = (1.0,)
#: Repetitions of the cross-validation split that ``compress`` uses.
DEFAULT_CV_REPEATS = 3
#: Default flash budget of the int8 model (the paper's target device class).
DEFAULT_MAX_INT8_BYTES = 64 * 1024
#: Ranking criteria of :func:`select_pla`.
CRITERIA: tuple[str, ...] = ("macro_f1", "accuracy")
#: What ``select_pla`` (and so ``compress``) ranks by unless told otherwise.
DEFAULT_CRITERION = "macro_f1"
#: Default accuracy tolerance of the macro-F1 criterion (0.5 point).
ACCURACY_TOLERANCE = 0.005


@dataclass(frozen=True)
class SelectionResult:
    """The scored grid and the chosen pairs.

    Attributes
    ----------
    grid : list of dict
        One row per (k, alpha): ``k``, ``alpha``, ``accuracy_mean``/``_std``/``_folds``,
        ``macro_f1_mean``/``_std``/``_folds``, ``eligible`` (accuracy within the tolerance of the
        macro-F1 criterion, among the pairs within budget), ``low_rank_int8_parameter_bytes``
        (None without ``rank``),
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
    criterion : str
        The ranking criterion (:data:`CRITERIA`).
    accuracy_tolerance : float
        Accuracy tolerance of the macro-F1 criterion.
    estimator_params : dict
        Parameters of every fitted :class:`PLAClassifier` besides k and lambda.
    n_repeats : int
        Repetitions of the ``cv``-fold split.
    """

    grid: list[dict[str, Any]]
    best: dict[str, Any] | None
    best_unconstrained: dict[str, Any]
    max_int8_bytes: int | None
    cv: int
    seconds: float
    criterion: str = DEFAULT_CRITERION
    accuracy_tolerance: float = ACCURACY_TOLERANCE
    estimator_params: dict[str, Any] | None = None
    n_repeats: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``metrics.json``)."""
        return {"cv_folds": self.cv, "cv_repeats": self.n_repeats,
                "max_int8_bytes": self.max_int8_bytes,
                "criterion": self.criterion, "accuracy_tolerance": self.accuracy_tolerance,
                "estimator_params": {key: repr(value) if not isinstance(
                    value, (str, int, float, bool, type(None))) else value
                    for key, value in (self.estimator_params or {}).items()},
                "seconds": round(self.seconds, 2), "best": self.best,
                "best_unconstrained": self.best_unconstrained, "grid": self.grid}

    def table(self) -> str:
        """The grid as a text table, best first within budget."""
        lines = [f"{'k':>2} {'lambda':>8} {'accuracy':>15} {'macro F1':>15} {'feat R2':>8} "
                 f"{'k used':>12} {'int8 KB':>8} {'budget':>6} {'rank':>4} {'rank*':>5}"]
        for row in sorted(self.grid, key=lambda r: r["rank_unconstrained"]):
            r2 = "-" if row["feature_r2_mean"] is None else f"{row['feature_r2_mean']:.4f}"
            used = ",".join(str(k) for k in row["k_used_folds"])
            budget = "ok" if row["within_budget"] else "over"
            lines.append(
                f"{row['k']:>2} {row['alpha']:>8g} {row['accuracy_mean']:>8.4f}"
                f"±{row['accuracy_std']:.4f} {row['macro_f1_mean']:>8.4f}"
                f"±{row['macro_f1_std']:.4f} {r2:>8} {used:>12} "
                f"{row['int8_tflite_bytes'] / 1024:>8.1f} {budget:>6}"
                f" {row['rank'] or '-':>4} {row['rank_unconstrained']:>5}")
        lines.append(f"rank: among pairs within the int8 size budget; rank*: unconstrained; "
                     f"criterion: {self.criterion}"
                     + (f" (accuracy within {100 * self.accuracy_tolerance:g} point of the best)"
                        if self.criterion == "macro_f1" else ""))
        return "\n".join(lines)


def _score_fold(estimator: PLAClassifier, X: np.ndarray, y: np.ndarray,
                teacher: np.ndarray | None, train: np.ndarray, test: np.ndarray) -> dict:
    """Fit on one fold's training part; score on its held-out part."""
    fit_params = {} if teacher is None else {"teacher_features": teacher[train]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallClusterWarning)  # recorded as k_used instead
        estimator.fit(X[train], y[train], **fit_params)
    predicted = estimator.predict(X[test])
    scores = {"accuracy": float(np.mean(predicted == y[test])),
              "macro_f1": float(f1_score(y[test], predicted, average="macro", zero_division=0)),
              "k_used": estimator.n_clusters_}
    if teacher is not None:
        features = estimator.transform(X[test])
        scores["r2"] = r2_score(teacher[test], features, multioutput="variance_weighted")
        scores["mse"] = mean_squared_error(teacher[test], features)
    return scores


def _rank(rows: list[dict], key: str, criterion: str = "accuracy",
          accuracy_tolerance: float = ACCURACY_TOLERANCE) -> None:
    """Write 1-based ranks into ``row[key]``.

    ``"accuracy"``: accuracy, then fewer clusters, then better feature fit. ``"macro_f1"``: the
    rows whose accuracy is within ``accuracy_tolerance`` of the best accuracy among ``rows``
    first, by macro F1 (then fewer clusters, better feature fit); then the others by accuracy.
    With ``key == "rank"`` the eligibility is written to ``row["eligible"]``.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r} should be one of {CRITERIA}.")
    if not rows:
        return
    best_accuracy = max(r["accuracy_mean"] for r in rows)

    def eligible(row: dict) -> bool:
        return criterion == "macro_f1" and row["accuracy_mean"] >= best_accuracy - (
            accuracy_tolerance + 1e-12)

    def order(row: dict) -> tuple:
        tie = (row["k"], -(row["feature_r2_mean"] or 0.0))
        if eligible(row):
            return (0, -row["macro_f1_mean"], *tie)
        return (1, -row["accuracy_mean"], *tie)

    for rank, row in enumerate(sorted(rows, key=order), start=1):
        row[key] = rank
        if key == "rank":
            row["eligible"] = eligible(row)


def select_pla(X: np.ndarray, y: np.ndarray, *, teacher_features: np.ndarray | None = None,
               head_weights: np.ndarray | None = None, head_bias: np.ndarray | None = None,
               k_values: Sequence[int] = K_VALUES, alphas: Sequence[float] = ALPHAS,
               cv: int = 5, max_int8_bytes: int | None = DEFAULT_MAX_INT8_BYTES,
               n_init: int = 10, n_jobs: int = 2, random_state: int = 0,
               progress: bool = True, criterion: str = DEFAULT_CRITERION,
               accuracy_tolerance: float = ACCURACY_TOLERANCE,
               estimator_params: dict[str, Any] | None = None,
               n_repeats: int = 1) -> SelectionResult:
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
    criterion : {"macro_f1", "accuracy"}, default="macro_f1"
        Ranking rule (module docstring): macro F1 among the pairs within ``accuracy_tolerance``
        of the best accuracy, or accuracy alone.
    accuracy_tolerance : float, default=0.005
        Accuracy (fraction, 0.005 = 0.5 point) a pair may lose to the best and still be ranked
        by macro F1.
    estimator_params : dict, optional
        Further :class:`PLAClassifier` parameters of every fit (``class_weight``, ``partition``,
        ``target``, ``rank``, ...); not ``n_clusters`` or ``alpha``, which the grid sets.
    n_repeats : int, default=1
        Repetitions of the ``cv``-fold split with different shuffles
        (:class:`~sklearn.model_selection.RepeatedStratifiedKFold`); the per-fold lists then hold
        ``cv * n_repeats`` entries. With a few beats of a rare class per fold, macro F1 varies a
        lot between splits; repeating narrows the mean's spread.

    Returns
    -------
    SelectionResult

    Raises
    ------
    ValueError
        If ``criterion`` is unknown, ``accuracy_tolerance`` negative, or ``estimator_params``
        sets the grid's parameters.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r} should be one of {CRITERIA}.")
    if not isinstance(n_repeats, (int, np.integer)) or n_repeats < 1:
        raise ValueError(f"n_repeats={n_repeats!r} should be an integer >= 1.")
    if not accuracy_tolerance >= 0:
        raise ValueError(f"accuracy_tolerance={accuracy_tolerance!r} should be >= 0.")
    estimator_params = dict(estimator_params or {})
    clash = sorted({"n_clusters", "alpha", "head_weights", "head_bias"} & set(estimator_params))
    if clash:
        raise ValueError(f"estimator_params should not set {clash}: the grid and the teacher "
                         f"set them.")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    teacher = None if teacher_features is None else np.asarray(teacher_features, np.float64)
    base = PLAClassifier(head_weights=head_weights, head_bias=head_bias, n_init=n_init,
                         random_state=random_state).set_params(**estimator_params)
    splitter = (StratifiedKFold(cv, shuffle=True, random_state=random_state) if n_repeats == 1
                else RepeatedStratifiedKFold(n_splits=cv, n_repeats=n_repeats,
                                             random_state=random_state))
    folds = list(splitter.split(X, y))
    tasks = [(k, alpha, fold) for k in k_values for alpha in alphas
             for fold in range(len(folds))]
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
    rank = base.get_params()["rank"]
    rows = [_grid_row(k, alpha, scores, X.shape[1], d, n_classes, max_int8_bytes, rank,
                      effective_rank(rank, base.get_params()["target"], d, n_classes),
                      base.get_params()["weight_bits"])
            for (k, alpha), scores in by_pair.items()]
    _rank(rows, "rank_unconstrained", criterion, accuracy_tolerance)
    fitting = [row for row in rows if row["within_budget"]]
    _rank(fitting, "rank", criterion, accuracy_tolerance)
    best = next((row for row in fitting if row["rank"] == 1), None)
    best_unconstrained = next(row for row in rows if row["rank_unconstrained"] == 1)
    return SelectionResult(rows, best, best_unconstrained, max_int8_bytes, cv, seconds,
                           criterion, accuracy_tolerance, estimator_params, int(n_repeats))


def default_alphas(target: str) -> tuple[float, ...]:
    """The lambdas searched when none is given: :data:`DISTILLATION_ALPHAS` for
    ``target="probabilities"``, the paper's :data:`ALPHAS` for the ridge targets."""
    return DISTILLATION_ALPHAS if target == "probabilities" else ALPHAS


def effective_rank(rank: int | None, target: str, d: int, n_classes: int) -> int | None:
    """The rank of the fitted factors: the regression's target space bounds it (``d`` features,
    or ``C`` logits for the other targets)."""
    if rank is None:
        return None
    return int(min(rank, d if target == "features" else n_classes))


def _grid_row(k: int, alpha: float, scores: list[dict], length: int, d: int, n_classes: int,
              max_int8_bytes: int | None, rank: int | None,
              effective_rank: int | None = None, weight_bits: int = 8) -> dict[str, Any]:
    accuracy = np.array([s["accuracy"] for s in scores])
    macro_f1 = np.array([s["macro_f1"] for s in scores])
    k_used = [int(s["k_used"]) for s in scores]
    # partition="class" can add centres: size the largest model a fold produced.
    shape = PLAShape(max(k, *k_used), length, d, n_classes)
    # The deployed (factored when low rank) int8 file.
    size = int8_tflite_bytes(PLAShape(shape.k, length, d, n_classes, effective_rank, weight_bits))
    has_teacher = "r2" in scores[0]
    return {
        "k": k, "alpha": alpha,
        "accuracy_mean": float(accuracy.mean()), "accuracy_std": float(accuracy.std()),
        "accuracy_folds": [float(a) for a in accuracy],
        "macro_f1_mean": float(macro_f1.mean()), "macro_f1_std": float(macro_f1.std()),
        "macro_f1_folds": [float(f) for f in macro_f1],
        "feature_r2_mean": float(np.mean([s["r2"] for s in scores])) if has_teacher else None,
        "feature_mse_mean": float(np.mean([s["mse"] for s in scores])) if has_teacher else None,
        "k_used_folds": k_used,
        "parameters": parameter_counts(shape)["total"],
        "int8_tflite_bytes": size,
        "low_rank_int8_parameter_bytes": (None if rank is None
                                          else low_rank_parameter_bytes(shape, rank)["int8"]),
        "within_budget": max_int8_bytes is None or size <= max_int8_bytes,
        "rank": None,
        "eligible": None,
    }
