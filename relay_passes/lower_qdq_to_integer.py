"""Lower quantize/dequantize (QDQ) int8 graphs to integer arithmetic.

The Relax TFLite frontend imports a full-int8 model as ``R.dequantize -> float op ->
R.quantize``: after ``FoldConstant`` the weights are float32 (4x larger) and a microcontroller
would run float arithmetic. This pass does what Relay's ``FakeQuantizationToInteger`` did: it
rewrites each ``quantize(op(dequantize(...)))`` region into int8 tensors, int8 constants, int32
accumulation and TFLite's fixed-point requantization (:mod:`relay_passes.fixed_point`), so the
model compiles as a true int8 model.

Rewritten regions (anchored at an int8 per-tensor ``R.quantize``; an optional ``R.nn.relu`` or
``R.clip`` just below it becomes the integer clamp range, as TFLite fuses activations):

* ``conv2d(deq(x), deq(W)) [+ deq(bias)]`` (NHWC, per-channel or per-tensor symmetric int8 W,
  int32 bias) -> ``conv2d(pad(x, z_x), W_int8, out_dtype=int32) + (bias - z_x * sum(W)) ->
  requantize``: the input zero point is folded into a per-output int32 constant (computed here),
  so the product reads int8 activations and int8 weights, as TFLite's kernels do. A convolution's
  padding becomes an explicit ``pad`` with ``z_x`` (the real value 0 TFLite pads with), because
  the folded term covers every tap, border taps included. Depthwise convolutions (TFLite's
  DEPTHWISE_CONV_2D: Keras ``DepthwiseConv1D``/``SeparableConv1D``) come from the frontend as
  ``conv2d(deq(x), reshape(deq(W)))`` in HWOI with ``groups`` = input channels (HWIO and
  ``groups=1`` for one input channel); the reshape moves onto the int8 weights and the
  per-channel scales follow the output channels (checked element by element), any depth
  multiplier. Other grouped convolutions take the same path (the folded sum runs over every
  kernel axis but O) but no TFLite model here has one;
* ``matmul(deq(x), deq(W)) [+ deq(bias)]`` (dense/fully connected, 2-D W) -> the same with
  ``matmul`` and no padding. Legalized, its reduction is ``C += int32(x_int8) * int32(W_int8)``,
  the pattern ``micro.dsp``'s SMLAD micro-kernel tensorizes;
* either of them, when W or the bias is not a constant or a folded value leaves int32 ->
  ``op(int16(x) - z_x, W_int8, out_dtype=int32) [+ bias]`` (the same integers, with an int16
  copy of the input; zero padding is then exact);
* ``add(deq(a), deq(b))`` -> TFLite's int8 ADD (inputs rescaled to a common
  ``2 * max(s_a, s_b) / 2**20`` scale, summed, requantized), with numpy broadcasting; operands
  read the output index wherever their size equals the output's, so a residual add of two
  same-shape tensors is element-wise for ``AnnotateTIROpPattern`` and ``FuseOps`` can fuse it
  into the kernel of the convolution producing an operand;
* ``multiply(deq(a), deq(b))`` -> TFLite's int8 MUL (``(a - z_a) * (b - z_b)`` requantized by
  ``s_a * s_b / s_out``), with broadcasting (an unfolded BatchNorm is MUL and ADD by constants);
* ``mean(deq(x))`` -> int32 ``sum`` minus ``n * z_x``, requantized like TFLite's int8 MEAN
  (the multiplier of ``s_x / s_out`` divided by ``n`` in integer arithmetic);
* ``deq(x)`` alone (a requantize, e.g. the QUANTIZE op between different scales) ->
  ``requantize(int32(x) - z_x)``;
* ``softmax(deq(x))`` over the last axis, quantized with TFLite's int8 softmax output quantization
  (scale 1/256, zero point -128, no clamp; at most 511 classes) -> TFLite's fixed-point int8
  SOFTMAX (:mod:`relay_passes.integer_softmax`, one TE kernel ``softmax_int8``). Beta is taken as
  1: the frontend drops SOFTMAX's beta (its float softmax is beta 1 as well).

The frontend already imports layout ops (reshape, expand_dims) and max pooling on int8 tensors;
they are left as they are. Its int8 average pooling, ``astype(avg_pool2d(astype(x, int32)),
int8)``, truncates where TFLite rounds half away from zero (and its legalization returns int64),
so without padding it is rewritten to one kernel with TFLite's window sum and rounded division.
Anything else (e.g. a softmax with another output quantization or along another axis) stays in
float between its dequantize and quantize; a region whose preconditions fail
(asymmetric weights, non-constant scales, NCHW layout, per-channel add/mul operands, weight scales
that do not follow the output channels) is left unchanged. Such regions are not silent: the pass
logs a warning for each ("relax.nn.softmax left in float between dequantize and quantize (main:
gv)"), and :func:`float_regions` lists them for a caller (``pla-tvm compile`` puts their
operators in its manifest's ``float_ops``).

Where it goes: after the import (and after :class:`relay_passes.SwapTrunkForPLA`), before
``LegalizeOps``; run ``FoldConstant`` afterwards to fold layout ops on int8 weight constants.
Parity (measured on 300 random inputs of a small Conv1D ResNet and 100 of the paper's baseline,
and on 300 of small DepthwiseConv1D and SeparableConv1D models, depth multipliers 1 to 3; the
int8 softmax on 300 rows at each of six input scales): bit-exact with TFLite Micro, whose kernels
do the same integer arithmetic; TFLite's reference kernels agree too. TFLite's optimized kernels
requantize some convolutions differently (1 LSB), and XNNPACK requantizes in float.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax, te, tirx
from tvm.ir.module import IRModule
from tvm.relax.expr_functor import PyExprMutator, mutator

from ._relax_utils import Dequantized, as_dequantize, constant_array, op_name, var_bindings
from .fixed_point import quantize_multiplier, te_multiply_by_quantized_multiplier, te_requantize
from .integer_softmax import (
    MAX_DEPTH,
    OUTPUT_SCALE,
    OUTPUT_ZERO_POINT,
    softmax_params,
    te_softmax_int8,
)

logger = logging.getLogger(__name__)

_ADD_LEFT_SHIFT = 20  # TFLite's int8 ADD headroom: inputs are scaled by 2**20 before rescaling.


@tvm.transform.module_pass(opt_level=0, name="LowerQDQToInteger")
class LowerQDQToInteger:
    """Rewrite ``quantize(op(dequantize(...)))`` regions of every Relax function to integer ops.

    Examples
    --------
    .. code-block:: python

        seq = tvm.transform.Sequential([
            LowerQDQToInteger(),
            relax.transform.FoldConstant(),
            relax.transform.LegalizeOps(),
        ])
        with tvm.transform.PassContext(opt_level=3):
            mod = seq(mod)   # mod: a full-int8 TFLite model from relax.frontend.tflite.from_tflite
    """

    def transform_module(self, mod: IRModule, _ctx: tvm.transform.PassContext) -> IRModule:
        """Lower the QDQ regions of all Relax functions; warn about each region left in float."""
        lowered = _QDQLowerer(mod).transform()
        for region in float_regions(lowered):
            logger.warning("%s", region)
        return lowered


@dataclass(frozen=True)
class FloatRegion:
    """Float operators computing an ``R.quantize``'s input from dequantized tensors.

    Attributes
    ----------
    function : str
        Name of the Relax function.
    output : str
        Name of the variable the ``R.quantize`` is bound to.
    ops : tuple of str
        The float operators between the dequantizes and the quantize, in binding order
        (``("relax.nn.softmax",)``).
    """

    function: str
    output: str
    ops: tuple[str, ...]

    def __str__(self) -> str:
        return (f"{' -> '.join(self.ops)} left in float between dequantize and quantize "
                f"({self.function}: {self.output})")


def float_regions(mod: IRModule) -> list[FloatRegion]:
    """The ``dequantize -> float ops -> quantize`` regions of ``mod``'s Relax functions.

    After :class:`LowerQDQToInteger` these are the regions it could not lower (an operator it does
    not handle, e.g. a softmax without TFLite's output quantization, or a region whose
    preconditions failed); before it, every region.
    :class:`LowerQDQToInteger` logs each of them as a warning.

    Parameters
    ----------
    mod : tvm.IRModule
        Any Relax module.

    Returns
    -------
    list of FloatRegion
        One per ``R.quantize`` whose input is computed by float operators, in binding order.

    Examples
    --------
    >>> [op for region in float_regions(lowered) for op in region.ops]  # doctest: +SKIP
    ['relax.nn.softmax']
    """
    regions = []
    for gvar, func in mod.functions_items():
        if not isinstance(func, relax.Function):
            continue
        bindings = var_bindings(func)
        position = {binding.var: i for i, binding in enumerate(bindings)}
        for binding in bindings:
            if op_name(binding.value) == "relax.quantize":
                ops = _float_ops_before(binding.value.args[0], bindings, position)
                if ops:
                    regions.append(FloatRegion(gvar.name_hint, binding.var.name, ops))
    return regions


def _float_ops_before(expr: relax.Expr, bindings: list, position: dict) -> tuple[str, ...]:
    """Operators of the float calls ``expr`` depends on, back to the dequantizes, in order."""
    found, pending = set(), [expr]
    while pending:
        var = pending.pop()
        if var not in position or var in found:
            continue
        value = bindings[position[var]].value
        name = op_name(value)
        if name is None or name == "relax.dequantize" or not isinstance(
                value.ty, relax.TensorType) or not str(value.ty.dtype).startswith("float"):
            continue
        found.add(var)
        pending.extend(arg for arg in value.args if isinstance(arg, relax.Var))
    return tuple(op_name(bindings[i].value) for i in sorted(position[v] for v in found))


def _mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """TFLite's int8 MEAN scaling: ``quantize_multiplier(s_in / s_out)`` divided by ``count``.

    TFLite divides the Q31 multiplier (pre-shifted left by ``floor(log2(count))``, at most 32 and
    at most ``31 + shift``) by the element count in integer arithmetic instead of quantizing
    ``s_in / (count * s_out)``; the two differ in the last bit of ~1.5 % of outputs.
    """
    real = np.float64(in_scale) / np.float64(out_scale)
    mult, shift = (int(v) for v in quantize_multiplier(real))
    pre_shift = min(count.bit_length() - 1, 32, 31 + shift)
    return (mult << pre_shift) // count, shift - pre_shift


def _requantize_te(acc: te.Tensor, multiplier, shift, zero_point: int, qmin: int, qmax: int,
                   shifts_nonpositive: bool = False):
    """Requantize ``acc``; ``multiplier``/``shift`` are per-last-axis tensors or Python ints.

    ``shifts_nonpositive``: every per-channel shift is ``<= 0`` (known from the constants), so
    no left shift is generated (see :func:`relay_passes.fixed_point.te_requantize`); a scalar
    shift is a constant the simplifier folds anyway.
    """
    if isinstance(multiplier, te.Tensor):
        return te_requantize(acc, lambda *i: multiplier[i[-1]], lambda *i: shift[i[-1]],
                             zero_point, qmin, qmax, shifts_nonpositive=shifts_nonpositive)
    return te_requantize(acc, lambda *i: tirx.const(multiplier, "int32"),
                         lambda *i: tirx.const(shift, "int32"), zero_point, qmin, qmax)


def _average_pool_te(x: te.Tensor, pool_size, strides, dilation):
    """TFLite's int8 AVERAGE_POOL_2D without padding (NHWC): window sum, then
    ``(sum +- count // 2) / count`` truncated (round half away from zero), clamped to int8."""
    (ph, pw), (sh, sw), (dh, dw) = pool_size, strides, dilation
    batch, height, width, channels = x.shape
    out_h = (height - (ph - 1) * dh - 1) // sh + 1
    out_w = (width - (pw - 1) * dw - 1) // sw + 1
    rh, rw = te.reduce_axis((0, ph), name="rh"), te.reduce_axis((0, pw), name="rw")
    total = te.compute(
        (batch, out_h, out_w, channels),
        lambda b, i, j, c: te.sum(x[b, i * sh + rh * dh, j * sw + rw * dw, c].astype("int32"),
                                  axis=[rh, rw]),
        name="window_sum")
    count = ph * pw
    half, divisor = tirx.const(count // 2, "int32"), tirx.const(count, "int32")

    def rounded(*idx):
        value = total(*idx)
        quotient = tirx.Select(value > tirx.const(0, "int32"), tirx.truncdiv(value + half, divisor),
                               tirx.truncdiv(value - half, divisor))
        return tirx.Cast("int8", tirx.max(tirx.min(quotient, tirx.const(127, "int32")),
                                          tirx.const(-128, "int32")))

    return te.compute(total.shape, rounded, name="average")


def _broadcast(x: te.Tensor, out_shape):
    """Index ``x`` with output indices under numpy broadcasting (trailing alignment, size 1).

    Only a size-1 dimension stretched to a longer output dimension reads index 0; where the sizes
    are equal (1 included) ``x`` reads the output index itself, so an operation on same-shape
    tensors is plainly element-wise. (A constant 0 where the output dimension is also 1 makes
    ``AnnotateTIROpPattern`` call the kernel a broadcast, which ``FuseOps`` does not fuse into
    the producer of an operand.)
    """
    offset = len(out_shape) - len(x.shape)
    stretched = [int(dim) == 1 and int(out_shape[offset + i]) != 1
                 for i, dim in enumerate(x.shape)]
    return lambda *idx: x(*[0 if stretch else idx[offset + i]
                            for i, stretch in enumerate(stretched)])


def _add_te(a: te.Tensor, b: te.Tensor, za: int, zb: int, mults, shifts, zero_point: int,
            qmin: int, qmax: int, out_shape):
    """TFLite's int8 ADD: rescale both inputs to a common scale, add, requantize."""

    def rescaled(x, z, mult, shift, name):
        shifted = te.compute(
            x.shape, lambda *i: (x(*i).astype("int32") - tirx.const(z, "int32"))
            << tirx.const(_ADD_LEFT_SHIFT, "int32"), name=f"{name}_shifted")
        return te_multiply_by_quantized_multiplier(
            shifted, lambda *i: tirx.const(mult, "int32"), lambda *i: tirx.const(shift, "int32"),
            name)

    scaled_a = _broadcast(rescaled(a, za, mults[0], shifts[0], "lhs"), out_shape)
    scaled_b = _broadcast(rescaled(b, zb, mults[1], shifts[1], "rhs"), out_shape)
    total = te.compute(out_shape, lambda *i: scaled_a(*i) + scaled_b(*i), name="sum")
    return _requantize_te(total, mults[2], shifts[2], zero_point, qmin, qmax)


def _multiply_te(a: te.Tensor, b: te.Tensor, za: int, zb: int, mult: int, shift: int,
                 zero_point: int, qmin: int, qmax: int, out_shape):
    """TFLite's int8 MUL: ``(a - z_a) * (b - z_b)`` in int32, requantized by ``s_a s_b / s_out``."""
    lhs, rhs = _broadcast(a, out_shape), _broadcast(b, out_shape)
    product = te.compute(
        out_shape, lambda *i: (lhs(*i).astype("int32") - tirx.const(za, "int32"))
        * (rhs(*i).astype("int32") - tirx.const(zb, "int32")), name="product")
    return _requantize_te(product, mult, shift, zero_point, qmin, qmax)


@mutator
class _QDQLowerer(PyExprMutator):
    """Rebinds each lowerable ``R.quantize`` to the integer computation of the same value."""

    def __init__(self, mod: IRModule) -> None:
        super().__init__(mod)
        self.mod = mod
        self.var2val: dict = {}

    def transform(self) -> IRModule:
        for gvar, func in self.mod.functions_items():
            if not isinstance(func, relax.Function):
                continue
            self.var2val = relax.analysis.get_var2val(func)
            new_func = relax.analysis.remove_all_unused(self.visit_expr(func))
            self.builder_.update_func(gvar, new_func)
        return self.builder_.get()

    # -- matching helpers -------------------------------------------------------------------
    def _resolve(self, expr: relax.Expr) -> relax.Expr:
        while isinstance(expr, relax.Var) and expr in self.var2val:
            expr = self.var2val[expr]
        return expr

    def _dequantized(self, expr: relax.Expr) -> Dequantized | None:
        return as_dequantize(expr, self._resolve)

    # -- rewriting --------------------------------------------------------------------------
    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        value = binding.value
        lowered = None
        if op_name(value) == "relax.astype" and value.ty.dtype == "int8":
            lowered = self._lower_average_pool(value)
        elif op_name(value) == "relax.quantize" and value.ty.dtype == "int8":
            scale, zero_point = constant_array(self._resolve(value.args[1])), constant_array(
                self._resolve(value.args[2]))
            if scale is not None and zero_point is not None and scale.size == 1 == (
                    zero_point.size):
                lowered = self._lower(value.args[0], float(scale.item()), int(zero_point.item()))
        if lowered is None:
            super().visit_var_binding_(binding)
            return
        lowered = self.builder_.normalize(lowered)
        self.builder_.emit_normalized(relax.VarBinding(binding.var, lowered))

    def _lower(self, expr: relax.Expr, out_scale: float, out_zero_point: int):
        """The integer expression for ``quantize(expr)``, or None if ``expr`` is not handled."""
        qmin, qmax = -128, 127
        call = self._resolve(expr)
        if op_name(call) == "relax.nn.relu":
            qmin = max(qmin, out_zero_point)
            call = self._resolve(call.args[0])
        elif op_name(call) == "relax.clip":
            low, high = (float(call.args[i].value) for i in (1, 2))
            qmin = max(qmin, out_zero_point + int(np.round(low / out_scale)))
            qmax = min(qmax, out_zero_point + int(np.round(high / out_scale)))
            call = self._resolve(call.args[0])
        out = (out_scale, out_zero_point, qmin, qmax)
        name = op_name(call)
        if name == "relax.dequantize":
            return self._lower_requantize(call, out)
        if name == "relax.mean":
            return self._lower_mean(call, out)
        if name in ("relax.nn.conv2d", "relax.matmul"):
            return self._lower_dense(call, None, out)
        if name == "relax.add":
            lhs = self._resolve(call.args[0])
            if op_name(lhs) in ("relax.nn.conv2d", "relax.matmul"):
                return self._lower_dense(lhs, call.args[1], out)
            return self._lower_elementwise(call, out)
        if name == "relax.multiply":
            return self._lower_elementwise(call, out)
        if name == "relax.nn.softmax":
            return self._lower_softmax(call, out)
        return None

    def _emit_requantize(self, acc: relax.Expr, multiplier, shift, out) -> relax.Expr:
        _, zero_point, qmin, qmax = out
        if np.ndim(multiplier) == 0:
            return self.builder_.call_te(_requantize_te, acc, int(multiplier), int(shift),
                                         zero_point, qmin, qmax, primfunc_name_hint="requantize")
        return self.builder_.call_te(
            _requantize_te, acc, relax.const(multiplier.astype(np.int32)),
            relax.const(shift.astype(np.int8)), zero_point, qmin, qmax,
            bool(np.all(shift <= 0)), primfunc_name_hint="requantize")

    def _lower_requantize(self, call: relax.Call, out) -> relax.Expr | None:
        x = self._dequantized(call)
        if x is None or not x.per_tensor or x.data.ty.dtype != "int8":
            return None
        data = self.builder_.emit(relax.op.subtract(
            relax.op.astype(self.visit_expr(x.data), "int32"),
            relax.const(int(x.zero_point[0]), "int32")))
        mult, shift = quantize_multiplier(np.float64(x.scale[0]) / np.float64(out[0]))
        return self._emit_requantize(data, mult, shift, out)

    def _lower_mean(self, call: relax.Call, out) -> relax.Expr | None:
        x = self._dequantized(call.args[0])
        if x is None or not x.per_tensor or x.data.ty.dtype != "int8":
            return None
        shape = [int(s) for s in x.data.ty.shape]
        axes = [int(a) for a in call.attrs.axis] if call.attrs.axis is not None else list(
            range(len(shape)))
        count = int(np.prod([shape[a] for a in axes]))
        total = self.builder_.emit(relax.op.sum(
            relax.op.astype(self.visit_expr(x.data), "int32"), axes, call.attrs.keepdims))
        acc = self.builder_.emit(relax.op.subtract(
            total, relax.const(count * int(x.zero_point[0]), "int32")))
        return self._emit_requantize(acc, *_mean_multiplier(x.scale[0], out[0], count), out)

    def _lower_dense(self, call: relax.Call, bias: relax.Expr | None, out) -> relax.Expr | None:
        x = self._dequantized(call.args[0])
        if x is None or not x.per_tensor or x.data.ty.dtype != "int8":
            return None
        out_channels = int(call.ty.shape[-1])
        w = (self._conv_weights(call) if op_name(call) == "relax.nn.conv2d"
             else self._matmul_weights(call))
        if w is None or not w.symmetric or w.data.ty.dtype != "int8" or (
                w.scale.size not in (1, out_channels)):
            return None
        b = None
        if bias is not None:
            b = self._dequantized(bias)
            if b is None or not b.symmetric or b.data.ty.dtype != "int32" or (
                    [int(s) for s in b.data.ty.shape] != [out_channels]):
                return None
        acc = self._accumulate(call, x, w, b)
        weight_scale = w.scale[0] if w.scale.size == 1 else w.scale
        real = np.float64(x.scale[0]) * weight_scale / np.float64(out[0])
        mult, shift = quantize_multiplier(real)
        return self._emit_requantize(acc, mult, shift, out)

    def _matmul_weights(self, matmul: relax.Call) -> Dequantized | None:
        """The dequantized weights of a ``matmul``, if per-tensor or per last (output) axis."""
        w = self._dequantized(matmul.args[1])
        if w is None or w.scale.size == 1:
            return w
        rank = len(w.data.ty.shape)
        return w if w.axis % rank == rank - 1 else None

    def _conv_weights(self, conv: relax.Call) -> Dequantized | None:
        """The int8 weights of an NHWC ``conv2d`` in its kernel layout, scales per output channel.

        The frontend gives a convolution ``deq(W)`` in HWIO (dequantized along O), and a
        depthwise convolution ``reshape(deq(W), [KH, KW, C*M, 1])`` in HWOI with ``groups = C``
        (``[KH, KW, 1, M]`` in HWIO when ``C == 1``): TFLite's ``[1, KH, KW, C*M]`` weight is
        dequantized along its channel axis before the reshape. Here the reshape moves to the int8
        weights, and the scale of each element, reshaped alike, must depend only on the output
        channel (axis O of the kernel layout); the scales are returned in output-channel order
        (one scale if per-tensor). None for other layouts or scale arrangements.
        """
        a = conv.attrs
        if a.data_layout != "NHWC" or a.out_layout != "NHWC" or (
                a.kernel_layout not in ("HWIO", "HWOI")):
            return None
        weights = self._resolve(conv.args[1])
        reshaped_to = None
        if op_name(weights) == "relax.reshape":
            reshaped_to = [int(d) for d in weights.ty.shape]
            weights = weights.args[0]
        w = self._dequantized(weights)
        out_axis = a.kernel_layout.index("O")
        if w is None or not w.symmetric:
            return None
        if reshaped_to is None:
            return w if w.scale.size == 1 or w.axis % 4 == out_axis else None
        scales = w.scale
        if scales.size != 1:
            rank = len(w.data.ty.shape)
            scale_shape = [1] * rank
            scale_shape[w.axis % rank] = -1
            element_scales = np.broadcast_to(scales.reshape(scale_shape),
                                             [int(d) for d in w.data.ty.shape])
            by_output = np.moveaxis(element_scales.reshape(reshaped_to), out_axis, -1)
            by_output = by_output.reshape(-1, by_output.shape[-1])
            if not np.all(by_output == by_output[0]):
                return None
            scales = by_output[0]
        data = self.builder_.normalize(relax.op.reshape(w.data, reshaped_to))
        return Dequantized(data, scales, np.zeros(scales.size, np.int64), out_axis)

    def _accumulate(self, call: relax.Call, x: Dequantized, w: Dequantized,
                    b: Dequantized | None) -> relax.Expr:
        """The int32 accumulator ``sum((x - z_x) * W) [+ bias]`` of a conv2d/matmul region.

        Preferred form: ``op(x_int8, W_int8) + (bias - z_x * sum(W))``, the zero-point term folded
        into a per-output int32 constant, so the product reads int8 data and int8 weights (what
        the SMLAD micro-kernel of ``micro.dsp`` matches) and no separate widening kernel runs.
        Fallback (weights or bias not constant, or a corrected bias outside int32):
        ``op(int16(x) - z_x, W_int8) [+ bias]``. Both give the same int32 values.
        """
        weights = self.visit_expr(w.data)
        folded = self._folded_bias(call, x, w, b)
        if folded is None:
            acc = self.builder_.emit(self._integer_op(call, self._shifted_input(x), weights))
            if b is None:
                return acc
            return self.builder_.emit(relax.op.add(acc, self.visit_expr(b.data)))
        data, padding = self.visit_expr(x.data), None
        if op_name(call) == "relax.nn.conv2d":
            data = self._pad_with_zero_point(call, data, int(x.zero_point[0]))
            padding = [0, 0, 0, 0]
        acc = self.builder_.emit(self._integer_op(call, data, weights, padding))
        return self.builder_.emit(relax.op.add(acc, relax.const(folded)))

    def _folded_bias(self, call: relax.Call, x: Dequantized, w: Dequantized,
                     b: Dequantized | None) -> np.ndarray | None:
        """``bias - z_x * sum(W over the inputs of each output)`` as int32, or None.

        None when the weights or bias are not constants or a value leaves the int32 range: the
        constant could only be stored wrapped, and the int32 sums would then rely on signed
        overflow (undefined in the generated C), which TFLite's ``(x - z_x) * W`` never needs.
        """
        weights = self._constant_value(w.data)
        if weights is None or (op_name(call) == "relax.matmul" and weights.ndim != 2):
            return None
        if op_name(call) == "relax.nn.conv2d":  # HWIO or HWOI: every axis but O
            out_axis = call.attrs.kernel_layout.index("O")
            input_axes = tuple(i for i in range(4) if i != out_axis)
        else:
            input_axes = (0,)
        folded = -int(x.zero_point[0]) * weights.astype(np.int64).sum(axis=input_axes)
        if b is not None:
            bias = self._constant_value(b.data)
            if bias is None:
                return None
            folded = folded + bias.astype(np.int64)
        info = np.iinfo(np.int32)
        if folded.min() < info.min or folded.max() > info.max:
            return None
        return folded.astype(np.int32)

    def _constant_value(self, expr: relax.Expr) -> np.ndarray | None:
        """Value of a constant, possibly transposed (the frontend's dense weights) or reshaped
        (depthwise weights), else None."""
        expr = self._resolve(expr)
        if op_name(expr) == "relax.permute_dims":
            value = self._constant_value(expr.args[0])
            axes = None if expr.attrs.axes is None else [int(a) for a in expr.attrs.axes]
            return None if value is None else np.transpose(value, axes)
        if op_name(expr) == "relax.reshape":
            value = self._constant_value(expr.args[0])
            return None if value is None else value.reshape([int(d) for d in expr.ty.shape])
        return constant_array(expr)

    def _shifted_input(self, x: Dequantized) -> relax.Expr:
        """``int16(x) - z_x``: the input in the zero-point-free domain (padding stays exact)."""
        data = self.visit_expr(x.data)
        return self.builder_.emit(relax.op.subtract(
            relax.op.astype(data, "int16"), relax.const(int(x.zero_point[0]), "int16")))

    def _pad_with_zero_point(self, conv: relax.Call, data: relax.Expr,
                             zero_point: int) -> relax.Expr:
        """``data`` with ``conv``'s padding made explicit, padded with ``z_x``.

        The folded bias subtracts ``z_x * W`` for every tap, border taps included, so a padded
        element must be ``z_x`` (real value 0, as TFLite pads) instead of the operator's 0.
        """
        top, left, bottom, right = (int(p) for p in conv.attrs.padding)
        if not any((top, left, bottom, right)):
            return data
        return self.builder_.emit(relax.op.nn.pad(
            data, [0, 0, top, bottom, left, right, 0, 0], pad_value=float(zero_point)))

    @staticmethod
    def _integer_op(call: relax.Call, data: relax.Expr, weights: relax.Expr,
                    padding: list | None = None) -> relax.Expr:
        """``call``'s conv2d/matmul on integer operands with an int32 result."""
        if op_name(call) == "relax.matmul":
            return relax.op.matmul(data, weights, out_dtype="int32")
        a = call.attrs
        return relax.op.nn.conv2d(data, weights, a.strides,
                                  a.padding if padding is None else padding, a.dilation,
                                  a.groups, a.data_layout, a.kernel_layout, a.out_layout, "int32")

    def _lower_average_pool(self, cast: relax.Call) -> relax.Expr | None:
        """``astype(avg_pool2d(astype(x, int32)), int8)`` -> TFLite's rounded int8 average."""
        pool = self._resolve(cast.args[0])
        if op_name(pool) != "relax.nn.avg_pool2d":
            return None
        a = pool.attrs
        if any(int(p) for p in a.padding) or a.ceil_mode or a.layout != "NHWC" or (
                a.out_layout != "NHWC"):
            return None
        widen = self._resolve(pool.args[0])
        if op_name(widen) != "relax.astype" or widen.args[0].ty.dtype != "int8":
            return None
        window = [[int(v) for v in attr] for attr in (a.pool_size, a.strides, a.dilation)]
        return self.builder_.call_te(_average_pool_te, self.visit_expr(widen.args[0]), *window,
                                     primfunc_name_hint="average_pool")

    def _lower_elementwise(self, call: relax.Call, out) -> relax.Expr | None:
        """``add``/``multiply`` of two per-tensor int8 operands (broadcasting, e.g. a constant)."""
        a, b = self._dequantized(call.args[0]), self._dequantized(call.args[1])
        if a is None or b is None or not a.per_tensor or not b.per_tensor:
            return None
        if a.data.ty.dtype != "int8" or b.data.ty.dtype != "int8":
            return None
        out_scale, zero_point, qmin, qmax = out
        out_shape = [int(s) for s in call.ty.shape]
        operands = (self.visit_expr(a.data), self.visit_expr(b.data), int(a.zero_point[0]),
                    int(b.zero_point[0]))
        if op_name(call) == "relax.multiply":
            mult, shift = quantize_multiplier(a.scale[0] * b.scale[0] / np.float64(out_scale))
            return self.builder_.call_te(
                _multiply_te, *operands, int(mult), int(shift), zero_point, qmin, qmax, out_shape,
                primfunc_name_hint="quantized_multiply")
        twice_max = 2.0 * max(a.scale[0], b.scale[0])
        real = np.array([a.scale[0] / twice_max, b.scale[0] / twice_max,
                         twice_max / ((1 << _ADD_LEFT_SHIFT) * np.float64(out_scale))])
        mults, shifts = quantize_multiplier(real)
        return self.builder_.call_te(
            _add_te, *operands, [int(m) for m in mults], [int(s) for s in shifts], zero_point,
            qmin, qmax, out_shape, primfunc_name_hint="quantized_add")

    def _lower_softmax(self, call: relax.Call, out) -> relax.Expr | None:
        """``softmax(deq(x))`` over the last axis -> TFLite's int8 SOFTMAX in fixed point.

        Only with TFLite's int8 softmax output quantization (scale 1/256, zero point -128, no
        clamp), a per-tensor int8 input of static shape and at most ``MAX_DEPTH`` classes. Beta is
        1: the frontend imports SOFTMAX without its beta (a float softmax of beta 1 too).
        """
        out_scale, zero_point, qmin, qmax = out
        x = self._dequantized(call.args[0])
        if x is None or not x.per_tensor or x.data.ty.dtype != "int8":
            return None
        if np.float32(out_scale) != np.float32(OUTPUT_SCALE) or zero_point != OUTPUT_ZERO_POINT or (
                (qmin, qmax) != (-128, 127)):
            return None
        shape = x.data.ty.shape
        if shape is None or not all(isinstance(d, tirx.IntImm) for d in shape):
            return None
        rank = len(shape)
        if int(call.attrs.axis) % rank != rank - 1 or not 1 <= int(shape[-1]) <= MAX_DEPTH:
            return None
        try:
            params = softmax_params(float(x.scale[0]))
        except ValueError:
            return None
        return self.builder_.call_te(lambda data: te_softmax_int8(data, params),
                                     self.visit_expr(x.data), primfunc_name_hint="softmax_int8")
