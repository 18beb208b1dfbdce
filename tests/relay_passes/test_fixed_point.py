"""relay_passes.fixed_point: numpy helpers against a plain-integer gemmlowp model, TIR vs numpy."""

import numpy as np
import pytest
import tvm
from tvm import s_tir, te

from relay_passes.fixed_point import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    requantize,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    te_multiply_by_quantized_multiplier,
    te_requantize,
    tir_rounding_divide_by_pot,
    tir_rounding_doubling_high_mul,
)


def _wrap32(value: int) -> int:
    return (value + 2**31) % 2**32 - 2**31


def _srdhm(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    total = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
    quotient = abs(total) // 2**31
    return quotient if total >= 0 else -quotient


def _rdbpot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if (x & mask) > threshold else 0)


def _mbqm(x: int, multiplier: int, shift: int) -> int:
    return _rdbpot(_srdhm(_wrap32(x << max(shift, 0)), multiplier), max(-shift, 0))


EDGE_ACCUMULATORS = np.array(
    [0, 1, -1, 2, -2, 3, -3, 127, -128, 1000, -1000, 2**20, -(2**20), INT32_MAX, INT32_MIN,
     INT32_MAX - 1, INT32_MIN + 1], dtype=np.int32)


# 0, the extremes, and +-2**k, +-(2**k +- 1) for every k: every carry and sign boundary.
_POWERS = np.array([sign * (2**k + delta) for k in range(32) for delta in (-1, 0, 1)
                    for sign in (1, -1)], dtype=np.int64)
EDGE_INT32 = np.unique(np.clip(np.concatenate([_POWERS, [0, INT32_MIN, INT32_MAX]]),
                               INT32_MIN, INT32_MAX)).astype(np.int32)


def _random_case(rng, size=4000):
    acc = np.concatenate([EDGE_ACCUMULATORS, rng.integers(-(2**31), 2**31, size, dtype=np.int64)
                          .astype(np.int32), rng.integers(-5000, 5000, size).astype(np.int32)])
    real = np.exp(rng.uniform(np.log(1e-6), np.log(4.0), acc.size))
    mult, shift = quantize_multiplier(real)
    return acc, mult, shift


@pytest.mark.parametrize(
    "real, expected",
    [
        (0.0, (0, 0)),
        (0.5, (2**30, 0)),
        (1.0, (2**30, 1)),
        (0.75, (1610612736, 0)),
        (0.25, (2**30, -1)),
        (1.0 - 2.0**-40, (2**30, 1)),  # q * 2**31 rounds up to 2**31: halved, exponent + 1
        (2.0**-40, (0, 0)),  # below 2**-32: flushed to zero like TFLite
    ],
)
def test_quantize_multiplier_known_values(real, expected):
    mult, shift = quantize_multiplier(np.array([real]))
    assert (int(mult[0]), int(shift[0])) == expected
    assert mult.dtype == np.int32 and shift.dtype == np.int32


def test_quantize_multiplier_round_trip():
    real = np.exp(np.random.default_rng(0).uniform(np.log(1e-8), np.log(100.0), 1000))
    mult, shift = quantize_multiplier(real)
    assert np.all((mult >= 2**30) & (mult < 2**31))
    np.testing.assert_allclose(mult * 2.0 ** (shift.astype(np.float64) - 31), real, rtol=2**-30)


def test_quantize_multiplier_rejects_negative():
    with pytest.raises(ValueError, match="finite and >= 0"):
        quantize_multiplier(np.array([0.5, -0.1]))


def test_gemmlowp_primitives_edge_cases():
    assert int(saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN)) == INT32_MAX
    assert int(saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MAX)) == -INT32_MAX
    # Round half away from zero in RoundingDivideByPOT.
    x = np.array([5, -5, -4, -6, 6, 7, -7, INT32_MIN, INT32_MAX], dtype=np.int32)
    got = rounding_divide_by_pot(x, np.array([1, 1, 1, 2, 2, 1, 1, 31, 31]))
    np.testing.assert_array_equal(got, [3, -3, -2, -2, 2, 4, -4, -1, 1])


def test_multiply_by_quantized_multiplier_matches_integer_model():
    acc, mult, shift = _random_case(np.random.default_rng(1), size=500)
    got = multiply_by_quantized_multiplier(acc, mult, shift)
    expected = [_mbqm(int(a), int(m), int(s)) for a, m, s in zip(acc, mult, shift, strict=True)]
    np.testing.assert_array_equal(got, np.array(expected, dtype=np.int64))


def test_requantize_saturates_and_offsets():
    mult, shift = quantize_multiplier(np.array([0.5]))
    got = requantize(np.array([1000, -1000, 9, -9, 0], dtype=np.int32), mult, shift, -7)
    # SRDHM's nudge rounds +4.5 up to 5 but -4.5 to -4 (gemmlowp semantics), then + z_out = -7.
    np.testing.assert_array_equal(got, [127, -128, -2, -11, -7])
    assert got.dtype == np.int8


def _build(func: tvm.tirx.PrimFunc):
    return tvm.compile(tvm.IRModule({"main": func}), target="llvm")


