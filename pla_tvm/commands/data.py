"""``pla-tvm data summary``: what a data source holds, per split and per class."""

from __future__ import annotations

import argparse
import json

from pla_tvm.commands import emit
from pla_tvm.data.records import BeatWindow
from pla_tvm.data.sources import SOURCE_HELP, format_summary, load_source, summarize
from pla_tvm.errors import DataError


def add_source_arguments(parser: argparse.ArgumentParser, default: str | None = "ecg5000") -> None:
    """The options every command that reads beats shares: source, data directory, lead, window."""
    parser.add_argument("--source", default=default, required=default is None,
                        help=f"{SOURCE_HELP} (default: %(default)s)")
    parser.add_argument("--data-dir", help="directory holding the UCR files "
                        "(default: $PLA_TVM_DATA, ../shared/data, then ~/.cache/pla-tvm)")
    parser.add_argument("--lead", default="0", help="WFDB lead index or name (default: 0)")
    parser.add_argument("--beats", choices=("auto", "annotations", "detect"), default="auto",
                        help="WFDB beat positions: annotations, QRS detection, or annotations "
                        "when present (default)")
    parser.add_argument("--window", default="rr", type=BeatWindow.parse,
                        help="WFDB beat window: 'rr' (R peak to next R peak, like ECG5000) or "
                        "'BEFORE,AFTER' seconds around the R peak (default: rr)")


def load_from_args(args: argparse.Namespace):
    """Load the dataset named by :func:`add_source_arguments`' options."""
    return load_source(args.source, data_dir=args.data_dir, lead=args.lead, beats=args.beats,
                       window=args.window)


def require_training_splits(dataset, command: str) -> None:
    """Refuse a source without the labelled ``train`` and ``test`` splits a command fits on."""
    missing = [name for name in ("train", "test") if name not in dataset.splits]
    if missing:
        raise DataError(f"{command} needs a labelled source with train and test splits; "
                        f"{dataset.name} has {', '.join(dataset.splits) or 'no split'} (use "
                        "--source ecg5000, or a folder of UCR train/test files)")


def _summary(args: argparse.Namespace) -> int:
    summary = summarize(load_from_args(args))
    emit(args, json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data summary``."""
    data = subparsers.add_parser("data", help="inspect ECG data sources")
    actions = data.add_subparsers(dest="action", required=True, metavar="ACTION")
    summary = actions.add_parser("summary", help="beats per split and class, and skipped beats")
    add_source_arguments(summary)
    summary.add_argument("--json", action="store_true", help="print JSON instead of a table")
    summary.set_defaults(func=_summary)
