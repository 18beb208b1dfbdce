"""Parameters, FLOPs and sizes of a PLA model, counted from the operator's shapes.

FLOPs follow the usual convention of the baseline's count (a multiply-accumulate is 2 FLOPs, a bias
add 1) and describe the *gated* operator that the TVM pass deploys: ``k`` centroid scores, one
cluster's affine map, the head. The TFLite models compute all ``k`` maps (see
:mod:`pla_tvm.pla.tflite_export`); their cost is reported separately as ``tflite_macs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class PLAShape:
    """What every cost depends on: clusters ``k``, input ``D``, features ``d``, classes ``C``,
    the rank ``r`` of the factored deployment (None: the full maps are deployed) and the width of
    the maps' weights (8, or 4: packed two a byte).

    The parameter and FLOP counts below describe the full maps; :func:`int8_tflite_bytes` is the
    size of the deployed file, factored when ``r`` is set (see :func:`low_rank_parameter_bytes`
    for the factored parameters alone).
    """

    k: int
    D: int
    d: int
    C: int
    r: int | None = None
    weight_bits: int = 8

    @classmethod
    def of(cls, model, factored: bool | None = None) -> PLAShape:
        """The shape of a fitted :class:`~pla_tvm.pla.PLAClassifier` as deployed.

        Parameters
        ----------
        model : PLAClassifier
            Fitted model.
        factored : bool, optional
            Whether the model is deployed factored (``r`` set to its rank); None: when it has
            low-rank factors, as :func:`~pla_tvm.pla.quantize.quantize_pla` decides.
        """
        k, dim, d = model.coef_.shape
        left = getattr(model, "coef_left_", None)
        if factored is None:
            factored = left is not None
        if factored and left is None:
            raise ValueError("factored=True needs a low-rank model (coef_left_ fitted)")
        return cls(int(k), int(dim), int(d), int(model.head_weights_.shape[1]),
                   int(left.shape[2]) if factored else None,
                   int(getattr(model, "weight_bits", 8)))


def parameter_counts(shape: PLAShape) -> dict[str, int]:
    """Parameters by part and in total (centroids, cluster maps and biases, head).

    Parameters
    ----------
    shape : PLAShape

    Returns
    -------
    dict
        ``centroids``, ``cluster_weights``, ``cluster_biases``, ``head``, ``total``.
    """
    counts = {"centroids": shape.k * shape.D, "cluster_weights": shape.k * shape.D * shape.d,
              "cluster_biases": shape.k * shape.d, "head": shape.d * shape.C + shape.C}
    counts["total"] = sum(counts.values())
    return counts


def flops_per_beat(shape: PLAShape) -> dict[str, int]:
    """FLOPs of one beat through the gated operator and the head.

    ``distances``: ``k`` scores ``||mu||^2 - 2 x . mu`` (``D`` MACs and one add each);
    ``affine``: one ``D x d`` map plus bias; ``head``: ``d x C`` plus bias. The argmin/argmax
    comparisons are not floating-point arithmetic and are not counted.

    Parameters
    ----------
    shape : PLAShape

    Returns
    -------
    dict
        ``distances``, ``affine``, ``head``, ``total``, and ``macs`` (multiply-accumulates of the
        gated operator and head) and ``tflite_macs`` (the exported models, which compute all k
        maps).
    """
    k, dim, d, n_classes = shape.k, shape.D, shape.d, shape.C
    flops = {"distances": k * (2 * dim + 1), "affine": 2 * dim * d + d,
             "head": 2 * d * n_classes + n_classes}
    flops["total"] = sum(flops.values())
    flops["macs"] = k * dim + dim * d + d * n_classes
    flops["tflite_macs"] = k * dim + k * dim * d + d * n_classes
    return flops


def low_rank_flops_per_beat(shape: PLAShape, rank: int) -> dict[str, int]:
    """FLOPs of one beat through the factored form (``x @ U_c``, then ``@ V_c``) and the head.

    As :func:`flops_per_beat`, with ``affine`` the two factors (``D x r`` and ``r x d`` plus
    the bias) at the effective rank ``min(rank, D, d)``.

    Parameters
    ----------
    shape : PLAShape
    rank : int

    Returns
    -------
    dict
        ``distances``, ``affine``, ``head``, ``total`` and ``macs``.
    """
    if rank < 1:
        raise ValueError(f"rank={rank!r} should be >= 1.")
    k, dim, d, n_classes = shape.k, shape.D, shape.d, shape.C
    r = min(rank, dim, d)
    flops = {"distances": k * (2 * dim + 1), "affine": 2 * dim * r + 2 * r * d + d,
             "head": 2 * d * n_classes + n_classes}
    flops["total"] = sum(flops.values())
    flops["macs"] = k * dim + dim * r + r * d + d * n_classes
    return flops


def parameter_bytes(shape: PLAShape) -> dict[str, int]:
    """Bytes of the parameters alone, float32 and int8 (without any file format overhead).

    int8 counts int8 centroids and weights, int32 biases and a float32 scale per output channel
    (cluster maps and head).

    Parameters
    ----------
    shape : PLAShape

    Returns
    -------
    dict
        ``float32`` and ``int8``.
    """
    k, dim, d, n_classes = shape.k, shape.D, shape.d, shape.C
    int8 = (k * dim + k * dim * d + 4 * k * d + 4 * k * d
            + d * n_classes + 4 * n_classes + 4 * n_classes)
    return {"float32": 4 * parameter_counts(shape)["total"], "int8": int8}


@lru_cache(maxsize=64)
def int8_tflite_bytes(shape: PLAShape) -> int:
    """Exact size of the int8 ``.tflite`` file for a shape (built once with placeholder values).

    The size depends only on the shape, so model selection can apply a flash budget to every
    (k, lambda) pair without exporting each fitted model. With ``shape.r`` set it is the factored
    model's file (two FULLY_CONNECTED stages per map, see :mod:`pla_tvm.pla.tflite_export`). With
    ``shape.weight_bits`` 4 it is the file with INT4 maps (``int8_tflite(..., int4=True)``), the
    size the 4-bit model deploys at.

    Parameters
    ----------
    shape : PLAShape

    Returns
    -------
    int
        Bytes of :func:`pla_tvm.pla.tflite_export.int8_tflite`'s output.
    """
    from pla_tvm.pla.quantize import QuantizedPLA, QuantParams
    from pla_tvm.pla.tflite_export import int8_tflite
    from relay_passes.params import (
        QuantizedClusterGatedLinearParams,
        QuantizedFactoredClusterGatedLinearParams,
    )

    k, dim, d, n_classes = shape.k, shape.D, shape.d, shape.C
    if shape.r is None:
        operator = QuantizedClusterGatedLinearParams(
            input_scale=1.0, input_zero_point=0, centroids_q=np.zeros((k, dim), np.int8),
            weights_q=np.zeros((k, dim, d), np.int8), weight_scales=np.ones((k, d), np.float32),
            bias_q=np.zeros((k, d), np.int32), output_scale=1.0, output_zero_point=0,
            weight_bits=shape.weight_bits)
    else:
        r = shape.r
        operator = QuantizedFactoredClusterGatedLinearParams(
            input_scale=1.0, input_zero_point=0, centroids_q=np.zeros((k, dim), np.int8),
            left_q=np.zeros((k, dim, r), np.int8), left_scales=np.ones((k, r), np.float32),
            left_bias_q=np.zeros((k, r), np.int32), hidden_scale=1.0, hidden_zero_point=0,
            right_q=np.zeros((k, r, d), np.int8), right_scales=np.ones((k, d), np.float32),
            bias_q=np.zeros((k, d), np.int32), output_scale=1.0, output_zero_point=0,
            weight_bits=shape.weight_bits)
    placeholder = QuantizedPLA(
        operator=operator, head_weights_q=np.zeros((d, n_classes), np.int8),
        head_weight_scales=np.ones(n_classes, np.float32),
        head_bias_q=np.zeros(n_classes, np.int32), logits=QuantParams(1.0, 0),
        classes=np.arange(n_classes))
    return len(int8_tflite(placeholder, int4=True))


def low_rank_parameter_counts(shape: PLAShape, rank: int) -> dict[str, int]:
    """Parameters of the factored form ``W_c = U_c V_c`` (``U_c [D, r]``, ``V_c [r, d]``).

    What the factored deployment stores (``quantize_pla`` quantizes a low-rank model factored by
    default; :func:`int8_tflite_bytes` of a shape with ``r`` is its file size). The effective
    rank is ``min(rank, D, d)``.

    Parameters
    ----------
    shape : PLAShape
    rank : int

    Returns
    -------
    dict
        ``centroids``, ``cluster_left`` (``k D r``), ``cluster_right`` (``k r d``),
        ``cluster_biases``, ``head``, ``total``.
    """
    if rank < 1:
        raise ValueError(f"rank={rank!r} should be >= 1.")
    r = min(rank, shape.D, shape.d)
    counts = {"centroids": shape.k * shape.D, "cluster_left": shape.k * shape.D * r,
              "cluster_right": shape.k * r * shape.d, "cluster_biases": shape.k * shape.d,
              "head": shape.d * shape.C + shape.C}
    counts["total"] = sum(counts.values())
    return counts


def low_rank_parameter_bytes(shape: PLAShape, rank: int) -> dict[str, int]:
    """Bytes of the factored parameters, float32 and int8 (no file format overhead).

    int8 as :func:`parameter_bytes` with two int8 layers per cluster: ``U_c`` with a float32
    scale per of its ``r`` outputs (and an int8 intermediate of ``r`` values, whose
    requantization needs no stored parameter beyond that scale), ``V_c`` with per-channel scales
    and the int32 biases as today. Parameter bytes only, not a file size (see
    :func:`int8_tflite_bytes` with ``shape.r``); the factored operator also stores the first
    layer's int32 biases (``4 k r``), not counted here.

    Parameters
    ----------
    shape : PLAShape
    rank : int

    Returns
    -------
    dict
        ``float32`` and ``int8``; also ``full_int8`` (:func:`parameter_bytes`' ``int8``) for
        comparison.
    """
    counts = low_rank_parameter_counts(shape, rank)
    k, d, n_classes = shape.k, shape.d, shape.C
    r = min(rank, shape.D, shape.d)
    int8 = (counts["centroids"] + counts["cluster_left"] + 4 * k * r + counts["cluster_right"]
            + 4 * k * d + 4 * k * d + d * n_classes + 4 * n_classes + 4 * n_classes)
    return {"float32": 4 * counts["total"], "int8": int8,
            "full_int8": parameter_bytes(shape)["int8"]}
