"""TFLite/gemmlowp fixed-point requantization, in numpy and as TIR expressions.

The int8 cluster-gated linear operator and the QDQ integer lowering both scale an int32
accumulator back to int8 with a real multiplier ``M = s_in * s_w / s_out``. They do it exactly as
TFLite's reference int8 kernels do (``QuantizeMultiplier`` + ``MultiplyByQuantizedMultiplier``,
double rounding), so that outputs are bit-identical to the TFLite interpreter and to the numpy
reference used by the PLA quantizer. Keeping the numpy functions and the TIR expression builder in
one module keeps the two implementations of the same arithmetic side by side.

The TIR versions are written for 32-bit cores: ``SaturatingRoundingDoublingHighMul`` is one
32x32->64-bit multiply, the addition of a constant and a shift (no sign-dependent nudge, no
division), ``RoundingDivideByPOT`` is int32 only, and a whole requantization (left shift, high
multiplication, rounding shift, zero point, clamp) is one expression, so that a kernel computes it
in registers in one element-wise stage instead of storing int32 intermediates between stages.
The generated C is exact on any target and needs no 64-bit division or variable 64-bit shift
(libcalls or long sequences on a 32-bit core).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tvm import te, tirx

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
#: Annotation of :func:`te_requantize`'s final block: ``zero_point``, ``qmin``, ``qmax`` and
#: ``shifts_nonpositive``, for a reader of the TIR. No back end needs it: ``micro.dsp`` recognises
#: the requantization by its structure (``micro.fixed_point_tir`` states the same arithmetic as
#: :func:`tir_requantize`) and replaces it by a micro-kernel.
REQUANTIZE_ATTR = "relay_passes.requantize"


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


def tir_rounding_doubling_high_mul(a: tirx.PrimExpr, b: tirx.PrimExpr) -> tirx.PrimExpr:
    """TIR expression of :func:`saturating_rounding_doubling_high_mul` for a non-negative ``b``.

    gemmlowp's ``(ab + nudge) / 2**31`` (C division, truncating toward zero) with
    ``nudge = ab >= 0 ? 2**30 : 1 - 2**30`` is ``floor((ab + 2**30) / 2**31)`` for every product:
    for ``ab >= 0`` truncation is flooring; for ``ab < 0`` the sum is negative, and truncating a
    negative ``t / 2**31`` is ``ceil(t / 2**31) = floor((t + 2**31 - 1) / 2**31)``, which with
    ``t = ab + 1 - 2**30`` is again ``floor((ab + 2**30) / 2**31)``. So one 64-bit multiply, one
    addition of a constant and one arithmetic shift (on a Cortex-M3/M4: SMLAL onto the preloaded
    constant, then two 32-bit shifts) replace the sign-dependent nudge and the biased division.
    ``ab + 2**30`` cannot overflow (``|ab| <= 2**62``). The quotient fits int32 except for
    ``INT32_MIN * INT32_MIN``, gemmlowp's one saturating case, which needs ``b = INT32_MIN``:
    multipliers from :func:`quantize_multiplier` are in ``[0, 2**31 - 1]``, so it cannot occur
    and is not tested for (which saves a compare-and-select per value).

    Parameters
    ----------
    a : tvm.tirx.PrimExpr
        int32 scalar expression.
    b : tvm.tirx.PrimExpr
        int32 scalar expression, ``>= 0`` (a quantized multiplier).

    Returns
    -------
    tvm.tirx.PrimExpr
        int32 expression.
    """
    i64 = "int64"
    ab = tirx.Cast(i64, a) * tirx.Cast(i64, b)
    return tirx.Cast("int32", (ab + tirx.const(1 << 30, i64)) >> tirx.const(31, i64))


def tir_rounding_divide_by_pot(x: tirx.PrimExpr, exponent: tirx.PrimExpr) -> tirx.PrimExpr:
    """TIR expression of :func:`rounding_divide_by_pot` for int32 scalars, in int32 only.

    gemmlowp's own int32 formulation; a 32-bit core then needs no 64-bit shift by a variable
    amount. The mask ``2**exponent - 1`` is computed in uint32, where ``1 << 31`` is defined (in
    int32 C it is undefined behaviour).

    Parameters
    ----------
    x, exponent : tvm.tirx.PrimExpr
        int32 scalar expressions (each is written several times into the result); ``exponent``
        in ``[0, 31]``.

    Returns
    -------
    tvm.tirx.PrimExpr
        int32 expression.
    """
    i32, u32 = "int32", "uint32"
    mask = tirx.Cast(i32, (tirx.const(1, u32) << tirx.Cast(u32, exponent)) - tirx.const(1, u32))
    sign = tirx.Cast(u32, x) >> tirx.const(31, u32)  # 1 for negative x
    threshold = (mask >> tirx.const(1, i32)) + tirx.Cast(i32, sign)
    # remainder > threshold, as the sign bit of threshold - remainder: both are in [0, 2**31 - 1],
    # so the difference cannot overflow, and the comparison costs no branch or select.
    above = tirx.Cast(u32, threshold - (x & mask)) >> tirx.const(31, u32)
    return (x >> exponent) + tirx.Cast(i32, above)


def _left_shift(shift: tirx.PrimExpr) -> tirx.PrimExpr:
    return tirx.max(tirx.Cast("int32", shift), tirx.const(0, "int32"))


def _right_shift(shift: tirx.PrimExpr, shifts_nonpositive: bool) -> tirx.PrimExpr:
    zero = tirx.const(0, "int32")
    negated = zero - tirx.Cast("int32", shift)
    return negated if shifts_nonpositive else tirx.max(negated, zero)


def tir_scaled_high_mul(
    x: tirx.PrimExpr, multiplier: tirx.PrimExpr, shift: tirx.PrimExpr,
    shifts_nonpositive: bool = False,
) -> tirx.PrimExpr:
    """First half of :func:`tir_multiply_by_quantized_multiplier`: the left shift and the high
    multiplication, ``SRDHM(x * 2**max(shift, 0), multiplier)``.

    The left shift wraps like int32 hardware: computed in int64, truncated to int32 (the
    simplifier cannot bound the shifted value to int32, so the truncation stays).

    Parameters
    ----------
    x : tvm.tirx.PrimExpr
        int32 value (written once into the result).
    multiplier, shift : tvm.tirx.PrimExpr
        Integer expressions of any width (loads or immediates), from :func:`quantize_multiplier`.
    shifts_nonpositive : bool
        The caller knows every ``shift`` is ``<= 0`` (real multipliers below 1, the usual case):
        the left shift is left out.

    Returns
    -------
    tvm.tirx.PrimExpr
        int32 expression.
    """
    i32 = "int32"
    if not shifts_nonpositive:
        x = tirx.Cast(i32, tirx.Cast("int64", x) << tirx.Cast("int64", _left_shift(shift)))
    return tir_rounding_doubling_high_mul(x, tirx.Cast(i32, multiplier))


def tir_multiply_by_quantized_multiplier(
    x: tirx.PrimExpr, multiplier: tirx.PrimExpr, shift: tirx.PrimExpr
) -> tirx.PrimExpr:
    """TIR expression of :func:`multiply_by_quantized_multiplier` for int32 scalars.

    Parameters
    ----------
    x : tvm.tirx.PrimExpr
        int32 value.
    multiplier, shift : tvm.tirx.PrimExpr
        Integer expressions of any width (loads or immediates), from :func:`quantize_multiplier`.

    Returns
    -------
    tvm.tirx.PrimExpr
        int32 expression. The high multiplication is written out once per use in the rounding
        division (three times); :func:`te_requantize` keeps it in a stage of its own instead.
    """
    return tir_rounding_divide_by_pot(tir_scaled_high_mul(x, multiplier, shift),
                                      _right_shift(shift, False))


def tir_divide_and_clamp(
    high: tirx.PrimExpr, shift: tirx.PrimExpr, zero_point: int, qmin: int = -128,
    qmax: int = 127, shifts_nonpositive: bool = False,
) -> tirx.PrimExpr:
    """Second half of :func:`requantize` after :func:`tir_scaled_high_mul`: the rounding division
    by ``2**max(-shift, 0)``, the clamp and the zero point (int8 result).

    The scaled value is clamped to ``[qmin - zero_point, qmax - zero_point]`` before the zero point
    is added: the same result as the numpy version (which adds in int64) without an int32 overflow
    of ``scaled + zero_point``.

    Parameters
    ----------
    high : tvm.tirx.PrimExpr
        int32 result of :func:`tir_scaled_high_mul` (a cheap expression, e.g. a load: it is
        written several times into the result).
    shift : tvm.tirx.PrimExpr
        The same shift.
    zero_point : int
        Output zero point.
    qmin, qmax : int
        Clamp range.
    shifts_nonpositive : bool
        As for :func:`tir_scaled_high_mul`: the right shift is ``-shift`` without a ``max``.

    Returns
    -------
    tvm.tirx.PrimExpr
        int8 expression.
    """
    i32 = "int32"
    scaled = tir_rounding_divide_by_pot(high, _right_shift(shift, shifts_nonpositive))
    clamped = tirx.max(tirx.min(scaled, tirx.const(qmax - zero_point, i32)),
                       tirx.const(qmin - zero_point, i32))
    return tirx.Cast("int8", clamped + tirx.const(zero_point, i32))


def tir_requantize(
    acc: tirx.PrimExpr, multiplier: tirx.PrimExpr, shift: tirx.PrimExpr, zero_point: int,
    qmin: int = -128, qmax: int = 127, shifts_nonpositive: bool = False,
) -> tirx.PrimExpr:
    """TIR expression of :func:`requantize` for an int32 scalar, in one piece (int8 result).

    What :func:`te_requantize`'s two stages compute once the first is inlined into the second
    (the high product written out at each use): the form a tensor intrinsic's description
    needs.

    Parameters
    ----------
    acc : tvm.tirx.PrimExpr
        int32 accumulator.
    multiplier, shift : tvm.tirx.PrimExpr
        As for :func:`tir_scaled_high_mul`.
    zero_point, qmin, qmax, shifts_nonpositive
        As for :func:`te_requantize`.

    Returns
    -------
    tvm.tirx.PrimExpr
        int8 expression.
    """
    high = tir_scaled_high_mul(acc, multiplier, shift, shifts_nonpositive)
    return tir_divide_and_clamp(high, shift, zero_point, qmin, qmax, shifts_nonpositive)


def te_multiply_by_quantized_multiplier(
    x: te.Tensor,
    multiplier: Callable[..., tirx.PrimExpr],
    shift: Callable[..., tirx.PrimExpr],
    name: str,
) -> te.Tensor:
    """One TE stage computing :func:`multiply_by_quantized_multiplier` of an int32 tensor.

    Parameters
    ----------
    x : tvm.te.Tensor
        int32 values.
    multiplier, shift : callable
        Map output indices to the multiplier and shift (integer expressions of any width, e.g.
        per-channel lookups or immediates).
    name : str
        Name of the stage.

    Returns
    -------
    tvm.te.Tensor
        int32 tensor of ``x``'s shape.
    """
    return te.compute(
        x.shape,
        lambda *idx: tir_multiply_by_quantized_multiplier(x(*idx), multiplier(*idx), shift(*idx)),
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
    shifts_nonpositive: bool = False,
) -> te.Tensor:
    """Two TE stages computing :func:`requantize` of an int32 tensor (int8 result).

    ``<name>_high`` is the high multiplication (:func:`tir_scaled_high_mul`), ``<name>`` the
    rounding division, clamp and zero point (:func:`tir_divide_and_clamp`, annotated with
    :data:`REQUANTIZE_ATTR`), which use the high
    product three times: as a stage of its own it is computed once, where one expression would
    repeat it (and C compilers do not merge the 64-bit repeats). Schedules fuse the two stages
    into one loop (``compute_at``), which leaves the intermediate one element in a register.

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
    shifts_nonpositive : bool
        Every shift is ``<= 0`` (known from the constants): no left shift is generated.

    Returns
    -------
    tvm.te.Tensor
        int8 tensor of ``acc``'s shape.
    """
    high = te.compute(
        acc.shape,
        lambda *idx: tir_scaled_high_mul(acc(*idx), multiplier(*idx), shift(*idx),
                                         shifts_nonpositive),
        name=f"{name}_high",
    )
    attrs = {"zero_point": zero_point, "qmin": qmin, "qmax": qmax,
             "shifts_nonpositive": shifts_nonpositive}
    return te.compute(
        acc.shape,
        lambda *idx: tir_divide_and_clamp(high(*idx), shift(*idx), zero_point, qmin, qmax,
                                          shifts_nonpositive),
        name=name,
        attrs={REQUANTIZE_ATTR: attrs},
    )
