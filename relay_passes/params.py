"""Parameters of the cluster-gated linear operator, their validation and a numpy reference.

The operator maps a flattened input ``x [N, D]`` to ``h [N, d]`` by picking the nearest centroid
``c = argmin_j (||mu_j||^2 - 2 x . mu_j)`` (ties go to the lowest ``j``) and applying that cluster's
affine map ``h = x W_c + b_c``. The parameters are plain numpy arrays in small frozen dataclasses so
that relay_passes stays independent of the PLA estimator that produces them (pla_tvm): any code
that can fill the arrays can use the operator. :func:`reference_forward` is the specification the
TVM operator is tested against (float: 1e-5 relative; int8: bit-exact).
:class:`QuantizedFactoredClusterGatedLinearParams` is the low-rank form ``W_c = U_c V_c``, two int8
layers per cluster with an int8 intermediate.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .errors import ParameterError
from .fixed_point import quantize_multiplier, requantize


def _as_array(name: str, value, dtype: str, ndim: int) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype != np.dtype(dtype):
        if np.dtype(dtype).kind == "f" and array.dtype.kind in "fiu":
            array = array.astype(dtype)
        else:
            raise ParameterError(f"{name} must have dtype {dtype}, got {array.dtype}")
    if array.ndim != ndim:
        raise ParameterError(f"{name} must be {ndim}-D, got shape {array.shape}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ParameterError(f"{name} must be finite, got NaN or inf")
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


def _check_shape(name: str, array: np.ndarray, expected: tuple[int, ...], meaning: str) -> None:
    if array.shape != expected:
        raise ParameterError(f"{name} must have shape {expected} ({meaning}), got {array.shape}")


def _check_int8_range(name: str, value: int) -> None:
    if not -128 <= int(value) <= 127:
        raise ParameterError(f"{name} must be in [-128, 127], got {value}")


def _check_scale(name: str, value: float) -> None:
    if not (np.isfinite(value) and value > 0):
        raise ParameterError(f"{name} must be a finite positive float, got {value}")


#: Weight widths the int8 operators take: int8, or signed 4-bit values packed two per byte.
WEIGHT_BITS = (8, 4)


def _check_weight_bits(bits: int, arrays: dict[str, np.ndarray]) -> int:
    """``bits`` as an int; for 4 every array's values must lie in ``[-8, 7]``."""
    if bits not in WEIGHT_BITS:
        raise ParameterError(f"weight_bits must be 8 or 4, got {bits!r}")
    if bits == 4:
        for name, array in arrays.items():
            if array.size and (array.min() < -8 or array.max() > 7):
                raise ParameterError(f"{name} has values in [{array.min()}, {array.max()}]; "
                                     f"4-bit weights must lie in [-8, 7]")
    return int(bits)


def pack_int4(values: np.ndarray) -> np.ndarray:
    """Signed 4-bit values packed two per byte along the last axis.

    Byte ``j`` holds value ``2 j`` in its low nibble and value ``2 j + 1`` in its high nibble
    (two's complement); an odd length leaves the last high nibble 0.

    Parameters
    ----------
    values : np.ndarray
        Integers in ``[-8, 7]``, any shape ``[..., L]``.

    Returns
    -------
    np.ndarray
        int8 ``[..., ceil(L / 2)]``.

    Raises
    ------
    ParameterError
        If a value lies outside ``[-8, 7]``.
    """
    values = np.asarray(values)
    if values.size and (values.min() < -8 or values.max() > 7):
        raise ParameterError(f"4-bit values must lie in [-8, 7], got [{values.min()}, "
                             f"{values.max()}]")
    length = values.shape[-1]
    padded = np.zeros((*values.shape[:-1], length + length % 2), dtype=np.uint8)
    padded[..., :length] = values.astype(np.int64) & 0xF
    return (padded[..., 0::2] | (padded[..., 1::2] << 4)).astype(np.uint8).view(np.int8)


def unpack_int4(packed: np.ndarray, length: int) -> np.ndarray:
    """The ``length`` signed 4-bit values of :func:`pack_int4`'s bytes, as int8 ``[..., length]``.
    """
    packed = np.asarray(packed).astype(np.int8).view(np.uint8)
    nibbles = np.stack([packed & 0xF, packed >> 4], axis=-1).reshape(*packed.shape[:-1], -1)
    return (((nibbles.astype(np.int16) ^ 8) - 8)[..., :length]).astype(np.int8)


