"""int8 post-training quantization of a fitted PLA model.

The scheme is the one the TVM operator (``relay_passes``) implements, so the quantized operator is
stored in its :class:`~relay_passes.params.QuantizedClusterGatedLinearParams` and the two agree by
construction:

* input ``xq`` int8 with scale ``s_x`` / zero point ``z_x``; centroids at the input scale, zero
  point 0 (the int32 nearest-centroid score is then exact);
* cluster weights int8, symmetric per cluster and output channel (scales ``s_w [k, d]``), or
  4-bit (``weight_bits=4`` on the estimator: ``[-7, 7]``, as TFLite's symmetric int4), biases
  int32 at ``s_x * s_w``, int32 accumulators, TFLite's per-channel requantization to int8 features
  (``s_out`` / ``z_out``);
* a low-rank model (``rank`` set, ``W_c = U_c V_c``) is quantized in its factored form
  (:class:`~relay_passes.params.QuantizedFactoredClusterGatedLinearParams`, ``factored=True``, the
  default then): two such layers per cluster, ``x U_c`` requantized to an int8 intermediate ``h``
  of ``r`` values, then ``h V_c + b_c`` to the features (see :func:`quantize_factored_maps`);
* the head like TFLite's int8 FULLY_CONNECTED: int8 weights with per-class scales, int32 bias,
  requantized to int8 logits; the class is the argmax of the int8 logits.

When PLA replaces the trunk of a baseline's int8 TFLite model, the swapped graph keeps that
model's own int8 head, so the input and feature scales *and the whole int8 head* (weights, scales,
bias, logit quantization) are the baseline's (:class:`Int8Head`, read by
:mod:`pla_tvm.pla.teacher`): only then are the int8 PLA reference and the swapped graph the same
integer computation. Without a baseline int8 model, scales are calibrated as min/max ranges on
training data (as TFLite's converter does) and the head is quantized here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pla_tvm.inference import quantize
from pla_tvm.pla.estimator import PLAClassifier
from relay_passes.params import (
    QuantizedClusterGatedLinearParams,
    QuantizedFactoredClusterGatedLinearParams,
)

QMIN, QMAX = -128, 127
#: Largest magnitude of a 4-bit weight (symmetric, as TFLite's int4 per-channel weights).
INT4_QMAX = 7
INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class QuantParams:
    """Affine int8 quantization of a tensor: ``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int

    @classmethod
    def calibrate(cls, values: np.ndarray) -> QuantParams:
        """Asymmetric int8 parameters covering ``[min, max]`` of ``values`` and 0.

        Parameters
        ----------
        values : np.ndarray
            Calibration values of the tensor, any shape.

        Returns
        -------
        QuantParams
            ``scale = (max - min) / 255`` (float32) and the zero point that maps ``min`` to -128,
            the range widened to contain 0 so that 0 is exact (as TFLite requires).
        """
        low = min(float(np.min(values)), 0.0)
        high = max(float(np.max(values)), 0.0)
        scale = float(np.float32(max(high - low, 1e-8) / (QMAX - QMIN)))
        zero_point = int(np.clip(np.round(QMIN - low / scale), QMIN, QMAX))
        return cls(scale, zero_point)

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """int8 values as TFLite's QUANTIZE computes them.

        ``clip(round(x / scale) + zero_point)`` with a float32 division and rounding half away
        from zero (``TfLiteRound``), so int8 inputs fed to the TFLite models and to the numpy
        reference are the same bytes.

        Parameters
        ----------
        values : np.ndarray
            Real values, any shape.

        Returns
        -------
        np.ndarray
            int8 values, same shape.
        """
        return quantize(values, self.scale, self.zero_point)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """Real values ``scale * (q - zero_point)`` as float32."""
        return (np.float32(self.scale) * (np.asarray(q, np.int32) - self.zero_point)).astype(
            np.float32)


