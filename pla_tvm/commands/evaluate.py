"""``pla-tvm evaluate``: the paper's metrics of a .keras or .tflite model on a data source."""

from __future__ import annotations

import argparse
import json

from pla_tvm.commands import emit, positive_int
from pla_tvm.commands.data import add_source_arguments, load_for_model
from pla_tvm.inference import INTERPRETERS, load_runner


def _evaluate_stream(args: argparse.Namespace, runner) -> int:
    from pla_tvm.errors import DataError
    from pla_tvm.stream.pipeline import host_stream, report_lines
    from pla_tvm.stream.records import read_raw_record

    kind, _, path = (args.source or "").partition(":")
    if kind != "wfdb" or not path:
        raise DataError(f"--source {args.source}: --stream reads a raw record, --source "
                        "wfdb:PATH/RECORD")
    report, _ = host_stream(read_raw_record(path, args.lead), runner, args.adc_bits)
    if args.json:
        emit(args, json.dumps(report, indent=2, sort_keys=True))
        return 0
    lines = [f"{report['runner']}, streamed: {report['record']} lead {report['lead']}, "
             f"{report['seconds_of_signal']:,.1f} s at {report['fs']} Hz through the integer "
             f"front end", *report_lines(report)]
    emit(args, "\n".join(lines))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from pla_tvm.baseline.pipeline import evaluate_model

    runner = load_runner(args.model, args.interpreter)
    if args.stream:
        return _evaluate_stream(args, runner)
    dataset = load_for_model(args, runner.input_length, args.model)
    split = args.split or ("test" if "test" in dataset.splits else next(iter(dataset.splits)))
    result, _ = evaluate_model(args.model, dataset, split, args.interpreter, args.limit,
                               runner=runner)
    if args.json:
        emit(args, json.dumps(result, indent=2, sort_keys=True))
        return 0
    lines = [f"{result['runner']} on {dataset.name} {split} ({result['n']} beats)"]
    if result["n_scored"]:
        if result["n_scored"] < result["n"]:
            lines.append(f"  scored on the {result['n_scored']} labelled beats")
        lines += [f"  {key:<12} {result[key]:.4f}"
                  for key in ("accuracy", "sensitivity", "precision", "f1", "macro_f1")]
        lines.append("  recall per class: " + ", ".join(
            f"{name} {value:.3f}" for name, value in result["per_class_recall"].items()))
    else:
        lines.append("  no labelled beats: predictions only")
    lines.append("  predicted: " + ", ".join(f"{name} {count}"
                                             for name, count in result["class_counts"].items()))
    if "tflm_arena_bytes" in result:
        lines.append(f"  TFLite Micro tensor arena: {result['tflm_arena_bytes']:,} bytes")
    emit(args, "\n".join(lines))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate``."""
    parser = subparsers.add_parser("evaluate", help="metrics of a .keras or .tflite model")
    parser.add_argument("model", help="model file (.keras, .h5 or .tflite)")
    parser.add_argument("--interpreter", choices=INTERPRETERS, default="litert",
                        help="TFLite interpreter for .tflite models (default: %(default)s)")
    parser.add_argument("--split", help="split to evaluate (default: test, or the only one)")
    parser.add_argument("--limit", type=positive_int, help="evaluate N beats evenly spaced over "
                        "the split (UCR files are sorted by class, so not the first N)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--stream", action="store_true", help="stream a raw record (--source "
                        "wfdb:PATH/RECORD) through the integer ECG front end the streaming "
                        "firmware runs (docs/stream.md), on the host")
    parser.add_argument("--adc-bits", type=int, default=12, metavar="BITS", help="with "
                        "--stream: the ADC's resolution (default: %(default)s)")
    add_source_arguments(parser, resample=True)
    parser.set_defaults(func=_evaluate)