def packed_int4_rows(weights_q: np.ndarray) -> np.ndarray:
    """Packed 4-bit maps as the 4-bit kernels read them: ``[k, D, d]`` -> ``[k, d, ceil(D/2)]``
    (each output's weights along the reduction, two per byte; :func:`pack_int4`)."""
    return np.ascontiguousarray(pack_int4(np.swapaxes(weights_q, 1, 2)))


@dataclass(frozen=True, eq=False)
class ClusterGatedLinearParams:
    """Float parameters of the cluster-gated linear operator.

    Parameters
    ----------
    centroids : np.ndarray
        float32 ``[k, D]`` cluster centres in the input space.
    weights : np.ndarray
        float32 ``[k, D, d]`` per-cluster linear maps.
    biases : np.ndarray
        float32 ``[k, d]`` per-cluster offsets.

    Raises
    ------
    ParameterError
        If an array has the wrong rank or dtype, is not finite, or the shapes disagree; the message
        names the field and its shape.
    """

    centroids: np.ndarray
    weights: np.ndarray
    biases: np.ndarray

    def __post_init__(self) -> None:
        centroids = _as_array("centroids", self.centroids, "float32", 2)
        weights = _as_array("weights", self.weights, "float32", 3)
        biases = _as_array("biases", self.biases, "float32", 2)
        k, dim = centroids.shape
        _check_shape("weights", weights, (k, dim, weights.shape[2]), "[k, D, d]")
        _check_shape("biases", biases, (k, weights.shape[2]), "[k, d]")
        if k == 0 or dim == 0 or weights.shape[2] == 0:
            raise ParameterError(f"k, D and d must be positive, got centroids {centroids.shape} "
                                 f"and weights {weights.shape}")
        object.__setattr__(self, "centroids", centroids)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "biases", biases)

    @property
    def num_clusters(self) -> int:
        """Number of clusters ``k``."""
        return self.centroids.shape[0]

    @property
    def input_size(self) -> int:
        """Input length ``D``."""
        return self.centroids.shape[1]

    @property
    def output_size(self) -> int:
        """Feature size ``d``."""
        return self.weights.shape[2]

    @cached_property
    def centroid_norms(self) -> np.ndarray:
        """float32 ``[k]`` squared centroid norms ``||mu_j||^2`` (the constant score term)."""
        return np.einsum("ji,ji->j", self.centroids, self.centroids, dtype=np.float32)


class _Int8Gate:
    """What both int8 forms share: int8 centroids ``centroids_q [k, D]`` at the input scale with
    zero point 0, read with the input zero point ``input_zero_point``, and the gate's constants."""

    @property
    def num_clusters(self) -> int:
        """Number of clusters ``k``."""
        return self.centroids_q.shape[0]

    @property
    def input_size(self) -> int:
        """Input length ``D``."""
        return self.centroids_q.shape[1]

    @cached_property
    def score_offsets(self) -> np.ndarray:
        """int32 ``[k]``: ``sum_i muq^2 + 2 z_x sum_i muq``, the input-independent score terms.

        With it the score is ``score_offsets[j] - 2 sum_i xq_i muq[j, i]`` (exact in int32).
        """
        return _score_offsets(self.centroids_q, self.input_zero_point)


