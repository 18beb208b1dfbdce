"""Integer reference of the int8 PLA model: what every int8 implementation must match bit for bit.

The operator part is ``relay_passes.params.reference_forward`` (the specification the TVM operator
is tested against); the head is TFLite's int8 FULLY_CONNECTED with per-class requantization
(``relay_passes.fixed_point``; TFLite Micro computes it bit for bit), with the int8 baseline's own
head when PLA imitates one. Only integer arithmetic happens after the input is quantized.

The class is the argmax of the int8 logits, lowest index on ties. The PLA-swapped baseline graph
ends in the baseline's int8 SOFTMAX (output scale 1/256, zero point -128) and its class is the
argmax of those int8 probabilities; the two are the same class whenever the logit scale ``s``
satisfies ``(1 - exp(-s)) / C >= 1/256`` (the top probability is at least ``1/C``, so the next
smaller logit's probability is at least one output step below it and cannot round onto it; equal
logits give equal probabilities and the same lowest index). See docs/pla.md.
"""

from __future__ import annotations

import numpy as np

from pla_tvm.pla.quantize import QuantizedPLA
from relay_passes.fixed_point import quantize_multiplier, requantize
from relay_passes.params import reference_forward

#: Beats per chunk: the operator reference gathers a [chunk, D, d] weight block (int64).
_CHUNK = 256


def int8_features(model: QuantizedPLA, xq: np.ndarray) -> np.ndarray:
    """int8 features of int8 beats (nearest centroid, cluster map, requantization).

    Parameters
    ----------
    model : QuantizedPLA
        The int8 model.
    xq : np.ndarray
        int8 ``[n, D]`` beats, quantized with ``model.input``.

    Returns
    -------
    np.ndarray
        int8 ``[n, d]``.
    """
    xq = np.asarray(xq)
    chunks = [reference_forward(model.operator, xq[i:i + _CHUNK])
              for i in range(0, max(len(xq), 1), _CHUNK)]
    return np.concatenate(chunks)


def int8_head(model: QuantizedPLA, features_q: np.ndarray) -> np.ndarray:
    """int8 logits from int8 features, as TFLite's int8 FULLY_CONNECTED computes them.

    Per-class multipliers ``quantize_multiplier(s_features * s_w[c] / s_logits)`` (float64 from
    the float32 scales, as TFLite); a per-tensor head has equal scales, hence equal multipliers.

    Parameters
    ----------
    model : QuantizedPLA
        The int8 model.
    features_q : np.ndarray
        int8 ``[n, d]``.

    Returns
    -------
    np.ndarray
        int8 ``[n, C]``.
    """
    shifted = features_q.astype(np.int64) - model.features.zero_point
    acc = model.head_bias_q.astype(np.int64) + shifted @ model.head_weights_q.astype(np.int64)
    real = (np.float64(model.features.scale) * model.head_weight_scales.astype(np.float64)
            / np.float64(model.logits.scale))
    multiplier, shift = quantize_multiplier(real)
    return requantize(acc.astype(np.int32), multiplier, shift, model.logits.zero_point)


def int8_logits(model: QuantizedPLA, xq: np.ndarray) -> np.ndarray:
    """int8 logits of int8 beats: :func:`int8_features` then :func:`int8_head`."""
    return int8_head(model, int8_features(model, xq))


def int8_predict(model: QuantizedPLA, X: np.ndarray) -> np.ndarray:
    """Classes of float beats through the int8 model.

    Parameters
    ----------
    model : QuantizedPLA
        The int8 model.
    X : np.ndarray
        float ``[n, D]`` beats; quantized like TFLite's QUANTIZE op.

    Returns
    -------
    np.ndarray
        ``[n]`` class labels: the argmax of the int8 logits, lowest index on ties.
    """
    logits = int8_logits(model, model.input.quantize(X))
    return model.classes[np.argmax(logits, axis=1)]
