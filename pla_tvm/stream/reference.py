"""The streaming ECG front end in integer arithmetic: the host reference of the firmware.

:class:`FrontEnd` takes raw int16 samples one at a time, as the firmware does, and finds R
peaks, cuts each beat from its R peak to the next, resamples it to the model's length and
quantizes its z-score to the model's int8 input. Every operation is on integers with the ranges
the C code uses (int32, int64 where stated), so the C (``pla_tvm/stream/c/ecg_stream.c``, with
the constants of :mod:`pla_tvm.stream.csource`) computes the same values; its file comment
states the ranges.

QRS detection follows Pan and Tompkins (IEEE TBME 32(3), 1985), with integer filters scaled to
the sampling rate (:mod:`pla_tvm.stream.config`): band-pass (two moving sums), derivative,
squaring, moving-window integration; peaks of the integral are confirmed when it falls to half
(or one window later); adaptive signal and noise levels ``SPKI``, ``NPKI`` with thresholds
``THR1 = NPKI + (SPKI - NPKI) / 4`` and ``THR2 = THR1 / 2``; a 200 ms refractory period; a T-wave
check (below 360 ms, less than half the previous QRS's slope); search-back for the largest peak
above ``THR2`` after 166 % of the mean of the last 8 RR intervals; a 2 s learning phase whose
peaks are replayed once the first thresholds are set; and, beyond Pan and Tompkins, learning
again from the integral's maximum and mean (``SPKI = max / 3``, ``NPKI = mean / 2``, as the first
learning) over the samples since one window after the last QRS, once they span the search-back
wait plus 0.5 s (at least 2 s), so that detection resumes after an amplitude drop or a noise
burst raised the levels. The R peak is the largest absolute
band-passed value in the integration window before the peak, moved back by the band-pass delay,
located when the peak is confirmed (a peak replayed after learning or found by search-back keeps
it: the band-passed ring no longer holds its window then).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from pla_tvm.stream.config import (
    CANDIDATES,
    GAIN_BITS,
    LEARNING_PEAKS,
    RR_HISTORY,
    SCALE_BITS,
    StreamConfig,
)

#: Skip reasons of detected beats that are not classified.
SKIP_RR = "RR interval outside [0.2 s, 2.0 s]"
SKIP_FLAT = "flat beat (cannot be normalised)"
SKIP_ORDER = "R peak not after the previous one"
SKIP_BUFFER = "beat start no longer buffered"
#: The skip reasons in the order of the C front end's counters (``ecg_stream_skipped()``).
SKIP_REASONS = (SKIP_RR, SKIP_FLAT, SKIP_ORDER, SKIP_BUFFER)


def _round_shift(value: int, shift: int) -> int:
    """``value / 2**shift`` rounded half away from zero (integers)."""
    half = 1 << (shift - 1)
    return (value + half) >> shift if value >= 0 else -((-value + half) >> shift)


def quantize_beat(samples: np.ndarray, config: StreamConfig) -> np.ndarray | None:
    """One beat's raw samples, linearly resampled to the model's length, z-scored and quantized
    to its int8 input, in integers; None for a flat beat.

    The resampled values are kept exact as ``Y_j = (L - 1) * y_j`` (z-scores do not depend on
    the scale): with ``p = j (n - 1)``, ``i = p // (L - 1)``, ``f = p % (L - 1)``,
    ``Y_j = (L - 1) x_i + f (x_{i+1} - x_i)``. With ``S = sum Y``, ``D = L sum Y^2 - S^2`` (int64)
    and ``g = floor(C 2^32 / isqrt(D))`` (``C`` = :attr:`StreamConfig.scale_constant`), the
    input is ``round((L Y_j - S) g / 2^48) + z``, clamped to int8: the sample z-score divided by
    the input scale. ``|L Y_j - S| <= sqrt(L) isqrt(D)`` bounds the product by
    ``sqrt(L) C 2^32 < 2^63``.

    Parameters
    ----------
    samples : np.ndarray
        The beat's raw samples (int16 values), at least 2.
    config : StreamConfig

    Returns
    -------
    np.ndarray or None
        int8 ``[L]``.
    """
    x = [int(v) for v in samples]
    n, length = len(x), config.length
    steps = length - 1
    resampled = []
    for j in range(length):
        position = j * (n - 1)
        i, f = divmod(position, steps)
        resampled.append(x[i] * steps + (f * (x[i + 1] - x[i]) if f else 0))
    total = sum(resampled)
    spread = length * sum(y * y for y in resampled) - total * total
    if spread <= 0:
        return None
    gain = (config.scale_constant << GAIN_BITS) // math.isqrt(spread)
    shift = SCALE_BITS + GAIN_BITS
    out = [min(127, max(-128, _round_shift((length * y - total) * gain, shift)
                        + config.input_zero_point)) for y in resampled]
    return np.array(out, dtype=np.int8)


@dataclass
class StreamResult:
    """What :meth:`FrontEnd.run` found in a stream.

    Attributes
    ----------
    r_peaks : np.ndarray
        int64 sample index of every detected R peak, in order.
    beat_peaks : np.ndarray
        int64 R peak of every classified beat (the beat runs from it to the next R peak).
    beats : np.ndarray
        int8 ``[beats, L]`` model inputs.
    skipped : dict
        Detected beats not classified, by reason.
    samples : int
        Samples processed.
    """

    r_peaks: np.ndarray
    beat_peaks: np.ndarray
    beats: np.ndarray
    skipped: dict[str, int] = field(default_factory=dict)
    samples: int = 0


class FrontEnd:
    """The streaming front end's state, advanced one raw sample at a time (:meth:`push`).

    Parameters
    ----------
    config : StreamConfig
        Rate, model input and the derived constants.
    """

    def __init__(self, config: StreamConfig) -> None:
        self.config = c = config
        self.n = 0
        self.raw = [0] * c.raw_ring
        self.lowpass_ring = [0] * c.highpass_width
        self.band = [0] * c.band_ring
        self.energy = [0] * c.window
        self.lowpass_sum = self.highpass_sum = self.integral = self.previous = 0
        self.rising = False
        self.peak_value = self.peak_time = 0
        self.learn_max = self.learn_sum = 0
        self.learning_peaks: list[tuple[int, int, int, int]] = []
        self.spki = self.npki = self.thr1 = self.thr2 = 0
        self.have_qrs = False
        self.last_qrs = self.last_slope = 0
        self.last_r = -1
        self.rr = [c.fs] * RR_HISTORY
        self.rr_next = 0
        self.candidates: list[tuple[int, int, int, int]] = []
        self.quiet_since = c.learning
        self.quiet_max = self.quiet_sum = 0
        self.r_peaks: list[int] = []
        self.beat_peaks: list[int] = []
        self.beats: list[np.ndarray] = []
        self.skipped: Counter = Counter()

    # -- per sample ----------------------------------------------------------------------------
    def push(self, sample: int) -> None:
        """Process one raw sample (an int16 value)."""
        c, n, x = self.config, self.n, int(sample)
        if n == 0:  # as if the first value had always been there: the filters start at rest
            self.raw = [x] * c.raw_ring
            self.lowpass_sum = c.lowpass_width * x
            self.lowpass_ring = [self.lowpass_sum] * c.highpass_width
            self.highpass_sum = c.highpass_width * self.lowpass_sum
        oldest = self.raw[(n - c.lowpass_width) % c.raw_ring]
        self.raw[n % c.raw_ring] = x
        self.lowpass_sum += x - oldest
        slot = n % c.highpass_width
        self.highpass_sum += self.lowpass_sum - self.lowpass_ring[slot]
        self.lowpass_ring[slot] = self.lowpass_sum
        centre = self.lowpass_ring[(n - (c.highpass_width - 1) // 2) % c.highpass_width]
        band = c.highpass_width * centre - self.highpass_sum
        self.band[n % c.band_ring] = band
        slope = (band - self.band[(n - c.derivative_span) % c.band_ring]) >> c.slope_shift
        slope = min(32767, max(-32767, slope))
        energy = (slope * slope) >> c.energy_shift
        slot = n % c.window
        self.integral += energy - self.energy[slot]
        self.energy[slot] = energy
        self._find_peak(self.integral, n)
        if n < c.learning:
            self.learn_max = max(self.learn_max, self.integral)
            self.learn_sum += self.integral
            if n == c.learning - 1:
                self._end_learning()
        else:
            if self.have_qrs and self.candidates:
                self._search_back(n)
            self._watch_quiet(n, self.integral)
        self.n = n + 1

    def _search_back_limit(self) -> int:
        return min(sum(self.rr) * 166 // (100 * RR_HISTORY), self.config.search_back_cap)

    def _watch_quiet(self, n: int, value: int) -> None:
        """Learn the levels again when no QRS came for the search-back wait plus 0.5 s (at
        least 2 s), counted from one window after the last one (its integral has decayed)."""
        if n < self.quiet_since:
            return
        self.quiet_max = max(self.quiet_max, value)
        self.quiet_sum += value
        count = n - self.quiet_since + 1
        if count >= max(self.config.learning, self._search_back_limit() + self.config.fs // 2):
            self.spki = self.quiet_max // 3
            self.npki = (self.quiet_sum // count) // 2
            self._thresholds()
            self.quiet_since, self.quiet_max, self.quiet_sum = n + 1, 0, 0

    def _find_peak(self, value: int, n: int) -> None:
        """A peak of the integral is confirmed when it falls to half, or a window later."""
        if self.rising:
            if value >= self.peak_value:
                self.peak_value, self.peak_time = value, n
            elif 2 * value <= self.peak_value or n - self.peak_time >= self.config.window:
                self.rising = False
                self._peak(self.peak_time, self.peak_value)
        elif value > self.previous:
            self.rising, self.peak_value, self.peak_time = True, value, n
        self.previous = value

    def _slope_at(self, t: int) -> int:
        """Largest absolute derivative (unscaled) over the integration window ending at ``t``."""
        c = self.config
        best = 0
        for j in range(t - c.window + 1, t + 1):
            d = self.band[j % c.band_ring] - self.band[(j - c.derivative_span) % c.band_ring]
            best = max(best, abs(d))
        return best

    def _r_peak(self, t: int) -> int:
        """The R peak of an integral peak at ``t``: the largest ``|band|`` over the window before
        it, moved back by the band-pass delay (read while the band ring still holds it)."""
        c = self.config
        start = t - c.window - c.derivative_span
        best, where = -1, start
        for j in range(start, t + 1):
            value = abs(self.band[j % c.band_ring])
            if value > best:
                best, where = value, j
        return where - c.bandpass_delay

    def _peak(self, t: int, value: int) -> None:
        slope, r = self._slope_at(t), self._r_peak(t)
        if self.n < self.config.learning:  # kept for the replay at the learning's end
            peaks = self.learning_peaks
            if len(peaks) == LEARNING_PEAKS:
                smallest = min(range(len(peaks)), key=lambda i: (peaks[i][1], i))
                if value <= peaks[smallest][1]:
                    return
                del peaks[smallest]
            peaks.append((t, value, slope, r))
            return
        self._decide(t, value, slope, r)

    def _thresholds(self) -> None:
        self.thr1 = self.npki + ((self.spki - self.npki) >> 2)
        self.thr2 = self.thr1 >> 1

    def _end_learning(self) -> None:
        c = self.config
        self.spki = self.learn_max // 3
        self.npki = (self.learn_sum // c.learning) // 2
        self._thresholds()
        for t, value, slope, r in self.learning_peaks:
            self._decide(t, value, slope, r)

    def _decide(self, t: int, value: int, slope: int, r: int) -> None:
        c = self.config
        since = t - self.last_qrs
        if self.have_qrs and since < c.refractory:
            return
        if value > self.thr1:
            if self.have_qrs and since < c.t_wave_window and 2 * slope < self.last_slope:
                self.npki += (value - self.npki) >> 3
            else:
                self.spki += (value - self.spki) >> 3
                self._accept(t, slope, r)
        else:
            self.npki += (value - self.npki) >> 3
            if value > self.thr2:
                if len(self.candidates) == CANDIDATES:
                    smallest = min(range(CANDIDATES), key=lambda i: (self.candidates[i][1], i))
                    if value <= self.candidates[smallest][1]:
                        self._thresholds()
                        return
                    del self.candidates[smallest]
                self.candidates.append((t, value, slope, r))
        self._thresholds()

    def _search_back(self, n: int) -> None:
        c = self.config
        if n - self.last_qrs <= self._search_back_limit():
            return
        best = None
        for candidate in self.candidates:
            t, value = candidate[:2]
            if (t - self.last_qrs >= c.refractory and value > self.thr2
                    and (best is None or value > best[1])):
                best = candidate
        if best is None:
            return
        self.spki += (best[1] - self.spki) >> 2
        self._accept(best[0], best[2], best[3])
        self._thresholds()

    def _accept(self, t: int, slope: int, r: int) -> None:
        """A QRS whose integral peaked at ``t`` with its R peak ``r``: close the previous beat."""
        c = self.config
        self.have_qrs, self.last_qrs, self.last_slope = True, t, slope
        self.candidates = [cand for cand in self.candidates if cand[0] > t]
        self.quiet_since = max(self.n, c.learning) + c.window
        self.quiet_max = self.quiet_sum = 0
        if r <= self.last_r:
            self.skipped[SKIP_ORDER] += 1
            return
        self.r_peaks.append(r)
        if self.last_r >= 0:
            rr = r - self.last_r
            if c.min_rr <= rr <= c.max_rr:
                self.rr[self.rr_next] = rr
                self.rr_next = (self.rr_next + 1) % RR_HISTORY
            self._close_beat(self.last_r, r)
        self.last_r = r

    def _close_beat(self, start: int, stop: int) -> None:
        c = self.config
        if not c.min_rr <= stop - start <= c.max_rr:
            self.skipped[SKIP_RR] += 1
            return
        if start <= self.n - c.raw_ring:
            self.skipped[SKIP_BUFFER] += 1
            return
        samples = [self.raw[i % c.raw_ring] for i in range(start, stop)]
        beat = quantize_beat(np.array(samples), c)
        if beat is None:
            self.skipped[SKIP_FLAT] += 1
            return
        self.beat_peaks.append(start)
        self.beats.append(beat)

    # -- a whole stream ------------------------------------------------------------------------
    def run(self, signal: np.ndarray) -> StreamResult:
        """Push every sample of ``signal`` and return what was found.

        Parameters
        ----------
        signal : np.ndarray
            1-D int16 samples.

        Returns
        -------
        StreamResult
        """
        for value in np.asarray(signal).tolist():
            self.push(value)
        length = self.config.length
        return StreamResult(
            r_peaks=np.array(self.r_peaks, dtype=np.int64),
            beat_peaks=np.array(self.beat_peaks, dtype=np.int64),
            beats=(np.stack(self.beats) if self.beats else np.zeros((0, length), np.int8)),
            skipped=dict(+self.skipped), samples=self.n)
