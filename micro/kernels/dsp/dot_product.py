"""int8 dot products on SMLAD: the tensor intrinsics and the schedule that uses them.

* :func:`dot_q7_intrin` registers a ``tvm.s_tir.TensorIntrin`` whose description is an int8×int8
  → int32 reduction ``C[o] += A[r] * B[o, r]`` over ``n`` outputs and ``L`` inputs (optionally
  with ``B`` gathered by a data-dependent index, like the cluster-gated operator's weights of the
  chosen cluster) and whose implementation calls the C micro-kernel ``micro_dsp_dot_q7``
  (``c/dsp/dot_product.c``). :func:`dot_q7x4_intrin` is the gathered variant for output and
  reduction lengths that are multiples of 4, over weights interleaved as ``[?, n/4, L/4, 4, 4]``
  so that one ``LDM`` loads a quad of inputs' weights for four outputs (``micro_dsp_dot_q7x4``).
  Inner loops: 18 instructions per 16 MACs (four outputs) or 22 (two outputs).
* :func:`dot_q7q4_intrin` is the same reduction with packed signed 4-bit weights
  (``B[.., o, r // 2]``, weight ``r`` in the low nibble for even ``r``, the high one for odd
  ``r``, each extended by ``(int32(b) << 28 - r % 2 * 4) >> 28``), reduction axis innermost,
  plain or gathered; it calls ``micro_dsp_dot_q7q4``: 22 instructions per 16 MACs (two outputs).
* :func:`schedule_int8_dots` is the schedule: for every reduction block that tensorize accepts it
  changes the layout of the weight (a constant parameter): reduction axis innermost, so that four
  weights of one output are one word, or interleaved for the four-output kernel (packed 4-bit
  weights already have the reduction innermost and keep their layout); it splits the
  outputs into tiles of the intrinsic, tensorizes, and fuses the element-wise epilogue
  (requantization) into one loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import s_tir, tirx
from tvm.script import tirx as T

from ...schedules import child_block_names, fuse_elementwise
from ..relayout import Relayout
from .passes import iter_var, register_intrinsic
from .requantize import (
    REQUANTIZE_KERNEL,
    _requantizations_that_tensorize,
    tensorize_requantizations,
)

MICRO_KERNEL = "micro_dsp_dot_q7"
MICRO_KERNEL_X4 = "micro_dsp_dot_q7x4"
MICRO_KERNEL_Q4 = "micro_dsp_dot_q7q4"
SCHEDULE_RULE = MICRO_KERNEL  # the blocks' "schedule_rule" annotation for MetaSchedule


@dataclass(frozen=True)
class DotKernels:
    """The C micro-kernels a library's int8 dot products and requantization call.

    The intrinsics and :func:`schedule_int8_dots` are the same for every library; the kernels
    named here decide what the implementations call (and which layouts and weight forms are
    taken). Intrinsic names start with the kernel's symbol, so two libraries' intrinsics differ.

    Attributes
    ----------
    plain : str
        ``(x, w, acc, len, n, w_stride)``: ``acc[o] += x . w[o * w_stride:][:len]``, the
        reduction innermost (:func:`dot_q7_intrin`).
    interleaved : str or None
        ``(x, w, acc, len, n)`` over weights interleaved as ``[?, n/4, L/4, 4, 4]``
        (:func:`dot_q7x4_intrin`); None: gathered weights are only transposed.
    packed_q4 : str or None
        int8 activations times packed 4-bit weights (:func:`dot_q7q4_intrin`); None: such blocks
        keep TVM's lowering.
    requantize : str
        The gathered requantization (:func:`.requantize.requantize_intrin`).
    rule : str
        The blocks' ``schedule_rule`` annotation for MetaSchedule (:func:`schedule_int8_dots`
        with ``tensorize=False``).
    unit_extents : bool
        Whether calls with one output or one input are made (the descriptions allow them; the
        DSP library leaves those blocks to the default lowering).
    """

    plain: str
    interleaved: str | None
    packed_q4: str | None
    requantize: str
    rule: str
    unit_extents: bool = False


#: The DSP library's kernels (``c/dsp/dot_product.c``, ``c/dsp/requantize.c``).
DSP_KERNELS = DotKernels(MICRO_KERNEL, MICRO_KERNEL_X4, MICRO_KERNEL_Q4, REQUANTIZE_KERNEL,
                         SCHEDULE_RULE)


def dot_q7_intrin(length: int, outputs: int, gathered: bool, kernel: str = MICRO_KERNEL) -> str:
    """Register (once) the tensor intrinsic for one shape and return its name.

    Parameters
    ----------
    length : int
        Reduction length ``L``.
    outputs : int
        Outputs per call ``n`` (the output tile).
    gathered : bool
        ``B`` is a ``[?, n, L]`` slice selected by a one-element int32 index buffer (the
        cluster-gated operator's weights), instead of a ``[n, L]`` matrix.
    kernel : str
        The C function the implementation calls (:attr:`DotKernels.plain`).

    Returns
    -------
    str
        Name for ``Schedule.tensorize``.
    """
    name = f"{kernel}_{length}x{outputs}{'_gathered' if gathered else ''}"
    make = _gathered_intrin if gathered else _plain_intrin
    return register_intrinsic(name, lambda: make(length, outputs, kernel))


def _call_micro_kernel(
    a: tirx.Buffer, b: tirx.Buffer, c: tirx.Buffer, length: int, outputs: int, b_stride: tirx.Var,
    kernel: str,
) -> tirx.PrimExpr:
    """The call both implementations make: matched regions' addresses, shape and row stride.

    The stride is cast to int32: kernels legalized from Relax operators index in int64, and the
    C declaration TVM writes for the extern follows the argument types of the call.
    """
    return T.call_extern(
        "int32", kernel, a.access_ptr("r"), b.access_ptr("r"), c.access_ptr("rw"),
        length, outputs, T.Cast("int32", b_stride),
    )  # fmt: skip


def _plain_intrin(
    length: int, outputs: int, kernel: str
) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
    """``C[0, o] += A[0, r] * B[o, r]``: description and implementation."""
    n, L = outputs, length  # noqa: N806 (the names of the math)

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (1, L), "int8", offset_factor=1)
        B = T.match_buffer(b, (n, L), "int8", offset_factor=1)
        C = T.match_buffer(c, (1, n), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0, 0:n], A[0, 0:L], B[0:n, 0:L])
            T.writes(C[0, 0:n])
            for o, r in T.grid(n, L):
                with T.sblock("update"):
                    vo = T.meta_var(iter_var(T.axis.spatial, n, o))
                    vr = T.meta_var(iter_var(T.axis.reduce, L, r))
                    C[0, vo] = C[0, vo] + T.Cast("int32", A[0, vr]) * T.Cast("int32", B[vo, vr])

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        stride = T.int32()
        A = T.match_buffer(a, (1, L), "int8", offset_factor=1)
        B = T.match_buffer(b, (n, L), "int8", offset_factor=1, strides=[stride, 1])
        C = T.match_buffer(c, (1, n), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0, 0:n], A[0, 0:L], B[0:n, 0:L])
            T.writes(C[0, 0:n])
            T.evaluate(_call_micro_kernel(A, B, C, L, n, stride, kernel))

    return desc, impl


def _gathered_intrin(
    length: int, outputs: int, kernel: str
) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
    """``C[0, o] += A[0, r] * B[I[0], o, r]``: the slice of ``B`` chosen by index buffer ``I``.

    The index is only read (the block reads it to address ``B``); the slice's address is the
    matched region's offset, so the implementation does not use it.
    """
    n, L = outputs, length  # noqa: N806

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle, i: T.handle) -> None:
        I = T.match_buffer(i, (1,), "int32", offset_factor=1)  # noqa: E741
        A = T.match_buffer(a, (1, L), "int8", offset_factor=1)
        B = T.match_buffer(b, (1, n, L), "int8", offset_factor=1)
        C = T.match_buffer(c, (1, n), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0, 0:n], A[0, 0:L], B[0, 0:n, 0:L], I[0])
            T.writes(C[0, 0:n])
            for o, r in T.grid(n, L):
                with T.sblock("update"):
                    vo = T.meta_var(iter_var(T.axis.spatial, n, o))
                    vr = T.meta_var(iter_var(T.axis.reduce, L, r))
                    T.reads(C[0, vo], A[0, vr], B[0, vo, vr], I[0])
                    T.writes(C[0, vo])
                    C[0, vo] = C[0, vo] + T.Cast("int32", A[0, vr]) * T.Cast("int32", B[0, vo, vr])

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle, i: T.handle) -> None:
        stride = T.int32()
        I = T.match_buffer(i, (1,), "int32", offset_factor=1)  # noqa: E741
        A = T.match_buffer(a, (1, L), "int8", offset_factor=1)
        B = T.match_buffer(b, (1, n, L), "int8", offset_factor=1, strides=[T.int32(), stride, 1])
        C = T.match_buffer(c, (1, n), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0, 0:n], A[0, 0:L], B[0, 0:n, 0:L], I[0])
            T.writes(C[0, 0:n])
            T.evaluate(_call_micro_kernel(A, B, C, L, n, stride, kernel))

    return desc, impl


def dot_q7x4_intrin(length: int, outputs: int, kernel: str = MICRO_KERNEL_X4) -> str:
    """Register (once) the gathered four-output intrinsic for one shape and return its name.

    Parameters
    ----------
    length : int
        Reduction length ``L``, a multiple of 4.
    outputs : int
        Outputs per call ``n``, a multiple of 4.
    kernel : str
        The C function the implementation calls (:attr:`DotKernels.interleaved`).

    Returns
    -------
    str
        Name for ``Schedule.tensorize``. ``B`` is the chosen slice of weights interleaved as
        ``[?, n/4, L/4, 4, 4]`` (group of four outputs, quad of four inputs, output in the group,
        input in the quad), selected by a one-element index buffer as in :func:`dot_q7_intrin`.
    """
    name = f"{kernel}_{length}x{outputs}_gathered"
    return register_intrinsic(name, lambda: _x4_intrin(length, outputs, kernel))


def _x4_intrin(length: int, outputs: int, kernel: str) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
    """``C[0, o] += A[0, r] * B[I[0], o/4, r/4, o%4, r%4]``: description and implementation.

    The interleaved slice is contiguous, so the implementation needs no stride.
    """
    n, L = outputs, length  # noqa: N806
    shape = (1, n // 4, L // 4, 4, 4)

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle, i: T.handle) -> None:
        I = T.match_buffer(i, (1,), "int32", offset_factor=1)  # noqa: E741
        A = T.match_buffer(a, (1, L), "int8", offset_factor=1)
        B = T.match_buffer(b, shape, "int8", offset_factor=1)
        C = T.match_buffer(c, (1, n), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0, 0:n], A[0, 0:L], B[0, 0:n // 4, 0:L // 4, 0:4, 0:4], I[0])
            T.writes(C[0, 0:n])
            for o, r in T.grid(n, L):
                with T.sblock("update"):
                    vo, vr = T.axis.remap("SR", [o, r])
                    T.reads(C[0, vo], A[0, vr], B[0, vo // 4, vr // 4, vo % 4, vr % 4], I[0])
                    T.writes(C[0, vo])
                    C[0, vo] = C[0, vo] + T.Cast("int32", A[0, vr]) * T.Cast(
                        "int32", B[0, vo // 4, vr // 4, vo % 4, vr % 4])

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle, i: T.handle) -> None:
        I = T.match_buffer(i, (1,), "int32", offset_factor=1)  # noqa: E741
        A = T.match_buffer(a, (1, L), "int8", offset_factor=1)
        B = T.match_buffer(b, shape, "int8", offset_factor=1)
        C = T.match_buffer(c, (1, n), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0, 0:n], A[0, 0:L], B[0, 0:n // 4, 0:L // 4, 0:4, 0:4], I[0])
            T.writes(C[0, 0:n])
            T.evaluate(T.call_extern(
                "int32", kernel, A.access_ptr("r"), B.access_ptr("r"),
                C.access_ptr("rw"), L, n))

    return desc, impl


def dot_q7q4_intrin(
    length: int, outputs: int, gathered: bool, kernel: str = MICRO_KERNEL_Q4
) -> str:
    """Register (once) the intrinsic for int8 activations × packed 4-bit weights; return its name.

    The description is the block a TE expression ``te.sum(int32(A[n, r]) * nib(B[.., o, r // 2],
    r))`` gives, with ``nib(b, r) = (int32(b) << 28 - r % 2 * 4) >> 28``: byte ``j`` of a row
    holds weight ``2j`` in its low nibble and ``2j + 1`` in its high nibble, both signed (two's
    complement); for an odd ``L`` the last high nibble is never read. The implementation calls
    ``micro_dsp_dot_q7q4`` with the matched rows' byte stride.

    Parameters
    ----------
    length : int
        Reduction length ``L`` (any; the rows hold ``ceil(L / 2)`` bytes).
    outputs : int
        Outputs per call ``n`` (the output tile).
    gathered : bool
        ``B`` is a ``[?, n, ceil(L / 2)]`` slice selected by a one-element int32 index buffer, as
        in :func:`dot_q7_intrin`, instead of a ``[n, ceil(L / 2)]`` matrix.
    kernel : str
        The C function the implementation calls (:attr:`DotKernels.packed_q4`).

    Returns
    -------
    str
        Name for ``Schedule.tensorize``.
    """
    name = f"{kernel}_{length}x{outputs}{'_gathered' if gathered else ''}"
    make = _q4_gathered_intrin if gathered else _q4_plain_intrin
    return register_intrinsic(name, lambda: make(length, outputs, kernel))


def _call_q4_micro_kernel(
    a: tirx.Buffer, b: tirx.Buffer, c: tirx.Buffer, length: int, outputs: int, b_stride: tirx.Var,
    kernel: str,
) -> tirx.PrimExpr:
    """The call of both 4-bit implementations (the stride cast as in :func:`_call_micro_kernel`)."""
    return T.call_extern(
        "int32", kernel, a.access_ptr("r"), b.access_ptr("r"), c.access_ptr("rw"),
        length, outputs, T.Cast("int32", b_stride),
    )  # fmt: skip


def _q4_plain_intrin(
    length: int, outputs: int, kernel: str
) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
    """``C[0, o] += A[0, r] * nib(B[o, r // 2], r)``: description and implementation."""
    n, L, H = outputs, length, (length + 1) // 2  # noqa: N806 (the names of the math)

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (1, L), "int8", offset_factor=1)
        B = T.match_buffer(b, (n, H), "int8", offset_factor=1)
        C = T.match_buffer(c, (1, n), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0, 0:n], A[0, 0:L], B[0:n, 0:H])
            T.writes(C[0, 0:n])
            for o, r in T.grid(n, L):
                with T.sblock("update"):
                    vo = T.meta_var(iter_var(T.axis.spatial, n, o))
                    vr = T.meta_var(iter_var(T.axis.reduce, L, r))
                    C[0, vo] = C[0, vo] + T.Cast("int32", A[0, vr]) * (
                        T.Cast("int32", B[vo, vr // 2]) << 28 - vr % 2 * 4 >> 28)

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        stride = T.int32()
        A = T.match_buffer(a, (1, L), "int8", offset_factor=1)
        B = T.match_buffer(b, (n, H), "int8", offset_factor=1, strides=[stride, 1])
        C = T.match_buffer(c, (1, n), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0, 0:n], A[0, 0:L], B[0:n, 0:H])
            T.writes(C[0, 0:n])
            T.evaluate(_call_q4_micro_kernel(A, B, C, L, n, stride, kernel))

    return desc, impl


def _q4_gathered_intrin(
    length: int, outputs: int, kernel: str
) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
    """``C[0, o] += A[0, r] * nib(B[I[0], o, r // 2], r)``, the slice chosen by index ``I``."""
    n, L, H = outputs, length, (length + 1) // 2  # noqa: N806

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle, i: T.handle) -> None:
        I = T.match_buffer(i, (1,), "int32", offset_factor=1)  # noqa: E741
        A = T.match_buffer(a, (1, L), "int8", offset_factor=1)
        B = T.match_buffer(b, (1, n, H), "int8", offset_factor=1)
        C = T.match_buffer(c, (1, n), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0, 0:n], A[0, 0:L], B[0, 0:n, 0:H], I[0])
            T.writes(C[0, 0:n])
            for o, r in T.grid(n, L):
                with T.sblock("update"):
                    vo = T.meta_var(iter_var(T.axis.spatial, n, o))
                    vr = T.meta_var(iter_var(T.axis.reduce, L, r))
                    T.reads(C[0, vo], A[0, vr], B[0, vo, vr // 2], I[0])
                    T.writes(C[0, vo])
                    C[0, vo] = C[0, vo] + T.Cast("int32", A[0, vr]) * (
                        T.Cast("int32", B[0, vo, vr // 2]) << 28 - vr % 2 * 4 >> 28)

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle, i: T.handle) -> None:
        stride = T.int32()
        I = T.match_buffer(i, (1,), "int32", offset_factor=1)  # noqa: E741
        A = T.match_buffer(a, (1, L), "int8", offset_factor=1)
        B = T.match_buffer(b, (1, n, H), "int8", offset_factor=1, strides=[T.int32(), stride, 1])
        C = T.match_buffer(c, (1, n), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0, 0:n], A[0, 0:L], B[0, 0:n, 0:H], I[0])
            T.writes(C[0, 0:n])
            T.evaluate(_call_q4_micro_kernel(A, B, C, L, n, stride, kernel))

    return desc, impl



class _NotApplicable(Exception):
    """A block looks like a dot product but the micro-kernel cannot take it."""


def _int8_products(block: tirx.SBlock) -> tuple[tvm.ir.TensorLoad, tvm.ir.TensorLoad] | None:
    """The two int8 loads of ``C = C + int32(a) * int32(b)``, or None for any other block."""
    operands = _products(block)
    if operands is None:
        return None
    loads = _int8_load(operands[0]), _int8_load(operands[1])
    return None if None in loads else loads


def _q7q4_products(block: tirx.SBlock) -> tuple[tvm.ir.TensorLoad, tvm.ir.TensorLoad] | None:
    """The int8 activation and the packed 4-bit weight load of ``C = C + int32(a) * nib(b, r)``.

    ``nib(b, r) = (int32(b) << s) >> 28`` with ``s`` the nibble's shift (``28 - r % 2 * 4``;
    tensorize checks it against the description); None for any other block.
    """
    operands = _products(block)
    if operands is None:
        return None
    activation, weight = _int8_load(operands[0]), _packed_q4_load(operands[1])
    if activation is None or weight is None:
        return None
    return activation, weight


def _products(block: tirx.SBlock) -> tuple[tirx.PrimExpr, tirx.PrimExpr] | None:
    """The two factors of ``C = C + a * b``, or None when the block stores something else."""
    body = block.body
    if not (isinstance(body, tirx.BufferStore) and isinstance(body.value, tirx.Add)):
        return None
    product = body.value.b
    if not isinstance(product, tirx.Mul):
        return None
    return product.a, product.b


def _int8_load(operand: tirx.PrimExpr) -> tvm.ir.TensorLoad | None:
    """The load of ``int32(a)`` with ``a`` int8, or None."""
    if not (isinstance(operand, tirx.Cast) and isinstance(operand.value, tvm.ir.TensorLoad)):
        return None
    if str(operand.value.source.dtype) != "int8" or str(operand.ty) != "int32":
        return None
    return operand.value


def _packed_q4_load(operand: tirx.PrimExpr) -> tvm.ir.TensorLoad | None:
    """The int8 load of ``(int32(b) << s) >> 28`` (a signed nibble of ``b``), or None."""
    if not (isinstance(operand, tirx.RShift) and isinstance(operand.a, tirx.LShift)):
        return None
    if not (isinstance(operand.b, tirx.IntImm) and int(operand.b) == 28):
        return None
    return _int8_load(operand.a.a)


def _weight_load(
    block: tirx.SBlock, kernels: DotKernels = DSP_KERNELS
) -> tvm.ir.TensorLoad | None:
    """The weight load of an int8 or (where ``kernels`` take it) a packed 4-bit dot-product
    block, or None."""
    products = _int8_products(block) or (
        _q7q4_products(block) if kernels.packed_q4 is not None else None)
    return None if products is None else products[1]


def _weight_needs_transpose(weight: tvm.ir.TensorLoad, block: tirx.SBlock) -> bool:
    """Whether the weight's last index is the output axis and the one before it the reduction."""
    reduce_vars = {iv.var for iv in block.iter_vars if iv.iter_type == tirx.IterVar.CommReduce}
    indices = weight.indices
    last, before = indices[-1], indices[-2] if len(indices) > 1 else None
    return (
        isinstance(before, tirx.Var) and before in reduce_vars
        and isinstance(last, tirx.Var) and last not in reduce_vars
    )  # fmt: skip


def schedule_int8_dots(
    func: tirx.PrimFunc, output_tile: int | None = None, *, tensorize: bool = True,
    kernels: DotKernels = DSP_KERNELS,
) -> tuple[tirx.PrimFunc, list[Relayout]] | None:
    """Tensorize every int8 dot-product reduction of a kernel with a library's micro-kernels
    (the SMLAD ones by default).

    When a block was tensorized, the element-wise stages are fused into their consumers' loops.

    Parameters
    ----------
    func : tvm.tirx.PrimFunc
        A kernel (e.g. ``cluster_gated_linear_int8``), unscheduled.
    output_tile : int, optional
        Outputs per micro-kernel call; the whole output axis when omitted (fewest calls) or when
        it does not divide the axis.
    tensorize : bool
        False: only change the weights' layout and annotate the blocks with the MetaSchedule rule
        ``kernels.rule`` (for :func:`prepare_for_tuning`); the blocks are still checked to
        tensorize.
    kernels : DotKernels
        The C micro-kernels to call (:data:`DSP_KERNELS`, or another library's), and so the
        layouts and weight forms taken.

    Returns
    -------
    func : tvm.tirx.PrimFunc
        The scheduled kernel; the whole result is None when no block matched.
    relaid_out : list of (int, tvm.tirx.IndexMap)
        The parameters whose layout changed (reduction innermost, or interleaved for the
        four-output kernel), by index, with the map of their new layout: the caller must pass
        those tensors re-laid out (``index_map.map_tensor``).
    """
    relaid_out: list[Relayout] = []
    sch = s_tir.Schedule(func)
    names = child_block_names(sch)
    matched = False
    for name in names:
        # Fresh schedules per block: a failed step leaves nothing half-applied behind.
        relaid = s_tir.Schedule(sch.mod)
        block_rv = relaid.get_sblock(name)
        block = relaid.get(block_rv)
        if _weight_load(block, kernels) is None or len(relaid.get_loops(block_rv)) != 3:
            continue
        try:
            moved = _relayout(relaid, block_rv, kernels)
            tensorized = s_tir.Schedule(relaid.mod)
            _tensorize(tensorized, tensorized.get_sblock(name), output_tile, kernels)
        except (s_tir.ScheduleError, _NotApplicable):
            continue  # not the micro-kernel's pattern: leave the block to the default lowering
        if tensorize:
            sch = tensorized
        else:
            relaid.annotate(relaid.get_sblock(name), "schedule_rule", kernels.rule)
            sch = relaid
        matched = True
        relaid_out += [] if moved is None else [moved]
    if not matched:
        return None
    if tensorize:
        tensorize_requantizations(sch, kernels.requantize)
        fuse_elementwise(sch)
    else:
        # registers the intrinsics tuning records name
        _requantizations_that_tensorize(sch, kernels.requantize)
    return sch.mod["main"], relaid_out


def _relayout(
    sch: s_tir.Schedule, block_rv: s_tir.SBlockRV, kernels: DotKernels = DSP_KERNELS
) -> Relayout | None:
    """Re-lay out a weight whose last axis is the output axis; return the parameter and its map.

    Four weights of one output become one word for ``SXTB16``: with the reduction axis innermost
    (``[..., d, D]``), or, for a gathered ``[k, D, d]`` weight with ``D`` and ``d`` multiples of
    4, interleaved as ``[k, d/4, D/4, 4, 4]`` for the four-output micro-kernel (where ``kernels``
    have one; else transposed as the others). Only a
    parameter's layout can change (the caller re-lays out the tensor passed in); None when the
    layout already fits (e.g. centroids ``[k, D]``).
    """
    block = sch.get(block_rv)
    if _q7q4_products(block) is not None:
        return None  # packed along the reduction: already innermost, and nibbles cannot move
    weight = _int8_products(block)[1]
    if not _weight_needs_transpose(weight, block):
        return None
    buffer = weight.source
    params = list(sch.mod["main"].params)  # buffers, in call_tir's argument order
    if not any(buffer.same_as(p) for p in params):
        raise _NotApplicable("only a parameter's layout can change")
    read_index = next(i for i, r in enumerate(block.reads) if r.source.same_as(buffer))
    rank = len(weight.indices)
    reduce_len, outputs = (int(e) for e in buffer.shape[-2:])
    interleave = kernels.interleaved is not None
    if interleave and rank == 3 and reduce_len % 4 == 0 and outputs % 4 == 0:
        index_map = tirx.IndexMap.from_func(
            lambda k, r, o: (k, o // 4, r // 4, o % 4, r % 4), ndim=3
        )
    else:
        index_map = tirx.IndexMap.from_func(
            lambda *idx: (*idx[: rank - 2], idx[rank - 1], idx[rank - 2]), ndim=rank
        )
    # Both maps are bijective; TVM's inverse check cannot parse the interleaving's mixed order.
    sch.transform_layout(
        block_rv, ("read", read_index), index_map, assume_injective_transform=True
    )
    return next(i for i, p in enumerate(params) if buffer.same_as(p)), index_map


def _tensorize(
    sch: s_tir.Schedule, block_rv: s_tir.SBlockRV, output_tile: int | None,
    kernels: DotKernels = DSP_KERNELS,
) -> None:
    """Split the outputs into tiles, zero the accumulators apart, call the micro-kernel per tile."""
    block = sch.get(block_rv)
    q4 = _q7q4_products(block) is not None
    rank = len(_weight_load(block).indices)
    _, out_loop, reduce_loop = sch.get_loops(block_rv)
    extent = int(sch.get(out_loop).extent)
    length = int(sch.get(reduce_loop).extent)
    divides = bool(output_tile) and extent % output_tile == 0
    if q4:
        tile = output_tile if divides else extent
        intrin = dot_q7q4_intrin(length, tile, rank == 3, kernels.packed_q4)
    elif rank == 5:  # interleaved weights: tiles of whole groups of four outputs
        tile = output_tile if divides and output_tile % 4 == 0 else extent
        intrin = dot_q7x4_intrin(length, tile, kernels.interleaved)
    else:
        tile = output_tile if divides else extent
        if not kernels.unit_extents and 1 in (tile, length):
            raise _NotApplicable("one output or one input per call")
        intrin = dot_q7_intrin(length, tile, rank == 3, kernels.plain)
    outer, inner = sch.split(out_loop, [extent // tile, tile])
    sch.decompose_reduction(block_rv, outer)
    sch.tensorize(inner, intrin)


def tensorize_annotated_dots(sch: s_tir.Schedule, kernels: DotKernels = DSP_KERNELS) -> None:
    """Tensorize every block :func:`schedule_int8_dots` annotated for tuning (``kernels.rule``),
    then the requantizations: a prepared kernel's default schedule, with a trace.

    A kernel without such a block is left alone, as :func:`schedule_int8_dots` leaves it: its
    int8 stores are not the dot products' requantizations (TFLite's integer softmax ends in one
    over a whole row, whose tensorize attempt alone takes minutes).

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of a prepared kernel, changed in place.
    kernels : DotKernels
        The library whose blocks (and micro-kernels) these are.
    """
    annotated = False
    for name in child_block_names(sch):
        block_rv = sch.get_sblock(name)
        if sch.get(block_rv).annotations.get("schedule_rule") == kernels.rule:
            _tensorize(sch, block_rv, None, kernels)
            annotated = True
    if annotated:
        tensorize_requantizations(sch, kernels.requantize)


def tensorize_for_rule(
    sch: s_tir.Schedule, block_rv: s_tir.SBlockRV, kernels: DotKernels = DSP_KERNELS
) -> list[s_tir.Schedule]:
    """The body of a library's MetaSchedule rule for a block annotated with ``kernels.rule``.

    One sketch, the whole output axis per call (the fewest activation extensions): one sketch
    per tile would need ``Schedule.copy()``, which fails on the schedules MetaSchedule passes
    here (``unordered_map::at``), and a sampled tile cannot work because the intrinsic's name
    depends on it and would not follow a changed decision on replay. The requantization that
    consumes the dot product goes on its micro-kernel here too (when its block still matches
    once MetaSchedule's rules have run on it), so that candidates are measured with it like the
    default build; otherwise a candidate's branchy TIR requantization, cheap on the benchmark's
    all-zero data, could look better than it is on real inputs.
    """
    _tensorize(sch, block_rv, None, kernels)
    tensorize_requantizations(sch, kernels.requantize)
    return [sch]
