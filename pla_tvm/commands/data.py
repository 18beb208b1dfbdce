"""``pla-tvm data summary``: what a data source holds, per split and per class."""

from __future__ import annotations

import argparse
import json
import sys

from pla_tvm.commands import emit
from pla_tvm.data.records import BeatWindow
from pla_tvm.data.sources import SOURCE_HELP, format_summary, load_source, summarize
from pla_tvm.errors import DataError


def add_source_arguments(parser: argparse.ArgumentParser, default: str | None = "ecg5000",
                         resample: bool = False) -> None:
    """The options every command that reads beats shares: source, data directory, lead, window;
    with ``resample``, ``--resample`` (commands that feed the beats to a model)."""
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
    if resample:
        parser.add_argument("--resample", action="store_true",
                            help="interpolate beats of another length to the model's input "
                            "length (then z-normalise them again); without it such data is "
                            "refused. WFDB beats are always cut to the model's length")


def load_from_args(args: argparse.Namespace):
    """Load the dataset named by :func:`add_source_arguments`' options."""
    return load_source(args.source, data_dir=args.data_dir, lead=args.lead, beats=args.beats,
                       window=args.window)


def load_for_model(args: argparse.Namespace, length: int, model: object):
    """Load the source for a model that takes ``length``-sample beats.

    WFDB beats are cut and resampled to ``length`` anyway. UCR beats of another length are
    resampled with ``--resample`` (a note says so on stderr) and refused without it.

    Raises
    ------
    DataError
        If the beats have another length and ``--resample`` was not given.
    """
    from pla_tvm.data.beats import Dataset

    dataset = load_source(args.source, data_dir=args.data_dir, lead=args.lead, beats=args.beats,
                          window=args.window, length=length)
    have = next(iter(dataset.splits.values())).length
    if have == length:
        return dataset
    if not getattr(args, "resample", False):
        raise DataError(f"{dataset.name} has {have}-sample beats but {model} takes {length}; "
                        f"pass --resample to interpolate them to {length} samples")
    print(f"note: resampling {dataset.name}'s {have}-sample beats to the {length} samples "
          f"{model} takes (linear interpolation, then z-normalised)", file=sys.stderr)
    return Dataset(name=dataset.name, splits={name: beats.resampled(length)
                                              for name, beats in dataset.splits.items()})


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