@dataclass(frozen=True, eq=False)
class QuantizedClusterGatedLinearParams(_Int8Gate):
    """int8 parameters of the cluster-gated linear operator (the lead's fixed int8 scheme).

    Parameters
    ----------
    input_scale : float
        Scale ``s_x`` of the int8 input.
    input_zero_point : int
        Zero point ``z_x`` of the int8 input.
    centroids_q : np.ndarray
        int8 ``[k, D]``, quantized at the input scale with zero point 0.
    weights_q : np.ndarray
        int8 ``[k, D, d]``, symmetric per cluster and output channel.
    weight_scales : np.ndarray
        float32 ``[k, d]`` weight scales ``s_w``.
    bias_q : np.ndarray
        int32 ``[k, d]``, ``round(b / (s_x * s_w))``.
    output_scale : float
        Scale ``s_out`` of the int8 output.
    output_zero_point : int
        Zero point ``z_out`` of the int8 output.
    weight_bits : int
        8 (default), or 4: ``weights_q`` holds signed 4-bit values (``[-8, 7]``, stored one per
        int8 here) that the operator's kernel reads packed (:attr:`weights_packed`).

    Raises
    ------
    ParameterError
        If a field has the wrong dtype, rank or shape, a scale is not positive, a zero point is
        outside int8, or 4-bit weights lie outside ``[-8, 7]``.

    Notes
    -----
    Cluster ``c = argmin_j sum_i muq[j,i]^2 - 2 sum_i (xq_i - z_x) muq[j,i]`` (int32, lowest
    ``j`` on ties); ``acc = bias_q[c] + sum_i (xq_i - z_x) weights_q[c, i]`` (int32); output
    ``clip(MultiplyByQuantizedMultiplier(acc, mult, shift) + z_out, -128, 127)`` with
    ``(mult, shift) = quantize_multiplier(float64(s_x) * s_w / s_out)``.
    """

    input_scale: float
    input_zero_point: int
    centroids_q: np.ndarray
    weights_q: np.ndarray
    weight_scales: np.ndarray
    bias_q: np.ndarray
    output_scale: float
    output_zero_point: int
    weight_bits: int = 8

    def __post_init__(self) -> None:
        centroids = _as_array("centroids_q", self.centroids_q, "int8", 2)
        weights = _as_array("weights_q", self.weights_q, "int8", 3)
        object.__setattr__(self, "weight_bits",
                           _check_weight_bits(self.weight_bits, {"weights_q": weights}))
        scales = _as_array("weight_scales", self.weight_scales, "float32", 2)
        bias = _as_array("bias_q", self.bias_q, "int32", 2)
        k, dim = centroids.shape
        d = weights.shape[2]
        _check_shape("weights_q", weights, (k, dim, d), "[k, D, d]")
        _check_shape("weight_scales", scales, (k, d), "[k, d]")
        _check_shape("bias_q", bias, (k, d), "[k, d]")
        if k == 0 or dim == 0 or d == 0:
            raise ParameterError(f"k, D and d must be positive, got centroids_q {centroids.shape} "
                                 f"and weights_q {weights.shape}")
        if not np.all(scales > 0):
            raise ParameterError(f"weight_scales must be positive, got min {scales.min()}")
        _check_scale("input_scale", self.input_scale)
        _check_scale("output_scale", self.output_scale)
        _check_int8_range("input_zero_point", self.input_zero_point)
        _check_int8_range("output_zero_point", self.output_zero_point)
        object.__setattr__(self, "input_scale", float(np.float32(self.input_scale)))
        object.__setattr__(self, "output_scale", float(np.float32(self.output_scale)))
        object.__setattr__(self, "input_zero_point", int(self.input_zero_point))
        object.__setattr__(self, "output_zero_point", int(self.output_zero_point))
        object.__setattr__(self, "centroids_q", centroids)
        object.__setattr__(self, "weights_q", weights)
        object.__setattr__(self, "weight_scales", scales)
        object.__setattr__(self, "bias_q", bias)

    @property
    def output_size(self) -> int:
        """Feature size ``d``."""
        return self.weights_q.shape[2]

    @cached_property
    def weights_packed(self) -> np.ndarray:
        """int8 ``[k, d, ceil(D/2)]``: the 4-bit weights as the kernel reads them
        (:func:`packed_int4_rows`); only for ``weight_bits == 4``."""
        if self.weight_bits != 4:
            raise ParameterError("weights_packed needs weight_bits 4")
        return packed_int4_rows(self.weights_q)

    @cached_property
    def multiplier_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """int32 ``[k, d]`` requantization multipliers and shifts (:func:`quantize_multiplier`)."""
        real = (np.float64(self.input_scale) * self.weight_scales.astype(np.float64)
                / np.float64(self.output_scale))
        return quantize_multiplier(real)

    @cached_property
    def bias_offsets(self) -> np.ndarray:
        """int32 ``[k, d]``: ``bias_q - z_x sum_i weights_q[:, i]``, folding in the zero point.

        With it the accumulator is ``bias_offsets[c] + sum_i xq_i weights_q[c, i]``.
        """
        return _fold_zero_point(self.bias_q, self.weights_q, self.input_zero_point)


