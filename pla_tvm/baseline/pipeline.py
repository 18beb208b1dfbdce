"""``pla-tvm train``: train, prune, quantize, export and evaluate the baseline in one run.

Outputs of a run directory (each written through a temporary file and renamed, so an
interrupted run never leaves a half-written model that a later stage would trust):

- ``baseline.keras`` — the trained float model (what PLA imitates);
- ``baseline_float.tflite`` — the same model as float TFLite;
- ``baseline_pruned.keras`` — the pruned and fine-tuned float model the int8 model comes from;
- ``baseline_int8.tflite`` — the paper's comparison point: pruned, fine-tuned, full int8;
- ``metrics.json`` — configuration, training summary, parameters, FLOPs, reached sparsity,
  file and gzip sizes, and test metrics on Keras, TFLite and TFLite Micro.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from pla_tvm.baseline.config import PruningSettings, ResNetConfig
from pla_tvm.baseline.costs import model_flops, model_parameters
from pla_tvm.baseline.export import save_keras_atomically, to_float_tflite, to_int8_tflite
from pla_tvm.baseline.model import keras
from pla_tvm.baseline.prune import measured_sparsity, prune_and_finetune
from pla_tvm.baseline.train import (
    TrainSettings,
    class_weights,
    split_train_validation,
    train_baseline,
)
from pla_tvm.data.beats import Dataset, evenly_spaced
from pla_tvm.files import file_sizes, write_atomically, write_json_atomically
from pla_tvm.inference import load_runner, predict_classes
from pla_tvm.metrics import prediction_report

LOG = logging.getLogger(__name__)

KERAS_FILE = "baseline.keras"
PRUNED_KERAS_FILE = "baseline_pruned.keras"
FLOAT_TFLITE_FILE = "baseline_float.tflite"
INT8_TFLITE_FILE = "baseline_int8.tflite"
METRICS_FILE = "metrics.json"


def evaluate_model(path: Path, dataset: Dataset, split: str = "test",
                   interpreter: str = "litert", limit: int | None = None, runner=None
                   ) -> tuple[dict[str, Any], np.ndarray]:
    """Metrics and predicted classes of a saved model on a split (``limit`` beats of it, evenly
    spaced, see :meth:`~pla_tvm.data.beats.BeatSet.subset`); ``runner``: the model already
    loaded (:func:`pla_tvm.inference.load_runner`)."""
    beats = dataset[split].subset(limit)
    runner = runner or load_runner(path, interpreter)
    started = time.perf_counter()
    predictions = predict_classes(runner.outputs(beats.x))
    result = prediction_report(beats.y, predictions, beats.class_names)
    result.update(model=str(path), runner=runner.description, split=split,
                  seconds=round(time.perf_counter() - started, 2))
    if getattr(runner, "arena_bytes", None) is not None:
        result["tflm_arena_bytes"] = runner.arena_bytes
    return result, predictions


def tflm_by_reference_kernels(path: Path, dataset: Dataset, beats: int,
                              reference: tuple[dict[str, Any], np.ndarray], split: str = "test"
                              ) -> tuple[dict[str, Any], np.ndarray] | None:
    """TFLite Micro's metrics from the reference kernels', if both give the same int8 outputs.

    TFLite Micro runs the int8 model ~5 times slower than the TFLite interpreter's reference
    kernels, which implement the same integer arithmetic. Both run on ``beats`` evenly spaced
    beats of the split; when every int8 output is equal, the reference kernels' evaluation
    (``reference``: :func:`evaluate_model`'s result on the whole split) stands for TFLite
    Micro's, with ``tflm_check`` saying so.

    Returns
    -------
    tuple or None
        ``(metrics, classes)`` like :func:`evaluate_model`, or None when some output differs
        (TFLite Micro must then be run on every beat).
    """
    started = time.perf_counter()
    x = dataset[split].subset(beats).x
    tflm = load_runner(path, "tflm")
    tflm_outputs = tflm.outputs(x)
    reference_outputs = load_runner(path, "litert-ref").outputs(x)
    differing = int(np.sum(np.any(tflm_outputs != reference_outputs, axis=1)))
    check = {"beats": int(len(x)), "beats_differing": differing, "bit_identical": differing == 0,
             "seconds": round(time.perf_counter() - started, 2)}
    LOG.info("TFLite Micro against the reference kernels on %d beats: %s", len(x),
             "bit-identical" if differing == 0 else f"{differing} beats differ")
    if differing:
        return None
    metrics, classes = reference
    metrics = {**metrics, "runner": f"{metrics['runner']} (bit-identical to TFLite Micro on "
               f"{len(x):,} evenly spaced beats, standing in for it)", "tflm_check": check}
    if tflm.arena_bytes is not None:
        metrics["tflm_arena_bytes"] = tflm.arena_bytes
    return metrics, classes


def run_training(dataset: Dataset, out_dir: Path, config: ResNetConfig,
                 settings: TrainSettings = TrainSettings(),
                 pruning: PruningSettings = PruningSettings(),
                 tflm_limit: int | None = None, tflm_check: int | None = None
                 ) -> dict[str, Any]:
    """Train, prune, export and evaluate; writes the run directory and returns the metrics.

    ``tflm_limit`` bounds the beats run through TFLite Micro and through the TFLite interpreter's
    reference kernels (which compute int8 exactly as TFLite Micro does), ~75 and ~15 ms a beat
    for the paper-size int8 model; by default every test beat is run.

    ``tflm_check`` (the benchmark's extra seeds) runs TFLite Micro on that many evenly spaced
    beats only, compared bit for bit with the reference kernels' int8 outputs; when they are equal
    the ``int8_tflm`` metrics are the reference kernels' (see :func:`tflm_by_reference_kernels`),
    otherwise TFLite Micro runs on the ``tflm_limit`` beats as without it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train, validation = split_train_validation(dataset.train, settings.validation_fraction,
                                               settings.seed)
    model, training = train_baseline(train, validation, config, settings)
    training["seconds"] = round(time.perf_counter() - started, 1)
    save_keras_atomically(model, out_dir / KERAS_FILE)
    write_atomically(out_dir / FLOAT_TFLITE_FILE, to_float_tflite(model))

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    pruned = prune_and_finetune(
        copy, *train, validation=validation, target_sparsity=pruning.target_sparsity,
        epochs=pruning.finetune_epochs, batch_size=settings.batch_size,
        class_weight=class_weights(train[1], config.n_classes, settings.class_weight),
        verbose=settings.verbose)
    save_keras_atomically(pruned, out_dir / PRUNED_KERAS_FILE)
    write_atomically(out_dir / INT8_TFLITE_FILE, to_int8_tflite(pruned, train[0]))

    runs = {
        "keras": evaluate_model(out_dir / KERAS_FILE, dataset),
        "float_tflite": evaluate_model(out_dir / FLOAT_TFLITE_FILE, dataset),
        "pruned_keras": evaluate_model(out_dir / PRUNED_KERAS_FILE, dataset),
        "int8_tflite": evaluate_model(out_dir / INT8_TFLITE_FILE, dataset),
        "int8_tflite_reference_kernels": evaluate_model(
            out_dir / INT8_TFLITE_FILE, dataset, interpreter="litert-ref", limit=tflm_limit),
    }
    by_reference = None if tflm_check is None else tflm_by_reference_kernels(
        out_dir / INT8_TFLITE_FILE, dataset, tflm_check, runs["int8_tflite_reference_kernels"])
    runs["int8_tflm"] = by_reference or evaluate_model(
        out_dir / INT8_TFLITE_FILE, dataset, interpreter="tflm", limit=tflm_limit)
    evaluations = {name: result for name, (result, _) in runs.items()}
    tflm_classes = runs["int8_tflm"][1]
    all_int8_classes = runs["int8_tflite"][1]
    subset_classes = all_int8_classes[evenly_spaced(all_int8_classes.size, tflm_limit)]
    evaluations["int8_tflm"]["class_agreement_with_int8_tflite"] = float(
        np.mean(tflm_classes == subset_classes))
    evaluations["int8_tflm"]["class_agreement_with_int8_tflite_reference_kernels"] = float(
        np.mean(tflm_classes == runs["int8_tflite_reference_kernels"][1]))
    metrics = {
        "config": config.to_dict(),
        "settings": settings.to_dict(),
        "training": training,
        "parameters": model_parameters(model),
        "flops": model_flops(model),
        "sparsity": {"target": pruning.target_sparsity, "reached": measured_sparsity(pruned),
                     "finetune_epochs": pruning.finetune_epochs},
        "files": {name: file_sizes(out_dir / name)
                  for name in (KERAS_FILE, FLOAT_TFLITE_FILE, PRUNED_KERAS_FILE, INT8_TFLITE_FILE)},
        "evaluations": evaluations,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_json_atomically(out_dir / METRICS_FILE, metrics)
    return metrics
