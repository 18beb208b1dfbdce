"""The cluster-gated linear kernels, built with tvm.compile for llvm, against reference_forward."""

import numpy as np
import pytest
import tvm
from tvm import relax, s_tir

from relay_passes import (
    ClusterGatedLinearParams,
    QuantizedClusterGatedLinearParams,
    emit_cluster_gated_linear,
    make_cluster_gated_linear_int8_kernel,
    reference_forward,
)


def _run(params, x: np.ndarray) -> np.ndarray:
    builder = relax.BlockBuilder()
    data = relax.Var("x", relax.TensorType(x.shape, str(x.dtype)))
    with builder.function("main", [data]):
        with builder.dataflow():
            out = builder.emit_output(emit_cluster_gated_linear(builder, data, params))
        builder.emit_func_output(out)
    vm = relax.VirtualMachine(tvm.compile(builder.get(), target="llvm"), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


def _float_params(rng, k=4, dim=140, d=16):
    return ClusterGatedLinearParams(rng.standard_normal((k, dim)),
                                    rng.standard_normal((k, dim, d)) * 0.1,
                                    rng.standard_normal((k, d)))


def _quantized_params(rng, k=4, dim=140, d=16, **overrides):
    fields = dict(
        input_scale=0.03, input_zero_point=int(rng.integers(-20, 20)),
        centroids_q=rng.integers(-128, 128, (k, dim), dtype=np.int8),
        weights_q=rng.integers(-127, 128, (k, dim, d), dtype=np.int8),
        weight_scales=rng.uniform(1e-3, 5e-3, (k, d)).astype(np.float32),
        bias_q=rng.integers(-20000, 20000, (k, d)).astype(np.int32),
        output_scale=0.25, output_zero_point=int(rng.integers(-30, 30)))
    fields.update(overrides)
    return QuantizedClusterGatedLinearParams(**fields)


def _assert_float_close(got, expected):
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale)


def test_float_matches_reference():
    rng = np.random.default_rng(0)
    params = _float_params(rng)
    # Inputs near random centroids so that every cluster is used.
    x = (params.centroids[rng.integers(0, 4, 32)] + 0.5 * rng.standard_normal((32, 140)))
    x = x.astype(np.float32)
    got = _run(params, x)
    assert got.dtype == np.float32 and got.shape == (32, 16)
    _assert_float_close(got, reference_forward(params, x))


def test_float_ties_go_to_lowest_cluster():
    rng = np.random.default_rng(1)
    params = _float_params(rng, k=3)
    centroids = params.centroids.copy()
    centroids[2] = centroids[1]  # clusters 1 and 2 tie everywhere
    tied = ClusterGatedLinearParams(centroids, params.weights, params.biases)
    x = (centroids[[1, 2, 0]] + 1e-3).astype(np.float32)
    got = _run(tied, x)
    expected = x.astype(np.float64) @ tied.weights[1].astype(np.float64) + tied.biases[1]
    _assert_float_close(got[:2], expected[:2])
    _assert_float_close(got, reference_forward(tied, x))


def test_int8_matches_reference_bit_exact():
    rng = np.random.default_rng(2)
    params = _quantized_params(rng)
    x = rng.integers(-128, 128, (64, 140), dtype=np.int8)
    got = _run(params, x)
    expected = reference_forward(params, x)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, expected)
    assert len(np.unique(expected)) > 20  # not all saturated


def test_int8_negative_accumulators_and_saturation():
    rng = np.random.default_rng(3)
    k, d = 2, 8
    bias = np.zeros((k, d), np.int32)
    bias[:, :4] = -(2**24)  # far below the output range: saturates at -128
    bias[:, 4:6] = 2**24  # saturates at 127
    params = _quantized_params(rng, k=k, d=d, bias_q=bias, output_scale=0.05)
    x = rng.integers(-128, 128, (16, 140), dtype=np.int8)
    got = _run(params, x)
    expected = reference_forward(params, x)
    np.testing.assert_array_equal(got, expected)
    assert np.all(got[:, :4] == -128) and np.all(got[:, 4:6] == 127)


def test_int8_multiplier_above_one_uses_left_shift():
    rng = np.random.default_rng(4)
    # M = 0.03 * 1e-3 / 1e-5 = 3: shift 2, so the accumulator is shifted left first.
    params = _quantized_params(rng, k=2, d=4, output_scale=1e-5, input_zero_point=0,
                               bias_q=np.zeros((2, 4), np.int32),
                               weights_q=rng.integers(-2, 3, (2, 140, 4), dtype=np.int8),
                               weight_scales=np.full((2, 4), 1e-3, np.float32))
    _, shift = params.multiplier_shift
    assert shift.min() > 0
    x = rng.integers(-3, 4, (16, 140), dtype=np.int8)
    got = _run(params, x)
    np.testing.assert_array_equal(got, reference_forward(params, x))
    assert np.any((got > -128) & (got < 127))


def test_int8_ties_go_to_lowest_cluster():
    rng = np.random.default_rng(5)
    params = _quantized_params(rng, k=3, d=4)
    centroids = params.centroids_q.copy()
    centroids[1] = centroids[0]
    fields = {f: getattr(params, f) for f in params.__dataclass_fields__}
    fields["centroids_q"] = centroids
    tied = QuantizedClusterGatedLinearParams(**fields)
    x = np.clip(centroids[[0, 1]].astype(np.int64) + tied.input_zero_point, -128, 127)
    x = x.astype(np.int8)
    got = _run(tied, x)
    np.testing.assert_array_equal(got, reference_forward(tied, x))
    one_cluster = QuantizedClusterGatedLinearParams(**{
        **fields, "centroids_q": centroids[:1], "weights_q": tied.weights_q[:1],
        "weight_scales": tied.weight_scales[:1], "bias_q": tied.bias_q[:1]})
    np.testing.assert_array_equal(got, reference_forward(one_cluster, x))


CORTEX_M4 = {"kind": "llvm", "mtriple": "thumbv7em-none-eabi", "mcpu": "cortex-m4",
             "mfloat-abi": "hard"}


@pytest.mark.parametrize("target", [{"kind": "c"}, CORTEX_M4])
def test_int8_kernel_builds_for_bare_metal_targets(target):
    kernel = make_cluster_gated_linear_int8_kernel(1, 140, 3, 16, output_zero_point=-4)
    mod = tvm.IRModule({"cluster_gated_linear_int8": kernel.with_attr(
        "global_symbol", "cluster_gated_linear_int8")})
    lib = tvm.tirx.build(mod, target=tvm.target.Target(target))
    if target["kind"] == "c":
        source = lib.inspect_source()
        assert "cluster_gated_linear_int8" in source
        body = source.split("cluster_gated_linear_int8")[-1]
        assert "__aeabi" not in source and " / " not in body  # no (64-bit) division


def test_int8_kernel_requantizes_right_after_the_accumulator():
    """Bias, high multiplication, then the rounding division and the clamp: element-wise stages."""
    kernel = make_cluster_gated_linear_int8_kernel(2, 140, 3, 16, output_zero_point=-4)
    sch = s_tir.Schedule(kernel)
    root = sch.get_sblock("root")
    names = [sch.get(b).name_hint for b in sch.get_child_blocks(root)]
    assert names == ["centroid_dot", "score", "nearest_cluster", "accumulate", "add_bias",
                     "requantize_high", "requantize"]