def quantize_weights(weights: np.ndarray, biases: np.ndarray, input_scale: float,
                     bits: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric per-output-channel int8 (or 4-bit) weights and int32 biases of affine maps.

    Each output channel gets ``s_w = max|w| / q`` (``q`` = 127, or 7 for ``bits=4``: the
    weights then lie in ``[-7, 7]``), raised where needed so that the int32 bias
    ``round(b / (s_x * s_w))`` cannot overflow (a channel with tiny weights but a large offset),
    and set to 1 for an all-zero channel (a zero scale is invalid in TFLite).

    Parameters
    ----------
    weights : np.ndarray
        ``[m, D, d]`` maps (``y = x @ weights[j] + biases[j]``).
    biases : np.ndarray
        ``[m, d]`` offsets.
    input_scale : float
        Scale ``s_x`` of the int8 input the maps are applied to.
    bits : {8, 4}
        Weight width.

    Returns
    -------
    weights_q : np.ndarray
        int8 ``[m, D, d]`` (values in ``[-7, 7]`` for 4 bits).
    scales : np.ndarray
        float32 ``[m, d]`` weight scales.
    biases_q : np.ndarray
        int32 ``[m, d]``.
    """
    weights = np.asarray(weights, dtype=np.float64)
    biases = np.asarray(biases, dtype=np.float64)
    qmax = {8: QMAX, 4: INT4_QMAX}[bits]
    max_abs = np.abs(weights).max(axis=1)
    scales = np.maximum(max_abs / qmax, np.abs(biases) / (input_scale * 2**30))
    scales = np.where(scales > 0, scales, 1.0).astype(np.float32)
    weights_q = np.clip(np.round(weights / scales[:, None, :]), -qmax, qmax).astype(np.int8)
    bias_scale = np.float64(np.float32(input_scale)) * scales.astype(np.float64)
    biases_q = np.clip(np.round(biases / bias_scale), -INT32_MAX, INT32_MAX).astype(np.int32)
    return weights_q, scales, biases_q


@dataclass(frozen=True, eq=False)
class Int8Head:
    """An int8 classifier head: TFLite's int8 FULLY_CONNECTED from int8 features to int8 logits.

    Parameters
    ----------
    weights_q : np.ndarray
        int8 ``[d, C]`` kernel, symmetric (zero point 0).
    weight_scales : np.ndarray
        float32 ``[C]`` per-class scales (a per-tensor scale is repeated for every class: the
        requantization multipliers, hence the integers, are the same).
    bias_q : np.ndarray
        int32 ``[C]`` at ``s_features * weight_scales``.
    logits : QuantParams
        Quantization of the int8 logits (the FULLY_CONNECTED output).
    """

    weights_q: np.ndarray
    weight_scales: np.ndarray
    bias_q: np.ndarray
    logits: QuantParams


@dataclass(frozen=True, eq=False)
class Int8Baseline:
    """What an int8 PLA model takes from the baseline's int8 TFLite model whose trunk it replaces.

    Attributes
    ----------
    input : QuantParams
        The model input tensor's quantization (the PLA operator's input).
    features : QuantParams
        The penultimate tensor's (the head's input, the PLA operator's output).
    head : Int8Head
        The classifier head (last FULLY_CONNECTED) as stored: the swapped graph keeps it.
    """

    input: QuantParams
    features: QuantParams
    head: Int8Head


def _calibrated_head(model: PLAClassifier, features: np.ndarray,
                     feature_scale: float) -> Int8Head:
    """The float head quantized per class, logits calibrated on the float logits of ``features``
    (used when there is no baseline int8 head to keep)."""
    weights_q, scales, bias_q = quantize_weights(model.head_weights_[None],
                                                 model.head_bias_[None], feature_scale)
    return Int8Head(weights_q=weights_q[0], weight_scales=scales[0], bias_q=bias_q[0],
                    logits=QuantParams.calibrate(features @ model.head_weights_
                                                 + model.head_bias_))


@dataclass(frozen=True, eq=False)
class QuantizedPLA:
    """An int8 PLA model: the quantized operator plus the int8 head.

    Parameters
    ----------
    operator : QuantizedClusterGatedLinearParams or QuantizedFactoredClusterGatedLinearParams
        Nearest centroid and cluster maps (input ``s_x, z_x`` -> features ``s_out, z_out``), full
        or factored (low rank).
    head_weights_q, head_weight_scales, head_bias_q, logits
        The int8 head, as the fields of :class:`Int8Head`: the baseline int8 model's head when
        PLA imitates one, else the float head quantized by :func:`quantize_pla`.
    classes : np.ndarray
        ``[C]`` class labels (what the argmax index maps to).
    """

    operator: QuantizedClusterGatedLinearParams | QuantizedFactoredClusterGatedLinearParams
    head_weights_q: np.ndarray
    head_weight_scales: np.ndarray
    head_bias_q: np.ndarray
    logits: QuantParams
    classes: np.ndarray

    @property
    def input(self) -> QuantParams:
        """Quantization of the int8 input beat."""
        return QuantParams(self.operator.input_scale, self.operator.input_zero_point)

    @property
    def features(self) -> QuantParams:
        """Quantization of the int8 features (the operator's output, the head's input)."""
        return QuantParams(self.operator.output_scale, self.operator.output_zero_point)


def quantize_factored_maps(model: PLAClassifier, X_calibration: np.ndarray,
                           input_quant: QuantParams, feature_quant: QuantParams,
                           centroids_q: np.ndarray,
                           bits: int = 8) -> QuantizedFactoredClusterGatedLinearParams:
    """The factored int8 operator of a low-rank model (``coef_left_``, ``coef_right_`` set).

    Calibrated on the training beats of each cluster (assigned by the float centroids): the
    intermediate ``h = x U_c`` is centred (its cluster mean ``m_c`` moves into the biases:
    ``-m_c`` in the first layer, ``b_c + m_c V_c`` in the second, the same map) and every one of
    its ``r`` channels is scaled to ``max |h - m| = 1`` on the cluster's beats (the scale moves
    from ``U_c``'s column to ``V_c``'s row, the same product). One symmetric intermediate
    quantization, ``s_h = 1/127`` and zero point 0, then serves every cluster and channel at full
    resolution, as a TFLite tensor (one scale) requires. Both layers' weights are symmetric per
    output channel (:func:`quantize_weights`).

    Parameters
    ----------
    model : PLAClassifier
        Fitted low-rank model.
    X_calibration : np.ndarray
        ``[n, D]`` calibration beats (the training beats).
    input_quant, feature_quant : QuantParams
        Input and feature quantization.
    centroids_q : np.ndarray
        int8 ``[k, D]`` centroids.
    bits : {8, 4}
        Width of both layers' weights.

    Returns
    -------
    QuantizedFactoredClusterGatedLinearParams
    """
    left = np.asarray(model.coef_left_, dtype=np.float64)
    right = np.asarray(model.coef_right_, dtype=np.float64)
    X_calibration = np.asarray(X_calibration, dtype=np.float64)
    labels = model.cluster_index(X_calibration)
    left_n, right_n = left.copy(), right.copy()
    means = np.zeros(left.shape[::2])  # [k, r]
    for c in range(left.shape[0]):
        hidden = X_calibration[labels == c] @ left[c]
        if hidden.size == 0:
            continue
        means[c] = hidden.mean(axis=0)
        spread = np.abs(hidden - means[c]).max(axis=0)
        spread = np.where(spread > 0, spread, 1.0)
        left_n[c] /= spread
        right_n[c] *= spread[:, None]
        means[c] /= spread
    hidden_quant = QuantParams(float(np.float32(1.0 / QMAX)), 0)
    left_q, left_scales, left_bias_q = quantize_weights(left_n, -means, input_quant.scale, bits)
    biases = model.intercept_ + np.einsum("kr,krd->kd", means, right_n)
    right_q, right_scales, bias_q = quantize_weights(right_n, biases, hidden_quant.scale, bits)
    return QuantizedFactoredClusterGatedLinearParams(
        input_scale=input_quant.scale, input_zero_point=input_quant.zero_point,
        centroids_q=centroids_q, left_q=left_q, left_scales=left_scales,
        left_bias_q=left_bias_q, hidden_scale=hidden_quant.scale,
        hidden_zero_point=hidden_quant.zero_point, right_q=right_q, right_scales=right_scales,
        bias_q=bias_q, output_scale=feature_quant.scale,
        output_zero_point=feature_quant.zero_point, weight_bits=bits)


def quantize_pla(model: PLAClassifier, X_calibration: np.ndarray, *,
                 baseline: Int8Baseline | None = None,
                 teacher_features: np.ndarray | None = None,
                 factored: bool | None = None) -> QuantizedPLA:
    """Quantize a fitted :class:`PLAClassifier` to int8 (its maps to ``model.weight_bits``).

    Parameters
    ----------
    model : PLAClassifier
        Fitted float model.
    X_calibration : np.ndarray
        ``[n, D]`` beats (the training beats), for calibration without a baseline.
    baseline : Int8Baseline, optional
        The int8 baseline whose trunk PLA replaces (:func:`pla_tvm.pla.teacher.read_int8_baseline`):
        its input and penultimate quantization and its int8 head are used as they are, so the
        int8 PLA model computes what the swapped graph computes. Without it the input range is
        calibrated on ``X_calibration``, the feature range on ``teacher_features`` if given (else
        on the model's own features), the float head is quantized per class and the logits are
        calibrated on the float logits of ``X_calibration``.
    teacher_features : np.ndarray, optional
        ``[n, d]`` teacher features on ``X_calibration``.
    factored : bool, optional
        Quantize a low-rank model in its factored form (:func:`quantize_factored_maps`) or as
        the full product ``coef_``. None (default): factored exactly when the model has a rank.

    Returns
    -------
    QuantizedPLA
        The int8 model.

    Raises
    ------
    ValueError
        If the baseline's head is not ``[d, C]`` like the model's, or ``factored`` is True for a
        model without low-rank factors.
    """
    has_factors = getattr(model, "coef_left_", None) is not None
    if factored is None:
        factored = has_factors
    if factored and not has_factors:
        raise ValueError("factored=True needs a low-rank model (rank set, coef_left_ fitted)")
    X_calibration = np.asarray(X_calibration, dtype=np.float64)
    if baseline is not None and baseline.head.weights_q.shape != model.head_weights_.shape:
        raise ValueError(f"the int8 baseline's head is {list(baseline.head.weights_q.shape)} "
                         f"[d, C], the model's head {list(model.head_weights_.shape)}")
    features = model.transform(X_calibration)
    if baseline is None:
        input_quant = QuantParams.calibrate(X_calibration)
        feature_quant = QuantParams.calibrate(
            features if teacher_features is None else teacher_features)
        head = _calibrated_head(model, features, feature_quant.scale)
    else:
        input_quant, feature_quant, head = baseline.input, baseline.features, baseline.head
    centroids_q = np.clip(np.round(model.centroids_ / input_quant.scale), QMIN, QMAX)
    centroids_q = centroids_q.astype(np.int8)
    bits = getattr(model, "weight_bits", 8)
    if factored:
        operator = quantize_factored_maps(model, X_calibration, input_quant, feature_quant,
                                          centroids_q, bits)
    else:
        weights_q, weight_scales, bias_q = quantize_weights(model.coef_, model.intercept_,
                                                            input_quant.scale, bits)
        operator = QuantizedClusterGatedLinearParams(
            input_scale=input_quant.scale, input_zero_point=input_quant.zero_point,
            centroids_q=centroids_q, weights_q=weights_q,
            weight_scales=weight_scales, bias_q=bias_q,
            output_scale=feature_quant.scale, output_zero_point=feature_quant.zero_point,
            weight_bits=bits)
    return QuantizedPLA(operator=operator, head_weights_q=head.weights_q,
                        head_weight_scales=head.weight_scales, head_bias_q=head.bias_q,
                        logits=head.logits, classes=np.asarray(model.classes_))