def _per_channel(stage, acc: np.ndarray, mult: np.ndarray, shift: np.ndarray,
                 out_dtype: str) -> np.ndarray:
    """Build ``stage(acc, multiplier_fn, shift_fn)`` over per-element multipliers and shifts for
    llvm and run it on the arrays."""
    n = acc.size
    acc_t = te.placeholder((n,), "int32", name="acc")
    mult_t = te.placeholder((n,), "int32", name="mult")
    shift_t = te.placeholder((n,), "int8", name="shift")
    out = stage(acc_t, lambda i: mult_t[i], lambda i: shift_t[i])
    lib = _build(te.create_prim_func([acc_t, mult_t, shift_t, out]))
    result = tvm.runtime.tensor(np.zeros(n, out_dtype))
    lib["main"](*(tvm.runtime.tensor(a) for a in (acc, mult, shift.astype(np.int8))), result)
    return result.numpy()


def test_tir_multiply_by_quantized_multiplier_matches_numpy():
    acc, mult, shift = _random_case(np.random.default_rng(2))
    got = _per_channel(lambda a, m, s: te_multiply_by_quantized_multiplier(a, m, s, "scaled"),
                       acc, mult, shift, "int32")
    np.testing.assert_array_equal(got, multiply_by_quantized_multiplier(acc, mult, shift))


def test_tir_requantize_matches_numpy():
    acc, mult, shift = _random_case(np.random.default_rng(3))
    got = _per_channel(lambda a, m, s: te_requantize(a, m, s, 5, qmin=-100, qmax=90),
                       acc, mult, shift, "int8")
    np.testing.assert_array_equal(got, requantize(acc, mult, shift, 5, -100, 90))


def test_srdhm_is_a_plain_rounding_shift_except_when_saturating():
    """gemmlowp's sign-dependent nudge + truncating division == ``(ab + 2**30) >> 31``."""
    rng = np.random.default_rng(4)
    a = np.concatenate([np.repeat(EDGE_INT32, EDGE_INT32.size),
                        rng.integers(INT32_MIN, INT32_MAX + 1, 2_000_000, dtype=np.int64)])
    b = np.concatenate([np.tile(EDGE_INT32, EDGE_INT32.size),
                        rng.integers(INT32_MIN, INT32_MAX + 1, 2_000_000, dtype=np.int64)])
    shortcut = (a.astype(np.int64) * b + (1 << 30)) >> 31
    saturating = (a == INT32_MIN) & (b == INT32_MIN)
    assert np.count_nonzero(saturating) == 1
    assert np.all((shortcut[~saturating] >= -INT32_MAX) & (shortcut[~saturating] <= INT32_MAX))
    np.testing.assert_array_equal(np.where(saturating, INT32_MAX, shortcut),
                                  saturating_rounding_doubling_high_mul(a, b))


def _elementwise(expr, dtypes: list[str]):
    """Build ``out[i] = expr(in_0[i], in_1[i], ...)`` (int32 out) for llvm; return a numpy call."""

    def run(*arrays: np.ndarray) -> np.ndarray:
        n = arrays[0].size
        inputs = [te.placeholder((n,), dtype, name=f"in{i}") for i, dtype in enumerate(dtypes)]
        out = te.compute((n,), lambda i: expr(*(t(i) for t in inputs)), name="out")
        lib = _build(te.create_prim_func([*inputs, out]))
        result = tvm.runtime.tensor(np.zeros(n, np.int32))
        lib["main"](*(tvm.runtime.tensor(a.astype(d)) for a, d in zip(arrays, dtypes,
                                                                        strict=True)), result)
        return result.numpy()

    return run


def test_tir_srdhm_matches_numpy_for_non_negative_multipliers():
    rng = np.random.default_rng(5)
    edges_b = EDGE_INT32[EDGE_INT32 >= 0]
    a = np.concatenate([np.repeat(EDGE_INT32, edges_b.size),
                        rng.integers(INT32_MIN, INT32_MAX + 1, 20_000, dtype=np.int64)])
    b = np.concatenate([np.tile(edges_b, EDGE_INT32.size),
                        rng.integers(0, INT32_MAX + 1, 20_000, dtype=np.int64)])
    run = _elementwise(tir_rounding_doubling_high_mul, ["int32", "int32"])
    np.testing.assert_array_equal(run(a, b), saturating_rounding_doubling_high_mul(a, b))


def test_tir_rounding_divide_by_pot_matches_numpy_for_every_exponent():
    rng = np.random.default_rng(6)
    values = np.concatenate([EDGE_INT32, rng.integers(INT32_MIN, INT32_MAX + 1, 300)])
    x = np.tile(values, 32)
    exponent = np.repeat(np.arange(32), values.size)
    run = _elementwise(tir_rounding_divide_by_pot, ["int32", "int32"])
    np.testing.assert_array_equal(run(x, exponent), rounding_divide_by_pot(x, exponent))


def test_te_requantize_computes_the_high_product_once_in_its_own_stage():
    acc = te.placeholder((8,), "int32", name="acc")
    out = te_requantize(acc, lambda i: 1 << 30, lambda i: -3, -128)
    sch = s_tir.Schedule(te.create_prim_func([acc, out]))
    assert [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))] == [
        "requantize_high", "requantize"]
    # The rounding division reads the high product (three uses) instead of recomputing it.
    assert sch.get(sch.get_sblock("requantize")).body.value.script().count("T.int64") == 0


@pytest.mark.parametrize("zero_point", [-128, 0, 100])
def test_tir_requantize_zero_points_match_numpy(zero_point):
    acc, mult, shift = _random_case(np.random.default_rng(7), size=1000)
    got = _per_channel(lambda a, m, s: te_requantize(a, m, s, zero_point), acc, mult, shift,
                       "int8")
    np.testing.assert_array_equal(got, requantize(acc, mult, shift, zero_point))
