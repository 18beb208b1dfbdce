"""The cluster-gated linear operator as one TIR kernel called from Relax.

``h = x W_c + b_c`` with ``c = argmin_j (||mu_j||^2 - 2 x . mu_j)`` is a data-dependent gather of
one of k affine maps. Relax has no operator for it, and a chain of generic ops (matmul, argmin,
take, batched matmul) would compute all k maps and lose the structure. So the operator is a single
PrimFunc written with TE — ``cluster_gated_linear`` (float32) or ``cluster_gated_linear_int8`` —
called with ``R.call_tir``. Being plain TIR it builds for any target (the C backend included, no
packed functions or external libraries), and being one named PrimFunc with ordinary reduction
blocks it is one unit that MetaSchedule can schedule and tune.

The parameters travel as Relax constants (arguments of the call), not inside the PrimFunc, so the
kernel is shared by every parameter set of the same shape; input-independent terms (centroid norms,
zero-point corrections) are precomputed in numpy. The int8 output zero point is the one scalar that
is an immediate of the int8 kernel.

The int8 kernel's stages are the two int8 dot products (centroids, then the chosen cluster's
weights: plain ``C = C + int32(a) * int32(b)`` reductions over three loops, the pattern that
``micro.dsp`` tensorizes), the argmin, the bias add and the requantization
(:func:`~relay_passes.fixed_point.te_requantize`: the high multiplication, then the rounding
division and the clamp): three element-wise stages that a schedule computes in one loop
(``micro.schedules`` does by default), leaving the accumulator as the one int32 ``[N, d]``
intermediate.

The factored (low-rank) int8 kernel ``cluster_gated_linear_factored_int8`` computes the chosen
cluster's ``W_c = U_c V_c`` as two such layers: ``x U_c`` accumulated, biased and requantized to
an int8 ``[N, r]`` intermediate, then that through ``V_c`` to the int8 output; both are plain
gathered int8 reductions, so ``micro.dsp`` tensorizes both.

With 4-bit weights (``weight_bits=4`` in the parameters) the same kernels read each map packed,
``[k, d, ceil(D/2)]`` int8 with the reduction innermost and two signed values per byte (low nibble
first, :func:`~relay_passes.params.pack_int4`); the accumulation extends each nibble in the
reduction itself, ``int32(x) * ((int32(byte) << (28 - 4 (r % 2))) >> 28)`` (:func:`_nibble`), so no
unpacked copy of the weights exists at run time. Everything after the accumulation is unchanged.
"""

from __future__ import annotations

import numpy as np
from tvm import relax, te, tirx

from .fixed_point import te_requantize
from .params import (
    ClusterGatedLinearParams,
    QuantizedClusterGatedLinearParams,
    QuantizedFactoredClusterGatedLinearParams,
)

FLOAT_KERNEL_NAME = "cluster_gated_linear"
INT8_KERNEL_NAME = "cluster_gated_linear_int8"
FACTORED_INT8_KERNEL_NAME = "cluster_gated_linear_factored_int8"


def _argmin_reducer(index_dtype: str, value_dtype: str):
    """Commutative reducer over (index, value) pairs: smallest value, lowest index on ties."""

    def combine(lhs, rhs):
        take_lhs = tirx.any(lhs[1] < rhs[1], tirx.all(lhs[1] == rhs[1], lhs[0] < rhs[0]))
        return (tirx.Select(take_lhs, lhs[0], rhs[0]), tirx.Select(take_lhs, lhs[1], rhs[1]))

    def identity(_index_dtype, _value_dtype):
        return (tirx.const(np.iinfo(np.int32).max, index_dtype), tirx.max_value(value_dtype))

    return te.comm_reducer(combine, identity, name="argmin")


