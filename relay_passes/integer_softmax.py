"""TFLite's int8 SOFTMAX in integer arithmetic, in numpy and as TE stages.

TFLite (and TFLite Micro's reference kernel, ``reference_ops::Softmax`` for int8 input and int8
output) computes an int8 softmax over the last axis in gemmlowp fixed point, with no float at run
time; :class:`relay_passes.LowerQDQToInteger` rewrites the frontend's
``quantize(softmax(dequantize(x)))`` into :func:`te_softmax_int8` so that a core without an FPU
runs no soft-float library. The arithmetic, per row of the last axis:

1. ``diff = x - max(row)`` (int32, ``<= 0``); elements with ``diff < diff_min`` contribute 0 and
   give -128;
2. ``a = SRDHM(diff * 2**left_shift, multiplier)``: the difference times ``beta * s_x`` in Q5.26
   (``PreprocessSoftmaxScaling``: ``QuantizeMultiplierGreaterThanOne(min(beta * s_x * 2**26,
   2**31 - 1))``, and ``diff_min = -floor(31 * 2**26 / 2**left_shift)``, ``CalculateInputRadius``);
3. ``e = exp_on_negative_values(a)`` in Q0.31 (gemmlowp: a Taylor polynomial around -1/8 on
   ``[-1/4, 0)`` and a barrel shifter of ``exp(-2**k)`` multipliers for the bits of the rest);
4. ``sum(RoundingDivideByPOT(e, 12))`` in Q12.19, and its reciprocal ``GetReciprocal``:
   normalised by its leading zeros, ``one_over_one_plus_x_for_x_in_0_1`` (three Newton-Raphson
   steps in Q2.29);
5. ``out = clamp(RoundingDivideByPOT(SRDHM(recip, e), 35 - clz(sum)) - 128, -128, 127)``: the
   output quantization TFLite requires (scale 1/256, zero point -128). Step 5 is
   :func:`relay_passes.fixed_point.te_requantize` with a per-row multiplier and shift.

Limits: int8 input and output; at most 511 (:data:`MAX_DEPTH`) values along the last axis
(beyond, TFLite's ``exponent`` check fails: ``sum`` reaches ``2**28``); double rounding
(TFLite's default, not ``TFLITE_SINGLE_ROUNDING``, which changes ``PreprocessSoftmaxScaling``'s
cap). The TE stages are
element-wise or per-row; a value gemmlowp's expressions use several times (the polynomial's
argument and powers, each barrel-shifter step, each Newton-Raphson iterate) is a stage of its own,
so that it is loaded rather than computed again at each use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import te, tirx

from .fixed_point import (
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    te_requantize,
    tir_rounding_divide_by_pot,
    tir_rounding_doubling_high_mul,
    tir_scaled_high_mul,
)

#: Integer bits of the scaled differences (Q5.26), TFLite's ``kScaledDiffIntegerBits``.
SCALED_DIFF_INTEGER_BITS = 5
#: Integer bits of the sum of exponentials (Q12.19), TFLite's ``kAccumulationIntegerBits``.
ACCUMULATION_INTEGER_BITS = 12
#: TFLite's int8 softmax output quantization (checked by its kernel's Prepare).
OUTPUT_SCALE = 1.0 / 256
OUTPUT_ZERO_POINT = -128
#: Largest depth (last axis) whose sum of exponentials keeps TFLite's final shift in ``[0, 31]``.
MAX_DEPTH = 511

_INT32_MAX = 2**31 - 1
# gemmlowp's fixed-point constants (raw int32 values).
_EXP_MINUS_ONE_EIGHTH = 1895147668  # exp(-1/8), Q0.31
_ONE_THIRD = 715827883  # 1/3, Q0.31
# exp(-2**k) in Q0.31 for the bits 2**k, k = -2..4, of the remainder of a Q5.26 argument.
_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
           (3, 720401), (4, 242))
_FORTY_EIGHT_OVER_17 = 1515870810  # Q2.29
_MINUS_32_OVER_17 = -1010580540  # Q2.29
_FRACTIONAL_BITS = 31 - SCALED_DIFF_INTEGER_BITS  # 26
_QUARTER = 1 << (_FRACTIONAL_BITS - 2)  # 1/4 in Q5.26


@dataclass(frozen=True)
class SoftmaxParams:
    """TFLite's int8 softmax parameters (``SoftmaxParams`` of its kernel, from Prepare).

    Attributes
    ----------
    input_multiplier : int
        Q31 multiplier of ``beta * s_x * 2**26``.
    input_left_shift : int
        Its left shift (``>= 0``).
    diff_min : int
        Differences from the row maximum below this contribute 0 (``<= 0``).
    """

    input_multiplier: int
    input_left_shift: int
    diff_min: int


def softmax_params(input_scale: float, beta: float = 1.0) -> SoftmaxParams:
    """``PreprocessSoftmaxScaling`` and ``CalculateInputRadius`` of TFLite (double rounding).

    Parameters
    ----------
    input_scale : float
        The int8 input's scale (a float32 value; used in float64, as TFLite does).
    beta : float
        The SOFTMAX operator's beta.

    Returns
    -------
    SoftmaxParams

    Raises
    ------
    ValueError
        If ``beta * input_scale`` is not positive.
    """
    real = np.float64(np.float32(beta)) * np.float64(np.float32(input_scale))
    if not np.isfinite(real) or real <= 0:
        raise ValueError(f"beta * input_scale must be > 0, got beta={beta!r}, "
                         f"input_scale={input_scale!r}")
    real = min(real * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)), float(_INT32_MAX))
    multiplier, shift = (int(v) for v in quantize_multiplier(real))
    if shift < 0:
        raise ValueError(f"beta * input_scale={real / 2**26!r} too small for TFLite's softmax "
                         f"(left shift {shift} < 0)")
    radius = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) / (
        1 << shift)
    return SoftmaxParams(multiplier, shift, -int(np.floor(radius)))


# -- numpy reference ------------------------------------------------------------------------

def _srdhm(a, b):
    return saturating_rounding_doubling_high_mul(a, b).astype(np.int64)


def _saturating_shift_left(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>`` for ``exponent > 0`` (int32)."""
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, _INT32_MAX,
                    np.where(x < -threshold, -(2**31), x << exponent)).astype(np.int64)


