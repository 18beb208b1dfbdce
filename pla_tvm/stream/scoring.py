"""Scoring a beat detector against reference annotations, as ANSI/AAMI EC57 does.

A detected R peak matches a reference beat when they are at most 150 ms apart; each is matched at
most once, in time order (the nearest free detection of each reference beat). Sensitivity is
``TP / (TP + FN)`` over the reference beats, positive predictivity ``TP / (TP + FP)`` over the
detections.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: EC57's matching window (seconds).
MATCH_WINDOW_S = 0.15


def match_peaks(detected: np.ndarray, reference: np.ndarray, fs: float,
                window_s: float = MATCH_WINDOW_S) -> dict[str, Any]:
    """Match detected R peaks to reference beats and score the detector.

    Parameters
    ----------
    detected, reference : np.ndarray
        Sample indices, ascending.
    fs : float
        Sampling rate (Hz).
    window_s : float
        Largest distance of a match (seconds).

    Returns
    -------
    dict
        ``true_positives``, ``false_negatives``, ``false_positives``, ``sensitivity``,
        ``positive_predictivity`` (None without beats to divide by), ``matches`` (int64
        ``[TP, 2]``: indices into ``reference`` and ``detected``) and ``median_offset_ms``.
    """
    detected = np.asarray(detected, dtype=np.int64)
    reference = np.asarray(reference, dtype=np.int64)
    tolerance = window_s * fs
    used = np.zeros(detected.size, dtype=bool)
    matches = []
    for index, beat in enumerate(reference):
        lo = int(np.searchsorted(detected, beat - tolerance, side="left"))
        hi = int(np.searchsorted(detected, beat + tolerance, side="right"))
        free = [k for k in range(lo, hi) if not used[k]]
        if free:
            nearest = min(free, key=lambda k: (abs(int(detected[k]) - int(beat)), k))
            used[nearest] = True
            matches.append((index, nearest))
    tp = len(matches)
    pairs = np.array(matches, dtype=np.int64).reshape(-1, 2)
    offsets = detected[pairs[:, 1]] - reference[pairs[:, 0]] if tp else np.zeros(0)
    return {
        "true_positives": tp,
        "false_negatives": int(reference.size - tp),
        "false_positives": int(detected.size - tp),
        "sensitivity": tp / reference.size if reference.size else None,
        "positive_predictivity": tp / detected.size if detected.size else None,
        "matches": pairs,
        "median_offset_ms": float(np.median(offsets) * 1000 / fs) if tp else None,
    }
