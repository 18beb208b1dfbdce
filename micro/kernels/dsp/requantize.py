"""TFLite's int8 requantization on the DSP extension (SMLAL, QADD, SSAT): tensor intrinsics.

Two intrinsics, both described with micro's own statement of the arithmetic
(:mod:`micro.fixed_point_tir`), so that a block is recognised by its structure alone (an int8
store of a clamped value is tried; tensorize accepts it only if it computes exactly that),
whatever front end generated it:

* :func:`requantize_intrin` (``micro_dsp_requantize_q7``): the cluster-gated operator's gathered
  requantization of the chosen cluster, put there by :func:`tensorize_requantizations`;
* :func:`requantize_channels_intrin` (``micro_dsp_requantize_channels_q7``): the epilogue of an
  int8 convolution, per pass of its output positions: bias add, per-channel requantization,
  zero point, clamp (and an int8 clip after it, as the TFLite front end writes one), int8 store
  over ``positions x channels``, put there by :func:`tensorize_epilogue`.
"""

from __future__ import annotations

from tvm import ir, s_tir, tirx
from tvm.script import tirx as T

from ... import fixed_point_tir
from ...schedules import child_block_names, data_parallel
from .passes import iter_var, register_intrinsic

REQUANTIZE_KERNEL = "micro_dsp_requantize_q7"
REQUANTIZE_CHANNELS_KERNEL = "micro_dsp_requantize_channels_q7"


