"""TFLite/gemmlowp fixed-point requantization, in numpy and as TIR expressions.

The int8 cluster-gated linear operator and the QDQ integer lowering both scale an int32
accumulator back to int8 with a real multiplier ``M = s_in * s_w / s_out``. They do it exactly as
TFLite's reference int8 kernels do (``QuantizeMultiplier`` + ``MultiplyByQuantizedMultiplier``,
double rounding), so that outputs are bit-identical to the TFLite interpreter and to the numpy
reference used by the PLA quantizer. Keeping the numpy functions and the TIR expression builder in
one module keeps the two implementations of the same arithmetic side by side.

The TIR version uses 64-bit intermediates and no division (the truncating division by 2**31 is
written as a biased arithmetic shift), so the generated C is exact on any target, including a
32-bit Cortex-M compiler, and needs no ``__aeabi_ldivmod``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tvm import te, tirx

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def quantize_multiplier(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split real multipliers into a Q31 fixed-point multiplier and a power-of-two shift.

    Follows TFLite's ``QuantizeMultiplier``: ``q, e = frexp(M)``, ``mult = round(q * 2**31)``
    (half away from zero); if ``mult == 2**31`` then ``mult //= 2`` and ``e += 1``; ``shift = e``.
    ``M == 0`` and multipliers below ``2**-32`` (``e < -31``) give ``(0, 0)``.

    Parameters
    ----------
    real : np.ndarray
        Non-negative real multipliers, any shape. Compute them in float64 from the float32 scales
        (``float64(s_in) * float64(s_w) / float64(s_out)``) as TFLite does.

    Returns
    -------
    multiplier : np.ndarray
        int32, same shape, in ``[2**30, 2**31 - 1]`` or 0.
    shift : np.ndarray
        int32, same shape; positive means a left shift.

    Raises
    ------
    ValueError
        If a multiplier is negative or not finite.
    """
    real = np.asarray(real, dtype=np.float64)
    if not np.all(np.isfinite(real)) or np.any(real < 0):
        raise ValueError(f"real multipliers must be finite and >= 0, got min={real.min()!r}")
    q, e = np.frexp(real)
    mult = np.floor(q * 2.0**31 + 0.5).astype(np.int64)
    e = e.astype(np.int64)
    carry = mult == 2**31
    mult = np.where(carry, mult // 2, mult)
    e = np.where(carry, e + 1, e)
    tiny = e < -31
    mult = np.where(tiny, 0, mult)
    e = np.where(tiny | (mult == 0), 0, e)
    return mult.astype(np.int32), e.astype(np.int32)


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 arrays (broadcasting).

    Parameters
    ----------
    a, b : np.ndarray
        int32 operands.

    Returns
    -------
    np.ndarray
        int32 ``round(a * b / 2**31)`` with gemmlowp's nudge; ``INT32_MIN * INT32_MIN`` saturates
        to ``INT32_MAX``.
    """
    a64 = np.asarray(a, dtype=np.int64)
    b64 = np.asarray(b, dtype=np.int64)
    ab = a64 * b64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    total = ab + nudge
    # C's '/' truncates toward zero; numpy's '//' floors.
    high = np.where(total >= 0, total // 2**31, -((-total) // 2**31))
    overflow = (a64 == INT32_MIN) & (b64 == INT32_MIN)
    return np.where(overflow, INT32_MAX, high).astype(np.int32)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT``: divide by ``2**exponent``, rounding half away from zero.

    Parameters
    ----------
    x : np.ndarray
        int32 dividends.
    exponent : np.ndarray
        int32 exponents in ``[0, 31]`` (broadcasting).

    Returns
    -------
    np.ndarray
        int32 quotients.
    """
    x64 = np.asarray(x, dtype=np.int64)
    e64 = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e64) - 1
    remainder = x64 & mask
    threshold = (mask >> 1) + (x64 < 0)
    return ((x64 >> e64) + (remainder > threshold)).astype(np.int32)


