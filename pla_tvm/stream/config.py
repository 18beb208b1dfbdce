"""The constants of the streaming ECG front end, derived from the sampling rate and the model.

Every length and shift of the fixed-point pipeline (:mod:`pla_tvm.stream.reference`, and the C
code generated from the same :class:`StreamConfig`) follows from the sampling rate ``fs``, the
ADC's resolution and the model's input (length and int8 quantization), so one firmware serves
one rate and one model. The rules (docs/stream.md):

* band-pass: a moving sum of :attr:`StreamConfig.lowpass_width` samples (about 25 ms, first
  zero near 40 Hz), then the moving-sum output minus its own moving average over
  :attr:`StreamConfig.highpass_width` samples (about 200 ms, odd, centred): baseline wander and
  the T wave's slow components go, the QRS stays;
* derivative over :attr:`StreamConfig.derivative_span` samples (about 10 ms), scaled down by
  :attr:`StreamConfig.slope_shift` bits so that a full-scale ADC swing within 40 ms still fits
  16 bits (then saturated there), squared and shifted by :attr:`StreamConfig.energy_shift` bits
  so that the moving-window integral of :attr:`StreamConfig.window` samples (150 ms) fits int32;
* decision rules in samples: refractory period 200 ms, T-wave check below 360 ms, learning
  phase 2 s, search-back after 166 % of the mean RR interval (at most 1.66 * 2 s), learning
  again after that plus 0.5 s (at least 2 s) without a QRS;
* beats from one R peak to the next, kept when the RR interval lies in [0.2 s, 2.0 s] (the
  host's ``rr`` beat window), resampled to the model's length and quantized with its scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pla_tvm.errors import PlaTvmError

#: Sampling rates the front end is designed for (Hz).
MIN_FS, MAX_FS = 125, 1000
#: The host's ``rr`` beat window (pla_tvm.data.records.BeatWindow): RR limits in seconds.
MIN_RR_S, MAX_RR_S = 0.2, 2.0
#: Fractional bits of the z-normalisation's scale constant.
SCALE_BITS = 16
#: Fractional bits of the per-beat gain (reciprocal of the beat's deviation).
GAIN_BITS = 32
#: Search-back candidates kept between two QRS complexes (the largest ones).
CANDIDATES = 8
#: Peaks of the learning phase kept for its replay (the largest ones).
LEARNING_PEAKS = 32
#: RR intervals averaged for the search-back limit.
RR_HISTORY = 8
#: Longest model input: ``L sum Y^2`` of a full-scale int16 beat then fits int64 (``L^2 (L-1)^2
#: 2^30 < 2^63`` holds up to 304; 256 is the round bound).
MAX_LENGTH = 256
#: Bound of the quantizer's product ``(L Y_j - S) g`` (int64, with room for the rounding half).
_PRODUCT_LIMIT = (1 << 63) - (1 << (SCALE_BITS + GAIN_BITS - 1))
#: Bytes of the C state besides its arrays: 7 int64, 14 int32, 7 uint32, 4 skip counters and 2
#: bools (158), padded to the 8-byte alignment of the peak lists that follow.
_STATE_SCALARS = 160


def _samples(seconds: float, fs: int) -> int:
    return int(round(seconds * fs))


@dataclass(frozen=True)
class StreamConfig:
    """The streaming front end for one sampling rate and one model input.

    Parameters
    ----------
    fs : int
        Samples per second of the ADC stream, 125 to 1000.
    length : int
        The model's input length ``L`` (samples per beat after resampling), 8 to
        :data:`MAX_LENGTH`.
    input_scale : float
        Scale of the model's int8 input; at least what keeps the quantizer's product in int64
        (about 4e-4 for ``L`` = 140, see :meth:`_check_scale`).
    input_zero_point : int
        Zero point of the model's int8 input.
    adc_bits : int
        Resolution of the ADC (its samples are signed values of at most this many bits in an
        int16); sizes the derivative's scaling. Default 12.

    Raises
    ------
    PlaTvmError
        If a value is outside what the front end handles; the message names it.
    """

    fs: int
    length: int
    input_scale: float
    input_zero_point: int
    adc_bits: int = 12

    def __post_init__(self) -> None:
        if not (isinstance(self.fs, (int, np.integer)) and MIN_FS <= self.fs <= MAX_FS):
            raise PlaTvmError(f"--fs {self.fs!r}: the streaming front end takes an integer "
                              f"sampling rate from {MIN_FS} to {MAX_FS} Hz")
        if not 8 <= self.length <= MAX_LENGTH:
            raise PlaTvmError(f"model input length {self.length}: streaming takes beats of 8 "
                              f"to {MAX_LENGTH} samples (the beat's sums of squares are int64)")
        if not 1 <= self.adc_bits <= 16:
            raise PlaTvmError(f"adc_bits {self.adc_bits}: expected 1 to 16 (int16 samples)")
        if not (np.isfinite(self.input_scale) and self.input_scale > 0):
            raise PlaTvmError(f"input scale {self.input_scale!r}: expected a positive number")
        if not -128 <= self.input_zero_point <= 127:
            raise PlaTvmError(f"input zero point {self.input_zero_point}: expected int8")
        object.__setattr__(self, "fs", int(self.fs))
        object.__setattr__(self, "input_scale", float(np.float32(self.input_scale)))
        self._check_scale()

    def _check_scale(self) -> None:
        """The quantizer's int64 product ``(L Y_j - S) g`` must stay below ``2^63 - 2^47``.

        ``sum_j (L Y_j - S)^2 = L D`` and ``sum_j (L Y_j - S) = 0`` give
        ``|L Y_j - S| <= sqrt((L-1) D)``; ``g <= C 2^32 / m`` with ``m = isqrt(D)``, and
        ``D <= m^2 + 2m``, ``m >= k = isqrt(L-1)`` (a beat that is not flat has ``D >= L-1``), so
        the product is at most ``C 2^32 sqrt((L-1) (k+2) / k)``.
        """
        steps, k = self.length - 1, math.isqrt(self.length - 1)
        if steps * (k + 2) * (self.scale_constant << GAIN_BITS) ** 2 > _PRODUCT_LIMIT ** 2 * k:
            largest = _PRODUCT_LIMIT / 2 ** GAIN_BITS * math.sqrt(k / (steps * (k + 2)))
            smallest = math.sqrt(steps / self.length) * 2 ** SCALE_BITS / largest
            raise PlaTvmError(f"input scale {self.input_scale!r}: with length {self.length} the "
                              f"beat quantizer's int64 product needs a scale >= {smallest:.3g} "
                              f"(scale_constant {self.scale_constant} > {int(largest)})")

    # -- filters -------------------------------------------------------------------------------
    @property
    def lowpass_width(self) -> int:
        """Moving-sum width of the low-pass stage (about 25 ms)."""
        return max(2, _samples(0.025, self.fs))

    @property
    def highpass_width(self) -> int:
        """Odd moving-average width of the high-pass stage (about 200 ms)."""
        return 2 * _samples(0.1, self.fs) + 1

    @property
    def derivative_span(self) -> int:
        """Samples between the two terms of the derivative (about 10 ms)."""
        return max(1, _samples(0.01, self.fs))

    @property
    def window(self) -> int:
        """Moving-window integration width (150 ms)."""
        return max(2, _samples(0.15, self.fs))

    @property
    def bandpass_delay(self) -> int:
        """Samples the band-passed signal lags the input by (the two stages' centres)."""
        return (self.lowpass_width - 1) // 2 + (self.highpass_width - 1) // 2

    @cached_property
    def slope_shift(self) -> int:
        """Right shift of the derivative: a full-scale swing in 40 ms then fits 15 bits."""
        swing = 2 ** self.adc_bits
        steepest = (self.derivative_span * self.lowpass_width * self.highpass_width * swing
                    / (0.04 * self.fs))
        return max(0, int(np.ceil(np.log2(steepest))) - 15)

    @property
    def energy_shift(self) -> int:
        """Right shift of the squared slope, so that ``window`` of them fit int32."""
        return int(self.window - 1).bit_length()

    # -- decisions -----------------------------------------------------------------------------
    @property
    def refractory(self) -> int:
        """No QRS within 200 ms of the previous one."""
        return _samples(0.2, self.fs)

    @property
    def t_wave_window(self) -> int:
        """Below 360 ms after a QRS, a peak with less than half its slope is a T wave."""
        return _samples(0.36, self.fs)

    @property
    def learning(self) -> int:
        """Samples of the learning phase (2 s) that set the first thresholds."""
        return 2 * self.fs

    @property
    def min_rr(self) -> int:
        """Shortest RR interval (samples) whose beat is classified."""
        return _samples(MIN_RR_S, self.fs)

    @property
    def max_rr(self) -> int:
        """Longest RR interval (samples) whose beat is classified."""
        return _samples(MAX_RR_S, self.fs)

    @property
    def search_back_cap(self) -> int:
        """The longest wait before searching back (1.66 times the longest RR)."""
        return self.max_rr * 166 // 100

    # -- buffers -------------------------------------------------------------------------------
    @property
    def band_ring(self) -> int:
        """Band-passed samples kept: the QRS search window and the confirmation delay."""
        return 2 * self.window + self.derivative_span + 2

    @property
    def raw_ring(self) -> int:
        """Raw samples kept: the longest beat plus the longest wait for its closing R peak."""
        return (self.max_rr + self.search_back_cap + self.bandpass_delay + 2 * self.window
                + self.derivative_span + 8)

    # -- normalisation -------------------------------------------------------------------------
    @property
    def scale_constant(self) -> int:
        """``round(sqrt((L-1)/L) / s_in * 2**SCALE_BITS)``: the z-score (sample deviation) and
        the input quantization in one fixed-point factor."""
        value = np.sqrt((self.length - 1) / self.length) / np.float64(self.input_scale)
        return int(round(value * 2 ** SCALE_BITS))

    def ram_bytes(self) -> int:
        """Static RAM of the C front end (``pla_tvm/stream/c/ecg_stream.c``): its one state
        struct, scalars, peak lists (24 bytes a peak: int64 time and R peak, int32 value and
        slope), int32
        filter rings, uint16 RR history, int16 raw ring and the int8 beat, padded to 8 bytes.

        Exact for the Arm EABI (and x86-64) layout; the C checks ``sizeof`` against it at compile
        time (``ECG_STREAM_RAM_BYTES``).
        """
        size = (_STATE_SCALARS + 24 * (LEARNING_PEAKS + CANDIDATES)
                + 4 * (self.highpass_width + self.band_ring + self.window) + 2 * RR_HISTORY
                + 2 * self.raw_ring + self.length)
        return -(-size // 8) * 8
