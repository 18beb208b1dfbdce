"""Compress a baseline with PLA: select k and lambda, fit, quantize, export, measure.

This is what ``pla-tvm compress`` runs. Outputs in the output directory:

* ``pla.npz`` -- the float and int8 model (:mod:`pla_tvm.pla.npz_io`);
* ``pla_float.tflite`` / ``pla_int8.tflite`` -- the TFLite models
  (:mod:`pla_tvm.pla.tflite_export`);
* ``metrics.json`` -- the selection grid, test metrics of the baseline and of every PLA variant
  (float estimator, int8 numpy reference, both TFLite models in TFLite and TFLite Micro), their
  agreement, parameters, FLOPs and sizes, the targets of issue 5, and ``references``: models
  fitted on the same beats to read PLA's accuracy against (:mod:`pla_tvm.references`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import mean_squared_error, r2_score

from pla_tvm.data import Dataset
from pla_tvm.errors import DataError, PlaTvmError
from pla_tvm.files import write_atomically, write_json_atomically
from pla_tvm.inference import TFLiteRunner
from pla_tvm.metrics import classification_metrics
from pla_tvm.pla import costs
from pla_tvm.pla.estimator import PLAClassifier
from pla_tvm.pla.npz_io import BaselineRef, PLABundle, save_pla
from pla_tvm.pla.quantize import quantize_pla
from pla_tvm.pla.reference import int8_logits
from pla_tvm.pla.selection import (
    DEFAULT_CV_REPEATS,
    DEFAULT_MAX_INT8_BYTES,
    K_VALUES,
    SelectionResult,
    default_alphas,
    effective_rank,
    select_pla,
)
from pla_tvm.pla.teacher import Teacher
from pla_tvm.pla.tflite_export import float_tflite, int8_tflite
from pla_tvm.references import references

LOG = logging.getLogger(__name__)

NPZ_FILE = "pla.npz"
FLOAT_TFLITE_FILE = "pla_float.tflite"
INT8_TFLITE_FILE = "pla_int8.tflite"
#: A 4-bit model's file with INT4 maps (its deployed size; LiteRT runs it, TFLite Micro does not).
INT4_TFLITE_FILE = "pla_int4.tflite"
METRICS_FILE = "metrics.json"
#: The PLA that ``compress`` fits unless told otherwise: maps distilled from the teacher's
#: class probabilities softened at temperature 2 (docs/pla.md, "Distillation").
DEFAULT_VARIANT: dict[str, Any] = {"target": "probabilities", "temperature": 2.0}


def resolve_variant(estimator_params: dict[str, Any] | None) -> dict[str, Any]:
    """The estimator parameters ``compress`` fits with: :data:`DEFAULT_VARIANT` unless
    ``estimator_params`` names a ``target`` of its own, updated by ``estimator_params``."""
    params = dict(estimator_params or {})
    return params if "target" in params else {**DEFAULT_VARIANT, **params}


def _splits(dataset: Dataset):
    if "train" not in dataset.splits or "test" not in dataset.splits:
        raise DataError(f"{dataset.name}: PLA needs 'train' and 'test' splits, it has "
                        f"{', '.join(dataset.splits)}")
    return dataset["train"], dataset["test"]


def _choose(train_x, train_y, teacher_features, teacher: Teacher, *, k, alpha, max_int8_bytes,
            cv, cv_repeats, n_jobs, random_state, progress,
            estimator_params: dict[str, Any]) -> SelectionResult | None:
    """Cross-validate the grid unless both k and lambda are given."""
    if k is not None and alpha is not None:
        return None
    target = estimator_params.get("target", "features")
    return select_pla(train_x, train_y, teacher_features=teacher_features,
                      head_weights=teacher.head_weights, head_bias=teacher.head_bias,
                      k_values=K_VALUES if k is None else (k,),
                      alphas=default_alphas(target) if alpha is None else (alpha,), cv=cv,
                      n_repeats=cv_repeats, max_int8_bytes=max_int8_bytes, n_jobs=n_jobs,
                      random_state=random_state, progress=progress,
                      estimator_params=estimator_params)


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.asarray(a) == np.asarray(b)))


def size_budget(teacher: Teacher, max_int8_bytes: int | None,
                smaller_than_model: bool = True) -> dict[str, Any]:
    """The int8 ``.tflite`` size PLA must stay under: the absolute budget and, by default, the
    size of the int8 model it replaces (a compression that grows the model is no compression).

    Without an int8 model the replaced size is estimated as the Keras model's parameter count
    (one byte per int8 weight, a lower bound of its int8 file).

    Returns
    -------
    dict
        ``max_int8_bytes`` (absolute, None for none), ``replaced_model_bytes`` and
        ``replaced_model_from`` (what the figure is), ``smaller_than_model``, and ``bytes``: the
        budget applied (None for none).
    """
    if teacher.int8_bytes is not None:
        replaced, source = teacher.int8_bytes, "int8 model file"
    else:
        replaced = int(teacher.keras_model.count_params())
        source = "Keras parameter count (1 byte each; no int8 model given)"
    limits = [b for b in (max_int8_bytes, replaced if smaller_than_model else None)
              if b is not None]
    return {"max_int8_bytes": max_int8_bytes, "replaced_model_bytes": replaced,
            "replaced_model_from": source, "smaller_than_model": smaller_than_model,
            "bytes": min(limits) if limits else None}


def _budget_text(budget: dict[str, Any]) -> str:
    parts = []
    if budget["max_int8_bytes"] is not None:
        parts.append(f"--max-int8-bytes {budget['max_int8_bytes']:,}")
    if budget["smaller_than_model"]:
        parts.append(f"smaller than the model it replaces ({budget['replaced_model_bytes']:,} B, "
                     f"{budget['replaced_model_from']})")
    return " and ".join(parts) or "none"


def _check_budget_reachable(budget: dict[str, Any], k_values, length: int, teacher: Teacher,
                            given: bool, estimator_params: dict[str, Any]) -> None:
    """Fail before any fitting when no k of the grid gives an int8 model within the budget (the
    size follows from the shape alone), unless k and lambda were both given."""
    if given or budget["bytes"] is None:
        return
    d, n_classes = teacher.head_weights.shape
    rank = effective_rank(estimator_params.get("rank"), estimator_params.get("target", "features"),
                          d, n_classes)
    bits = estimator_params.get("weight_bits", 8)
    sizes = {k: costs.int8_tflite_bytes(costs.PLAShape(k, length, d, n_classes, rank, bits))
             for k in k_values}
    smallest = min(sizes, key=sizes.get)
    if sizes[smallest] > budget["bytes"]:
        raise PlaTvmError(
            f"no PLA fits the size budget ({_budget_text(budget)}): the smallest, k={smallest}, "
            f"is {sizes[smallest]:,} B; raise --max-int8-bytes, or pass --allow-larger to "
            f"accept a PLA larger than the model")


def compress(teacher: Teacher, dataset: Dataset, out_dir: str | Path, *, k: int | None = None,
             alpha: float | None = None, max_int8_bytes: int | None = DEFAULT_MAX_INT8_BYTES,
             smaller_than_model: bool = True, cv: int = 5,
             cv_repeats: int = DEFAULT_CV_REPEATS, n_jobs: int = 2,
             random_state: int = 0, progress: bool = True,
             estimator_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the whole PLA stage and write its four outputs.

    Parameters
    ----------
    teacher : Teacher
        The baseline (:func:`pla_tvm.pla.teacher.load_teacher`).
    dataset : Dataset
        Beats with ``train`` and ``test`` splits, prepared like the baseline's training data.
    out_dir : str or Path
        Output directory (created).
    k, alpha : optional
        Fix k and/or lambda; what is not fixed is chosen by cross-validation: k on the paper's
        grid, lambda on :func:`~pla_tvm.pla.selection.default_alphas` of the target (the
        paper's grid for the ridge targets, lambda = 1 for the distilled maps).
    max_int8_bytes : int or None
        Flash budget of the int8 ``.tflite`` during selection (None: unconstrained).
    smaller_than_model : bool
        Also require the int8 ``.tflite`` to be smaller than the model it replaces
        (:func:`size_budget`).
    cv, n_jobs, random_state, progress
        As for :func:`pla_tvm.pla.selection.select_pla`.
    cv_repeats : int
        Repetitions of the ``cv``-fold split (``select_pla``'s ``n_repeats``).
    estimator_params : dict, optional
        Further :class:`PLAClassifier` parameters, the variant (``rank``, ``target``,
        ``class_weight``, ``partition``, ...), applied over :data:`DEFAULT_VARIANT` unless they
        name a ``target`` (:func:`resolve_variant`); recorded in ``metrics.json`` (``chosen``).
        With ``rank`` the int8 model is deployed factored and budgeted at its factored size.

    Returns
    -------
    dict
        The content of ``metrics.json``.

    Raises
    ------
    DataError
        If the dataset lacks a split.
    PlaTvmError
        If no (k, lambda) pair fits the budget.
    """
    train, test = _splits(dataset)
    estimator_params = resolve_variant(estimator_params)
    budget = size_budget(teacher, max_int8_bytes, smaller_than_model)
    _check_budget_reachable(budget, K_VALUES if k is None else (k,), train.x.shape[1],
                            teacher, given=k is not None and alpha is not None,
                            estimator_params=estimator_params)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_features = teacher.features(train.x)
    selection = _choose(train.x, train.y, train_features, teacher, k=k, alpha=alpha,
                        max_int8_bytes=budget["bytes"], cv=cv, cv_repeats=cv_repeats,
                        n_jobs=n_jobs,
                        random_state=random_state, progress=progress,
                        estimator_params=estimator_params)
    if selection is not None:
        if selection.best is None:
            smallest = min(selection.grid, key=lambda r: r["int8_tflite_bytes"])
            raise PlaTvmError(
                f"no PLA fits the size budget ({_budget_text(budget)}): the smallest, k="
                f"{smallest['k']}, is {smallest['int8_tflite_bytes']:,} B; raise "
                f"--max-int8-bytes, or pass --allow-larger to accept a PLA larger than the model")
        k, alpha = selection.best["k"], selection.best["alpha"]
        LOG.info("PLA selection (%d folds x %d, %.1f s):\n%s", cv, cv_repeats, selection.seconds,
                 selection.table())
    model = PLAClassifier(n_clusters=k, alpha=alpha, head_weights=teacher.head_weights,
                          head_bias=teacher.head_bias, random_state=random_state,
                          **estimator_params)
    model.fit(train.x, train.y, teacher_features=train_features)
    quantized = quantize_pla(model, train.x, baseline=teacher.int8,
                             teacher_features=train_features)
    baseline_ref = BaselineRef(str(teacher.source.resolve()), teacher.sha256,
                               teacher.int8_sha256)
    save_pla(out_dir / NPZ_FILE, PLABundle(model, quantized, baseline_ref))
    float_bytes, int8_bytes = float_tflite(model), int8_tflite(quantized)
    int4_bytes = (int8_tflite(quantized, int4=True) if quantized.operator.weight_bits == 4
                  else None)
    write_atomically(out_dir / FLOAT_TFLITE_FILE, float_bytes)
    write_atomically(out_dir / INT8_TFLITE_FILE, int8_bytes)
    if int4_bytes is not None:
        write_atomically(out_dir / INT4_TFLITE_FILE, int4_bytes)
    deployed_bytes = len(int8_bytes if int4_bytes is None else int4_bytes)
    metrics = _evaluate(model, quantized, teacher, test, float_bytes, int8_bytes, int4_bytes)
    metrics.update({
        "dataset": {"name": dataset.name, "train": int(train.y.size), "test": int(test.y.size)},
        "baseline": {"path": baseline_ref.path, "sha256": baseline_ref.sha256,
                     "int8_quantization_from_baseline": teacher.int8 is not None},
        "chosen": {"k": int(k), "alpha": float(alpha), "k_used": int(model.n_clusters_),
                   "cluster_sizes": model.cluster_sizes_.tolist(),
                   "estimator_params": dict(estimator_params),
                   "deployed_rank": (None if model.coef_left_ is None
                                     else int(model.coef_left_.shape[2]))},
        "selection": None if selection is None else selection.to_dict(),
        "files": {name: (out_dir / name).stat().st_size for name in
                  (NPZ_FILE, FLOAT_TFLITE_FILE, INT8_TFLITE_FILE, INT4_TFLITE_FILE)
                  if (out_dir / name).exists()},
        "references": references(train, test, random_state=random_state),
    })
    metrics["size_budget"] = {**budget, "met": budget["bytes"] is None
                              or deployed_bytes <= budget["bytes"]}
    if not metrics["size_budget"]["met"]:
        LOG.warning("the int8 PLA (%s B) is over the size budget (%s): k and lambda were given",
                    f"{deployed_bytes:,}", _budget_text(budget))
    metrics["targets"] = _targets(metrics)
    write_json_atomically(out_dir / METRICS_FILE, metrics)
    return metrics


