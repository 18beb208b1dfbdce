"""Read UCR time-series archive files (ECG5000 and any other UCR dataset, of any series length).

The archive has shipped three layouts over the years, all one series per line with its class:
whitespace-separated text with the label first (the 2015 ``.txt`` files, also comma-separated
files without extension), tab-separated ``.tsv`` with the label first (2018), and Weka ``.arff``
with the label last. Every malformed line is reported with the file, line and column, because a
silently skipped or mis-parsed beat would corrupt accuracy figures without anyone noticing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from pla_tvm.data.beats import BEAT_LENGTH, BeatSet
from pla_tvm.errors import DataError, DataNotFoundError

#: File name endings tried for a split, in order of preference.
UCR_SUFFIXES = (".txt", ".tsv", ".arff", "")


def _data_lines(path: Path, text: str) -> Iterator[tuple[int, list[str], bool]]:
    """Yield ``(line number, fields, label_last)`` for each data line of a UCR file."""
    is_arff = path.suffix.lower() == ".arff"
    in_data = not is_arff
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("%") or line.startswith("#"):
            continue
        if is_arff and not in_data:
            if line.lower().startswith("@data"):
                in_data = True
            continue
        separator = "," if ("," in line and "\t" not in line) else None
        yield number, [field.strip().strip("'\"") for field in line.split(separator)], is_arff


def _parse_label(text: str, path: Path, number: int, n_classes: int | None) -> int:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path}, line {number}: label {text!r} is not a number") from None
    if not value.is_integer() or value < 1 or (n_classes is not None and value > n_classes):
        expected = f"1..{n_classes}" if n_classes else "a positive integer"
        raise DataError(f"{path}, line {number}: unknown label {text!r}; expected {expected}")
    return int(value)


def _parse_samples(fields: Sequence[str], path: Path, number: int, first_column: int) -> np.ndarray:
    try:
        samples = np.array(fields, dtype=np.float64)
    except ValueError:
        for offset, field in enumerate(fields):
            try:
                float(field)
            except ValueError:
                raise DataError(f"{path}, line {number}, column {first_column + offset}: "
                                f"non-numeric value {field!r}") from None
        raise
    if not np.all(np.isfinite(samples)):
        offset = int(np.flatnonzero(~np.isfinite(samples))[0])
        raise DataError(f"{path}, line {number}, column {first_column + offset}: "
                        f"{fields[offset]} is not a finite number (NaN or infinity)")
    return samples


def read_ucr_labels_and_series(path: Path, length: int | None = BEAT_LENGTH,
                               n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Parse one UCR file into 1-based labels ``int64 [n]`` and series ``float32 [n, length]``.

    ``length=None`` takes the length of the file's first series (every other line must have it).

    Raises
    ------
    DataNotFoundError
        If the file does not exist.
    DataError
        If the file is empty, or a line has the wrong number of columns (which is also how a
        truncated file shows), a non-numeric or non-finite value, or a label outside
        ``1..n_classes``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read as UCR text ({error})") from None
    labels, series = [], []
    unterminated_line = len(text.splitlines()) if text and not text.endswith("\n") else None
    for number, fields, label_last in _data_lines(path, text):
        try:
            if length is None:
                if len(fields) < 3:
                    raise DataError(f"{path}, line {number}: {len(fields)} columns, expected a "
                                    f"label and at least 2 samples")
                length = len(fields) - 1
            if len(fields) != length + 1:
                raise DataError(f"{path}, line {number}: {len(fields)} columns, expected "
                                f"{length + 1} (a label and {length} samples)")
            label_text = fields[-1] if label_last else fields[0]
            sample_fields = fields[:-1] if label_last else fields[1:]
            labels.append(_parse_label(label_text, path, number, n_classes))
            series.append(_parse_samples(sample_fields, path, number, 1 if label_last else 2))
        except DataError as error:
            if number == unterminated_line:
                raise DataError(f"{error} (the last line has no line end: the file looks "
                                f"truncated)") from None
            raise
    if not series:
        raise DataError(f"{path}: contains no series")
    return np.array(labels, dtype=np.int64), np.array(series, dtype=np.float32)


def find_split_file(directory: Path, name: str, split: str) -> Path | None:
    """The file holding ``split`` ("train"/"test") of dataset ``name`` in ``directory``, if any."""
    for suffix in UCR_SUFFIXES:
        candidate = Path(directory) / f"{name}_{split.upper()}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def load_ucr_splits(files: dict[str, Path], class_names: Sequence[str] | None = None,
                    length: int | None = BEAT_LENGTH) -> dict[str, BeatSet]:
    """Load UCR split files into :class:`BeatSet` objects with 0-based classes.

    ``length=None`` takes the series length from the first split's file; every split must have it.

    With ``class_names`` the labels must lie in ``1..len(class_names)``; without, the classes
    are named ``"class 1"`` … after the largest label found in any split, so that every split
    maps a label to the same index.
    """
    n_classes = len(class_names) if class_names is not None else None
    parsed = {}
    for split, path in files.items():
        parsed[split] = read_ucr_labels_and_series(path, length, n_classes)
        length = parsed[split][1].shape[1]
    if class_names is None:
        largest = max(int(labels.max()) for labels, _ in parsed.values())
        class_names = [f"class {label}" for label in range(1, largest + 1)]
    return {split: BeatSet(x=series, y=labels - 1, class_names=tuple(class_names),
                           source=str(files[split]))
            for split, (labels, series) in parsed.items()}
