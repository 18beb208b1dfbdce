"""int8 dot products on the Cortex-M DSP extension (SMLAD) through a TIR tensor intrinsic.

Scalar int8 code costs at least three instructions per multiply-accumulate (MAC) on a
Cortex-M4, two byte loads and a multiply-accumulate, plus loop overhead. The DSP extension's
``SMLAD`` adds two 16×16-bit products to an accumulator in one instruction and ``SXTB16``
sign-extends two bytes of a word at once, so the tensorized micro-kernels' inner loops take 18
instructions per 16 MACs (four outputs at a time, interleaved weights) or 22 (two outputs,
row-major weights), bit-exactly (the int32 sum is the same; only the order of additions changes,
and int32 addition is associative). The operator's requantization gets a micro-kernel too
(``SMLAL``, ``QADD``, ``SSAT``).

How it fits the compiler:

* :func:`dot_q7_intrin` registers a ``tvm.s_tir.TensorIntrin`` whose description is an int8×int8
  → int32 reduction ``C[o] += A[r] * B[o, r]`` over ``n`` outputs and ``L`` inputs (optionally
  with ``B`` gathered by a data-dependent index, like the cluster-gated operator's weights of the
  chosen cluster) and whose implementation calls the C micro-kernel ``pla_dsp_dot_q7``
  (``templates/dsp/pla_dsp.c``). :func:`dot_q7x4_intrin` is the gathered variant for output and
  reduction lengths that are multiples of 4, over weights interleaved as ``[?, n/4, L/4, 4, 4]``
  so that one ``LDM`` loads a quad of inputs' weights for four outputs (``pla_dsp_dot_q7x4``).
* :func:`schedule_int8_dots` is the schedule: for every reduction block that tensorize accepts it
  changes the layout of the weight (a constant parameter): reduction axis innermost, so that four
  weights of one output are one word, or interleaved for the four-output kernel; it splits the
  outputs into tiles of the intrinsic, tensorizes, and fuses the element-wise epilogue
  (requantization) into one loop.
* :func:`apply_dsp` applies that schedule to every kernel of a lowered Relax module that is not
  already scheduled and re-lays out the affected Relax constants to match. :func:`micro.build`
  calls it by default on boards that use the extension (:func:`uses_dsp`), the way microTVM's
  ``arm_cpu`` strategy picked its DSP schedules for ``-mcpu=cortex-m4/m7/m33``.
* :func:`prepare_for_tuning` does only the layout change and annotates the blocks, so that
  MetaSchedule's ``ApplyCustomRule`` tensorizes them in every candidate of
  :func:`micro.tuning.tune` (which calls it by default on those boards) while its other rules
  search the rest.
* :func:`tensorize_requantizations` puts the operator's requantization on
  ``pla_dsp_requantize_q7`` through :func:`requantize_intrin`, whose description is micro's own
  statement of the arithmetic (:mod:`micro.fixed_point_tir`): a block is recognised by its
  structure alone (an int8 store of a clamped value is tried; tensorize accepts it only if it
  computes exactly that), whatever front end generated it.
* :func:`register` declares the micro-kernels' C source
  (:func:`micro.codegen.register_extern_source`), so every build whose kernels call them (also the
  tuner's candidates) compiles it in, and MetaSchedule's rule for the annotated blocks.
  :func:`micro.build`, :func:`micro.tuning.tune` and :func:`micro.tuning.apply_database` call it;
  importing this module registers nothing.
"""

from __future__ import annotations

from importlib import resources

import tvm
from tvm import relax, s_tir, tirx
from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T

from . import fixed_point_tir
from .boards import Board
from .codegen import register_extern_source
from .errors import BuildError
from .kernels import dsp as conv_kernels
from .kernels import dsp_depthwise
from .lowering import lower_to_kernel_calls
from .schedules import child_block_names, data_parallel, fuse_elementwise

