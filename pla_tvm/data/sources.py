"""Turn a ``--source`` string into a :class:`Dataset`, and summarise a dataset.

Sources: ``ecg5000`` (the seed paper's data, 140-sample beats), ``ucr:NAME`` (any UCR dataset, at
its own series length) and ``wfdb:PATH/RECORD`` (a raw PhysioNet record, preprocessed by
:mod:`pla_tvm.data.records` into beats of the length asked for, 140 by default).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from pla_tvm.data.beats import BEAT_LENGTH, ECG5000_CLASSES, Dataset
from pla_tvm.data.locate import locate_ucr
from pla_tvm.data.records import BeatWindow, load_record
from pla_tvm.data.ucr import load_ucr_splits
from pla_tvm.errors import DataError

SOURCE_HELP = "ecg5000, ucr:NAME (a UCR dataset) or wfdb:PATH/RECORD"


def load_ucr(name: str = "ECG5000", data_dir: str | Path | None = None,
             download: bool = True) -> Dataset:
    """Load both splits of a UCR dataset (ECG5000's classes get their names)."""
    files = locate_ucr(name, Path(data_dir) if data_dir is not None else None, download)
    is_ecg5000 = name.upper() == "ECG5000"
    return Dataset(name=name, splits=load_ucr_splits(
        files, ECG5000_CLASSES if is_ecg5000 else None, BEAT_LENGTH if is_ecg5000 else None))


def load_ecg5000(data_dir: str | Path | None = None) -> Dataset:
    """The ECG5000 train (500 beats) and test (4,499 here, 4,500 officially) splits."""
    return load_ucr("ECG5000", data_dir)


def load_source(source: str, data_dir: str | Path | None = None, lead: int | str = 0,
                beats: str = "auto", window: BeatWindow | None = None,
                length: int = BEAT_LENGTH) -> Dataset:
    """Load the dataset a ``--source`` string names.

    UCR files keep their own series length; a WFDB record's beats are cut and resampled to
    ``length`` samples (the input length of the model they are for).

    Raises
    ------
    DataError
        For a source string of none of the known forms.
    """
    kind, _, argument = source.partition(":")
    if source.lower() == "ecg5000":
        return load_ecg5000(data_dir)
    if kind == "ucr" and argument:
        return load_ucr(argument, data_dir)
    if kind == "wfdb" and argument:
        beat_set = load_record(argument, lead=lead, beats=beats, window=window, length=length)
        return Dataset(name=argument, splits={"all": beat_set})
    raise DataError(f"unknown data source {source!r}; expected {SOURCE_HELP}")


def summarize(dataset: Dataset) -> dict[str, Any]:
    """Beats in total, per split and per class, and skipped beats by reason (JSON-ready)."""
    per_class: Counter = Counter()
    skipped: Counter = Counter()
    splits = {}
    for name, beat_set in dataset.splits.items():
        counts = beat_set.class_counts()
        per_class.update(counts)
        skipped.update(beat_set.skipped)
        splits[name] = {"source": beat_set.source, "beats": len(beat_set),
                        "per_class": counts, "skipped": dict(beat_set.skipped)}
        if beat_set.symbols is not None:
            splits[name]["per_symbol"] = dict(sorted(Counter(beat_set.symbols).items()))
    return {
        "dataset": dataset.name,
        "class_names": list(dataset.class_names),
        "total_beats": sum(split["beats"] for split in splits.values()),
        "per_class": {name: per_class[name] for name in counts},
        "skipped": dict(skipped),
        "total_skipped": sum(skipped.values()),
        "splits": splits,
    }


def format_summary(summary: dict[str, Any]) -> str:
    """A human-readable table of :func:`summarize`'s result."""
    names = list(summary["per_class"])
    width = max(len(name) for name in names + ["split"]) + 2
    header = f"{'split':<10}{'beats':>8}" + "".join(f"{name:>{width}}" for name in names)
    lines = [f"dataset {summary['dataset']}", header]
    rows = [(split, info["beats"], info["per_class"]) for split, info in summary["splits"].items()]
    rows.append(("total", summary["total_beats"], summary["per_class"]))
    for split, beats, counts in rows:
        lines.append(f"{split:<10}{beats:>8}"
                     + "".join(f"{counts.get(name, 0):>{width}}" for name in names))
    for split, info in summary["splits"].items():
        lines.append(f"{split}: {info['source']}")
        if info.get("per_symbol"):
            lines.append("  annotation symbols: " + ", ".join(
                f"{symbol} {count}" for symbol, count in info["per_symbol"].items()))
    skipped = summary["skipped"]
    lines.append("skipped: " + (", ".join(f"{count} {reason}" for reason, count in skipped.items())
                                if skipped else "none"))
    return "\n".join(lines)