def exp_on_negative_values(a: np.ndarray) -> np.ndarray:
    """gemmlowp ``exp_on_negative_values`` of Q5.26 values ``<= 0``, in Q0.31 (int64 array)."""
    a = np.asarray(a, dtype=np.int64)
    a_mod = (a & (_QUARTER - 1)) - _QUARTER
    x = (a_mod << SCALED_DIFF_INTEGER_BITS) + (1 << 28)  # Rescale<0>, then + 1/8 (no saturation)
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    poly = rounding_divide_by_pot(_srdhm(rounding_divide_by_pot(x4, 2) + x3, _ONE_THIRD) + x2, 1)
    result = _EXP_MINUS_ONE_EIGHTH + _srdhm(_EXP_MINUS_ONE_EIGHTH, x + poly.astype(np.int64))
    remainder = a_mod - a
    for exponent, multiplier in _BARREL:
        bit = (remainder >> (_FRACTIONAL_BITS + exponent)) & 1
        result = np.where(bit == 1, _srdhm(result, multiplier), result)
    return np.where(a == 0, _INT32_MAX, result)


def _one_over_one_plus_x(half_denominator: np.ndarray) -> np.ndarray:
    """gemmlowp ``one_over_one_plus_x_for_x_in_0_1`` from ``RoundingHalfSum(x, One)``."""
    x = _FORTY_EIGHT_OVER_17 + _srdhm(half_denominator, _MINUS_32_OVER_17)
    for _ in range(3):
        one_minus = (1 << 29) - _srdhm(half_denominator, x)
        x = x + _saturating_shift_left(_srdhm(x, one_minus), 2)
    return _saturating_shift_left(x, 1)