MICRO_KERNEL = "pla_dsp_dot_q7"
MICRO_KERNEL_X4 = "pla_dsp_dot_q7x4"
REQUANTIZE_KERNEL = "pla_dsp_requantize_q7"
SCHEDULE_RULE = MICRO_KERNEL  # the blocks' "schedule_rule" annotation for MetaSchedule
_TEMPLATES = resources.files(__package__).joinpath("templates", "dsp")
_META_SCHEDULE_RULE = f"s_tir.meta_schedule.cpu.{SCHEDULE_RULE}"


def register() -> None:
    """Declare the micro-kernels' C source and MetaSchedule's rule for the annotated blocks.

    Idempotent. The entry points that need them (:func:`micro.build`, :func:`micro.tuning.tune`,
    :func:`micro.tuning.apply_database`) call it, so that nothing depends on which modules were
    imported before.
    """
    for symbol in (MICRO_KERNEL, MICRO_KERNEL_X4, REQUANTIZE_KERNEL):
        register_extern_source(
            symbol, _TEMPLATES.joinpath("pla_dsp.c"), header=_TEMPLATES.joinpath("pla_dsp.h")
        )
    tvm.register_global_func(_META_SCHEDULE_RULE, _meta_schedule_rule, override=True)
    conv_kernels.register()
    dsp_depthwise.register()


def board_uses_dsp(board: Board) -> bool:
    """Whether kernels for this board use the SMLAD micro-kernel by default.

    Parameters
    ----------
    board : Board
        Target board.

    Returns
    -------
    bool
        True for cores with the DSP extension (``Board.dsp``) and without MVE: on Armv6-M and
        Armv7-M (M0, M3) the instructions do not exist, and on MVE cores (M55) vector code does
        more per instruction, so they keep TVM's lowering unless asked (``dsp=True``).
    """
    return board.dsp and not board.mve


def uses_dsp(board: Board, dsp: bool | None = None) -> bool:
    """Resolve a ``dsp=`` option of :func:`micro.build` and :func:`micro.tuning.tune`.

    Parameters
    ----------
    board : Board
        Target board.
    dsp : bool, optional
        None: the board's default (:func:`board_uses_dsp`); False: TVM's plain lowering; True:
        the micro-kernel, which the board's core must have.

    Returns
    -------
    bool
        Whether to schedule int8 dot products on the micro-kernel.

    Raises
    ------
    BuildError
        If ``dsp=True`` and the board's core lacks the DSP extension.
    """
    if dsp is None:
        return board_uses_dsp(board)
    if dsp and not board.dsp:
        raise BuildError(f"dsp=True, but {board.name} ({board.cpu}) has no DSP extension")
    return bool(dsp)


