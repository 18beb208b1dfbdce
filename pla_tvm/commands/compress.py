"""``pla-tvm compress``: imitate a trained baseline with PLA and export it (float and int8)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pla_tvm.commands import add_force_argument, emit
from pla_tvm.commands.data import add_source_arguments, load_for_model, require_training_splits
from pla_tvm.errors import ModelError
from pla_tvm.files import output_folder


def _summary(metrics: dict[str, Any]) -> str:
    """A few lines: the choice, test accuracy of each variant and of the reference models, sizes,
    FLOPs, the targets."""
    from pla_tvm.references import summary_line

    chosen = metrics["chosen"]
    variant = ", ".join(f"{key} {value}"
                        for key, value in chosen.get("estimator_params", {}).items())
    lines = [f"PLA k={chosen['k']} (used {chosen['k_used']}), lambda={chosen['alpha']:g}, "
             f"cluster sizes {chosen['cluster_sizes']}" + (f"; {variant}" if variant else "")]
    lines += [f"  {name:<18} test accuracy {m['accuracy']:.4f}  macro F1 {m['macro_f1']:.4f}"
              for name, m in metrics["test"].items()]
    lines += [summary_line(name, reference)
              for name, reference in metrics.get("references", {}).items()]
    sizes = metrics["tflite_bytes"]
    deployed = sizes.get("deployed", sizes["int8"])
    int4 = (f", with INT4 maps {sizes['int4']:,} B (4-bit weights)" if "int4" in sizes else "")
    lines.append(f"  parameters {metrics['parameters']['total']:,}, "
                 f"FLOPs/beat {metrics['flops_per_beat']['total']:,}, TFLite float "
                 f"{sizes['float32']:,} B, int8 {sizes['int8']:,} B{int4}")
    budget = metrics["size_budget"]
    lines.append(f"  int8 PLA {deployed:,} B vs the model it replaces "
                 f"{budget['replaced_model_bytes']:,} B ({budget['replaced_model_from']}): "
                 f"{budget['replaced_model_bytes'] / deployed:.1f}x smaller"
                 if deployed < budget["replaced_model_bytes"] else
                 f"  int8 PLA {deployed:,} B is NOT smaller than the model it replaces "
                 f"({budget['replaced_model_bytes']:,} B, {budget['replaced_model_from']})")
    if not metrics["baseline"]["int8_quantization_from_baseline"]:
        lines.append("  quantization: the PLA's own (no int8 model given); 'compile --pla' "
                     "needs an int8 model whose trunk output has the same quantization: pass "
                     "--int8 MODEL_INT8.tflite to compress for that model")
    for name, target in metrics["targets"].items():
        if target is not None:
            lines.append(f"  target {name}: {'met' if target['met'] else 'NOT met'} "
                         f"({', '.join(f'{k}={v}' for k, v in target.items() if k != 'met')})")
    return "\n".join(lines)


def _compress(args: argparse.Namespace) -> int:
    from pla_tvm.baseline.pipeline import METRICS_FILE as TRAIN_METRICS_FILE
    from pla_tvm.pla.pipeline import METRICS_FILE, compress
    from pla_tvm.pla.selection import DEFAULT_MAX_INT8_BYTES
    from pla_tvm.pla.teacher import load_model_teacher, load_teacher

    estimator_params = _estimator_params(args)  # option errors before any loading
    if args.baseline is not None:
        if args.int8 or args.features:
            raise ModelError("--int8 and --features go with --model; --baseline DIR reads the "
                             "Keras and int8 models 'pla-tvm train' wrote")
        baseline = Path(args.baseline)
        if baseline.is_dir() and not (baseline / TRAIN_METRICS_FILE).is_file():
            raise ModelError(f"--baseline {baseline} is not a complete 'pla-tvm train' output "
                             f"(no {TRAIN_METRICS_FILE}: an interrupted or failed train?); train "
                             f"again, or pass a model of your own with --model FILE.keras")
        teacher = load_teacher(baseline)
    else:
        teacher = load_model_teacher(args.model, args.int8, args.features)
    dataset = load_for_model(args, teacher.input_length, teacher.source)
    require_training_splits(dataset, "compress")
    with output_folder(args.out, option="--out", marker=METRICS_FILE, force=args.force) as work:
        metrics = compress(teacher, dataset, work, k=args.k, alpha=args.lam,
                           max_int8_bytes=(DEFAULT_MAX_INT8_BYTES if args.max_int8_bytes is None
                                           else args.max_int8_bytes or None),
                           smaller_than_model=not args.allow_larger, cv=args.cv,
                           cv_repeats=args.cv_repeats, n_jobs=args.jobs, random_state=args.seed,
                           progress=not args.json,
                           estimator_params=estimator_params)
    emit(args, json.dumps(metrics, indent=2, sort_keys=True) if args.json else _summary(metrics))
    return 0


def _estimator_params(args: argparse.Namespace) -> dict[str, Any]:
    """The PLA variant options: the target always (``compress`` distils by default, the
    estimator's default is the paper's features), the others where given or not the default."""
    from pla_tvm.pla.pipeline import DEFAULT_VARIANT

    params: dict[str, Any] = {"target": args.target}
    if args.target == "probabilities":
        temperature = (DEFAULT_VARIANT["temperature"] if args.temperature is None
                       else args.temperature)
        if not temperature > 0:
            raise ModelError(f"--temperature {temperature:g}: should be > 0")
        params["temperature"] = temperature
        if args.label_weight is not None:
            if not 0 <= args.label_weight <= 1:
                raise ModelError(f"--label-weight {args.label_weight:g}: should be in 0..1")
            params["label_weight"] = args.label_weight
    elif args.temperature is not None or args.label_weight is not None:
        raise ModelError(f"--temperature and --label-weight go with --target probabilities, "
                         f"not --target {args.target}")
    if args.cv_repeats < 1:
        raise ModelError(f"--cv-repeats {args.cv_repeats}: should be at least 1")
    if args.rank is not None:
        if args.rank < 1:
            raise ModelError(f"--rank {args.rank}: the rank must be at least 1")
        params["rank"] = args.rank
    if args.class_weight != "none":
        params["class_weight"] = args.class_weight
    if args.partition != "kmeans":
        params["partition"] = args.partition
    if args.weight_bits != 8:
        params["weight_bits"] = args.weight_bits
    return params


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``compress``."""
    parser = subparsers.add_parser(
        "compress", help="compress a trained baseline with PLA (k-means + ridge maps)",
        description="Fit PLA to a classifier's penultimate features (k and lambda by 5-fold "
        "cross-validation unless given), quantize it to int8 and write pla.npz, "
        "pla_float.tflite, pla_int8.tflite and metrics.json. The classifier is the output of "
        "'pla-tvm train' (--baseline DIR) or a Keras model of your own (--model FILE.keras, "
        "with --int8 FILE.tflite for its full-int8 model so that 'compile --pla' can swap its "
        "trunk); see docs/byom.md.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--baseline", metavar="DIR", help="output directory of 'pla-tvm train' "
                       "(PLA imitates its baseline_pruned.keras, whose conversion is "
                       "baseline_int8.tflite)")
    which.add_argument("--model", metavar="FILE.keras", help="your Keras classifier (.keras or "
                       ".h5): input [batch, L, 1] or [batch, L], ending in a Dense layer (linear "
                       "or softmax, or followed by a softmax)")
    parser.add_argument("--int8", metavar="FILE.tflite", help="with --model: its full-int8 "
                        "TFLite model (PLA takes its input, feature and head quantization)")
    parser.add_argument("--features", metavar="LAYER", help="with --model: the layer whose "
                        "output PLA imitates (default: the input of the last Dense layer)")
    parser.add_argument("--out", required=True, help="directory for the PLA outputs")
    parser.add_argument("--k", type=int, help="number of clusters (default: cross-validated 1..5)")
    parser.add_argument("--lam", type=float,
                        help="lambda, the maps' L2 penalty (default: 1 for --target "
                        "probabilities, else cross-validated 0.01..1000)")
    parser.add_argument("--max-int8-bytes", type=int,
                        help="flash budget of the int8 .tflite during selection; 0 for none "
                        "(default: pla_tvm.pla.selection.DEFAULT_MAX_INT8_BYTES, 64 KiB)")
    parser.add_argument("--allow-larger", action="store_true", help="do not require the int8 "
                        "PLA to be smaller than the int8 model it replaces (required by "
                        "default; without an int8 model, than its parameter count in bytes)")
    parser.add_argument("--rank", type=int, help="low-rank maps W_c = U_c V_c of this rank, "
                        "deployed factored (two int8 layers per cluster; budgeted at that size)")
    parser.add_argument("--target", choices=("probabilities", "features", "logits"),
                        default="probabilities",
                        help="what the maps imitate: the teacher's class probabilities "
                        "(softmax regressions, distillation), its features or its logits "
                        "(ridge regressions, the paper's PLA is 'features'; default: "
                        "probabilities)")
    parser.add_argument("--temperature", type=float, help="with --target probabilities: "
                        "softening of the teacher's logits (default: 2, pla_tvm.pla.pipeline."
                        "DEFAULT_VARIANT)")
    parser.add_argument("--label-weight", type=float,
                        help="with --target probabilities: weight of the one-hot labels mixed "
                        "into the teacher's probabilities, 0..1 (default: 0)")
    parser.add_argument("--class-weight", choices=("none", "balanced"), default="none",
                        help="weight beats by class in the regressions (default: none)")
    parser.add_argument("--partition", choices=("kmeans", "class"), default="kmeans",
                        help="'class' adds a centre per rare class (default: kmeans)")
    parser.add_argument("--weight-bits", type=int, choices=(8, 4), default=8,
                        help="width of the cluster maps' weights: 4 packs them two a byte "
                        "(also writes pla_int4.tflite; budgeted at that size; default: 8)")
    parser.add_argument("--cv", type=int, default=5, help="cross-validation folds (default: 5)")
    parser.add_argument("--cv-repeats", type=int, default=3,
                        help="repetitions of the cross-validation split with other shuffles "
                        "(default: 3)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel fits (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of folds and k-means")
    add_source_arguments(parser, resample=True)
    parser.add_argument("--json", action="store_true", help="print metrics.json instead of a "
                        "summary")
    add_force_argument(parser)
    parser.set_defaults(func=_compress)
