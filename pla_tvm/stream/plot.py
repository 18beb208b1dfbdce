"""A stretch of a streamed record with its detected R peaks coloured by class (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pla_tvm.data.beats import ECG5000_CLASSES

#: One colour per class, in class order (normal, R-on-T PVC, PVC, SVPB, unclassified).
CLASS_COLOURS = ("tab:green", "tab:purple", "tab:red", "tab:orange", "tab:gray")


def plot_stream(path: str | Path, samples: np.ndarray, fs: int, r_peaks: np.ndarray,
                beat_peaks: np.ndarray, classes: np.ndarray, *, title: str,
                start_s: float = 0.0, seconds: float = 10.0,
                reference: np.ndarray | None = None,
                class_names: tuple[str, ...] = ECG5000_CLASSES) -> Path:
    """Draw ``seconds`` of the signal from ``start_s`` with the R peaks the stream found.

    Each classified beat's R peak is a dot in its class's colour; an R peak whose beat was not
    classified (the last one, or an RR interval out of range) is a black cross; reference
    annotations, if given, are ticks along the bottom.

    Parameters
    ----------
    path : str or Path
        The PNG to write (its folder must exist).
    samples : np.ndarray
        The raw samples (ADC units).
    fs : int
        Samples per second.
    r_peaks, beat_peaks, classes : np.ndarray
        Every R peak; the R peak of each classified beat and its class.
    title : str
        Figure title.
    start_s, seconds : float
        The stretch shown.
    reference : np.ndarray, optional
        Annotated beat positions.
    class_names : tuple of str
        Names of the classes (legend).

    Returns
    -------
    Path
        The file written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo = max(0, int(start_s * fs))
    hi = min(len(samples), lo + int(seconds * fs))
    t = np.arange(lo, hi) / fs
    figure, axes = plt.subplots(figsize=(11, 3.8))
    axes.plot(t, samples[lo:hi], color="0.3", linewidth=0.8)

    def inside(peaks):
        peaks = np.asarray(peaks, dtype=np.int64)
        return peaks[(peaks >= lo) & (peaks < hi)]

    classified = dict(zip(np.asarray(beat_peaks).tolist(), np.asarray(classes).tolist()))
    for index, name in enumerate(class_names):
        chosen = [p for p in inside(r_peaks) if classified.get(int(p)) == index]
        if chosen:
            axes.scatter(np.array(chosen) / fs, samples[chosen], s=36, zorder=3,
                         color=CLASS_COLOURS[index % len(CLASS_COLOURS)], label=name)
    other = [p for p in inside(r_peaks) if int(p) not in classified]
    if other:
        axes.scatter(np.array(other) / fs, samples[other], marker="x", color="black", zorder=3,
                     label="R peak, beat not classified")
    if reference is not None:
        marks = inside(reference)
        bottom = float(np.min(samples[lo:hi])) if hi > lo else 0.0
        axes.scatter(marks / fs, np.full(marks.size, bottom), marker="|", s=80, color="tab:blue",
                     label="annotated beat")
    axes.set_xlabel("time (s)")
    axes.set_ylabel("ADC value")
    axes.set_title(title, fontsize=10)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, ncol=7,
                frameon=False)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
