"""Beats from raw PhysioNet (WFDB) records: the paper's preprocessing for any record and rate.

ECG5000 was made from BIDMC CHF record chf07 (250 Hz) by cutting out each heartbeat and
interpolating it to 140 samples, then z-normalising it. This module does the same for any WFDB
record: choose a lead, take the beats from the record's reference annotations (or, where there
are none, from QRS detection), cut each beat around its R peak, resample it to 140 samples and
z-normalise it. Beats that cannot be cut (too close to the record's ends, a flat or invalid
signal) are counted by reason, never dropped silently.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pla_tvm.data.beats import (
    BEAT_LENGTH,
    ECG5000_CLASSES,
    UNLABELLED,
    BeatSet,
    is_flat,
    resample,
    znormalize,
)
from pla_tvm.errors import DataError, DataNotFoundError

LOG = logging.getLogger(__name__)

#: MIT-BIH beat annotation symbols mapped to ECG5000's classes (AAMI groups where they agree):
#: normal and bundle-branch/escape beats → normal; ``r`` → R-on-T PVC; ``V``/``E`` → PVC;
#: supraventricular premature or ectopic beats → SVPB; fusion, paced and unclassifiable beats →
#: unclassified.
BEAT_SYMBOL_CLASSES: dict[str, int] = {
    **dict.fromkeys("NLRBej", 0),
    "r": 1,
    **dict.fromkeys("VE", 2),
    **dict.fromkeys("AaJSn", 3),
    **dict.fromkeys("F/fQ?", 4),
}

#: Skip reasons, as reported in summaries.
SKIP_EDGE = "too close to the record's edge"
SKIP_NO_NEXT = "no following R peak (last beat)"
SKIP_RR = "RR interval outside the allowed range"
SKIP_INVALID = "invalid (NaN) samples in the beat"
SKIP_FLAT = "flat signal (cannot be normalised)"
SKIP_NON_BEAT = "non-beat annotations (rhythm, noise, comments)"


@dataclass(frozen=True)
class BeatWindow:
    """How a beat is cut around its R peak.

    ``mode="rr"`` takes the samples from a beat's R peak up to the next R peak, like ECG5000
    (whose beats start on the R down-stroke and are stretched to 140 samples); RR intervals
    outside ``[min_rr_s, max_rr_s]`` are skipped as missed or spurious detections.
    ``mode="fixed"`` takes ``before_s`` seconds before and ``after_s`` after the R peak; the
    default 0.2 s + 0.36 s is exactly 140 samples at the BIDMC database's 250 Hz.
    """

    mode: str = "rr"
    before_s: float = 0.2
    after_s: float = 0.36
    min_rr_s: float = 0.2
    max_rr_s: float = 2.0

    def __post_init__(self) -> None:
        if self.mode not in ("rr", "fixed"):
            raise ValueError(f"beat window mode must be 'rr' or 'fixed', got {self.mode!r}")
        if self.before_s < 0 or self.after_s <= 0 or self.before_s + self.after_s <= 0:
            raise ValueError(f"fixed beat window needs before_s >= 0 and after_s > 0, "
                             f"got {self.before_s} and {self.after_s}")

    @classmethod
    def parse(cls, text: str) -> "BeatWindow":
        """Parse ``"rr"`` or ``"BEFORE,AFTER"`` (seconds) as given on the command line."""
        if text == "rr":
            return cls()
        try:
            before, after = (float(part) for part in text.split(","))
        except ValueError:
            raise ValueError(f"beat window must be 'rr' or 'BEFORE,AFTER' in seconds, "
                             f"got {text!r}") from None
        return cls(mode="fixed", before_s=before, after_s=after)


def _read_record(path: Path):
    import wfdb  # deferred: wfdb pulls in pandas, which the other commands do not need

    header = path.with_suffix(".hea") if path.suffix != ".hea" else path
    if not header.is_file():
        raise DataNotFoundError(f"{header}: WFDB header not found (expected RECORD.hea and its "
                                f"signal file, e.g. 100.hea + 100.dat)")
    try:
        return wfdb.rdrecord(str(header.with_suffix("")))
    except Exception as error:  # wfdb raises bare ValueError/IndexError/OSError on bad files
        raise DataError(f"{header}: unreadable WFDB record ({type(error).__name__}: {error})") \
            from None


def lead_index(names: list[str], lead: int | str, path: Path) -> int:
    """The index of a lead given by name or index among a record's ``names``.

    Raises
    ------
    DataError
        If no lead has that name or the index is out of range (the message lists the leads).
    """
    if isinstance(lead, str) and not lead.isdigit():
        if lead not in names:
            raise DataError(f"{path}: no lead named {lead!r}; the record has {names}")
        return names.index(lead)
    index = int(lead)
    if not 0 <= index < len(names):
        raise DataError(f"{path}: lead index {index} out of range; the record has "
                        f"{len(names)} leads {names}")
    return index


def _select_lead(record, lead: int | str, path: Path) -> tuple[np.ndarray, str]:
    names = list(record.sig_name or [])
    index = lead_index(names, lead, path)
    return np.asarray(record.p_signal[:, index], dtype=np.float64), names[index]


def _annotated_beats(path: Path, annotator: str, skipped: Counter) -> tuple[np.ndarray, list[str]]:
    import wfdb

    try:
        annotation = wfdb.rdann(str(path), annotator)
    except Exception as error:
        raise DataError(f"{path}.{annotator}: unreadable annotation file "
                        f"({type(error).__name__}: {error})") from None
    samples, symbols = [], []
    for sample, symbol in zip(annotation.sample, annotation.symbol):
        if symbol in BEAT_SYMBOL_CLASSES:
            samples.append(int(sample))
            symbols.append(symbol)
        else:
            skipped[SKIP_NON_BEAT] += 1
    return np.array(samples, dtype=np.int64), symbols


def _detected_beats(signal: np.ndarray, fs: float) -> np.ndarray:
    from wfdb import processing

    LOG.info("no annotations: detecting QRS complexes with wfdb.processing.xqrs_detect")
    clean = np.nan_to_num(signal)
    peaks = processing.xqrs_detect(clean, fs, verbose=False)
    if len(peaks) == 0:
        return np.array([], dtype=np.int64)
    corrected = processing.correct_peaks(clean, peaks, search_radius=int(0.1 * fs),
                                         smooth_window_size=int(0.15 * fs))
    return np.unique(np.asarray(corrected, dtype=np.int64))


def _cut(signal: np.ndarray, peaks: np.ndarray, fs: float, window: BeatWindow,
         skipped: Counter, length: int) -> tuple[list[np.ndarray], list[int]]:
    """Cut and resample each beat; returns the beats and the indices of the peaks kept."""
    beats, kept = [], []
    before, after = int(round(window.before_s * fs)), int(round(window.after_s * fs))
    for index, peak in enumerate(peaks):
        if window.mode == "rr":
            if index + 1 >= len(peaks):
                skipped[SKIP_NO_NEXT] += 1
                continue
            start, stop = int(peak), int(peaks[index + 1])
            if not window.min_rr_s * fs <= stop - start <= window.max_rr_s * fs:
                skipped[SKIP_RR] += 1
                continue
        else:
            start, stop = int(peak) - before, int(peak) + after
            if start < 0 or stop > signal.size:
                skipped[SKIP_EDGE] += 1
                continue
        segment = signal[start:stop]
        if not np.all(np.isfinite(segment)):
            skipped[SKIP_INVALID] += 1
            continue
        beats.append(resample(segment, length))
        kept.append(index)
    return beats, kept


def load_record(path: str | Path, lead: int | str = 0, beats: str = "auto",
                annotator: str = "atr", window: BeatWindow | None = None,
                length: int = BEAT_LENGTH) -> BeatSet:
    """Read a WFDB record and return its beats, ``length`` samples each and z-normalised.

    Parameters
    ----------
    path : str or Path
        The record without extension (``…/mitdb/100``) or its ``.hea`` file.
    lead : int or str
        Lead index or name (``"MLII"``).
    beats : {"auto", "annotations", "detect"}
        Where R peaks come from: the ``annotator`` file (``"auto"`` falls back to QRS detection
        when it does not exist) or ``wfdb.processing.xqrs_detect``.
    annotator : str
        Annotation file extension, ``atr`` for PhysioNet's reference annotations.
    window : BeatWindow, optional
        How each beat is cut; default R-to-next-R like ECG5000.
    length : int, default=140
        Samples per beat after resampling (a model's input length).

    Returns
    -------
    BeatSet
        ``y`` holds ECG5000 class indices mapped from the annotation symbols (kept in
        ``symbols``), or ``UNLABELLED`` for detected beats; ``skipped`` counts unusable beats.

    Raises
    ------
    DataNotFoundError
        The header (or, with ``beats="annotations"``, the annotation file) does not exist.
    DataError
        The header or signal cannot be read, the lead does not exist, or no beat is usable.
    """
    if beats not in ("auto", "annotations", "detect"):
        raise ValueError(f"beats must be 'auto', 'annotations' or 'detect', got {beats!r}")
    window = window or BeatWindow()
    path = Path(path)
    path = path.with_suffix("") if path.suffix == ".hea" else path
    header = path.with_name(path.name + ".hea")
    record = _read_record(header)
    fs = float(record.fs or 0)
    if not np.isfinite(fs) or fs <= 0:
        raise DataError(f"{header}: sampling frequency (fs) is {record.fs!r}; expected a "
                        "positive number of samples per second")
    signal, lead_name = _select_lead(record, lead, path)
    skipped: Counter = Counter()
    annotation_file = path.with_name(f"{path.name}.{annotator}")
    if beats == "annotations" and not annotation_file.is_file():
        raise DataNotFoundError(f"{annotation_file}: annotation file not found")
    symbols: list[str] | None = None
    if beats != "detect" and annotation_file.is_file():
        peaks, symbols = _annotated_beats(path, annotator, skipped)
    else:
        peaks = _detected_beats(signal, fs)
    segments, kept = _cut(signal, peaks, fs, window, skipped, length)
    segments_array = np.array(segments).reshape(-1, length)
    flat = is_flat(segments_array)
    skipped[SKIP_FLAT] += int(flat.sum())
    kept_indices = np.array(kept, dtype=np.int64)[~flat]
    if kept_indices.size == 0:
        raise DataError(f"{path}: no usable beats in lead {lead_name} "
                        f"({len(peaks)} R peaks found; skipped: {dict(+skipped) or 'none'})")
    kept_symbols = tuple(symbols[i] for i in kept_indices) if symbols is not None else None
    labels = (np.array([BEAT_SYMBOL_CLASSES[s] for s in kept_symbols], dtype=np.int64)
              if kept_symbols is not None else np.full(kept_indices.size, UNLABELLED, np.int64))
    LOG.info("%s lead %s: %d beats, skipped %s", path, lead_name, kept_indices.size,
             dict(+skipped))
    return BeatSet(x=znormalize(segments_array[~flat]), y=labels, class_names=ECG5000_CLASSES,
                   source=f"{path} (lead {lead_name})", symbols=kept_symbols,
                   skipped=dict(+skipped), peaks=np.asarray(peaks, dtype=np.int64)[kept_indices])
