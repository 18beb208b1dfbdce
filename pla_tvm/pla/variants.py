"""Compare PLA variants on a train/test split: float and int8 metrics, sizes, a linear reference.

:func:`compare_variants` fits every variant (a dict of :class:`~pla_tvm.pla.PLAClassifier`
parameters) on the training beats, quantizes it as ``pla-tvm compress`` does
(:func:`~pla_tvm.pla.quantize.quantize_pla`, with the baseline's int8 head when given) and scores
the float estimator and the int8 integer reference on the test beats; a
:class:`~sklearn.linear_model.LogisticRegression` on the raw beats is the reference row. With
``select=True`` each variant's k and lambda are first chosen by
:func:`~pla_tvm.pla.selection.select_pla` on the training beats only (its cross-validated
accuracy and macro F1 are in the row), which is how defaults are compared without the test split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from pla_tvm.metrics import classification_metrics
from pla_tvm.pla import costs
from pla_tvm.pla.estimator import PLAClassifier
from pla_tvm.pla.quantize import Int8Baseline, quantize_pla
from pla_tvm.pla.reference import int8_logits

#: The variants of issue 15, as PLAClassifier parameters (k and lambda from the grid or fixed).
#: "default" is the estimator's default, the paper's PLA; "distil" is what ``compress`` fits.
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "distil": {"target": "probabilities", "temperature": 2.0},
    "distil_T1": {"target": "probabilities", "temperature": 1.0},
    "distil+labels": {"target": "probabilities", "temperature": 2.0, "label_weight": 0.25},
    "class_weight": {"class_weight": "balanced"},
    "class_partition": {"partition": "class"},
    "class_weight+partition": {"class_weight": "balanced", "partition": "class"},
    "logits": {"target": "logits"},
    "logits+rank5": {"target": "logits", "rank": 5},
    "rank8": {"rank": 8},
    "rank16": {"rank": 16},
    "rank32": {"rank": 32},
    "rank16+class_weight": {"rank": 16, "class_weight": "balanced"},
    "4bit": {"weight_bits": 4},
    "4bit+class_partition": {"weight_bits": 4, "partition": "class"},
    "4bit+rank32": {"weight_bits": 4, "rank": 32},
    "4bit+logits+rank5": {"weight_bits": 4, "target": "logits", "rank": 5},
}


def _scores(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> dict:
    m = classification_metrics(y_true, y_pred, list(class_names))
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
            "recall": m["per_class_recall"]}


def compare_variants(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                     test_y: np.ndarray, *, teacher_features: np.ndarray,
                     head_weights: np.ndarray, head_bias: np.ndarray,
                     class_names: Sequence[str], baseline: Int8Baseline | None = None,
                     variants: Mapping[str, Mapping[str, Any]] | None = None,
                     n_clusters: int = 3, alpha: float = 1.0, select: bool = False,
                     select_params: Mapping[str, Any] | None = None, random_state: int = 0,
                     logistic_c: float | None = 1.0) -> list[dict[str, Any]]:
    """Fit, quantize and score every variant; one row each, plus the logistic reference.

    Parameters
    ----------
    train_x, train_y, test_x, test_y : np.ndarray
        Beats ``[n, D]`` and classes ``[n]`` of both splits.
    teacher_features : np.ndarray
        ``[n_train, d]`` teacher features of the training beats.
    head_weights, head_bias : np.ndarray
        The teacher's head ``[d, C]``, ``[C]``.
    class_names : sequence of str
        Names of classes ``0..C-1`` (the keys of ``recall``).
    baseline : Int8Baseline, optional
        The int8 baseline whose head and scales the int8 PLA uses (as ``compress`` does).
    variants : mapping, optional
        Name -> :class:`PLAClassifier` parameters (default :data:`VARIANTS`). A variant may set
        ``n_clusters`` / ``alpha`` itself (then fixed, also with ``select``).
    n_clusters, alpha : int, float
        k and lambda of the variants that do not set them (unless ``select``).
    select : bool, default=False
        Choose each variant's k and lambda with :func:`~pla_tvm.pla.selection.select_pla` on
        the training beats (``select_params`` passed on, e.g. ``max_int8_bytes``, ``n_jobs``;
        lambda on :func:`~pla_tvm.pla.selection.default_alphas` of the variant's target unless
        ``select_params`` or the variant give it, as ``compress`` does).
    select_params : mapping, optional
        Further arguments of ``select_pla``.
    random_state : int
        Seeds k-means (and the folds).
    logistic_c : float or None, default=1.0
        ``C`` of the :class:`~sklearn.linear_model.LogisticRegression` reference row (None:
        no reference row).

    Returns
    -------
    list of dict
        ``name``, ``params``, ``k``, ``alpha``, ``k_used``, ``cv`` (the selection's best row's
        accuracy, macro F1 and its standard deviation over the folds, the number of folds, or
        None), ``float`` and ``int8`` (``accuracy``, ``macro_f1``,
        ``recall`` per class name; ``int8`` None for the reference), ``int8_tflite_bytes``,
        ``low_rank_int8_parameter_bytes`` (None without ``rank``).
    """
    from pla_tvm.pla.selection import default_alphas, select_pla

    rows = []
    for name, params in (VARIANTS if variants is None else variants).items():
        params = dict(params)
        fixed = {"k_values": (params["n_clusters"],)} if "n_clusters" in params else {}
        if "alpha" in params:
            fixed["alphas"] = (params["alpha"],)
        k, lam = params.pop("n_clusters", n_clusters), params.pop("alpha", alpha)
        cv = None
        if select:
            alphas = {"alphas": default_alphas(params.get("target", "features"))}
            result = select_pla(train_x, train_y, teacher_features=teacher_features,
                                head_weights=head_weights, head_bias=head_bias,
                                estimator_params=params, random_state=random_state,
                                progress=False,
                                **{**alphas, **dict(select_params or {}), **fixed})
            best = result.best or result.best_unconstrained
            k, lam = best["k"], best["alpha"]
            cv = {"accuracy": best["accuracy_mean"], "macro_f1": best["macro_f1_mean"],
                  "macro_f1_std": best["macro_f1_std"], "folds": len(best["macro_f1_folds"]),
                  "within_budget": best["within_budget"]}
        model = PLAClassifier(n_clusters=k, alpha=lam, head_weights=head_weights,
                              head_bias=head_bias, random_state=random_state, **params)
        model.fit(train_x, train_y, teacher_features=teacher_features)
        quantized = quantize_pla(model, train_x, baseline=baseline,
                                 teacher_features=teacher_features)
        int8_pred = quantized.classes[np.argmax(
            int8_logits(quantized, quantized.input.quantize(test_x)), axis=1)]
        shape = costs.PLAShape.of(model)
        rank = params.get("rank")
        rows.append({
            "name": name, "params": params, "k": int(k), "alpha": float(lam),
            "k_used": int(model.n_clusters_), "cv": cv,
            "float": _scores(test_y, model.predict(test_x), class_names),
            "int8": _scores(test_y, int8_pred, class_names),
            "int8_tflite_bytes": costs.int8_tflite_bytes(shape),
            "low_rank_int8_parameter_bytes": (
                None if rank is None else costs.low_rank_parameter_bytes(shape, rank)["int8"]),
        })
    if logistic_c is not None:
        logistic = LogisticRegression(C=logistic_c, max_iter=5000).fit(train_x, train_y)
        rows.append({"name": f"logistic(C={logistic_c:g})", "params": {}, "k": None,
                     "alpha": None, "k_used": None, "cv": None,
                     "float": _scores(test_y, logistic.predict(test_x), class_names),
                     "int8": None, "int8_tflite_bytes": None,
                     "low_rank_int8_parameter_bytes": None})
    return rows


def _mean_scores(scores: list[dict | None]) -> dict | None:
    if scores[0] is None:
        return None
    return {"accuracy": float(np.mean([s["accuracy"] for s in scores])),
            "macro_f1": float(np.mean([s["macro_f1"] for s in scores])),
            "recall": {name: float(np.mean([s["recall"][name] for s in scores]))
                       for name in scores[0]["recall"]}}


def mean_rows(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Average the rows of :func:`compare_variants` over several baselines (seeds).

    Scores and cross-validated means become the mean over the runs; ``k``, ``k_used`` and
    ``alpha`` become the runs' choices joined by commas (e.g. ``"1,1,2"``); sizes are the first
    run's.

    Parameters
    ----------
    runs : list of list of dict
        One :func:`compare_variants` result per baseline, with the same variants in the same
        order.

    Returns
    -------
    list of dict
    """
    def joined(rows: list[dict], key: str) -> str | None:
        if rows[0][key] is None:
            return None
        return ",".join(f"{row[key]:g}" if isinstance(row[key], float) else str(row[key])
                        for row in rows)

    averaged = []
    for rows in zip(*runs):
        if len({row["name"] for row in rows}) != 1:
            raise ValueError(f"the runs compare different variants: {[r['name'] for r in rows]}")
        cv = None
        if rows[0]["cv"] is not None:
            cv = {key: float(np.mean([row["cv"][key] for row in rows]))
                  for key in ("accuracy", "macro_f1", "macro_f1_std")}
            cv["folds"] = rows[0]["cv"]["folds"]
        averaged.append({**rows[0], "k": joined(rows, "k"), "k_used": joined(rows, "k_used"),
                         "alpha": joined(rows, "alpha"), "cv": cv,
                         "float": _mean_scores([row["float"] for row in rows]),
                         "int8": _mean_scores([row["int8"] for row in rows])})
    return averaged


