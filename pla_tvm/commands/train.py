"""``pla-tvm train``: the baseline ResNet, its float and pruned-int8 TFLite models, metrics."""

from __future__ import annotations

import argparse
import json

from pla_tvm.baseline.config import (
    CLASS_WEIGHTINGS,
    PRESETS,
    PruningSettings,
    TrainSettings,
    get_config,
)
from pla_tvm.commands import add_force_argument, emit
from pla_tvm.commands.data import add_source_arguments, load_from_args, require_training_splits
from pla_tvm.files import output_folder


def _train(args: argparse.Namespace) -> int:
    from pla_tvm.baseline.pipeline import METRICS_FILE, run_training

    settings = TrainSettings(epochs=args.epochs, seed=args.seed, class_weight=args.class_weight,
                             patience=args.patience or TrainSettings.patience)
    pruning = PruningSettings(target_sparsity=args.sparsity, finetune_epochs=args.finetune_epochs)
    dataset = load_from_args(args)
    require_training_splits(dataset, "train")
    with output_folder(args.out, option="--out", marker=METRICS_FILE, force=args.force) as work:
        metrics = run_training(dataset, work, get_config(args.config), settings, pruning,
                               tflm_limit=args.tflm_limit)
    if args.json:
        emit(args, json.dumps(metrics, indent=2, sort_keys=True))
        return 0
    lines = [f"wrote {args.out}: {metrics['parameters']:,} parameters, {metrics['flops']:,} "
             f"FLOPs, sparsity {metrics['sparsity']['reached']:.3f}"]
    lines += [f"  {name:<13} accuracy {result['accuracy']:.4f}  F1 {result['f1']:.4f}  "
              f"macro F1 {result['macro_f1']:.4f}  ({result['n']} beats)"
              for name, result in metrics["evaluations"].items()]
    emit(args, "\n".join(lines))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``."""
    parser = subparsers.add_parser("train", help="train the baseline ResNet and export TFLite "
                                   "models (float, pruned int8)")
    parser.add_argument("--out", required=True, help="run directory to write")
    parser.add_argument("--config", choices=sorted(PRESETS), default="paper",
                        help="architecture preset (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=TrainSettings.epochs,
                        help="maximum epochs; early stopping usually ends sooner "
                        "(default: %(default)s)")
    parser.add_argument("--patience", type=int, help="early-stopping patience in epochs "
                        f"(default: {TrainSettings.patience})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--class-weight", choices=CLASS_WEIGHTINGS, default="sqrt",
                        help="class imbalance weighting of the loss (default: %(default)s)")
    parser.add_argument("--sparsity", type=float, default=PruningSettings.target_sparsity,
                        help="target sparsity of the pruned model (default: %(default)s)")
    parser.add_argument("--finetune-epochs", type=int, default=PruningSettings.finetune_epochs,
                        help="fine-tuning epochs while pruning (default: %(default)s)")
    parser.add_argument("--tflm-limit", type=int, help="evaluate N evenly spaced test beats on "
                        "TFLite Micro (~85 ms a beat for the paper model; default: all)")
    parser.add_argument("--json", action="store_true", help="print metrics.json")
    add_force_argument(parser)
    add_source_arguments(parser)
    parser.set_defaults(func=_train)