def requantize_intrin(
    outputs: int, zero_point: int, qmin: int, qmax: int, kernel: str = REQUANTIZE_KERNEL
) -> str:
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
    kernel : str
        The C function the implementation calls, with ``micro_dsp_requantize_q7``'s arguments
        (another library's requantization, e.g. :mod:`micro.kernels.scalar`'s).

    Returns
    -------
    str
        Name for ``Schedule.tensorize``.
    """
    name = f"{kernel}_{outputs}_{zero_point}_{qmin}_{qmax}".replace("-", "m")
    return register_intrinsic(
        name, lambda: _requantize_intrin(outputs, zero_point, qmin, qmax, kernel))


def _requantize_intrin(
    n: int, zero_point: int, qmin: int, qmax: int, kernel: str
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
                "int32", kernel, A.access_ptr("r"), B.access_ptr("r"),
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


def _tensorize_one_requantization(sch: s_tir.Schedule, name: str, kernel: str) -> bool:
    constants = _clamp_constants(sch, name)
    if constants is None:
        return False
    block_rv = sch.get_sblock(name)
    try:
        _inline_elementwise_producers(sch, block_rv)
        loop = sch.get_loops(block_rv)[-1]
        intrin = requantize_intrin(int(sch.get(loop).extent), *constants, kernel)
        sch.tensorize(loop, intrin)
    except s_tir.ScheduleError:
        return False
    return True


def tensorize_requantizations(sch: s_tir.Schedule, kernel: str = REQUANTIZE_KERNEL) -> None:
    """Run every gathered requantization on a C kernel, recognised by its structure.

    Every data-parallel block storing a clamped int8 value (:func:`micro.fixed_point_tir.
    clamp_constants` gives its zero point and range) is tried, on a copy first, so that a block
    the intrinsic does not match (other arithmetic, another access pattern, a left shift) is left
    exactly as it was.

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of one kernel, changed in place.
    kernel : str
        The C function called (:func:`requantize_intrin`); the DSP one by default.
    """
    for name in _requantizations_that_tensorize(sch, kernel):
        _tensorize_one_requantization(sch, name, kernel)


def _requantizations_that_tensorize(
    sch: s_tir.Schedule, kernel: str = REQUANTIZE_KERNEL
) -> list[str]:
    """The requantization blocks whose tensorization succeeds, each tried on a copy.

    Trying also registers their intrinsics, which a tuning database needs before it is loaded
    in another process (its records name them), so :func:`prepare_for_tuning` calls it too.
    """
    names = [n for n in child_block_names(sch) if _clamp_constants(sch, n) is not None]
    return [n for n in names
            if _tensorize_one_requantization(s_tir.Schedule(sch.mod), n, kernel)]


def composed_clamp(qmin: int, qmax: int, clip: tuple[int, int] | None) -> tuple[int, int]:
    """The one clamp ``[low, high]`` equal to a requantization's clamp then an int8 clip.

    The requantization stores ``max(min(v, qmax), qmin)`` (the zero point added before, see
    :func:`micro.fixed_point_tir.requantize`), the clip ``max(min(u, clip_high), clip_low)``.
    Each is non-decreasing and the identity between its two limits, so their composition is
    ``max(min(v, high), low)`` with ``low`` and ``high`` its values at minus and plus infinity
    (equal when the ranges do not meet: a constant).

    Parameters
    ----------
    qmin, qmax : int
        The requantization's clamp range.
    clip : tuple of (int, int) or None
        ``(clip_low, clip_high)`` of the clip after it, if any.

    Returns
    -------
    tuple of (int, int)
        ``(low, high)``, ``low <= high``.
    """
    low, high = qmin, max(qmin, qmax)
    if clip is not None:
        low, high = (max(min(v, clip[1]), clip[0]) for v in (low, high))
    return low, high


def requantize_channels_intrin(
    positions: int, channels: int, zero_point: int, qmin: int, qmax: int,
    clip: tuple[int, int] | None = None, kernel: str = REQUANTIZE_CHANNELS_KERNEL,
) -> str:
    """Register (once) the epilogue intrinsic of a convolution pass; return its name.

    Description: ``O[0, 0, p, c] = requantize(A[0, 0, p, c] + B[c], M[c], S[c])`` for
    ``p < positions``, ``c < channels`` (:func:`micro.fixed_point_tir.requantize` with the zero
    point and clamp range as immediates), then, with ``clip``, ``max(min(., clip_high),
    clip_low)`` in int8: the pass's int32 accumulators ``A``, the per-channel bias ``B``,
    multiplier ``M`` and shift ``S``, the int8 output ``O``. Implementation:
    ``micro_dsp_requantize_channels_q7`` with the two clamps as one (:func:`composed_clamp`).

    Parameters
    ----------
    positions, channels : int
        Output positions and channels per call.
    zero_point, qmin, qmax : int
        The requantization's output zero point and clamp range, ``qmin`` and ``qmax`` in
        ``[-128, 127]``.
    clip : tuple of (int, int), optional
        ``(clip_low, clip_high)`` of an int8 clip of the result.
    kernel : str
        The micro-kernel called (:data:`REQUANTIZE_CHANNELS_KERNEL`'s contract).

    Returns
    -------
    str
        Name for ``Schedule.tensorize``.
    """
    limits = f"{zero_point}_{qmin}_{qmax}" + ("" if clip is None else f"_clip{clip[0]}_{clip[1]}")
    name = f"{kernel}_{positions}x{channels}_{limits}".replace("-", "m")
    return register_intrinsic(
        name, lambda: _channels_intrin(positions, channels, zero_point, qmin, qmax, clip, kernel))


def _channels_intrin(
    positions: int, channels: int, zero_point: int, qmin: int, qmax: int,
    clip: tuple[int, int] | None, kernel: str,
) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
    """Description and implementation of :func:`requantize_channels_intrin`."""
    low, high = composed_clamp(qmin, qmax, clip)
    block = (1, 1, positions, channels)

    def value(acc, bias, mult, shift):
        out = fixed_point_tir.requantize(acc + bias, mult, shift, zero_point, qmin, qmax)
        if clip is None:
            return out
        return tirx.max(tirx.min(out, tirx.const(clip[1], "int8")), tirx.const(clip[0], "int8"))

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, m: T.handle, s: T.handle, o: T.handle) -> None:
        A = T.match_buffer(a, block, "int32", offset_factor=1)
        B = T.match_buffer(b, (channels,), "int32", offset_factor=1)
        M = T.match_buffer(m, (channels,), "int32", offset_factor=1)
        S = T.match_buffer(s, (channels,), "int8", offset_factor=1)
        O = T.match_buffer(o, block, "int8", offset_factor=1)  # noqa: E741
        with T.sblock("root"):
            T.reads(A[0, 0, 0:positions, 0:channels], B[0:channels], M[0:channels],
                    S[0:channels])
            T.writes(O[0, 0, 0:positions, 0:channels])
            for p, c in T.grid(positions, channels):
                with T.sblock("update"):
                    vp = T.meta_var(iter_var(T.axis.spatial, positions, p))
                    vc = T.meta_var(iter_var(T.axis.spatial, channels, c))
                    T.reads(A[0, 0, vp, vc], B[vc], M[vc], S[vc])
                    T.writes(O[0, 0, vp, vc])
                    O[0, 0, vp, vc] = value(A[0, 0, vp, vc], B[vc], M[vc], S[vc])

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, m: T.handle, s: T.handle, o: T.handle) -> None:
        a_row = T.int32()
        o_row = T.int32()
        A = T.match_buffer(a, block, "int32", offset_factor=1,
                           strides=[T.int32(), T.int32(), a_row, 1])
        B = T.match_buffer(b, (channels,), "int32", offset_factor=1)
        M = T.match_buffer(m, (channels,), "int32", offset_factor=1)
        S = T.match_buffer(s, (channels,), "int8", offset_factor=1)
        O = T.match_buffer(o, block, "int8", offset_factor=1,  # noqa: E741
                           strides=[T.int32(), T.int32(), o_row, 1])
        with T.sblock("root"):
            T.reads(A[0, 0, 0:positions, 0:channels], B[0:channels], M[0:channels],
                    S[0:channels])
            T.writes(O[0, 0, 0:positions, 0:channels])
            # The output by address, not access_ptr: a per-pass buffer that more stages read may
            # share its storage with the (dead) int16 window, which access_ptr refuses as int8.
            T.evaluate(T.call_extern(
                "int32", kernel, A.access_ptr("r"), B.access_ptr("r"),
                M.access_ptr("r"), S.access_ptr("r"), T.address_of(O[0, 0, 0, 0]), positions,
                channels, T.Cast("int32", a_row), T.Cast("int32", o_row), zero_point, low, high))

    return desc, impl


def _int8_clip(block: tirx.SBlock, source: tirx.Buffer) -> tuple[int, int] | None:
    """``(low, high)`` of a block storing ``max(min(source[...], high), low)`` in int8."""
    body = block.body
    if not isinstance(body, tirx.BufferStore) or str(body.value.ty) != "int8":
        return None
    value = body.value
    if not (isinstance(value, tirx.Max) and isinstance(value.b, tirx.IntImm)
            and isinstance(value.a, tirx.Min) and isinstance(value.a.b, tirx.IntImm)
            and isinstance(value.a.a, ir.TensorLoad) and value.a.a.source.same_as(source)):
        return None
    return int(value.b.value), int(value.a.b.value)


def _accumulator_chain(sch: s_tir.Schedule, name: str) -> list[str] | None:
    """The names of the two element-wise stages between a reduction and a requantizing block.

    ``[high, bias]`` when the block reads one element-wise stage (the high product) that reads
    one element-wise stage (the bias add) that reads the reduction (a block with reduction
    variables, and its init block if it was decomposed), each stage read by its consumer
    alone: the chain :func:`requantize_channels_intrin` describes, checked before anything is
    inlined. Inlining a longer chain (a residual add's rescalings and sum) writes each
    requantization's input out three times per stage, an expression that grows geometrically
    along the chain and takes minutes to build and compare. None for any other chain. ``sch``
    must be a fresh schedule of the kernel (in one that has tensorized the reduction, its
    producer relations are stale).
    """
    chain = []
    current = sch.get_sblock(name)
    for _ in range(2):
        producers = sch.get_producers(current)
        if len(producers) != 1 or not data_parallel(sch.get(producers[0])) or len(
                sch.get_consumers(producers[0])) != 1:
            return None
        current = producers[0]
        chain.append(sch.get(current).name_hint)
    # The reduction, with its init block where it was decomposed (the "plain" form).
    producers = [sch.get(p) for p in sch.get_producers(current)]
    if not any(not data_parallel(p) for p in producers) or len(producers) > 2:
        return None
    return chain


def tensorize_epilogue(
    sch: s_tir.Schedule, per_call: int | None = None, kernel: str = REQUANTIZE_CHANNELS_KERNEL
) -> bool:
    """Put a convolution pass's requantization epilogue on ``micro_dsp_requantize_channels_q7``.

    For a kernel scheduled in passes (:func:`.passes.compute_in_passes`: every stage computed at
    the pass loop, the third loop of the output's nest), the epilogue is the chain bias add →
    high multiplication → rounding division, zero point and clamp to int8. The block that ends
    it (an int8 store of a clamped value, :func:`micro.fixed_point_tir.clamp_constants`, which
    two element-wise stages lead to from the reduction, :func:`_accumulator_chain`) takes those
    two stages in (``compute_inline``), and an int8 clip after it that writes the kernel's
    output (TFLite's front end writes one; ``reverse_compute_inline``); the positions and
    channels of the pass are tensorized with :func:`requantize_channels_intrin`, whose
    description states the arithmetic: only a block computing exactly that matches. Its result
    is the kernel's output, or a per-pass int8 buffer that further stages read (a residual add
    fused into the kernel: TFLite's ADD, whose own requantization reads a sum and stays TIR).

    Handled: per-channel multipliers and right shifts read from 1-D ``[C]`` tensors (TFLite's
    per-channel quantized convolutions; every shift ``<= 0``), a ``[C]`` bias added to the
    accumulators, any zero point and clamp range within int8. Not handled (the epilogue stays
    TIR, as :func:`micro.schedules.fuse_elementwise` computes it): per-tensor multipliers
    (scalars inlined as constants, possibly with a left shift), a convolution without a bias,
    clamp ranges outside int8, other arithmetic. Each candidate is tried on a copy first, so a
    kernel the intrinsic does not match is left exactly as it was.

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of one kernel computed in passes, changed in place.
    per_call : int, optional
        Output positions per micro-kernel call, which must divide the pass (the pass loop is
        split by it); the whole pass by default. A tuning rule that samples the pass size
        passes a fixed value, since the intrinsic's name depends on it.
    kernel : str
        The micro-kernel called (:data:`REQUANTIZE_CHANNELS_KERNEL`'s contract).

    Returns
    -------
    bool
        Whether the epilogue was tensorized.
    """
    for name in child_block_names(sch):
        constants = _clamp_constants(sch, name)
        if constants is None or not all(-128 <= v <= 127 for v in constants[1:]):
            continue
        trial = s_tir.Schedule(sch.mod)
        chain = _accumulator_chain(trial, name)
        if chain is not None and _tensorize_epilogue_block(trial, name, chain, constants,
                                                           per_call, kernel):
            return _tensorize_epilogue_block(sch, name, chain, constants, per_call, kernel)
    return False


def _tensorize_epilogue_block(
    sch: s_tir.Schedule, name: str, chain: list[str], constants: tuple[int, int, int],
    per_call: int | None, kernel: str,
) -> bool:
    """:func:`tensorize_epilogue` on one requantizing block whose :func:`_accumulator_chain` is
    ``chain``; False if it does not match (then ``sch`` may be half changed: try it on a
    copy)."""
    block_rv = sch.get_sblock(name)
    block = sch.get(block_rv)
    consumers = sch.get_consumers(block_rv)
    clip = None
    if len(consumers) == 1 and sch.get(consumers[0]).name_hint == child_block_names(sch)[-1]:
        clip = _int8_clip(sch.get(consumers[0]), block.body.buffer)
    channels = int(block.iter_vars[-1].dom.extent)
    try:
        if clip is not None:
            sch.reverse_compute_inline(consumers[0])
        for producer in chain:
            sch.compute_inline(sch.get_sblock(producer))
        loops = sch.get_loops(block_rv)[3:]  # below batch, rows and the pass loop
        extents = [int(sch.get(loop).extent) for loop in loops]
        if channels > 1 and (not extents or extents[-1] != channels):
            return False
        channel_loop = loops.pop() if channels > 1 else None
        if len(loops) > 1:
            return False
        positions = extents[0] if loops else 1
        call = positions if per_call is None else per_call
        if positions % call:
            return False
        if channel_loop is None:
            channel_loop = sch.add_unit_loop(block_rv)
        if loops:
            _, position_loop = sch.split(loops[0], [None, call])
        else:
            position_loop = sch.add_unit_loop(channel_loop)
        sch.tensorize(position_loop,
                      requantize_channels_intrin(call, channels, *constants, clip, kernel))
    except s_tir.ScheduleError:
        return False
    return True