def _private(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Drop the ``main`` symbol TE gives; the module's GlobalVar names the kernel."""
    return func.without_attr("global_symbol")


def _nearest_cluster(scores: te.Tensor, batch: int, num_clusters: int) -> te.Tensor:
    argmin = _argmin_reducer("int32", scores.dtype)
    j = te.reduce_axis((0, num_clusters), name="j")
    index, _ = te.compute(
        (batch,), lambda n: argmin((j, scores[n, j]), axis=j), name="nearest_cluster"
    )
    return index


def make_cluster_gated_linear_kernel(
    batch: int, input_size: int, num_clusters: int, output_size: int
) -> tirx.PrimFunc:
    """Build the float32 kernel for static shapes.

    Parameters
    ----------
    batch, input_size, num_clusters, output_size : int
        ``N``, ``D``, ``k`` and ``d``.

    Returns
    -------
    tvm.tirx.PrimFunc
        ``(x [N, D], centroids [k, D], centroid_norms [k], weights [k, D, d], biases [k, d],
        out [N, d])``, all float32.
    """
    x = te.placeholder((batch, input_size), "float32", name="x")
    centroids = te.placeholder((num_clusters, input_size), "float32", name="centroids")
    norms = te.placeholder((num_clusters,), "float32", name="centroid_norms")
    weights = te.placeholder((num_clusters, input_size, output_size), "float32", name="weights")
    biases = te.placeholder((num_clusters, output_size), "float32", name="biases")

    i = te.reduce_axis((0, input_size), name="i")
    dot = te.compute((batch, num_clusters),
                     lambda n, j: te.sum(x[n, i] * centroids[j, i], axis=i), name="centroid_dot")
    scores = te.compute((batch, num_clusters),
                        lambda n, j: norms[j] - tirx.const(2.0, "float32") * dot[n, j],
                        name="score")
    cluster = _nearest_cluster(scores, batch, num_clusters)
    r = te.reduce_axis((0, input_size), name="r")
    affine = te.compute((batch, output_size),
                        lambda n, o: te.sum(x[n, r] * weights[cluster[n], r, o], axis=r),
                        name="affine")
    out = te.compute((batch, output_size), lambda n, o: affine[n, o] + biases[cluster[n], o],
                     name="features")
    return _private(te.create_prim_func([x, centroids, norms, weights, biases, out]))


def make_cluster_gated_linear_int8_kernel(
    batch: int, input_size: int, num_clusters: int, output_size: int, output_zero_point: int,
    shifts_nonpositive: bool = False, weight_bits: int = 8,
) -> tirx.PrimFunc:
    """Build the int8 kernel for static shapes.

    Parameters
    ----------
    batch, input_size, num_clusters, output_size : int
        ``N``, ``D``, ``k`` and ``d``.
    output_zero_point : int
        ``z_out``, baked in as an immediate.
    shifts_nonpositive : bool
        Every requantization shift is ``<= 0`` (all real multipliers below 1, the usual case):
        the kernel then has no left shift (see :func:`~relay_passes.fixed_point.te_requantize`).
        :func:`emit_cluster_gated_linear` decides it from the parameters.
    weight_bits : int
        8, or 4 for packed 4-bit weights (``weights_q4 int8 [k, d, ceil(D/2)]`` in place of
        ``weights_q``; see the module docstring).

    Returns
    -------
    tvm.tirx.PrimFunc
        ``(xq int8 [N, D], centroids_q int8 [k, D], score_offsets int32 [k],
        weights_q int8 [k, D, d], bias_offsets int32 [k, d], multiplier int32 [k, d],
        shift int8 [k, d], out int8 [N, d])``; see
        :attr:`QuantizedClusterGatedLinearParams.score_offsets` and ``bias_offsets`` for the
        folded zero-point terms.
    """
    i32 = "int32"
    x = te.placeholder((batch, input_size), "int8", name="xq")
    centroids = te.placeholder((num_clusters, input_size), "int8", name="centroids_q")
    offsets = te.placeholder((num_clusters,), i32, name="score_offsets")
    weights = _weights_placeholder("weights_q", num_clusters, input_size, output_size,
                                   weight_bits)
    bias = te.placeholder((num_clusters, output_size), i32, name="bias_offsets")
    mult = te.placeholder((num_clusters, output_size), i32, name="multiplier")
    shift = te.placeholder((num_clusters, output_size), "int8", name="shift")

    cluster = _nearest_int8_cluster(x, centroids, offsets)
    out = _gated_int8_layer(x, cluster, weights, bias, mult, shift, output_zero_point,
                            shifts_nonpositive, weight_bits=weight_bits)
    return _private(te.create_prim_func([x, centroids, offsets, weights, bias, mult, shift, out]))


def _nearest_int8_cluster(x: te.Tensor, centroids: te.Tensor, offsets: te.Tensor) -> te.Tensor:
    """int32 ``[N]`` index of the nearest int8 centroid (exact int32 scores)."""
    i32 = "int32"
    batch, input_size = (int(e) for e in x.shape)
    num_clusters = int(centroids.shape[0])
    i = te.reduce_axis((0, input_size), name="i")
    dot = te.compute(
        (batch, num_clusters),
        lambda n, j: te.sum(x[n, i].astype(i32) * centroids[j, i].astype(i32), axis=i),
        name="centroid_dot",
    )
    scores = te.compute((batch, num_clusters),
                        lambda n, j: offsets[j] - tirx.const(2, i32) * dot[n, j], name="score")
    return _nearest_cluster(scores, batch, num_clusters)


def _nibble(byte: tirx.PrimExpr, r: tirx.PrimExpr) -> tirx.PrimExpr:
    """int32 value of the signed 4-bit weight ``r`` in its packed ``byte`` (low nibble for even
    ``r``): shifted to the top of the word, then arithmetically back."""
    i32 = "int32"
    return tirx.shift_right(
        tirx.shift_left(byte.astype(i32), tirx.const(28, i32) - (r % 2) * 4), tirx.const(28, i32))


def _weights_placeholder(name: str, k: int, length: int, outputs: int,
                         weight_bits: int) -> te.Tensor:
    """int8 ``[k, length, outputs]`` weights, or for 4 bits packed ``[k, outputs, ceil(length/2)]``.
    """
    if weight_bits == 4:
        return te.placeholder((k, outputs, (length + 1) // 2), "int8", name=f"{name}4")
    return te.placeholder((k, length, outputs), "int8", name=name)


def _gated_int8_layer(x: te.Tensor, cluster: te.Tensor, weights: te.Tensor, bias: te.Tensor,
                      mult: te.Tensor, shift: te.Tensor, output_zero_point: int,
                      shifts_nonpositive: bool, suffix: str = "",
                      weight_bits: int = 8) -> te.Tensor:
    """The chosen cluster's int8 layer: accumulate, add the bias offsets, requantize to int8.

    ``weights`` is ``[k, L, d]`` int8, or for ``weight_bits == 4`` packed ``[k, d, ceil(L/2)]``.
    """
    i32 = "int32"
    batch, length = (int(e) for e in x.shape)
    outputs = int(bias.shape[1])
    r = te.reduce_axis((0, length), name=f"r{suffix}")
    if weight_bits == 4:
        def product(n, o):
            return x[n, r].astype(i32) * _nibble(weights[cluster[n], o, r // 2], r)
    else:
        def product(n, o):
            return x[n, r].astype(i32) * weights[cluster[n], r, o].astype(i32)
    acc = te.compute((batch, outputs), lambda n, o: te.sum(product(n, o), axis=r),
                     name=f"accumulate{suffix}")
    # A stage of its own, stored as int32: inside the requantization's expression TVM's
    # simplifier would widen the addition to 64 bits along with the product.
    biased = te.compute((batch, outputs), lambda n, o: acc[n, o] + bias[cluster[n], o],
                        name=f"add_bias{suffix}")
    return te_requantize(
        biased, lambda n, o: mult[cluster[n], o], lambda n, o: shift[cluster[n], o],
        output_zero_point, name=f"requantize{suffix}", shifts_nonpositive=shifts_nonpositive,
    )


def make_factored_cluster_gated_linear_int8_kernel(
    batch: int, input_size: int, num_clusters: int, rank: int, output_size: int,
    hidden_zero_point: int, output_zero_point: int, shifts_nonpositive: bool = False,
    weight_bits: int = 8,
) -> tirx.PrimFunc:
    """Build the factored (low-rank) int8 kernel for static shapes.

    Parameters
    ----------
    batch, input_size, num_clusters, rank, output_size : int
        ``N``, ``D``, ``k``, ``r`` and ``d``.
    hidden_zero_point, output_zero_point : int
        ``z_h`` and ``z_out``, baked in as immediates.
    shifts_nonpositive : bool
        Every requantization shift of both layers is ``<= 0`` (no left shift is generated).
    weight_bits : int
        8, or 4 for packed 4-bit factors (``left_q4 int8 [k, r, ceil(D/2)]`` and
        ``right_q4 int8 [k, d, ceil(r/2)]`` in place of ``left_q`` and ``right_q``).

    Returns
    -------
    tvm.tirx.PrimFunc
        ``(xq int8 [N, D], centroids_q int8 [k, D], score_offsets int32 [k],
        left_q int8 [k, D, r], left_bias_offsets int32 [k, r], left_multiplier int32 [k, r],
        left_shift int8 [k, r], right_q int8 [k, r, d], bias_offsets int32 [k, d],
        multiplier int32 [k, d], shift int8 [k, d], out int8 [N, d])``; see
        :class:`~relay_passes.params.QuantizedFactoredClusterGatedLinearParams`.
    """
    i32 = "int32"
    k = num_clusters
    x = te.placeholder((batch, input_size), "int8", name="xq")
    centroids = te.placeholder((k, input_size), "int8", name="centroids_q")
    offsets = te.placeholder((k,), i32, name="score_offsets")
    left = _weights_placeholder("left_q", k, input_size, rank, weight_bits)
    left_bias = te.placeholder((k, rank), i32, name="left_bias_offsets")
    left_mult = te.placeholder((k, rank), i32, name="left_multiplier")
    left_shift = te.placeholder((k, rank), "int8", name="left_shift")
    right = _weights_placeholder("right_q", k, rank, output_size, weight_bits)
    bias = te.placeholder((k, output_size), i32, name="bias_offsets")
    mult = te.placeholder((k, output_size), i32, name="multiplier")
    shift = te.placeholder((k, output_size), "int8", name="shift")

    cluster = _nearest_int8_cluster(x, centroids, offsets)
    hidden = _gated_int8_layer(x, cluster, left, left_bias, left_mult, left_shift,
                               hidden_zero_point, shifts_nonpositive, suffix="_hidden",
                               weight_bits=weight_bits)
    out = _gated_int8_layer(hidden, cluster, right, bias, mult, shift, output_zero_point,
                            shifts_nonpositive, weight_bits=weight_bits)
    return _private(te.create_prim_func([x, centroids, offsets, left, left_bias, left_mult,
                                         left_shift, right, bias, mult, shift, out]))


def emit_cluster_gated_linear(
    builder: relax.BlockBuilder,
    x: relax.Expr,
    params: ClusterGatedLinearParams | QuantizedClusterGatedLinearParams
    | QuantizedFactoredClusterGatedLinearParams,
) -> relax.Var:
    """Add the kernel to the module under construction and emit the call on ``x``.

    Parameters
    ----------
    builder : tvm.relax.BlockBuilder
        Builder inside a function (and usually a dataflow block).
    x : tvm.relax.Expr
        ``[N, D]`` input, float32 for float parameters, int8 for quantized ones.
    params : ClusterGatedLinearParams, QuantizedClusterGatedLinearParams or \
             QuantizedFactoredClusterGatedLinearParams
        Operator parameters (float, int8, or factored int8).

    Returns
    -------
    tvm.relax.Var
        The bound ``[N, d]`` output (float32 or int8).
    """
    batch = int(x.ty.shape[0])
    k, dim, d = params.num_clusters, params.input_size, params.output_size
    if isinstance(params, QuantizedFactoredClusterGatedLinearParams):
        left_mult, left_shift = params.left_multiplier_shift
        mult, shift = params.multiplier_shift
        packed = params.weight_bits == 4
        kernel = make_factored_cluster_gated_linear_int8_kernel(
            batch, dim, k, params.rank, d, params.hidden_zero_point, params.output_zero_point,
            bool(np.all(left_shift <= 0) and np.all(shift <= 0)), params.weight_bits)
        arrays = [params.centroids_q, params.score_offsets,
                  params.left_packed if packed else params.left_q,
                  params.left_bias_offsets, left_mult, left_shift.astype(np.int8),
                  params.right_packed if packed else params.right_q, params.bias_offsets, mult,
                  shift.astype(np.int8)]
        name, dtype = FACTORED_INT8_KERNEL_NAME, "int8"
    elif isinstance(params, QuantizedClusterGatedLinearParams):
        mult, shift = params.multiplier_shift
        kernel = make_cluster_gated_linear_int8_kernel(batch, dim, k, d, params.output_zero_point,
                                                       bool(np.all(shift <= 0)),
                                                       params.weight_bits)
        weights = params.weights_packed if params.weight_bits == 4 else params.weights_q
        arrays = [params.centroids_q, params.score_offsets, weights,
                  params.bias_offsets, mult, shift.astype(np.int8)]
        name, dtype = INT8_KERNEL_NAME, "int8"
    else:
        kernel = make_cluster_gated_linear_kernel(batch, dim, k, d)
        arrays = [params.centroids, params.centroid_norms, params.weights, params.biases]
        name, dtype = FLOAT_KERNEL_NAME, "float32"
    gvar = builder.add_func(kernel, name)
    args = [x] + [relax.const(np.ascontiguousarray(a)) for a in arrays]
    return builder.emit(relax.call_tir(gvar, args, relax.TensorType((batch, d), dtype)))