def multiply_by_quantized_multiplier(
    acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray
) -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier`` (double rounding) on int32 arrays.

    ``RoundingDivideByPOT(SRDHM(acc * 2**max(shift, 0), multiplier), max(-shift, 0))``. The left
    shift wraps modulo 2**32 like two's-complement int32 hardware (TFLite leaves that overflow
    undefined; it cannot happen for multipliers below 1).

    Parameters
    ----------
    acc : np.ndarray
        int32 accumulators.
    multiplier, shift : np.ndarray
        int32, from :func:`quantize_multiplier`, broadcast against ``acc``.

    Returns
    -------
    np.ndarray
        int32 scaled values (before the output zero point and clamping).
    """
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = (np.asarray(acc, dtype=np.int64) << left).astype(np.int32)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def requantize(
    acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray, zero_point: int,
    qmin: int = -128, qmax: int = 127,
) -> np.ndarray:
    """Scale int32 accumulators to int8: ``clip(MBQM(acc) + zero_point, qmin, qmax)``.

    Parameters
    ----------
    acc, multiplier, shift : np.ndarray
        As for :func:`multiply_by_quantized_multiplier`.
    zero_point : int
        Output zero point.
    qmin, qmax : int
        Clamp range (a fused ReLU raises ``qmin``).

    Returns
    -------
    np.ndarray
        int8 values.
    """
    scaled = multiply_by_quantized_multiplier(acc, multiplier, shift).astype(np.int64)
    return np.clip(scaled + zero_point, qmin, qmax).astype(np.int8)


def tir_saturating_rounding_doubling_high_mul(
    a: tirx.PrimExpr, b: tirx.PrimExpr
) -> tirx.PrimExpr:
    """TIR expression of :func:`saturating_rounding_doubling_high_mul` for int32 scalars.

    Parameters
    ----------
    a, b : tvm.tirx.PrimExpr
        int32 scalar expressions (cheap ones, e.g. buffer loads: each is used several times).

    Returns
    -------
    tvm.tirx.PrimExpr
        int32 expression.
    """
    i64 = "int64"
    zero = tirx.const(0, i64)
    a64, b64 = tirx.Cast(i64, a), tirx.Cast(i64, b)
    ab = a64 * b64
    total = ab + tirx.Select(ab >= zero, tirx.const(1 << 30, i64), tirx.const(1 - (1 << 30), i64))
    # C's truncating '/ 2**31', written as an arithmetic shift with a bias for negative values.
    high = (total + tirx.Select(total < zero, tirx.const(2**31 - 1, i64), zero)) >> tirx.const(
        31, i64
    )
    overflow = tirx.all(a == tirx.const(INT32_MIN, "int32"), b == tirx.const(INT32_MIN, "int32"))
    return tirx.Select(overflow, tirx.const(INT32_MAX, "int32"), tirx.Cast("int32", high))


def tir_rounding_divide_by_pot(x: tirx.PrimExpr, exponent: tirx.PrimExpr) -> tirx.PrimExpr:
    """TIR expression of :func:`rounding_divide_by_pot` for int32 scalars.

    Parameters
    ----------
    x, exponent : tvm.tirx.PrimExpr
        int32 scalar expressions (cheap ones: each is used several times); ``exponent`` in
        ``[0, 31]``.

    Returns
    -------
    tvm.tirx.PrimExpr
        int32 expression.
    """
    i64 = "int64"
    one = tirx.const(1, i64)
    x64, e64 = tirx.Cast(i64, x), tirx.Cast(i64, exponent)
    mask = (one << e64) - one
    threshold = (mask >> one) + tirx.Select(x64 < tirx.const(0, i64), one, tirx.const(0, i64))
    rounded = (x64 >> e64) + tirx.Select((x64 & mask) > threshold, one, tirx.const(0, i64))
    return tirx.Cast("int32", rounded)


def te_multiply_by_quantized_multiplier(
    x: te.Tensor,
    multiplier: Callable[..., tirx.PrimExpr],
    shift: Callable[..., tirx.PrimExpr],
    name: str,
) -> te.Tensor:
    """TE stages computing :func:`multiply_by_quantized_multiplier` of an int32 tensor.

    Three injective stages (``<name>_shifted``, ``<name>_high_mul`` and ``<name>``) keep each TIR
    expression small; schedules inline or fuse them with the producer of ``x``.

    Parameters
    ----------
    x : tvm.te.Tensor
        int32 values.
    multiplier, shift : callable
        Map output indices to the multiplier and shift (integer expressions of any width, e.g.
        per-channel lookups or immediates).
    name : str
        Name of the final stage.

    Returns
    -------
    tvm.te.Tensor
        int32 tensor of ``x``'s shape.
    """
    zero = tirx.const(0, "int32")

    def shift_at(idx):
        return tirx.Cast("int32", shift(*idx))

    def shift_left(*idx):
        left = tirx.Cast("int64", tirx.max(shift_at(idx), zero))
        return tirx.Cast("int32", tirx.Cast("int64", x(*idx)) << left)

    # A stage of its own: storing to int32 makes the wrap explicit, so the simplifier cannot
    # reason about the unwrapped 64-bit value inside the high multiplication.
    shifted = te.compute(x.shape, shift_left, name=f"{name}_shifted")
    high = te.compute(
        x.shape,
        lambda *idx: tir_saturating_rounding_doubling_high_mul(
            shifted(*idx), tirx.Cast("int32", multiplier(*idx))),
        name=f"{name}_high_mul")
    return te.compute(
        x.shape,
        lambda *idx: tir_rounding_divide_by_pot(high(*idx), tirx.max(zero - shift_at(idx), zero)),
        name=name,
    )


def te_requantize(
    acc: te.Tensor,
    multiplier: Callable[..., tirx.PrimExpr],
    shift: Callable[..., tirx.PrimExpr],
    zero_point: int,
    qmin: int = -128,
    qmax: int = 127,
    name: str = "requantize",
) -> te.Tensor:
    """TE stages computing :func:`requantize` of an int32 tensor (int8 result).

    Parameters
    ----------
    acc : tvm.te.Tensor
        int32 accumulators.
    multiplier, shift : callable
        As for :func:`te_multiply_by_quantized_multiplier`.
    zero_point : int
        Output zero point.
    qmin, qmax : int
        Clamp range.
    name : str
        Name of the final stage.

    Returns
    -------
    tvm.te.Tensor
        int8 tensor of ``acc``'s shape.
    """
    scaled = te_multiply_by_quantized_multiplier(acc, multiplier, shift, f"{name}_scale")

    def clamp(*idx):
        value = scaled(*idx) + tirx.const(zero_point, "int32")
        return tirx.Cast("int8", tirx.max(tirx.min(value, tirx.const(qmax, "int32")),
                                          tirx.const(qmin, "int32")))

    return te.compute(acc.shape, clamp, name=name)
