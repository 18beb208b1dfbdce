"""Classification metrics as the seed paper reports them, plus what it leaves out.

The paper gives accuracy, sensitivity, precision and F1 without naming the averaging; its F1 sits
between accuracy and the class-wise means, which matches support-weighted averaging, so the
headline sensitivity/precision/F1 here are weighted by class support. Because ECG5000 is very
unbalanced (58 % normal), macro F1, per-class recall and the confusion matrix are reported too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray,
                           class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, weighted sensitivity/precision/F1, macro F1, per-class recall, confusion matrix.

    Every class in ``class_names`` is scored, also those absent from ``y_true`` (their recall is
    0 by convention rather than a warning), so reports from different runs line up.
    """
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.size} labels but {y_pred.size} predictions")
    labels = list(range(len(class_names)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    weights = support / max(support.sum(), 1)
    return {
        "n": int(y_true.size),
        "accuracy": float(np.mean(y_true == y_pred)) if y_true.size else 0.0,
        "sensitivity": float(np.sum(recall * weights)),
        "precision": float(np.sum(precision * weights)),
        "f1": float(np.sum(f1 * weights)),
        "macro_f1": float(np.mean(f1)),
        "per_class_recall": {name: float(value) for name, value in zip(class_names, recall)},
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "averaging": "sensitivity, precision and f1 weighted by class support; macro_f1 unweighted",
    }


def prediction_report(y_true: np.ndarray, y_pred: np.ndarray,
                      class_names: Sequence[str]) -> dict[str, Any]:
    """Predictions per class, and :func:`classification_metrics` on the labelled beats.

    Beats without a label (``y < 0``: a record without annotations, beats found by QRS
    detection) are predicted but not scored: ``n`` counts every beat, ``n_scored`` the labelled
    ones, ``class_counts`` the predictions per class; the metrics' keys are present only when
    some beat is labelled.
    """
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.size} labels but {y_pred.size} predictions")
    labelled = y_true >= 0
    report = (classification_metrics(y_true[labelled], y_pred[labelled], class_names)
              if labelled.any() else {})
    report.update(n=int(y_true.size), n_scored=int(labelled.sum()),
                  class_counts={name: int(np.sum(y_pred == index))
                                for index, name in enumerate(class_names)})
    return report