def _evaluate(model: PLAClassifier, quantized, teacher: Teacher, test, float_bytes: bytes,
              int8_bytes: bytes, int4_bytes: bytes | None = None) -> dict[str, Any]:
    """Test-set metrics of the baseline and every PLA variant, their agreement and costs
    (``int4_bytes``: a 4-bit model's INT4 file, checked with LiteRT's default kernels)."""
    names = test.class_names
    x_q = quantized.input.quantize(test.x)
    teacher_features, teacher_classes = teacher.outputs(test.x)
    predictions = {
        "baseline": teacher_classes,
        "pla_float": model.predict(test.x),
        "pla_int8": quantized.classes[np.argmax(int8_logits(quantized, x_q), axis=1)],
    }
    float_logits = model.logits(test.x)
    tflite_float = TFLiteRunner(float_bytes, FLOAT_TFLITE_FILE).raw_outputs(test.x)
    reference = int8_logits(quantized, x_q)
    tflite_int8 = TFLiteRunner(int8_bytes, INT8_TFLITE_FILE, "litert-ref").raw_outputs(x_q)
    tflm_int8 = TFLiteRunner(int8_bytes, INT8_TFLITE_FILE, "tflm").raw_outputs(x_q)
    predictions["pla_float_tflite"] = np.argmax(tflite_float, axis=1)
    predictions["pla_int8_tflite"] = np.argmax(tflite_int8, axis=1)
    predictions["pla_int8_tflm"] = np.argmax(tflm_int8, axis=1)
    int4 = {}
    if int4_bytes is not None:
        tflite_int4 = TFLiteRunner(int4_bytes, INT4_TFLITE_FILE, "litert").raw_outputs(x_q)
        int4["int4_tflite_vs_reference_max_lsb"] = int(
            np.abs(tflite_int4.astype(np.int32) - reference).max())
    shape = costs.PLAShape.of(model)
    full_shape = costs.PLAShape(shape.k, shape.D, shape.d, shape.C)
    low_rank = ({} if shape.r is None else {
        "low_rank_parameters": costs.low_rank_parameter_counts(full_shape, shape.r),
        "low_rank_parameter_bytes": costs.low_rank_parameter_bytes(full_shape, shape.r)})
    return {
        "test": {name: classification_metrics(test.y, pred, names)
                 for name, pred in predictions.items()},
        "agreement": {
            "pla_float_vs_baseline": _agreement(predictions["pla_float"], predictions["baseline"]),
            "pla_int8_vs_pla_float": _agreement(predictions["pla_int8"], predictions["pla_float"]),
            "float_tflite_vs_estimator_max_abs_logit": float(
                np.abs(tflite_float - float_logits).max()),
            "int8_tflm_vs_reference_bit_exact": bool(np.array_equal(tflm_int8, reference)),
            "int8_tflite_vs_reference_max_lsb": int(
                np.abs(tflite_int8.astype(np.int32) - reference).max()),
            "int8_tflite_vs_reference_class_agreement": _agreement(
                predictions["pla_int8_tflite"], predictions["pla_int8"]),
            **int4,
        },
        "feature_fit_test": {
            "r2": float(r2_score(teacher_features, model.transform(test.x),
                                 multioutput="variance_weighted")),
            "mse": float(mean_squared_error(teacher_features, model.transform(test.x))),
        },
        "parameters": costs.parameter_counts(full_shape),
        "flops_per_beat": costs.flops_per_beat(full_shape),
        "parameter_bytes": costs.parameter_bytes(full_shape),
        **low_rank,
        "tflite_bytes": {"float32": len(float_bytes), "int8": len(int8_bytes),
                         **({} if int4_bytes is None else {"int4": len(int4_bytes)}),
                         "deployed": len(int8_bytes if int4_bytes is None else int4_bytes)},
        "weight_bits": quantized.operator.weight_bits,
    }


def _targets(metrics: dict[str, Any]) -> dict[str, Any]:
    """Issue 5's targets against the baseline, with the measured values."""
    accuracy = {name: m["accuracy"] for name, m in metrics["test"].items()}
    float_drop = 100 * (accuracy["baseline"] - accuracy["pla_float"])
    int8_drop = 100 * abs(accuracy["pla_float"] - accuracy["pla_int8"])
    selection = metrics["selection"]
    return {
        "pla_float_within_1_point_of_baseline": {"points_below": float_drop,
                                                 "met": float_drop <= 1.0},
        "pla_int8_within_0.3_points_of_float": {"points": int8_drop, "met": int8_drop <= 0.3},
        "int8_tflite_at_most_64KB": {"bytes": metrics["tflite_bytes"]["deployed"],
                                     "met": metrics["tflite_bytes"]["deployed"] <= 64 * 1024},
        "flops_at_most_40000": {"flops": metrics["flops_per_beat"]["total"],
                                "met": metrics["flops_per_beat"]["total"] <= 40_000},
        "grid_search_at_most_300_s": None if selection is None else {
            "seconds": selection["seconds"], "met": selection["seconds"] <= 300},
    }