def dot_q7_intrin(length: int, outputs: int, gathered: bool) -> str:
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

    Returns
    -------
    str
        Name for ``Schedule.tensorize``.
    """
    name = f"{MICRO_KERNEL}_{length}x{outputs}{'_gathered' if gathered else ''}"
    if TensorIntrin.get(name, allow_missing=True) is None:
        make = _gathered_intrin if gathered else _plain_intrin
        TensorIntrin.register(name, *make(length, outputs))
    return name


def _call_micro_kernel(
    a: tirx.Buffer, b: tirx.Buffer, c: tirx.Buffer, length: int, outputs: int, b_stride: tirx.Var
) -> tirx.PrimExpr:
    """The call both implementations make: matched regions' addresses, shape and row stride.

    The stride is cast to int32: kernels legalized from Relax operators index in int64, and the
    C declaration TVM writes for the extern follows the argument types of the call.
    """
    return T.call_extern(
        "int32", MICRO_KERNEL, a.access_ptr("r"), b.access_ptr("r"), c.access_ptr("rw"),
        length, outputs, T.Cast("int32", b_stride),
    )  # fmt: skip


def _plain_intrin(length: int, outputs: int) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
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
                    vo, vr = T.axis.remap("SR", [o, r])
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
            T.evaluate(_call_micro_kernel(A, B, C, L, n, stride))

    return desc, impl


def _gathered_intrin(length: int, outputs: int) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
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
                    vo, vr = T.axis.remap("SR", [o, r])
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
            T.evaluate(_call_micro_kernel(A, B, C, L, n, stride))

    return desc, impl


def dot_q7x4_intrin(length: int, outputs: int) -> str:
    """Register (once) the gathered four-output intrinsic for one shape and return its name.

    Parameters
    ----------
    length : int
        Reduction length ``L``, a multiple of 4.
    outputs : int
        Outputs per call ``n``, a multiple of 4.

    Returns
    -------
    str
        Name for ``Schedule.tensorize``. ``B`` is the chosen slice of weights interleaved as
        ``[?, n/4, L/4, 4, 4]`` (group of four outputs, quad of four inputs, output in the group,
        input in the quad), selected by a one-element index buffer as in :func:`dot_q7_intrin`.
    """
    name = f"{MICRO_KERNEL_X4}_{length}x{outputs}_gathered"
    if TensorIntrin.get(name, allow_missing=True) is None:
        TensorIntrin.register(name, *_x4_intrin(length, outputs))
    return name


def _x4_intrin(length: int, outputs: int) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
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
                "int32", MICRO_KERNEL_X4, A.access_ptr("r"), B.access_ptr("r"),
                C.access_ptr("rw"), L, n))

    return desc, impl


def requantize_intrin(outputs: int, zero_point: int, qmin: int, qmax: int) -> str:
    """Register (once) the gathered requantization intrinsic for one shape; return its name.

    Description: ``O[0, o] = requantize(A[0, o] + B[I[0], o], M[I[0], o], S[I[0], o])`` with
    TFLite's double rounding (:func:`micro.fixed_point_tir.requantize`, right shifts only):
    the cluster-gated operator's bias, per-channel multiplier and shift of the chosen cluster.
    Implementation: ``pla_dsp_requantize_q7``, the same integers with ``SMLAL``, ``QADD`` and
    ``SSAT`` and no branch (C, 24 instructions per output where TVM's C needs about 30).

    Parameters
    ----------
    outputs : int
        Values per call ``n``.
    zero_point, qmin, qmax : int
        The output zero point and clamp range (immediates of the description).

    Returns
    -------
    str
        Name for ``Schedule.tensorize``.
    """
    name = f"{REQUANTIZE_KERNEL}_{outputs}_{zero_point}_{qmin}_{qmax}".replace("-", "m")
    if TensorIntrin.get(name, allow_missing=True) is None:
        TensorIntrin.register(name, *_requantize_intrin(outputs, zero_point, qmin, qmax))
    return name


def _requantize_intrin(
    n: int, zero_point: int, qmin: int, qmax: int
) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
    """Description and implementation of :func:`requantize_intrin` (reads in the kernel's order:
    the index first)."""

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, m: T.handle, s: T.handle, o: T.handle, i: T.handle) -> None:
        I = T.match_buffer(i, (1,), "int32", offset_factor=1)  # noqa: E741
        A = T.match_buffer(a, (1, n), "int32", offset_factor=1)
        B = T.match_buffer(b, (1, n), "int32", offset_factor=1)
        M = T.match_buffer(m, (1, n), "int32", offset_factor=1)
        S = T.match_buffer(s, (1, n), "int8", offset_factor=1)
        O = T.match_buffer(o, (1, n), "int8", offset_factor=1)  # noqa: E741
        with T.sblock("root"):
            T.reads(I[0], A[0, 0:n], B[0, 0:n], M[0, 0:n], S[0, 0:n])
            T.writes(O[0, 0:n])
            for j in range(n):
                with T.sblock("update"):
                    vj = T.axis.remap("S", [j])
                    T.reads(I[0], A[0, vj], B[0, vj], M[0, vj], S[0, vj])
                    T.writes(O[0, vj])
                    O[0, vj] = fixed_point_tir.requantize(
                        A[0, vj] + B[0, vj], M[0, vj], S[0, vj], zero_point, qmin, qmax)

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, m: T.handle, s: T.handle, o: T.handle, i: T.handle) -> None:
        I = T.match_buffer(i, (1,), "int32", offset_factor=1)  # noqa: E741
        A = T.match_buffer(a, (1, n), "int32", offset_factor=1)
        B = T.match_buffer(b, (1, n), "int32", offset_factor=1)
        M = T.match_buffer(m, (1, n), "int32", offset_factor=1)
        S = T.match_buffer(s, (1, n), "int8", offset_factor=1)
        O = T.match_buffer(o, (1, n), "int8", offset_factor=1)  # noqa: E741
        with T.sblock("root"):
            T.reads(I[0], A[0, 0:n], B[0, 0:n], M[0, 0:n], S[0, 0:n])
            T.writes(O[0, 0:n])
            T.evaluate(T.call_extern(
                "int32", REQUANTIZE_KERNEL, A.access_ptr("r"), B.access_ptr("r"),
                M.access_ptr("r"), S.access_ptr("r"), O.access_ptr("w"), n, zero_point, qmin,
                qmax,
            ))  # fmt: skip

    return desc, impl


def _inline_elementwise_producers(sch: s_tir.Schedule, block_rv: s_tir.SBlockRV) -> None:
    """Inline the element-wise stages that feed only this block (e.g. bias add, high product)."""
    while True:
        inlinable = [
            p for p in sch.get_producers(block_rv)
            if len(sch.get_consumers(p)) == 1
            and data_parallel(sch.get(p))
        ]  # fmt: skip
        if not inlinable:
            return
        for producer in inlinable:
            sch.compute_inline(producer)


def _clamp_constants(sch: s_tir.Schedule, name: str) -> tuple[int, int, int] | None:
    """Zero point and clamp range of a block that may be a requantization, else None."""
    block = sch.get(sch.get_sblock(name))
    body = block.body
    if not (isinstance(body, tirx.BufferStore) and data_parallel(block)):
        return None
    return fixed_point_tir.clamp_constants(body.value)


def _tensorize_one_requantization(sch: s_tir.Schedule, name: str) -> bool:
    constants = _clamp_constants(sch, name)
    if constants is None:
        return False
    block_rv = sch.get_sblock(name)
    try:
        _inline_elementwise_producers(sch, block_rv)
        loop = sch.get_loops(block_rv)[-1]
        intrin = requantize_intrin(int(sch.get(loop).extent), *constants)
        sch.tensorize(loop, intrin)
    except s_tir.ScheduleError:
        return False
    return True


def tensorize_requantizations(sch: s_tir.Schedule) -> None:
    """Run every gathered requantization on the C kernel, recognised by its structure.

    Every data-parallel block storing a clamped int8 value (:func:`micro.fixed_point_tir.
    clamp_constants` gives its zero point and range) is tried, on a copy first, so that a block
    the intrinsic does not match (other arithmetic, another access pattern, a left shift) is left
    exactly as it was.

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of one kernel, changed in place.
    """
    for name in _requantizations_that_tensorize(sch):
        _tensorize_one_requantization(sch, name)


def _requantizations_that_tensorize(sch: s_tir.Schedule) -> list[str]:
    """The requantization blocks whose tensorization succeeds, each tried on a copy.

    Trying also registers their intrinsics, which a tuning database needs before it is loaded
    in another process (its records name them), so :func:`prepare_for_tuning` calls it too.
    """
    names = [n for n in child_block_names(sch) if _clamp_constants(sch, n) is not None]
    return [n for n in names if _tensorize_one_requantization(s_tir.Schedule(sch.mod), n)]


#: A parameter whose layout a schedule changed: its index and the map to its new layout.
Relayout = tuple[int, tirx.IndexMap]


class _NotApplicable(Exception):
    """A block looks like a dot product but the micro-kernel cannot take it."""


def _int8_products(block: tirx.SBlock) -> tuple[tvm.ir.TensorLoad, tvm.ir.TensorLoad] | None:
    """The two int8 loads of ``C = C + int32(a) * int32(b)``, or None for any other block."""
    body = block.body
    if not (isinstance(body, tirx.BufferStore) and isinstance(body.value, tirx.Add)):
        return None
    product = body.value.b
    if not isinstance(product, tirx.Mul):
        return None
    loads = []
    for operand in (product.a, product.b):
        if not (isinstance(operand, tirx.Cast) and isinstance(operand.value, tvm.ir.TensorLoad)):
            return None
        if str(operand.value.source.dtype) != "int8" or str(operand.ty) != "int32":
            return None
        loads.append(operand.value)
    return loads[0], loads[1]


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
    func: tirx.PrimFunc, output_tile: int | None = None, *, tensorize: bool = True
) -> tuple[tirx.PrimFunc, list[Relayout]] | None:
    """Tensorize every int8 dot-product reduction of a kernel with the SMLAD micro-kernel.

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
        :data:`SCHEDULE_RULE` (for :func:`prepare_for_tuning`); the blocks are still checked to
        tensorize.

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
        if _int8_products(relaid.get(block_rv)) is None or len(relaid.get_loops(block_rv)) != 3:
            continue
        try:
            moved = _relayout(relaid, block_rv)
            tensorized = s_tir.Schedule(relaid.mod)
            _tensorize(tensorized, tensorized.get_sblock(name), output_tile)
        except (s_tir.ScheduleError, _NotApplicable):
            continue  # not the micro-kernel's pattern: leave the block to the default lowering
        if tensorize:
            sch = tensorized
        else:
            relaid.annotate(relaid.get_sblock(name), "schedule_rule", SCHEDULE_RULE)
            sch = relaid
        matched = True
        relaid_out += [] if moved is None else [moved]
    if not matched:
        return None
    if tensorize:
        tensorize_requantizations(sch)
        fuse_elementwise(sch)
    else:
        _requantizations_that_tensorize(sch)  # registers the intrinsics tuning records name
    return sch.mod["main"], relaid_out


def _relayout(sch: s_tir.Schedule, block_rv: s_tir.SBlockRV) -> Relayout | None:
    """Re-lay out a weight whose last axis is the output axis; return the parameter and its map.

    Four weights of one output become one word for ``SXTB16``: with the reduction axis innermost
    (``[..., d, D]``), or, for a gathered ``[k, D, d]`` weight with ``D`` and ``d`` multiples of
    4, interleaved as ``[k, d/4, D/4, 4, 4]`` for the four-output micro-kernel. Only a
    parameter's layout can change (the caller re-lays out the tensor passed in); None when the
    layout already fits (e.g. centroids ``[k, D]``).
    """
    block = sch.get(block_rv)
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
    if rank == 3 and reduce_len % 4 == 0 and outputs % 4 == 0:
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


def _tensorize(sch: s_tir.Schedule, block_rv: s_tir.SBlockRV, output_tile: int | None) -> None:
    """Split the outputs into tiles, zero the accumulators apart, call the micro-kernel per tile."""
    rank = len(_int8_products(sch.get(block_rv))[1].indices)
    _, out_loop, reduce_loop = sch.get_loops(block_rv)
    extent = int(sch.get(out_loop).extent)
    length = int(sch.get(reduce_loop).extent)
    divides = bool(output_tile) and extent % output_tile == 0
    if rank == 5:  # interleaved weights: tiles of whole groups of four outputs
        tile = output_tile if divides and output_tile % 4 == 0 else extent
        intrin = dot_q7x4_intrin(length, tile)
    else:
        tile = output_tile if divides else extent
        intrin = dot_q7_intrin(length, tile, rank == 3)
    outer, inner = sch.split(out_loop, [extent // tile, tile])
    sch.decompose_reduction(block_rv, outer)
    sch.tensorize(inner, intrin)


def tensorize_annotated(sch: s_tir.Schedule) -> None:
    """Tensorize, as :func:`apply_dsp` would, every block :func:`prepare_for_tuning` annotated.

    The default schedule of a prepared kernel, as a schedule (with a trace) rather than a
    function: :func:`micro.tuning.tune` measures it and commits it to the database beside the
    searched candidates.

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of a prepared kernel, changed in place.
    """
    if conv_kernels.schedule_conv2d_kernel(sch):
        return
    for name in child_block_names(sch):
        block_rv = sch.get_sblock(name)
        if sch.get(block_rv).annotations.get("schedule_rule") == SCHEDULE_RULE:
            _tensorize(sch, block_rv, None)
    tensorize_requantizations(sch)


def _meta_schedule_rule(sch: s_tir.Schedule, block_rv: s_tir.SBlockRV) -> list[s_tir.Schedule]:
    """MetaSchedule's rule for blocks annotated by :func:`prepare_for_tuning`.

    ``ApplyCustomRule`` dispatches on the ``schedule_rule`` annotation and the target key
    ``cpu``; :func:`register` declares it under that name. One sketch, the whole output axis per
    call (the fewest activation extensions): one sketch per tile would need ``Schedule.copy()``,
    which fails on the schedules MetaSchedule passes here (``unordered_map::at``), and a sampled
    tile cannot work because the intrinsic's name depends on it and would not follow a changed
    decision on replay.

    The requantization that consumes the dot product goes on its micro-kernel here too (when
    its block still matches once MetaSchedule's rules have run on it), so that candidates are
    measured with it like the default build; otherwise a candidate's branchy TIR requantization,
    cheap on the benchmark's all-zero data, could look better than it is on real inputs.
    """
    _tensorize(sch, block_rv, None)
    tensorize_requantizations(sch)
    return [sch]


def apply_dsp(
    mod: tvm.IRModule,
    board: Board,
    output_tile: int | None = None,
    *,
    dsp: bool | None = None,
    conv_positions: int = conv_kernels.DEFAULT_POSITIONS,
) -> tvm.IRModule:
    """Lower a Relax module to kernel calls and tensorize its int8 dot products for the board.

    Kernels already scheduled (attribute ``tirx.is_scheduled``, e.g. applied from a tuning
    database) are left as they are.

    Parameters
    ----------
    mod : tvm.IRModule
        Relax module, as for :func:`micro.build`.
    board : Board
        Target board.
    output_tile : int, optional
        Outputs per micro-kernel call (see :func:`schedule_int8_dots`).
    dsp : bool, optional
        As for :func:`uses_dsp`; without the micro-kernel the lowered module is returned
        unscheduled.
    conv_positions : int
        Output positions per pass of the convolution kernels
        (:func:`micro.kernels.dsp.schedule_conv2d`).

    Returns
    -------
    tvm.IRModule
        Lowered module (``main`` a chain of ``R.call_tir``) whose matching kernels call
        ``pla_dsp_dot_q7``, with the weights they read re-laid out.
    """
    if not uses_dsp(board, dsp):
        return lower_to_kernel_calls(mod)
    lowered = lower_to_kernel_calls(mod, conv_windows=True)
    return _schedule_module(lowered, output_tile, tensorize=True, conv_positions=conv_positions)


def prepare_for_tuning(
    mod: tvm.IRModule, board: Board, *, dsp: bool | None = None
) -> tvm.IRModule:
    """Lower a Relax module and re-lay out its int8 dot products' weights for a MetaSchedule search.

    The weight layout must change together with the Relax constants, which a MetaSchedule
    candidate cannot do (it only replaces PrimFuncs); so it is done here, once, and the blocks
    are annotated with ``schedule_rule = SCHEDULE_RULE``: MetaSchedule's default ``ApplyCustomRule``
    then tensorizes them in every candidate while its other rules schedule the rest (the
    requantization, other kernels). :func:`micro.tuning.tune` and
    :func:`micro.tuning.apply_database` call it, so that the database's kernels match.

    Parameters
    ----------
    mod : tvm.IRModule
        Relax module, as for :func:`micro.build`.
    board : Board
        Target board.
    dsp : bool, optional
        As for :func:`uses_dsp` (without the micro-kernel: the plain lowered module).

    Returns
    -------
    tvm.IRModule
        Lowered module with re-laid-out weights and annotated blocks.
    """
    if not uses_dsp(board, dsp):
        return lower_to_kernel_calls(mod)
    lowered = lower_to_kernel_calls(mod, conv_windows=True)
    return _schedule_module(lowered, None, tensorize=False)


def _schedule_module(
    lowered: tvm.IRModule, output_tile: int | None, *, tensorize: bool,
    conv_positions: int = conv_kernels.DEFAULT_POSITIONS,
) -> tvm.IRModule:
    """Schedule every kernel that is not scheduled yet; re-lay out the constants to match."""
    scheduled: dict[str, tuple[tirx.PrimFunc, list[Relayout]]] = {}
    for gvar, func in lowered.functions.items():
        if not isinstance(func, tirx.PrimFunc) or func.attrs.get("tirx.is_scheduled", False):
            continue
        sch = s_tir.Schedule(func)
        if tensorize and (conv_kernels.schedule_conv2d_kernel(sch, positions=conv_positions)
                          or dsp_depthwise.schedule_depthwise(sch)):
            done = sch.mod["main"].with_attr("tirx.is_scheduled", True)
            scheduled[gvar.name_hint] = (done, [])
            continue
        annotated = None if tensorize else conv_kernels.annotate_for_tuning(func)
        if annotated is not None:
            scheduled[gvar.name_hint] = (annotated, [])
            continue
        result = schedule_int8_dots(func, output_tile, tensorize=tensorize)
        if result is not None:
            new, relaid_out = result
            if tensorize:
                new = new.with_attr("tirx.is_scheduled", True)
            scheduled[gvar.name_hint] = (new, relaid_out)
    return _rewrite_calls(lowered, scheduled) if scheduled else lowered


def _rewrite_calls(
    mod: tvm.IRModule, scheduled: dict[str, tuple[tirx.PrimFunc, list[Relayout]]]
) -> tvm.IRModule:
    """Swap in the scheduled kernels and re-lay out the constants whose layout they changed."""
    new_mod = tvm.IRModule({gv: f for gv, f in mod.functions.items()}, attrs=mod.attrs)
    gvars = {}
    for name, (func, _) in scheduled.items():
        gvar = mod.get_global_var(name)
        new_mod[gvar] = func
        gvars[name] = gvar

    @relax.expr_functor.mutator
    class _Relayout(relax.PyExprMutator):
        def visit_call_(self, call: relax.Call) -> relax.Expr:
            call = super().visit_call_(call)
            if getattr(call.op, "name", "") != "relax.call_tir":
                return call
            entry = scheduled.get(call.args[0].name_hint)
            if entry is None:
                return call
            args = list(call.args[1].fields)
            for index, index_map in entry[1]:
                if not isinstance(args[index], tvm.ir.expr.GenericConst):
                    raise BuildError(
                        f"{call.args[0].name_hint}: argument {index} must be a constant to change"
                        " its layout for the DSP micro-kernel"
                    )
                args[index] = relax.const(index_map.map_tensor(args[index].value))
            return relax.call_tir(call.args[0], relax.Tuple(args), call.ty_args[0])

    main_gvar = mod.get_global_var("main")
    new_mod[main_gvar] = _Relayout().visit_expr(mod["main"])
    return new_mod