def variants_table(rows: list[dict[str, Any]], recall_of: Sequence[str] = ()) -> str:
    """Rows of :func:`compare_variants` as a Markdown table (float / int8 per metric).

    Parameters
    ----------
    rows : list of dict
    recall_of : sequence of str
        Class names whose recall gets a column.

    Returns
    -------
    str
    """
    def pair(row: dict, key: str, cls: str | None = None) -> str:
        values = []
        for part in ("float", "int8"):
            scores = row[part]
            if scores is None:
                values.append("-")
                continue
            values.append(f"{scores[key] if cls is None else scores['recall'][cls]:.4f}")
        return " / ".join(values)

    head = ["variant", "k (used)", "λ", "CV acc / F1 ± fold std", "accuracy", "macro F1",
            *[f"recall {c}" for c in recall_of], "int8 B", "low-rank int8 param B"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cv = "-" if row["cv"] is None else (f"{row['cv']['accuracy']:.4f} / "
                                            f"{row['cv']['macro_f1']:.4f} ± "
                                            f"{row['cv']['macro_f1_std']:.3f}")
        k = "-" if row["k"] is None else f"{row['k']} ({row['k_used']})"
        alpha = row["alpha"]
        alpha = "-" if alpha is None else alpha if isinstance(alpha, str) else f"{alpha:g}"
        cells = [row["name"], k, alpha, cv,
                 pair(row, "accuracy"), pair(row, "macro_f1"),
                 *[pair(row, "recall", c) for c in recall_of],
                 "-" if row["int8_tflite_bytes"] is None else f"{row['int8_tflite_bytes']:,}",
                 "-" if row["low_rank_int8_parameter_bytes"] is None
                 else f"{row['low_rank_int8_parameter_bytes']:,}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    """``python -m pla_tvm.pla.variants --baseline DIR [DIR ...] [--data-dir DIR] [--select] ...``.

    Loads the teacher (:func:`~pla_tvm.pla.teacher.load_teacher`) and ECG5000, runs
    :func:`compare_variants` and prints (and returns) :func:`variants_table` with the recall of
    every class after the first two.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    str
        The table.
    """
    import argparse
    from pathlib import Path

    from pla_tvm.data import load_ecg5000
    from pla_tvm.pla.teacher import load_teacher

    parser = argparse.ArgumentParser(prog="python -m pla_tvm.pla.variants",
                                     description="Compare PLA variants (issue 15).")
    parser.add_argument("--baseline", required=True, nargs="+",
                        help="pla-tvm train's output folder; several (one per training seed): "
                        "the table gives the mean over them, the i-th seeded with --seed + i")
    parser.add_argument("--keras", default=None,
                        help="teacher .keras file instead of the folder's baseline.keras (e.g. "
                             "its baseline_pruned.keras; the int8 model stays the folder's)")
    parser.add_argument("--variants", default=None,
                        help="comma-separated names of VARIANTS (default: all)")
    parser.add_argument("--data-dir", default=None, help="ECG5000 folder")
    parser.add_argument("--select", action="store_true",
                        help="choose k and lambda per variant by CV on the training split")
    parser.add_argument("--k", type=int, default=3, help="k of every variant without --select "
                        "(default: 3)")
    parser.add_argument("--lam", default=None,
                        help="lambda of every variant, or with --select comma-separated "
                        "lambdas to search (default: 1 without --select; with it, searched as "
                        "compress does)")
    parser.add_argument("--repeats", type=int, default=1, help="CV repetitions (--select)")
    parser.add_argument("--max-int8-bytes", type=int, default=64 * 1024)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.keras is not None and len(args.baseline) > 1:
        parser.error("--keras goes with one --baseline")
    dataset = load_ecg5000(args.data_dir)
    train, test = dataset["train"], dataset["test"]
    unknown = sorted(set((args.variants or "").split(",")) - set(VARIANTS) - {""})
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    chosen = VARIANTS if args.variants is None else {
        name: VARIANTS[name] for name in args.variants.split(",")}
    select_params = {"n_jobs": args.jobs, "n_repeats": args.repeats,
                     "max_int8_bytes": args.max_int8_bytes or None}
    lams = None
    if args.lam is not None:
        try:
            lams = tuple(float(value) for value in args.lam.split(","))
        except ValueError:
            parser.error(f"--lam {args.lam}: expected numbers separated by commas")
        if len(lams) > 1 and not args.select:
            parser.error(f"--lam {args.lam}: several lambdas go with --select")
        select_params["alphas"] = lams
    runs = []
    for index, folder in enumerate(args.baseline):
        if args.keras is None:
            teacher = load_teacher(folder)
        else:
            from pla_tvm.baseline.pipeline import INT8_TFLITE_FILE
            from pla_tvm.pla.teacher import load_model_teacher

            teacher = load_model_teacher(args.keras, Path(folder) / INT8_TFLITE_FILE)
        runs.append(compare_variants(
            train.x, train.y, test.x, test.y, teacher_features=teacher.features(train.x),
            head_weights=teacher.head_weights, head_bias=teacher.head_bias,
            class_names=test.class_names, baseline=teacher.int8, variants=chosen,
            n_clusters=args.k, alpha=1.0 if lams is None else lams[0],
            select=args.select, select_params=select_params, random_state=args.seed + index))
    rows = runs[0] if len(runs) == 1 else mean_rows(runs)
    table = variants_table(rows, recall_of=list(test.class_names)[2:])
    print(table)
    return table


if __name__ == "__main__":
    main()
