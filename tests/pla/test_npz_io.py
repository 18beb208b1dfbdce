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
