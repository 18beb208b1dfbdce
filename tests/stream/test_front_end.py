"""The streaming front end's integer reference: detection on synthetic and real ECG, beats."""

from __future__ import annotations

import numpy as np
import pytest

from pla_tvm.data.beats import resample, znormalize
from pla_tvm.errors import PlaTvmError
from pla_tvm.stream import FrontEnd, StreamConfig, quantize_beat
from pla_tvm.stream.scoring import match_peaks

from .synthetic import synthetic_ecg


def _config(fs: int, **kwargs) -> StreamConfig:
    return StreamConfig(fs=fs, length=140, input_scale=0.038, input_zero_point=20, **kwargs)


def _score(fs, signal, truth):
    result = FrontEnd(_config(fs)).run(signal)
    return result, match_peaks(result.r_peaks, truth, fs)


@pytest.mark.parametrize("fs", [125, 250, 360, 1000])
@pytest.mark.parametrize("bpm", [31, 75, 200])
def test_every_beat_of_a_regular_rhythm_is_found_at_its_r_peak(fs, bpm):
    signal, truth = synthetic_ecg(fs, bpm, 40)
    result, score = _score(fs, signal, truth)
    assert score["false_positives"] == 0 and score["false_negatives"] == 0
    assert abs(score["median_offset_ms"]) <= 1000 / fs + 1e-9
    # every beat but the last (no closing R peak) is classified
    assert len(result.beats) == len(truth) - 1 and not result.skipped
    assert result.beats.dtype == np.int8 and result.beats.shape[1] == 140


def test_a_flat_line_gives_nothing():
    result = FrontEnd(_config(360)).run(np.full(360 * 20, 1000, dtype=np.int16))
    assert result.r_peaks.size == 0 and result.beats.shape == (0, 140)


def test_detection_follows_amplitude_steps():
    fs = 360
    amplitude = np.repeat([1.0, 4.0, 0.25, 1.0], 20 * fs)
    signal, truth = synthetic_ecg(fs, 70, 80, amplitude=amplitude)
    _, score = _score(fs, signal, truth)
    # a drop to 1/16 silences the thresholds until they are learnt again (about 2 s)
    assert score["sensitivity"] >= 0.97 and score["positive_predictivity"] >= 0.99


def test_detection_resumes_after_a_noise_burst():
    fs = 250
    signal, truth = synthetic_ecg(fs, 75, 60)
    burst = slice(25 * fs, 30 * fs)
    noisy = signal.astype(np.int64)
    noisy[burst] += np.random.default_rng(1).normal(0, 300, burst.stop - burst.start).astype(int)
    result, _ = _score(fs, np.clip(noisy, -32767, 32767).astype(np.int16), truth)
    after = truth[truth > 36 * fs]  # the levels are learnt again within about 5 s
    score = match_peaks(result.r_peaks[result.r_peaks > 36 * fs], after, fs)
    assert score["false_negatives"] == 0 and score["false_positives"] == 0


def test_pacing_spikes_do_not_double_the_beats():
    fs = 500
    signal, truth = synthetic_ecg(fs, 70, 40)
    paced = signal.astype(np.int64)
    for peak in truth:  # a 2 ms, 5 mV spike 40 ms before each QRS
        paced[peak - int(0.04 * fs):peak - int(0.04 * fs) + 1] += 1000
    result, _ = _score(fs, paced.astype(np.int16), truth)
    score = match_peaks(result.r_peaks, truth, fs)
    assert score["false_positives"] == 0 and score["sensitivity"] >= 0.97


def test_mitdb_100_first_five_minutes(data_root):
    wfdb = pytest.importorskip("wfdb")
    path = data_root / "mitdb" / "100"
    if not path.with_suffix(".hea").is_file():
        pytest.skip("MIT-BIH record 100 not in the shared data")
    record = wfdb.rdrecord(str(path), physical=False, sampto=300 * 360)
    annotation = wfdb.rdann(str(path), "atr", sampto=300 * 360)
    from pla_tvm.data.records import BEAT_SYMBOL_CLASSES

    truth = np.array([s for s, sym in zip(annotation.sample, annotation.symbol)
                      if sym in BEAT_SYMBOL_CLASSES])
    result = FrontEnd(_config(360, adc_bits=11)).run(record.d_signal[:, 0].astype(np.int16))
    score = match_peaks(result.r_peaks, truth, 360)
    assert score["sensitivity"] >= 0.995 and score["positive_predictivity"] >= 0.995


def test_quantized_beats_are_the_float_z_scores_within_one_step():
    config = _config(360)
    rng = np.random.default_rng(3)
    for n in (72, 140, 301, 720):
        samples = (1000 + 300 * np.sin(np.linspace(0, 7, n)) + rng.normal(0, 20, n)).astype(int)
        got = quantize_beat(samples, config).astype(int)
        z = znormalize(resample(samples.astype(float), 140)[None])[0].astype(np.float64)
        expected = np.clip(np.round(z / config.input_scale) + 20, -128, 127)
        assert np.abs(got - expected).max() <= 1
    assert quantize_beat(np.full(300, 7), config) is None


@pytest.mark.parametrize(("fields", "message"), [
    ({"fs": 100}, "--fs 100: the streaming front end takes an integer sampling rate from 125"),
    ({"fs": 360.5}, "--fs 360.5"),
    ({"input_zero_point": 200}, "input zero point 200"),
])
def test_bad_configurations_are_named(fields, message):
    values = {"fs": 360, "length": 140, "input_scale": 0.038, "input_zero_point": 20, **fields}
    with pytest.raises(PlaTvmError, match=message.replace(".", r"\.")):
        StreamConfig(**values)
