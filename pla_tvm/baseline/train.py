"""Train the baseline ResNet on a training split, reproducibly.

Recipe (what published ResNet runs on ECG5000 use, checked on this data): Adam 1e-3, batch 32, a
stratified 80/20 train/validation split of the training set, early stopping on validation loss
with the best weights restored, the learning rate halved when validation loss plateaus.

Class imbalance (ECG5000's training split has 292 normal beats but 10 PVC, 19 SVPB and 2
unclassified) is handled by *square-root inverse-frequency* class weights by default: fully
balanced weights would multiply the loss of the two unclassified beats by ~50 and overfit them,
while no weighting lets the network ignore the rare classes. ``class_weight="none"`` or
``"balanced"`` select the alternatives; the stratified split keeps every class in validation.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.model_selection import train_test_split

from pla_tvm.baseline.config import ResNetConfig, TrainSettings
from pla_tvm.baseline.model import build_resnet, keras
from pla_tvm.data.beats import BeatSet

LOG = logging.getLogger(__name__)

def class_weights(labels: np.ndarray, n_classes: int, weighting: str) -> dict[int, float] | None:
    """Per-class loss weights, normalised so that the average weight of a sample is 1."""
    if weighting == "none":
        return None
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    raw = np.zeros(n_classes)
    raw[present] = (counts.sum() / counts[present]) ** (0.5 if weighting == "sqrt" else 1.0)
    raw /= np.sum(raw * counts) / counts.sum()
    return {index: float(weight) for index, weight in enumerate(raw)}


def split_train_validation(beats: BeatSet, fraction: float, seed: int
                           ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Stratified ``(x, y)`` train and validation parts; rare classes are stratified together."""
    counts = np.bincount(beats.y)
    stratify = np.where(counts[beats.y] >= 2, beats.y, -1)
    x_train, x_val, y_train, y_val = train_test_split(
        beats.x, beats.y, test_size=fraction, random_state=seed, stratify=stratify)
    return (x_train, y_train), (x_val, y_val)


def compile_classifier(model: keras.Model, learning_rate: float) -> None:
    """Adam + sparse categorical cross-entropy, the loss every stage of the baseline uses."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def train_baseline(train: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray],
                   config: ResNetConfig, settings: TrainSettings = TrainSettings()
                   ) -> tuple[keras.Model, dict]:
    """Build and train a ResNet; returns the model (best validation weights) and a summary.

    Parameters
    ----------
    train, validation : tuple of np.ndarray
        ``(beats [n, input_length], labels [n])``, e.g. from :func:`split_train_validation`.
    config : ResNetConfig
        Architecture.
    settings : TrainSettings
        Optimisation settings, including the seed that makes the run repeatable.
    """
    keras.utils.set_random_seed(settings.seed)
    (x_train, y_train), (x_val, y_val) = train, validation
    model = build_resnet(config)
    compile_classifier(model, settings.learning_rate)
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience,
                                      restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                          patience=max(settings.patience // 2, 1), min_lr=1e-5),
    ]
    weights = class_weights(y_train, config.n_classes, settings.class_weight)
    LOG.info("training %s parameters on %d beats (%d for validation), up to %d epochs, "
             "class weights %s", f"{model.count_params():,}", len(x_train), len(x_val),
             settings.epochs, weights)
    history = model.fit(x_train[..., None], y_train, validation_data=(x_val[..., None], y_val),
                        epochs=settings.epochs, batch_size=settings.batch_size,
                        class_weight=weights, callbacks=callbacks, verbose=settings.verbose)
    val_loss = history.history["val_loss"]
    best = int(np.argmin(val_loss))
    summary = {"epochs_run": len(val_loss), "best_epoch": best + 1,
               "best_val_loss": float(val_loss[best]),
               "best_val_accuracy": float(history.history["val_accuracy"][best]),
               "class_weights": weights}
    return model, summary
