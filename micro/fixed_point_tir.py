"""The fixed-point requantization micro implements, as TIR: TFLite/gemmlowp double rounding.

An int8 kernel scales its int32 accumulator ``acc`` back to int8 with a per-channel Q31
``multiplier`` and a power-of-two ``shift <= 0`` (TFLite's ``MultiplyByQuantizedMultiplier`` for
real multipliers below 1), adds the output zero point and clamps::

    high   = int32((int64(acc) * int64(multiplier) + 2**30) >> 31)   # SaturatingRoundingDoubling-
    scaled = RoundingDivideByPOT(high, -shift)                        #   HighMul, no saturation
    out    = int8(clamp(scaled, qmin - zero_point, qmax - zero_point) + zero_point)

``RoundingDivideByPOT`` is written in int32 only (gemmlowp's formulation, the mask in uint32) and
the comparison ``remainder > threshold`` as the sign bit of their difference, so the expression
has no branch, no select and no 64-bit shift by a variable amount.

micro keeps its own statement of this arithmetic (it depends on no front end): the requantization
micro-kernel's tensor intrinsic (:func:`micro.kernels.dsp.requantize.requantize_intrin`) is
described with
:func:`requantize`, and since ``tensorize`` compares that description with a block structurally,
a block matches only if it computes exactly these operations in this order, whoever generated it.
:func:`clamp_constants` reads the zero point and clamp range such a block was generated with from
its own expression, so that nothing but the block itself is needed to try the intrinsic on it.
"""

from __future__ import annotations

from tvm import tirx

_I32, _U32, _I64 = "int32", "uint32", "int64"


def rounding_doubling_high_mul(a: tirx.PrimExpr, b: tirx.PrimExpr) -> tirx.PrimExpr:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` for a multiplier ``b >= 0``.

    ``floor((a * b + 2**30) / 2**31)`` equals gemmlowp's sign-dependent nudge followed by a
    truncating division for every product; the saturating case ``INT32_MIN * INT32_MIN`` needs
    ``b = INT32_MIN``, which a Q31 multiplier never is.

    Parameters
    ----------
    a : tvm.tirx.PrimExpr
        int32 value.
    b : tvm.tirx.PrimExpr
        int32 multiplier, ``>= 0``.

    Returns
    -------
    tvm.tirx.PrimExpr
        int32 expression.
    """
    ab = tirx.Cast(_I64, a) * tirx.Cast(_I64, b)
    return tirx.Cast(_I32, (ab + tirx.const(1 << 30, _I64)) >> tirx.const(31, _I64))


def rounding_divide_by_pot(x: tirx.PrimExpr, exponent: tirx.PrimExpr) -> tirx.PrimExpr:
    """gemmlowp ``RoundingDivideByPOT`` in int32: ``x / 2**exponent``, ties away from zero.

    Parameters
    ----------
    x, exponent : tvm.tirx.PrimExpr
        int32 values (each written several times into the result), ``exponent`` in ``[0, 31]``.

    Returns
    -------
    tvm.tirx.PrimExpr
        int32 expression.
    """
    mask = tirx.Cast(_I32, (tirx.const(1, _U32) << tirx.Cast(_U32, exponent)) - tirx.const(1, _U32))
    sign = tirx.Cast(_U32, x) >> tirx.const(31, _U32)  # 1 for negative x
    threshold = (mask >> tirx.const(1, _I32)) + tirx.Cast(_I32, sign)
    above = tirx.Cast(_U32, threshold - (x & mask)) >> tirx.const(31, _U32)
    return (x >> exponent) + tirx.Cast(_I32, above)


def requantize(
    acc: tirx.PrimExpr, multiplier: tirx.PrimExpr, shift: tirx.PrimExpr, zero_point: int,
    qmin: int, qmax: int,
) -> tirx.PrimExpr:
    """The whole requantization of one int32 value to int8, right shifts only.

    Parameters
    ----------
    acc : tvm.tirx.PrimExpr
        int32 accumulator.
    multiplier : tvm.tirx.PrimExpr
        Q31 multiplier (any integer width; used as int32).
    shift : tvm.tirx.PrimExpr
        Shift ``<= 0`` (any integer width; the value is divided by ``2**-shift``).
    zero_point : int
        Output zero point.
    qmin, qmax : int
        Clamp range of the int8 result.

    Returns
    -------
    tvm.tirx.PrimExpr
        int8 expression.
    """
    high = rounding_doubling_high_mul(acc, tirx.Cast(_I32, multiplier))
    scaled = rounding_divide_by_pot(high, tirx.const(0, _I32) - tirx.Cast(_I32, shift))
    clamped = tirx.max(tirx.min(scaled, tirx.const(qmax - zero_point, _I32)),
                       tirx.const(qmin - zero_point, _I32))
    return tirx.Cast("int8", clamped + tirx.const(zero_point, _I32))


def clamp_constants(value: tirx.PrimExpr) -> tuple[int, int, int] | None:
    """The zero point and clamp range of an expression shaped like :func:`requantize`'s result.

    Reads ``int8(max(min(x, qmax - z), qmin - z) + z)`` with integer immediates (``- |z|`` for a
    negative ``z``, no addition for ``z = 0``, as TVM folds them); ``x`` is not examined:
    tensorizing with the intrinsic these constants select checks it.

    Parameters
    ----------
    value : tvm.tirx.PrimExpr
        The value a block stores.

    Returns
    -------
    tuple of (int, int, int) or None
        ``(zero_point, qmin, qmax)``, or None for an expression of any other shape.
    """
    if not (isinstance(value, tirx.Cast) and str(value.ty) == "int8"):
        return None
    shifted = value.value
    if isinstance(shifted, tirx.Add) and isinstance(shifted.b, tirx.IntImm):
        clamped, zero_point = shifted.a, int(shifted.b.value)
    elif isinstance(shifted, tirx.Sub) and isinstance(shifted.b, tirx.IntImm):
        clamped, zero_point = shifted.a, -int(shifted.b.value)
    else:  # a zero point of 0 is folded away
        clamped, zero_point = shifted, 0
    if not (isinstance(clamped, tirx.Max) and isinstance(clamped.b, tirx.IntImm)
            and isinstance(clamped.a, tirx.Min) and isinstance(clamped.a.b, tirx.IntImm)):
        return None
    low, high = int(clamped.b.value), int(clamped.a.b.value)
    return zero_point, low + zero_point, high + zero_point
