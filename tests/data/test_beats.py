"""Per-beat preprocessing: resampling and z-normalisation."""

import numpy as np
import pytest

from pla_tvm.data.beats import BeatSet, is_flat, resample, znormalize


def test_resample_keeps_a_beat_of_the_right_length_unchanged():
    segment = np.sin(np.linspace(0, 3, 140))
    np.testing.assert_array_equal(resample(segment), segment)


def test_resample_interpolates_linearly_and_keeps_end_points():
    out = resample(np.array([0.0, 10.0, 0.0]), length=5)
    np.testing.assert_allclose(out, [0.0, 5.0, 10.0, 5.0, 0.0])


def test_resample_stretches_a_short_segment_to_140_samples():
    out = resample(np.linspace(-1.0, 1.0, 90))
    assert out.shape == (140,)
    np.testing.assert_allclose(out, np.linspace(-1.0, 1.0, 140), atol=1e-12)


def test_resample_rejects_a_single_sample():
    with pytest.raises(ValueError, match="cannot resample"):
        resample(np.array([1.0]))


def test_znormalize_matches_ecg5000_convention(ecg5000):
    """ECG5000 beats have mean 0 and sample (ddof=1) standard deviation 1; ours too."""
    renormalised = znormalize(ecg5000.train.x)
    np.testing.assert_allclose(renormalised, ecg5000.train.x, atol=2e-5)
    beats = znormalize(np.random.default_rng(0).normal(3.0, 7.0, size=(4, 140)))
    np.testing.assert_allclose(beats.mean(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(beats.std(axis=1, ddof=1), 1.0, atol=1e-6)


def test_is_flat_finds_constant_rows():
    rows = np.stack([np.full(140, 3.0), np.linspace(0, 1, 140)])
    assert is_flat(rows).tolist() == [True, False]


def test_beat_set_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="n labels"):
        BeatSet(x=np.zeros((3, 140), np.float32), y=np.zeros(2, np.int64),
                class_names=("a",), source="test")


def test_subset_spreads_over_a_class_sorted_split(ecg5000):
    subset = ecg5000.test.subset(100)
    assert len(subset) == 100
    assert subset.class_counts()["normal"] < 100 and subset.class_counts()["R-on-T PVC"] > 0
    assert "100 of 4499 beats" in subset.source
    assert ecg5000.test.subset(None) is ecg5000.test
    with pytest.raises(ValueError, match="limit must be >= 1"):
        ecg5000.test.subset(0)