@dataclass(frozen=True, eq=False)
class QuantizedFactoredClusterGatedLinearParams(_Int8Gate):
    """int8 parameters of the factored (low-rank) cluster-gated linear operator.

    Every cluster's map is ``W_c = U_c V_c`` (``U_c [D, r]``, ``V_c [r, d]``) deployed as two int8
    fully connected layers with an int8 intermediate ``h [r]``, each computed like TFLite's int8
    FULLY_CONNECTED with per-output-channel weight scales.

    Parameters
    ----------
    input_scale : float
        Scale ``s_x`` of the int8 input.
    input_zero_point : int
        Zero point ``z_x`` of the int8 input.
    centroids_q : np.ndarray
        int8 ``[k, D]``, quantized at the input scale with zero point 0.
    left_q : np.ndarray
        int8 ``[k, D, r]`` ``U_c``, symmetric per cluster and output channel.
    left_scales : np.ndarray
        float32 ``[k, r]`` scales of ``left_q``.
    left_bias_q : np.ndarray
        int32 ``[k, r]`` bias of the first layer at ``s_x * left_scales``.
    hidden_scale : float
        Scale ``s_h`` of the int8 intermediate (one for all clusters, as a TFLite tensor).
    hidden_zero_point : int
        Zero point ``z_h`` of the int8 intermediate.
    right_q : np.ndarray
        int8 ``[k, r, d]`` ``V_c``, symmetric per cluster and output channel.
    right_scales : np.ndarray
        float32 ``[k, d]`` scales of ``right_q``.
    bias_q : np.ndarray
        int32 ``[k, d]`` bias of the second layer at ``s_h * right_scales``.
    output_scale : float
        Scale ``s_out`` of the int8 output.
    output_zero_point : int
        Zero point ``z_out`` of the int8 output.
    weight_bits : int
        8 (default), or 4: ``left_q`` and ``right_q`` hold signed 4-bit values (``[-8, 7]``)
        that the kernel reads packed (:attr:`left_packed`, :attr:`right_packed`).

    Raises
    ------
    ParameterError
        If a field has the wrong dtype, rank or shape, a scale is not positive, a zero point is
        outside int8 or 4-bit weights lie outside ``[-8, 7]``; the message names the field.

    Notes
    -----
    The cluster is chosen as in :class:`QuantizedClusterGatedLinearParams`. Then
    ``acc_h = left_bias_q[c] + sum_i (xq_i - z_x) left_q[c, i]``,
    ``h = clip(MultiplyByQuantizedMultiplier(acc_h, m_h, s_h') + z_h, -128, 127)`` with
    ``(m_h, s_h') = quantize_multiplier(float64(s_x) * left_scales / s_h)``;
    ``acc = bias_q[c] + sum_j (h_j - z_h) right_q[c, j]`` and the output
    ``clip(MultiplyByQuantizedMultiplier(acc, m, s) + z_out, -128, 127)`` with
    ``(m, s) = quantize_multiplier(float64(s_h) * right_scales / s_out)``.
    """

    input_scale: float
    input_zero_point: int
    centroids_q: np.ndarray
    left_q: np.ndarray
    left_scales: np.ndarray
    left_bias_q: np.ndarray
    hidden_scale: float
    hidden_zero_point: int
    right_q: np.ndarray
    right_scales: np.ndarray
    bias_q: np.ndarray
    output_scale: float
    output_zero_point: int
    weight_bits: int = 8

    def __post_init__(self) -> None:
        centroids = _as_array("centroids_q", self.centroids_q, "int8", 2)
        left = _as_array("left_q", self.left_q, "int8", 3)
        left_scales = _as_array("left_scales", self.left_scales, "float32", 2)
        left_bias = _as_array("left_bias_q", self.left_bias_q, "int32", 2)
        right = _as_array("right_q", self.right_q, "int8", 3)
        right_scales = _as_array("right_scales", self.right_scales, "float32", 2)
        bias = _as_array("bias_q", self.bias_q, "int32", 2)
        object.__setattr__(self, "weight_bits", _check_weight_bits(
            self.weight_bits, {"left_q": left, "right_q": right}))
        k, dim = centroids.shape
        r, d = left.shape[2], right.shape[2]
        _check_shape("left_q", left, (k, dim, r), "[k, D, r]")
        _check_shape("left_scales", left_scales, (k, r), "[k, r]")
        _check_shape("left_bias_q", left_bias, (k, r), "[k, r]")
        _check_shape("right_q", right, (k, r, d), "[k, r, d]")
        _check_shape("right_scales", right_scales, (k, d), "[k, d]")
        _check_shape("bias_q", bias, (k, d), "[k, d]")
        if min(k, dim, r, d) == 0:
            raise ParameterError(f"k, D, r and d must be positive, got centroids_q "
                                 f"{centroids.shape}, left_q {left.shape} and right_q "
                                 f"{right.shape}")
        for name, scales in (("left_scales", left_scales), ("right_scales", right_scales)):
            if not np.all(scales > 0):
                raise ParameterError(f"{name} must be positive, got min {scales.min()}")
        for name in ("input", "hidden", "output"):
            _check_scale(f"{name}_scale", getattr(self, f"{name}_scale"))
            _check_int8_range(f"{name}_zero_point", getattr(self, f"{name}_zero_point"))
            object.__setattr__(self, f"{name}_scale",
                               float(np.float32(getattr(self, f"{name}_scale"))))
            object.__setattr__(self, f"{name}_zero_point",
                               int(getattr(self, f"{name}_zero_point")))
        for name, array in (("centroids_q", centroids), ("left_q", left),
                            ("left_scales", left_scales), ("left_bias_q", left_bias),
                            ("right_q", right), ("right_scales", right_scales), ("bias_q", bias)):
            object.__setattr__(self, name, array)

    @property
    def rank(self) -> int:
        """Rank ``r`` (length of the int8 intermediate)."""
        return self.left_q.shape[2]

    @property
    def output_size(self) -> int:
        """Feature size ``d``."""
        return self.right_q.shape[2]

    @cached_property
    def left_packed(self) -> np.ndarray:
        """int8 ``[k, r, ceil(D/2)]``: 4-bit ``left_q`` as the kernel reads it."""
        if self.weight_bits != 4:
            raise ParameterError("left_packed needs weight_bits 4")
        return packed_int4_rows(self.left_q)

    @cached_property
    def right_packed(self) -> np.ndarray:
        """int8 ``[k, d, ceil(r/2)]``: 4-bit ``right_q`` as the kernel reads it."""
        if self.weight_bits != 4:
            raise ParameterError("right_packed needs weight_bits 4")
        return packed_int4_rows(self.right_q)

    @cached_property
    def left_multiplier_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """int32 ``[k, r]`` requantization multipliers and shifts of the first layer."""
        return quantize_multiplier(np.float64(self.input_scale)
                                   * self.left_scales.astype(np.float64)
                                   / np.float64(self.hidden_scale))

    @cached_property
    def multiplier_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """int32 ``[k, d]`` requantization multipliers and shifts of the second layer."""
        return quantize_multiplier(np.float64(self.hidden_scale)
                                   * self.right_scales.astype(np.float64)
                                   / np.float64(self.output_scale))

    @cached_property
    def left_bias_offsets(self) -> np.ndarray:
        """int32 ``[k, r]``: ``left_bias_q - z_x sum_i left_q[:, i]`` (zero point folded in)."""
        return _fold_zero_point(self.left_bias_q, self.left_q, self.input_zero_point)

    @cached_property
    def bias_offsets(self) -> np.ndarray:
        """int32 ``[k, d]``: ``bias_q - z_h sum_j right_q[:, j]`` (zero point folded in)."""
        return _fold_zero_point(self.bias_q, self.right_q, self.hidden_zero_point)