def softmax_int8(x: np.ndarray, params: SoftmaxParams) -> np.ndarray:
    """TFLite's int8 softmax over the last axis (``reference_ops::Softmax``), in numpy.

    Parameters
    ----------
    x : np.ndarray
        int8 input, any shape, last axis of size at most :data:`MAX_DEPTH`.
    params : SoftmaxParams
        From :func:`softmax_params`.

    Returns
    -------
    np.ndarray
        int8 probabilities (scale 1/256, zero point -128), ``x``'s shape.
    """
    x = np.asarray(x, dtype=np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    inside = diff >= params.diff_min
    scaled = _srdhm(np.where(inside, diff, 0) << params.input_left_shift,
                    params.input_multiplier)
    exps = np.where(inside, exp_on_negative_values(scaled), 0)
    terms = rounding_divide_by_pot(exps, ACCUMULATION_INTEGER_BITS).astype(np.int64)
    total = terms.sum(axis=-1, keepdims=True)
    headroom = 32 - np.frexp(total)[1].astype(np.int64)  # leading zeros of a positive int32
    shifted = (total << headroom) & 0xFFFFFFFF
    recip = _one_over_one_plus_x(shifted >> 1)
    exponent = ACCUMULATION_INTEGER_BITS - headroom + 31 - 8
    unsat = rounding_divide_by_pot(_srdhm(recip, exps), exponent).astype(np.int64)
    return np.where(inside, np.clip(unsat - 128, -128, 127), -128).astype(np.int8)


# -- TE --------------------------------------------------------------------------------------

def _const(value: int) -> tirx.PrimExpr:
    return tirx.const(value, "int32")


def _tir_saturating_shift_left(x: tirx.PrimExpr, exponent: int) -> tirx.PrimExpr:
    threshold = (1 << (31 - exponent)) - 1
    return tirx.Select(x > _const(threshold), _const(_INT32_MAX),
                       tirx.Select(x < _const(-threshold), _const(-(2**31)),
                                   x << _const(exponent)))


def te_softmax_int8(x: te.Tensor, params: SoftmaxParams) -> te.Tensor:
    """TE stages of :func:`softmax_int8` (int32/int64/uint32 integer arithmetic only).

    Parameters
    ----------
    x : tvm.te.Tensor
        int8 input, softmax over the last axis (at most :data:`MAX_DEPTH` long).
    params : SoftmaxParams
        From :func:`softmax_params`; compile-time constants.

    Returns
    -------
    tvm.te.Tensor
        int8 output, ``x``'s shape.
    """
    shape = list(x.shape)
    outer, depth = shape[:-1], shape[-1]
    srdhm = tir_rounding_doubling_high_mul  # every operand pair here avoids INT32_MIN**2

    def elementwise(fn, name):
        return te.compute(shape, fn, name=name)

    def per_row(fn, name):
        return te.compute(outer, fn, name=name)

    k = te.reduce_axis((0, depth), name="k")
    row_max = per_row(lambda *i: te.max(x(*i, k).astype("int32"), axis=k), "softmax_row_max")

    def clamped_diff(*i):
        return tirx.max(x(*i).astype("int32") - row_max(*i[:-1]), _const(params.diff_min))

    scaled = elementwise(lambda *i: tir_scaled_high_mul(
        clamped_diff(*i), _const(params.input_multiplier), _const(params.input_left_shift)),
        "softmax_scaled_diff")
    # exp_on_negative_values: the argument in [-1/4, 0) of the Taylor polynomial around -1/8.
    arg = elementwise(lambda *i: (((scaled(*i) & _const(_QUARTER - 1)) - _const(_QUARTER))
                                  << _const(SCALED_DIFF_INTEGER_BITS)) + _const(1 << 28),
                      "softmax_exp_arg")
    arg2 = elementwise(lambda *i: srdhm(arg(*i), arg(*i)), "softmax_exp_arg2")
    quartic = elementwise(lambda *i: tir_rounding_divide_by_pot(srdhm(arg2(*i), arg2(*i)),
                                                                _const(2))
                          + srdhm(arg2(*i), arg(*i)), "softmax_exp_x4_over_4_plus_x3")
    poly = elementwise(lambda *i: tir_rounding_divide_by_pot(
        srdhm(quartic(*i), _const(_ONE_THIRD)) + arg2(*i), _const(1)), "softmax_exp_poly")
    result = elementwise(lambda *i: _const(_EXP_MINUS_ONE_EIGHTH) + srdhm(
        _const(_EXP_MINUS_ONE_EIGHTH), arg(*i) + poly(*i)), "softmax_exp_interval")

    def remainder_bit(i, exponent):  # bit 26 + exponent of a_mod_quarter_minus_one_quarter - a
        a = scaled(*i)
        rest = (a & _const(_QUARTER - 1)) - _const(_QUARTER) - a
        return (rest & _const(1 << (_FRACTIONAL_BITS + exponent))) != _const(0)

    def barrel_step(r, exponent, multiplier):
        return lambda *i: tirx.Select(remainder_bit(i, exponent), srdhm(r(*i), _const(multiplier)),
                                      r(*i))

    for exponent, multiplier in _BARREL:
        result = elementwise(barrel_step(result, exponent, multiplier),
                             f"softmax_exp_barrel{exponent + 2}")
    exps = elementwise(lambda *i: tirx.Select(
        x(*i).astype("int32") - row_max(*i[:-1]) < _const(params.diff_min), _const(0),
        tirx.Select(scaled(*i) == _const(0), _const(_INT32_MAX), result(*i))), "softmax_exp")

    k2 = te.reduce_axis((0, depth), name="k2")
    total = per_row(lambda *i: te.sum(tir_rounding_divide_by_pot(exps(*i, k2), _const(12)),
                                      axis=k2), "softmax_sum")
    # Count leading zeros: total is in [2**19 (the maximum's own term), depth * 2**19 < 2**28].
    headroom = per_row(lambda *i: sum((tirx.Cast("int32", total(*i) < _const(1 << b))
                                       for b in range(20, 31)), _const(1)), "softmax_headroom")
    # RoundingHalfSum(shifted_sum - 1, One) = (shifted_sum + 2**31 - 2**31) / 2 in Q0.31.
    half_denominator = per_row(lambda *i: tirx.Cast("int32", (
        tirx.Cast("uint32", total(*i)) << tirx.Cast("uint32", headroom(*i)))
        >> tirx.const(1, "uint32")), "softmax_half_denominator")
    recip = per_row(lambda *i: _const(_FORTY_EIGHT_OVER_17) + srdhm(
        half_denominator(*i), _const(_MINUS_32_OVER_17)), "softmax_newton0")
    def newton_step(r):
        return lambda *i: r(*i) + _tir_saturating_shift_left(srdhm(
            r(*i), _const(1 << 29) - srdhm(half_denominator(*i), r(*i))), 2)

    for step in range(1, 4):
        recip = per_row(newton_step(recip), f"softmax_newton{step}")
    final = recip
    recip = per_row(lambda *i: _tir_saturating_shift_left(final(*i), 1), "softmax_reciprocal")
    # TFLite's exponent (12 - headroom) + 31 - 8, a right shift in [23, 31]: te_requantize's
    # shift is its negation. (Written as ``headroom - 35`` the shift makes TVM 0.27's simplifier
    # fold the clamped output to a constant, so the exponent is a stage and negated by a product.)
    exponent = per_row(lambda *i: _const(35) - headroom(*i), "softmax_exponent")
    return te_requantize(exps, lambda *i: recip(*i[:-1]),
                         lambda *i: exponent(*i[:-1]) * _const(-1), OUTPUT_ZERO_POINT,
                         name="softmax_output", shifts_nonpositive=True)
