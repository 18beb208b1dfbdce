"""Containers and per-beat preprocessing shared by every data source.

A beat is a fixed-length (140-sample), z-normalised window of single-lead ECG. The UCR ECG5000
beats were produced that way from PhysioNet's BIDMC CHF record chf07 (each beat interpolated to 140
samples, then z-normalised with the sample standard deviation), so raw records loaded with
:mod:`pla_tvm.data.records` go through the same two functions here to look like the training data.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

#: Samples in one ECG5000 beat, the input length of the models ``pla-tvm train`` builds (a user's
#: own model may take another length: see :meth:`BeatSet.resampled`).
BEAT_LENGTH = 140

#: ECG5000's classes, in label order (label 1 is class index 0).
ECG5000_CLASSES: tuple[str, ...] = (
    "normal",
    "R-on-T PVC",
    "PVC",
    "SVPB/ectopic",
    "unclassified",
)

#: Class index of a beat whose class is unknown (beats found by QRS detection carry no label).
UNLABELLED = -1


@dataclass(frozen=True)
class BeatSet:
    """A set of beats with their classes.

    Attributes
    ----------
    x : np.ndarray
        ``float32 [n, length]`` beats (140 samples for ECG5000).
    y : np.ndarray
        ``int64 [n]`` class indices into ``class_names`` (``UNLABELLED`` = -1 where unknown).
    class_names : tuple of str
        Names of the classes, in index order.
    source : str
        Where the beats came from (a file path or a record), for messages and reports.
    symbols : tuple of str, optional
        The annotation symbol of each beat where the source has one (PhysioNet records).
    skipped : dict of str to int
        Beats the loader could not use, by reason; nothing is dropped without being counted here.
    peaks : np.ndarray, optional
        ``int64 [n]`` sample index of each beat's R peak in its record (PhysioNet records).
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    source: str
    symbols: tuple[str, ...] | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    peaks: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.x.ndim != 2 or self.y.shape != (self.x.shape[0],):
            raise ValueError(f"{self.source}: beats must be [n, length] with n labels, "
                             f"got x {self.x.shape} and y {self.y.shape}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, limit: int | None) -> "BeatSet":
        """``limit`` beats evenly spaced over the set (all of them when ``limit`` is None).

        Evenly spaced rather than the first ``limit``: UCR files are sorted by class, so a
        prefix of ECG5000's test split is all normal beats.
        """
        if limit is None or limit >= len(self):
            return self
        index = evenly_spaced(len(self), limit)
        symbols = tuple(self.symbols[i] for i in index) if self.symbols is not None else None
        return BeatSet(x=self.x[index], y=self.y[index], class_names=self.class_names,
                       source=f"{self.source} ({limit} of {len(self)} beats, evenly spaced)",
                       symbols=symbols, skipped=self.skipped,
                       peaks=None if self.peaks is None else self.peaks[index])

    @property
    def length(self) -> int:
        """Samples per beat."""
        return int(self.x.shape[1])

    def resampled(self, length: int) -> "BeatSet":
        """The same beats linearly interpolated to ``length`` samples and z-normalised again.

        What a model trained on another beat length needs: the UCR archive equalised its beats'
        lengths the same way (:func:`resample`). The set itself is returned when it already has
        ``length`` samples.
        """
        if length == self.length:
            return self
        x = znormalize(np.array([resample(beat, length) for beat in self.x]))
        return BeatSet(x=x, y=self.y, class_names=self.class_names,
                       source=f"{self.source} (resampled from {self.length} to {length} "
                       f"samples)", symbols=self.symbols, skipped=self.skipped,
                       peaks=self.peaks)

    def class_counts(self) -> dict[str, int]:
        """Beats per class name (every class listed, ``"unlabelled"`` only when present)."""
        counts = Counter(int(label) for label in self.y)
        result = {name: counts.get(index, 0) for index, name in enumerate(self.class_names)}
        if counts.get(UNLABELLED):
            result["unlabelled"] = counts[UNLABELLED]
        return result


@dataclass(frozen=True)
class Dataset:
    """Named splits of one data source (``train``/``test`` for UCR, ``all`` for a record)."""

    name: str
    splits: dict[str, BeatSet]

    @property
    def class_names(self) -> tuple[str, ...]:
        return next(iter(self.splits.values())).class_names

    def __getitem__(self, split: str) -> BeatSet:
        try:
            return self.splits[split]
        except KeyError:
            raise KeyError(f"{self.name} has no split {split!r}; it has "
                           f"{', '.join(self.splits)}") from None

    @property
    def train(self) -> BeatSet:
        return self["train"]

    @property
    def test(self) -> BeatSet:
        return self["test"]


def evenly_spaced(n: int, limit: int | None) -> np.ndarray:
    """Indices of ``limit`` items evenly spaced over ``range(n)`` (all of them without a limit)."""
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def znormalize(beats: np.ndarray) -> np.ndarray:
    """Z-normalise each row to mean 0 and sample standard deviation 1.

    The sample (``ddof=1``) deviation matches ECG5000, whose beats have a population deviation of
    sqrt(139/140). Rows with zero deviation (a flat line) cannot be normalised; callers must
    remove them first (see :func:`is_flat`).
    """
    beats = np.asarray(beats, dtype=np.float64)
    centred = beats - beats.mean(axis=-1, keepdims=True)
    return (centred / beats.std(axis=-1, ddof=1, keepdims=True)).astype(np.float32)


def is_flat(beats: np.ndarray) -> np.ndarray:
    """True for rows that are (numerically) constant, which z-normalisation cannot scale."""
    beats = np.asarray(beats, dtype=np.float64)
    scale = np.maximum(np.abs(beats).max(axis=-1), 1.0)
    return beats.std(axis=-1) <= 1e-9 * scale


def resample(segment: np.ndarray, length: int = BEAT_LENGTH) -> np.ndarray:
    """Linearly interpolate a 1-D segment to ``length`` samples, keeping both end points.

    Linear interpolation (what the UCR archive used to equalise beat lengths) rather than FFT
    resampling, which assumes a periodic signal and rings at the edges of a cut-out beat. A
    segment that already has ``length`` samples is returned unchanged.
    """
    segment = np.asarray(segment, dtype=np.float64)
    if segment.ndim != 1 or segment.size < 2:
        raise ValueError(f"cannot resample a segment of shape {segment.shape}")
    if segment.size == length:
        return segment.copy()
    old_positions = np.linspace(0.0, 1.0, segment.size)
    new_positions = np.linspace(0.0, 1.0, length)
    return np.interp(new_positions, old_positions, segment)
