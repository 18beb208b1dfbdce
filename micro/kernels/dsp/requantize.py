"""TFLite's int8 requantization on the DSP extension (SMLAL, QADD, SSAT): the tensor intrinsic.

:func:`tensorize_requantizations` puts a requantization (the cluster-gated operator's, of the
chosen cluster) on ``micro_dsp_requantize_q7`` through :func:`requantize_intrin`, whose
description is micro's own statement of the arithmetic (:mod:`micro.fixed_point_tir`): a block
is recognised by its structure alone (an int8 store of a clamped value is tried; tensorize
accepts it only if it computes exactly that), whatever front end generated it.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.script import tirx as T

from ... import fixed_point_tir
from ...schedules import child_block_names, data_parallel
from .passes import register_intrinsic

REQUANTIZE_KERNEL = "micro_dsp_requantize_q7"


def requantize_intrin(outputs: int, zero_point: int, qmin: int, qmax: int) -> str:
    """Register (once) the gathered requantization intrinsic for one shape; return its name.

    Description: ``O[0, o] = requantize(A[0, o] + B[I[0], o], M[I[0], o], S[I[0], o])`` with
    TFLite's double rounding (:func:`micro.fixed_point_tir.requantize`, right shifts only):
    the cluster-gated operator's bias, per-channel multiplier and shift of the chosen cluster.
    Implementation: ``micro_dsp_requantize_q7``, the same integers with ``SMLAL``, ``QADD`` and
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
    return register_intrinsic(name, lambda: _requantize_intrin(outputs, zero_point, qmin, qmax))


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
