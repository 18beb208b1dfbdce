"""pla.npz: round trip, and a clear ModelError for each way a file can be wrong."""

from __future__ import annotations

import numpy as np
import pytest

from pla_tvm.errors import ModelError
from pla_tvm.pla.npz_io import FORMAT_VERSION, BaselineRef, PLABundle, load_pla, save_pla
from pla_tvm.pla.reference import int8_predict


@pytest.fixture()
def saved(tmp_path, synthetic_pla, synthetic_quantized):
    path = tmp_path / "pla.npz"
    save_pla(path, PLABundle(synthetic_pla[0], synthetic_quantized,
                             BaselineRef("/runs/baseline", "ab" * 32)))
    return path


def test_round_trip(saved, synthetic_pla, synthetic_quantized):
    model, x, *_ = synthetic_pla
    bundle = load_pla(saved)
    np.testing.assert_array_equal(bundle.model.predict(x), model.predict(x))
    np.testing.assert_allclose(bundle.model.transform(x), model.transform(x), rtol=1e-5,
                               atol=1e-5)  # stored as float32
    np.testing.assert_array_equal(int8_predict(bundle.quantized, x),
                                  int8_predict(synthetic_quantized, x))
    assert bundle.model.alpha == model.alpha and bundle.model.n_clusters_ == model.n_clusters_
    assert bundle.baseline == BaselineRef("/runs/baseline", "ab" * 32)
    with np.load(saved, allow_pickle=False) as data:  # readable without pickles
        assert int(data["format_version"]) == FORMAT_VERSION


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


@pytest.mark.parametrize("changes, match", [
    ({"q_weights": None}, "missing key.*q_weights"),
    ({"format_version": None}, "missing key 'format_version'"),
    ({"format_version": np.int64(FORMAT_VERSION + 1)},
     f"format_version {FORMAT_VERSION + 1} is not supported"),
    ({"format_version": np.int64(1)}, f"format_version 1 is not supported.*{FORMAT_VERSION}"),
    ({"biases": np.zeros((3, 15), np.float32)},
     r"biases has shape \[3, 15\], expected \[k=3, d=16\]"),
    ({"q_weights": np.zeros((3, 140, 16), np.int16)}, "q_weights has dtype int16, expected int8"),
    ({"n_clusters": np.int64(4)}, "n_clusters=4 but centroids hold k=3"),
    ({"q_weight_scales": np.zeros((3, 16), np.float32)}, "invalid int8 parameters"),
])
def test_bad_file_is_a_model_error_naming_file_and_key(saved, changes, match):
    _rewrite(saved, **changes)
    with pytest.raises(ModelError, match=match) as error:
        load_pla(saved)
    assert str(saved) in str(error.value)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ModelError, match="no such PLA model file"):
        load_pla(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a readable .npz"):
        load_pla(tmp_path / "junk.npz")


def test_version_2_file_is_still_read(saved, synthetic_pla, synthetic_quantized):
    _rewrite(saved, format_version=np.int64(2))
    bundle = load_pla(saved)
    np.testing.assert_array_equal(int8_predict(bundle.quantized, synthetic_pla[1]),
                                  int8_predict(synthetic_quantized, synthetic_pla[1]))


@pytest.fixture()
def factored_saved(tmp_path, synthetic_pla):
    from sklearn.base import clone

    from pla_tvm.pla.quantize import quantize_pla

    base, x, y, features = synthetic_pla
    model = clone(base).set_params(rank=3).fit(x, y, teacher_features=features)
    quantized = quantize_pla(model, x, teacher_features=features)
    path = tmp_path / "pla-rank3.npz"
    save_pla(path, PLABundle(model, quantized))
    return path, model, quantized


def test_factored_round_trip(factored_saved, synthetic_pla):
    from pla_tvm.pla.reference import int8_logits
    from relay_passes import QuantizedFactoredClusterGatedLinearParams

    path, model, quantized = factored_saved
    x = synthetic_pla[1]
    bundle = load_pla(path)
    op, saved_op = bundle.quantized.operator, quantized.operator
    assert isinstance(op, QuantizedFactoredClusterGatedLinearParams)
    for name in ("centroids_q", "left_q", "left_scales", "left_bias_q", "right_q",
                 "right_scales", "bias_q"):
        np.testing.assert_array_equal(getattr(op, name), getattr(saved_op, name))
    assert (op.hidden_scale, op.hidden_zero_point) == (saved_op.hidden_scale,
                                                       saved_op.hidden_zero_point)
    xq = quantized.input.quantize(x)
    np.testing.assert_array_equal(int8_logits(bundle.quantized, xq), int8_logits(quantized, xq))
    assert bundle.model.rank == 3 and bundle.model.coef_left_.shape == (3, 140, 3)
    np.testing.assert_allclose(bundle.model.transform(x), model.transform(x), rtol=1e-5,
                               atol=1e-5)
    with np.load(path, allow_pickle=False) as data:
        assert "q_weights" not in data.files and "q_right_weights" in data.files


@pytest.mark.parametrize("changes, match", [
    ({"q_hidden_scale": None}, "missing key.*q_hidden_scale"),
    ({"q_right_weights": np.zeros((3, 4, 16), np.int8)},
     r"q_right_weights has shape \[3, 4, 16\], expected \[k=3, r=3, d=16\]"),
    ({"q_hidden_zero_point": np.int64(300)}, "invalid int8 parameters.*hidden_zero_point"),
    ({"format_version": np.int64(2)}, "missing key.*q_weights"),
])
def test_bad_factored_file_names_the_key(factored_saved, changes, match):
    path = factored_saved[0]
    _rewrite(path, **changes)
    with pytest.raises(ModelError, match=match):
        load_pla(path)
