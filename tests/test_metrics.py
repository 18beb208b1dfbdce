"""Metrics on a hand-made confusion matrix."""

import numpy as np
import pytest

from pla_tvm.metrics import classification_metrics


def test_metrics_on_a_hand_made_confusion_matrix():
    # class 0: 3 beats, 2 right, 1 called class 1; class 1: 2 beats, both right;
    # class 2: 1 beat, called class 0.
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0])
    result = classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert result["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert result["accuracy"] == pytest.approx(4 / 6)
    recall = [2 / 3, 1.0, 0.0]
    precision = [2 / 3, 2 / 3, 0.0]
    f1 = [2 / 3, 0.8, 0.0]
    weights = np.array([3, 2, 1]) / 6
    assert result["per_class_recall"] == pytest.approx(dict(zip("abc", recall)))
    assert result["sensitivity"] == pytest.approx(np.dot(recall, weights))
    assert result["precision"] == pytest.approx(np.dot(precision, weights))
    assert result["f1"] == pytest.approx(np.dot(f1, weights))
    assert result["macro_f1"] == pytest.approx(np.mean(f1))


def test_classes_absent_from_the_labels_are_still_listed():
    result = classification_metrics([0, 0], [0, 0], ["a", "b"])
    assert result["per_class_recall"] == {"a": 1.0, "b": 0.0}
    assert result["confusion_matrix"] == [[2, 0], [0, 0]]


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="3 labels but 2 predictions"):
        classification_metrics([0, 1, 1], [0, 1], ["a", "b"])
