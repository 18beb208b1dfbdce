"""Synthetic ECG for the streaming front end's tests: Gaussian P, Q, R, S and T waves."""

from __future__ import annotations

import numpy as np

#: (amplitude in mV, width in s, offset from the R peak in s) of each wave.
WAVES = ((0.15, 0.025, -0.2), (-0.1, 0.01, -0.03), (1.0, 0.012, 0.0), (-0.25, 0.012, 0.03),
         (0.3, 0.06, 0.25))


def synthetic_ecg(fs: int, bpm: float | np.ndarray, seconds: float, *, gain: float = 200.0,
                  baseline: int = 1024, noise_mv: float = 0.01, seed: int = 0,
                  amplitude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """An int16 ECG and the sample index of each R peak.

    Parameters
    ----------
    fs : int
        Sampling rate.
    bpm : float or np.ndarray
        Heart rate, or one rate per beat (cycled).
    seconds : float
        Duration.
    gain, baseline : float, int
        ADC units per mV and the ADC value of 0 mV (MIT-BIH: 200 and 1024).
    noise_mv : float
        Standard deviation of added white noise.
    seed : int
        Noise seed.
    amplitude : np.ndarray, optional
        Per-sample factor on the waves (amplitude steps).

    Returns
    -------
    signal : np.ndarray
        int16 samples.
    r_peaks : np.ndarray
        int64 indices of the R peaks.
    """
    n = int(seconds * fs)
    t = np.arange(n) / fs
    rates = np.atleast_1d(np.asarray(bpm, dtype=float))
    peaks, time, index = [], 0.5, 0
    while time < seconds - 0.5:
        peaks.append(time)
        time += 60.0 / rates[index % rates.size]
        index += 1
    mv = np.zeros(n)
    for peak in peaks:
        for height, width, offset in WAVES:
            mv += height * np.exp(-0.5 * ((t - peak - offset) / width) ** 2)
    if amplitude is not None:
        mv *= amplitude
    mv += np.random.default_rng(seed).normal(0.0, noise_mv, n)
    signal = np.clip(np.round(baseline + gain * mv), -32767, 32767).astype(np.int16)
    return signal, np.round(np.array(peaks) * fs).astype(np.int64)
