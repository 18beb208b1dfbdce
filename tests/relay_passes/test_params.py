"""Parameter dataclasses: validation names the field and shape; the numpy reference semantics."""

import numpy as np
import pytest

from relay_passes import (
    ClusterGatedLinearParams,
    ParameterError,
    PassError,
    QuantizedClusterGatedLinearParams,
    reference_forward,
)


def _float_params(k=3, dim=6, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return ClusterGatedLinearParams(rng.standard_normal((k, dim)), rng.standard_normal((k, dim, d)),
                                    rng.standard_normal((k, d)))


def _quantized_fields(k=3, dim=6, d=4):
    return dict(input_scale=0.05, input_zero_point=3,
                centroids_q=np.zeros((k, dim), np.int8), weights_q=np.ones((k, dim, d), np.int8),
                weight_scales=np.full((k, d), 0.01, np.float32),
                bias_q=np.zeros((k, d), np.int32), output_scale=0.1, output_zero_point=-5)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("weights", np.zeros((3, 5, 4)), r"weights must have shape \(3, 6, 4\) \(\[k, D, d\]\), "
                                         r"got \(3, 5, 4\)"),
        ("biases", np.zeros((2, 4)), r"biases must have shape \(3, 4\) \(\[k, d\]\), got \(2, 4\)"),
        ("centroids", np.zeros(6), r"centroids must be 2-D, got shape \(6,\)"),
        ("centroids", np.full((3, 6), np.nan), "centroids must be finite"),
    ],
)
def test_float_params_validation_names_field(field, value, match):
    fields = {"centroids": np.zeros((3, 6)), "weights": np.zeros((3, 6, 4)),
              "biases": np.zeros((3, 4))}
    fields[field] = value
    with pytest.raises(ParameterError, match=match):
        ClusterGatedLinearParams(**fields)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("centroids_q", np.zeros((3, 6), np.float32),
         "centroids_q must have dtype int8, got float32"),
        ("weights_q", np.zeros((3, 5, 4), np.int8),
         r"weights_q must have shape \(3, 6, 4\) \(\[k, D, d\]\), got \(3, 5, 4\)"),
        ("bias_q", np.zeros((3, 4), np.int64), "bias_q must have dtype int32, got int64"),
        ("weight_scales", np.zeros((3, 4), np.float32), "weight_scales must be positive"),
        ("input_zero_point", 200, r"input_zero_point must be in \[-128, 127\], got 200"),
        ("output_scale", 0.0, "output_scale must be a finite positive float, got 0.0"),
    ],
)
def test_quantized_params_validation_names_field(field, value, match):
    fields = _quantized_fields()
    fields[field] = value
    with pytest.raises(ParameterError, match=match):
        QuantizedClusterGatedLinearParams(**fields)


def test_parameter_error_is_a_pass_error():
    assert issubclass(ParameterError, PassError)


def test_reference_forward_picks_nearest_centroid():
    params = _float_params()
    x = params.centroids[[2, 0, 1]] + 1e-3
    expected = np.stack([x[i] @ params.weights[c] + params.biases[c]
                         for i, c in enumerate([2, 0, 1])])
    np.testing.assert_allclose(reference_forward(params, x.astype(np.float32)), expected,
                               rtol=1e-5)


def test_reference_forward_ties_go_to_lowest_cluster():
    params = ClusterGatedLinearParams(np.array([[1.0, 0.0], [-1.0, 0.0]]),
                                      np.stack([np.eye(2), 2 * np.eye(2)])[..., :1],
                                      np.array([[0.0], [10.0]]))
    # x = (0, 1) is equidistant from both centroids.
    np.testing.assert_array_equal(reference_forward(params, np.array([[0.0, 1.0]], np.float32)),
                                  [[0.0]])


def test_reference_forward_rejects_wrong_input():
    with pytest.raises(ParameterError, match=r"x must have shape \[N, 6\], got \(2, 5\)"):
        reference_forward(_float_params(), np.zeros((2, 5), np.float32))
    quantized = QuantizedClusterGatedLinearParams(**_quantized_fields())
    with pytest.raises(ParameterError, match="x must have dtype int8, got float32"):
        reference_forward(quantized, np.zeros((2, 6), np.float32))


def test_zero_point_folding_is_exact():
    rng = np.random.default_rng(4)
    fields = _quantized_fields()
    fields["centroids_q"] = rng.integers(-128, 128, (3, 6), dtype=np.int8)
    fields["weights_q"] = rng.integers(-127, 128, (3, 6, 4), dtype=np.int8)
    params = QuantizedClusterGatedLinearParams(**fields)
    x = rng.integers(-128, 128, (10, 6)).astype(np.int64)
    mu = params.centroids_q.astype(np.int64)
    scores = (mu * mu).sum(1) - 2 * (x - 3) @ mu.T
    np.testing.assert_array_equal(scores, params.score_offsets - 2 * x @ mu.T)
    w = params.weights_q.astype(np.int64)
    acc = params.bias_q + np.einsum("ni,kio->nko", x - 3, w)
    np.testing.assert_array_equal(acc, params.bias_offsets + np.einsum("ni,kio->nko", x, w))