def _score_offsets(centroids_q: np.ndarray, zero_point: int) -> np.ndarray:
    mu = centroids_q.astype(np.int64)
    return ((mu * mu).sum(1) + 2 * zero_point * mu.sum(1)).astype(np.int32)


def _fold_zero_point(bias_q: np.ndarray, weights_q: np.ndarray, zero_point: int) -> np.ndarray:
    colsum = weights_q.astype(np.int64).sum(1)
    return (bias_q.astype(np.int64) - zero_point * colsum).astype(np.int32)


def _nearest(scores: np.ndarray) -> np.ndarray:
    # np.argmin returns the first minimum, which is the lowest-j tie rule.
    return np.argmin(scores, axis=1)


def _nearest_int8(params, x: np.ndarray) -> np.ndarray:
    """Nearest int8 centroid of int64 beats ``x`` (exact int64 scores)."""
    mu = params.centroids_q.astype(np.int64)
    return _nearest((mu * mu).sum(1)[None, :] - 2 * (x - params.input_zero_point) @ mu.T)


def _check_input(x: np.ndarray, dim: int, dtype: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ParameterError(f"x must have shape [N, {dim}], got {x.shape}")
    if x.dtype != np.dtype(dtype):
        raise ParameterError(f"x must have dtype {dtype}, got {x.dtype}")
    return x


def reference_forward(
    params: ClusterGatedLinearParams | QuantizedClusterGatedLinearParams
    | QuantizedFactoredClusterGatedLinearParams,
    x: np.ndarray,
) -> np.ndarray:
    """Numpy reference of the cluster-gated linear operator.

    Parameters
    ----------
    params : ClusterGatedLinearParams, QuantizedClusterGatedLinearParams or \
             QuantizedFactoredClusterGatedLinearParams
        Operator parameters; the type selects the float, the int8 or the factored int8 variant.
    x : np.ndarray
        ``[N, D]`` input: float32 for float parameters, int8 for quantized ones.

    Returns
    -------
    np.ndarray
        ``[N, d]`` features, float32 or int8.

    Raises
    ------
    ParameterError
        If ``x`` has the wrong shape or dtype.
    """
    if isinstance(params, QuantizedFactoredClusterGatedLinearParams):
        x = _check_input(x, params.input_size, "int8").astype(np.int64)
        cluster = _nearest_int8(params, x)
        acc = params.left_bias_q.astype(np.int64)[cluster] + np.einsum(
            "ni,nir->nr", x - params.input_zero_point, params.left_q.astype(np.int64)[cluster])
        mult, shift = params.left_multiplier_shift
        hidden = requantize(acc.astype(np.int32), mult[cluster], shift[cluster],
                            params.hidden_zero_point).astype(np.int64)
        acc = params.bias_q.astype(np.int64)[cluster] + np.einsum(
            "nr,nro->no", hidden - params.hidden_zero_point,
            params.right_q.astype(np.int64)[cluster])
        mult, shift = params.multiplier_shift
        return requantize(acc.astype(np.int32), mult[cluster], shift[cluster],
                          params.output_zero_point)
    if isinstance(params, QuantizedClusterGatedLinearParams):
        x = _check_input(x, params.input_size, "int8").astype(np.int64)
        xs = x - params.input_zero_point
        cluster = _nearest_int8(params, x)
        w = params.weights_q.astype(np.int64)[cluster]
        acc = params.bias_q.astype(np.int64)[cluster] + np.einsum("ni,nio->no", xs, w)
        mult, shift = params.multiplier_shift
        return requantize(acc.astype(np.int32), mult[cluster], shift[cluster],
                          params.output_zero_point)
    if isinstance(params, ClusterGatedLinearParams):
        x = _check_input(x, params.input_size, "float32").astype(np.float64)
        mu = params.centroids.astype(np.float64)
        scores = (mu * mu).sum(1)[None, :] - 2 * x @ mu.T
        cluster = _nearest(scores)
        w = params.weights.astype(np.float64)[cluster]
        out = params.biases.astype(np.float64)[cluster] + np.einsum("ni,nio->no", x, w)
        return out.astype(np.float32)
    raise TypeError(f"params must be ClusterGatedLinearParams, QuantizedClusterGatedLinearParams "
                    f"or QuantizedFactoredClusterGatedLinearParams, got {type(params).__name__}")
