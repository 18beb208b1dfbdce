"""4-bit weights of the cluster-gated operator: packing, and both kernels bit-exact with
reference_forward (which reads the unpacked values)."""

import numpy as np
import pytest

from relay_passes import ParameterError, pack_int4, reference_forward, unpack_int4

from .test_cluster_gated_linear import _quantized_params, _run
from .test_factored_cluster_gated_linear import factored_params


@pytest.mark.parametrize("length", [1, 2, 7, 8, 143])
def test_pack_int4_round_trips(length):
    values = np.random.default_rng(length).integers(-8, 8, (3, 2, length)).astype(np.int8)
    packed = pack_int4(values)
    assert packed.dtype == np.int8 and packed.shape == (3, 2, (length + 1) // 2)
    np.testing.assert_array_equal(unpack_int4(packed, length), values)


def test_pack_int4_layout_low_nibble_first():
    packed = pack_int4(np.array([1, -2, -8, 7, 3], np.int8))
    assert packed.view(np.uint8).tolist() == [0xE1, 0x78, 0x03]


def test_pack_int4_refuses_values_outside_4_bits():
    with pytest.raises(ParameterError, match=r"\[-8, 7\], got \[-9, 3\]"):
        pack_int4(np.array([-9, 3]))


@pytest.mark.parametrize(("dim", "d"), [(140, 16), (9, 3)])
def test_int4_kernel_matches_reference_bit_exact(dim, d):
    rng = np.random.default_rng(dim)
    params = _quantized_params(rng, dim=dim, d=d, weight_bits=4,
                               weights_q=rng.integers(-8, 8, (4, dim, d), dtype=np.int8),
                               weight_scales=rng.uniform(2e-2, 8e-2, (4, d)).astype(np.float32))
    assert params.weights_packed.shape == (4, d, (dim + 1) // 2)
    x = rng.integers(-128, 128, (48, dim), dtype=np.int8)
    expected = reference_forward(params, x)
    np.testing.assert_array_equal(_run(params, x), expected)
    assert len(np.unique(expected)) > 2 * d ** 0.5  # not all saturated


@pytest.mark.parametrize(("dim", "r"), [(140, 5), (9, 8)])
def test_factored_int4_kernel_matches_reference_bit_exact(dim, r):
    rng = np.random.default_rng(dim + r)
    params = factored_params(rng, dim=dim, r=r, d=6, weight_bits=4,
                             left_q=rng.integers(-8, 8, (3, dim, r), dtype=np.int8),
                             right_q=rng.integers(-8, 8, (3, r, 6), dtype=np.int8))
    x = rng.integers(-128, 128, (32, dim), dtype=np.int8)
    np.testing.assert_array_equal(_run(params, x), reference_forward(params, x))


def test_int4_params_refuse_wider_values_and_other_widths():
    rng = np.random.default_rng(0)
    with pytest.raises(ParameterError, match=r"weights_q has values in \[-127, 127\]"):
        _quantized_params(rng, weight_bits=4,
                          weights_q=np.full((4, 140, 16), 127, np.int8) * np.array([1, -1] * 8,
                                                                                  np.int8))
    with pytest.raises(ParameterError, match="weight_bits must be 8 or 4, got 2"):
        _quantized_params(rng, weight_bits=2)
