"""The factored (low-rank) int8 cluster-gated linear kernel against reference_forward."""

import numpy as np
import pytest
from tvm import s_tir

from relay_passes import (
    ParameterError,
    QuantizedClusterGatedLinearParams,
    QuantizedFactoredClusterGatedLinearParams,
    make_factored_cluster_gated_linear_int8_kernel,
    reference_forward,
)

from .test_cluster_gated_linear import _run


def factored_params(rng, k=3, dim=140, r=5, d=16, **overrides):
    """Random factored int8 parameters whose intermediate is not all saturated."""
    # Scales of about a quarter of the accumulators' spread: little saturation at any shape.
    hidden_scale = 0.03 * 3e-3 * 74 * 74 * np.sqrt(dim) / 32
    fields = dict(
        input_scale=0.03, input_zero_point=int(rng.integers(-20, 20)),
        centroids_q=rng.integers(-128, 128, (k, dim), dtype=np.int8),
        left_q=rng.integers(-127, 128, (k, dim, r), dtype=np.int8),
        left_scales=rng.uniform(1e-3, 5e-3, (k, r)).astype(np.float32),
        left_bias_q=rng.integers(-20000, 20000, (k, r)).astype(np.int32),
        hidden_scale=hidden_scale, hidden_zero_point=int(rng.integers(-10, 10)),
        right_q=rng.integers(-127, 128, (k, r, d), dtype=np.int8),
        right_scales=rng.uniform(1e-3, 5e-3, (k, d)).astype(np.float32),
        bias_q=rng.integers(-2000, 2000, (k, d)).astype(np.int32),
        output_scale=hidden_scale * 3e-3 * 40 * 74 * np.sqrt(r) / 32,
        output_zero_point=int(rng.integers(-30, 30)))
    fields.update(overrides)
    return QuantizedFactoredClusterGatedLinearParams(**fields)


@pytest.mark.parametrize(("k", "dim", "r", "d"), [(3, 140, 5, 16), (2, 30, 4, 6), (1, 8, 1, 3)])
def test_factored_int8_matches_reference_bit_exact(k, dim, r, d):
    rng = np.random.default_rng(k * 1000 + r)
    params = factored_params(rng, k=k, dim=dim, r=r, d=d)
    x = rng.integers(-128, 128, (32, dim), dtype=np.int8)
    got = _run(params, x)
    expected = reference_forward(params, x)
    assert got.dtype == np.int8 and got.shape == (32, d)
    np.testing.assert_array_equal(got, expected)
    assert len(np.unique(expected)) > 5  # not all saturated


def test_factored_int8_with_left_shifts_is_bit_exact():
    rng = np.random.default_rng(7)
    # hidden multiplier 0.03 * 4e-3 / 1e-5 = 12: shifts > 0 in the first layer.
    params = factored_params(rng, k=2, dim=12, r=3, d=4, hidden_scale=1e-5,
                             left_q=rng.integers(-2, 3, (2, 12, 3), dtype=np.int8),
                             left_bias_q=np.zeros((2, 3), np.int32))
    assert params.left_multiplier_shift[1].max() > 0
    x = rng.integers(-3, 4, (16, 12), dtype=np.int8)
    np.testing.assert_array_equal(_run(params, x), reference_forward(params, x))


def test_factored_equals_full_form_when_the_intermediate_is_exact():
    # U = identity at rank D (scale 1, h = x - z_x exactly): the factored operator computes the
    # full operator with W = V.
    rng = np.random.default_rng(8)
    k, dim, d = 2, 6, 4
    eye = np.broadcast_to(np.eye(dim, dtype=np.int8), (k, dim, dim))
    full = QuantizedClusterGatedLinearParams(
        input_scale=0.5, input_zero_point=3,
        centroids_q=rng.integers(-128, 128, (k, dim), dtype=np.int8),
        weights_q=rng.integers(-127, 128, (k, dim, d), dtype=np.int8),
        weight_scales=rng.uniform(1e-3, 5e-3, (k, d)).astype(np.float32),
        bias_q=rng.integers(-2000, 2000, (k, d)).astype(np.int32),
        output_scale=0.01, output_zero_point=-2)
    factored = QuantizedFactoredClusterGatedLinearParams(
        input_scale=0.5, input_zero_point=3, centroids_q=full.centroids_q, left_q=eye,
        left_scales=np.ones((k, dim), np.float32), left_bias_q=np.zeros((k, dim), np.int32),
        hidden_scale=0.5, hidden_zero_point=3, right_q=full.weights_q,
        right_scales=full.weight_scales, bias_q=full.bias_q, output_scale=0.01,
        output_zero_point=-2)
    x = rng.integers(-100, 100, (20, dim), dtype=np.int8)
    expected = reference_forward(full, x)
    np.testing.assert_array_equal(reference_forward(factored, x), expected)
    np.testing.assert_array_equal(_run(factored, x), expected)


def test_factored_params_errors_name_the_field():
    rng = np.random.default_rng(9)
    with pytest.raises(ParameterError, match="right_q must have shape"):
        factored_params(rng, right_q=np.zeros((3, 4, 16), np.int8))
    with pytest.raises(ParameterError, match="hidden_zero_point"):
        factored_params(rng, hidden_zero_point=200)
    with pytest.raises(ParameterError, match="left_scales must be positive"):
        factored_params(rng, left_scales=np.zeros((3, 5), np.float32))


def test_factored_kernel_stages():
    kernel = make_factored_cluster_gated_linear_int8_kernel(1, 140, 3, 5, 16, 0, -4)
    sch = s_tir.Schedule(kernel)
    names = [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]
    assert names == ["centroid_dot", "score", "nearest_cluster", "accumulate_hidden",
                     "add_bias_hidden", "requantize_hidden_high", "requantize_hidden",
                     "accumulate", "add_bias", "requantize_high", "requantize"]
