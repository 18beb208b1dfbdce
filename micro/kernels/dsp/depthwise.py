"""int8 depthwise convolution on the Cortex-M DSP extension (M4, M7, M33).

An integer-lowered TFLite ``DepthwiseConv1D``/``SeparableConv1D`` is ``conv2d(pad(x, zp), W,
groups=C)`` with NHWC data and HWOI weights ``[KH, KW, C, 1]``. TVM's plain lowering gives it a
padded copy of the input, a whole-tensor int32 accumulator and about 27 instructions per
multiply-accumulate (MAC) on a Cortex-M4. Here it becomes:

* **a lowering** (:func:`depthwise_te`): a ``window`` stage holding the padded input as int16,
  channel-major (``[N, rows, C, cols]``, consecutive taps of one channel adjacent, padding
  written by bounds: no padded copy of the input), and a reduction ``depthwise_nhwc_window`` with
  the weights re-laid out at compile time (:func:`relayout_weights`) as int16 pairs of taps per
  channel, a zero tap appended to an odd kernel width;
* **a tensor intrinsic** (:func:`depthwise_intrin`) for one pass of positions, every channel and
  one kernel row, implemented by ``micro_dsp_depthwise_q15`` (``c/dsp/depthwise.c``): SMLAD on
  a word of two taps by a word of two weights, the weights of a channel held in registers over
  four positions at a time;
* **a schedule** (:func:`schedule_depthwise`): output positions in passes; every stage is
  computed at the pass loop, consumers first (the epilogue: bias, requantization, clamp; the
  reduction; the window), so the int32 accumulators and the window cover one pass; a TFLite
  requantization epilogue runs on ``micro_dsp_requantize_channels_q7``, one call per pass
  (:func:`.requantize.tensorize_epilogue`).

Limits: depth multiplier 1 (``C * M`` outputs with ``M > 1`` keep TVM's lowering), dilation 1,
constant int8 weights; the pass size must divide the output width (a prime width runs one
position per pass). Kernels tuned with MetaSchedule are not covered: the tuning path leaves
this kernel to the generic rules.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
from tvm import s_tir, te, tirx
from tvm.script import tirx as T

from ...codegen import OVERWRITES_ATTR, register_extern_source
from ...schedules import fuse_elementwise, inline_copies_and_casts
from .fill import FILL_ATTR
from .passes import (
    compute_in_passes,
    find_annotated_block,
    iter_var,
    output_width_loop,
    register_intrinsic,
)
from .requantize import REQUANTIZE_CHANNELS_KERNEL, tensorize_epilogue

DEPTHWISE_KERNEL = "micro_dsp_depthwise_q15"
#: Block annotation of the reduction :func:`depthwise_te` writes (its width stride).
DEPTHWISE_BLOCK_ATTR = "micro.depthwise_window"
#: Output positions per pass by default (the largest divisor of the output width up to it).
DEFAULT_POSITIONS = 28
#: The most bytes a pass's int32 accumulators may take (``positions x channels x 4``): passes
#: are shortened below :data:`DEFAULT_POSITIONS` to stay within it. A pass's buffers come from
#: the model's workspace pool, which is as large as the largest kernel's, so a wide kernel
#: (the paper ResNet's one-channel first convolutions have 144 outputs: 8,064 B at 14
#: positions) would otherwise raise the model's RAM by several KB.
MAX_ACCUMULATOR_BYTES = 2048
_SOURCES = resources.files("micro.kernels").joinpath("c", "dsp")


def register() -> None:
    """Declare the depthwise micro-kernel's C source to the code generator (idempotent)."""
    register_extern_source(
        DEPTHWISE_KERNEL, _SOURCES.joinpath("depthwise.c"),
        header=_SOURCES.joinpath("depthwise.h"),
    )


def depthwise_supported(data_shape, weight_shape, strides, dilation, groups: int) -> bool:
    """Whether :func:`depthwise_te` takes a grouped convolution of these shapes.

    Parameters
    ----------
    data_shape : sequence of int
        NHWC input shape.
    weight_shape : sequence of int
        HWOI weight shape ``[KH, KW, C * M, 1]``.
    strides, dilation : sequence of int
        ``(h, w)``.
    groups : int
        Convolution groups.

    Returns
    -------
    bool
        True for a depthwise convolution with depth multiplier 1 (``groups`` = input channels =
        output channels > 1) and dilation 1.
    """
    channels = int(data_shape[-1])
    return (
        len(weight_shape) == 4 and groups > 1 and groups == channels
        and int(weight_shape[2]) == channels and int(weight_shape[3]) == 1
        and tuple(int(d) for d in dilation) == (1, 1) and all(int(s) >= 1 for s in strides)
    )  # fmt: skip


def relayout_weights(weight: np.ndarray) -> np.ndarray:
    """HWOI int8 depthwise weights as the int16 taps :func:`depthwise_te` reads.

    Parameters
    ----------
    weight : numpy.ndarray
        ``[KH, KW, C, 1]`` int8.

    Returns
    -------
    numpy.ndarray
        ``[C, KH, 2 * ceil(KW / 2)]`` int16, contiguous: element ``[c, kh, kw]`` is the weight of
        channel ``c`` at ``(kh, kw)``, 0 for the tap appended to an odd ``KW``.
    """
    kh, kw, channels, _ = weight.shape
    taps = np.zeros((channels, kh, -(-kw // 2) * 2), dtype=np.int16)
    taps[:, :, :kw] = weight[..., 0].transpose(2, 0, 1)
    return taps


def depthwise_te(
    data: te.Tensor, weight: te.Tensor, strides, padding, pad_value: int, kernel_size,
    kernel: str = DEPTHWISE_KERNEL, requantize: str = REQUANTIZE_CHANNELS_KERNEL,
) -> te.Tensor:
    """The int8 depthwise convolution as a channel-major int16 window and a reduction.

    A dense convolution of a one-channel input is the same computation with every output
    channel reading the input's one row (``data`` with one channel, ``weight`` with one entry
    per output channel): the window then has one channel row, which all outputs share (a beat's
    first convolution, where an im2col column per position would copy each sample ``KW`` times).

    Parameters
    ----------
    data : tvm.te.Tensor
        ``[N, H, W, C]`` int8.
    weight : tvm.te.Tensor
        ``[C, KH, KWP]`` int16 from :func:`relayout_weights` (``KWP`` even).
    strides : sequence of int
        ``(h, w)``.
    padding : sequence of int
        ``(top, left, bottom, right)``.
    pad_value : int
        The value of a padded input element (an int8 zero point, for instance).
    kernel_size : sequence of int
        ``(KH, KW)``, the kernel before its width was made even.
    kernel, requantize : str
        The micro-kernels the schedule calls (:data:`DEPTHWISE_KERNEL`'s and
        :data:`.requantize.REQUANTIZE_CHANNELS_KERNEL`'s contracts), recorded in the block's
        annotation.

    Returns
    -------
    tvm.te.Tensor
        ``[N, OH, OW, C]`` int32 (``C`` the weights' channels).
    """
    batch, height, width, in_channels = (int(v) for v in data.shape)
    channels = int(weight.shape[0])
    shared = in_channels == 1 and channels > 1
    if not shared and in_channels != channels:
        raise ValueError(f"depthwise_te: {channels} weight channels for {in_channels} input"
                         " channels (expected as many, or one input channel)")
    kh, kw = (int(k) for k in kernel_size)
    taps = int(weight.shape[2])
    top, left, bottom, right = (int(p) for p in padding)
    sh, sw = (int(s) for s in strides)
    rows, cols = height + top + bottom, width + left + right
    out_h, out_w = (rows - kh) // sh + 1, (cols - kw) // sw + 1
    # The appended tap reads one column past the last window: a padded value times a zero.
    window_cols = (out_w - 1) * sw + taps

    def padded(b, i, c, j):
        inside = tirx.all(i >= top, i < top + height, j >= left, j < left + width)
        return tirx.if_then_else(
            inside, data[b, i - top, j - left, c].astype("int16"), tirx.const(pad_value, "int16")
        )

    window = te.compute((batch, rows, in_channels, window_cols), padded, name="window",
                        attrs={FILL_ATTR: {"top": top, "left": left, "height": height,
                                           "width": width, "pad": pad_value}})
    rh, rw = te.reduce_axis((0, kh), "rh"), te.reduce_axis((0, taps), "rw")
    return te.compute(
        (batch, out_h, out_w, channels),
        lambda b, i, j, c: te.sum(
            window[b, i * sh + rh, 0 if shared else c, j * sw + rw].astype("int32")
            * weight[c, rh, rw].astype("int32"),
            axis=[rh, rw],
        ),
        name="depthwise_nhwc_window",
        attrs={DEPTHWISE_BLOCK_ATTR: {"stride": sw, "kernel": kernel, "requantize": requantize,
                                      "shared": int(shared)}},
    )


def depthwise_intrin(
    positions: int, channels: int, taps: int, stride: int, kernel: str = DEPTHWISE_KERNEL,
    shared: bool = False, accumulate: bool = True,
) -> str:
    """Register (once) the depthwise intrinsic for one shape and return its name.

    Description: ``C[0, 0, p, c] += int32(A[0, 0, c, p * stride + rw]) * int32(B[c, 0, rw])``
    for ``p < positions``, ``c < channels``, ``rw < taps``: one kernel row of a pass; with
    ``shared``, ``A[0, 0, 0, p * stride + rw]``: one window row for every channel (a one-channel
    convolution). Without ``accumulate`` the sums are written, not added: the description's
    root block does not read ``C`` and its reduction starts from 0 (the whole reduction of a
    one-row kernel; its block keeps an init, which :data:`micro.codegen.OVERWRITES_ATTR` on the
    implementation lets the code generator drop). Implementation: :data:`DEPTHWISE_KERNEL` (a
    channel step of 0 when shared).

    Parameters
    ----------
    positions : int
        Output positions per call.
    channels : int
        Channels per call.
    taps : int
        Kernel width made even.
    stride : int
        Stride along the width.
    kernel : str
        The micro-kernel called (:data:`DEPTHWISE_KERNEL`'s contract).
    shared : bool
        One window row read by every channel.
    accumulate : bool
        Add the sums onto ``C`` (a kernel row after the first) rather than write them.

    Returns
    -------
    str
        Name for ``Schedule.tensorize``.
    """
    name = (f"{kernel}_{positions}x{channels}_k{taps}_s{stride}" + ("_shared" if shared else "")
            + ("" if accumulate else "_set"))
    return register_intrinsic(
        name, lambda: _intrin(positions, channels, taps, stride, kernel, shared, accumulate))


def _intrin(
    positions: int, channels: int, taps: int, stride: int, kernel: str, shared: bool,
    accumulate: bool,
) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
    cols = (positions - 1) * stride + taps
    rows = 1 if shared else channels
    a_shape, b_shape, c_shape = (1, 1, rows, cols), (channels, 1, taps), (1, 1, positions,
                                                                          channels)

    def row(vc):  # the window row of channel vc
        return 0 if shared else vc

    def channel_step(a_channel):  # the kernel's window step from one channel to the next
        return 0 if shared else T.Cast("int32", a_channel)

    @T.prim_func(s_tir=True)
    def desc_add(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, a_shape, "int16", offset_factor=1)
        B = T.match_buffer(b, b_shape, "int16", offset_factor=1)
        C = T.match_buffer(c, c_shape, "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0, 0, 0:positions, 0:channels], A[0, 0, 0:rows, 0:cols],
                    B[0:channels, 0, 0:taps])
            T.writes(C[0, 0, 0:positions, 0:channels])
            for p, ch, rw in T.grid(positions, channels, taps):
                with T.sblock("update"):
                    vp = T.meta_var(iter_var(T.axis.spatial, positions, p))
                    vc = T.axis.spatial(channels, ch)
                    vrw = T.axis.reduce(taps, rw)
                    C[0, 0, vp, vc] = C[0, 0, vp, vc] + T.Cast(
                        "int32", A[0, 0, row(vc), vp * stride + vrw]
                    ) * T.Cast("int32", B[vc, 0, vrw])

    @T.prim_func(s_tir=True)
    def desc_set(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, a_shape, "int16", offset_factor=1)
        B = T.match_buffer(b, b_shape, "int16", offset_factor=1)
        C = T.match_buffer(c, c_shape, "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(A[0, 0, 0:rows, 0:cols], B[0:channels, 0, 0:taps])
            T.writes(C[0, 0, 0:positions, 0:channels])
            for p, ch, rw in T.grid(positions, channels, taps):
                with T.sblock("update"):
                    vp = T.meta_var(iter_var(T.axis.spatial, positions, p))
                    vc = T.axis.spatial(channels, ch)
                    vrw = T.axis.reduce(taps, rw)
                    T.reads(C[0, 0, vp, vc], A[0, 0, row(vc), vp * stride + vrw], B[vc, 0, vrw])
                    T.writes(C[0, 0, vp, vc])
                    with T.init():
                        C[0, 0, vp, vc] = 0
                    C[0, 0, vp, vc] = C[0, 0, vp, vc] + T.Cast(
                        "int32", A[0, 0, row(vc), vp * stride + vrw]
                    ) * T.Cast("int32", B[vc, 0, vrw])

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        a_channel = T.int32()
        b_channel = T.int32()
        c_row = T.int32()
        A = T.match_buffer(a, a_shape, "int16", offset_factor=1,
                           strides=[T.int32(), T.int32(), a_channel, 1])
        B = T.match_buffer(b, b_shape, "int16", offset_factor=1,
                           strides=[b_channel, T.int32(), 1])
        C = T.match_buffer(c, c_shape, "int32", offset_factor=1,
                           strides=[T.int32(), T.int32(), c_row, 1])
        with T.sblock("root"):
            T.reads(C[0, 0, 0:positions, 0:channels], A[0, 0, 0:rows, 0:cols],
                    B[0:channels, 0, 0:taps])
            T.writes(C[0, 0, 0:positions, 0:channels])
            T.sblock_attr({OVERWRITES_ATTR: not accumulate})
            T.evaluate(T.call_extern(
                "int32", kernel, A.access_ptr("r"), B.access_ptr("r"),
                C.access_ptr("rw"), positions, channels, taps // 2, stride,
                channel_step(a_channel), T.Cast("int32", b_channel),
                T.Cast("int32", c_row), int(accumulate)))

    return (desc_add if accumulate else desc_set), impl


def _find_block(sch: s_tir.Schedule) -> s_tir.SBlockRV | None:
    return find_annotated_block(sch, DEPTHWISE_BLOCK_ATTR)


def _pass_size(out_w: int, limit: int, channels: int) -> int:
    """The largest divisor of the output width up to ``limit`` whose accumulators fit in
    :data:`MAX_ACCUMULATOR_BYTES` (at least 1)."""
    limit = min(limit, MAX_ACCUMULATOR_BYTES // (4 * channels))
    return max(p for p in range(1, min(out_w, max(limit, 1)) + 1) if out_w % p == 0)


def schedule_depthwise(sch: s_tir.Schedule, positions: int = DEFAULT_POSITIONS) -> bool:
    """Tensorize a depthwise kernel from :func:`depthwise_te`, its epilogue computed per pass.

    The output positions are split into passes of ``positions`` (the largest divisor of the
    output width up to it whose accumulators fit in :data:`MAX_ACCUMULATOR_BYTES`); every
    stage is computed at the pass loop, consumers first (the epilogue, the reduction, then the
    window it reads); per pass each kernel row is one call of
    the micro-kernel over the pass's positions and every channel, the first writing the
    accumulators (a one-row kernel's only call: no zeroing), the others adding to them after
    they are zeroed. The epilogue goes on its micro-kernel where it matches
    (:func:`.requantize.tensorize_epilogue`); an epilogue left in TIR has its element-wise
    stages fused per element.

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of one kernel (a fused ``depthwise_nhwc_window`` and its element-wise
        consumers), changed in place.
    positions : int
        Output positions per pass at most.

    Returns
    -------
    bool
        False, with ``sch`` unchanged, when the kernel has no such block or its output is not
        written by an NHWC loop nest.
    """
    conv = _find_block(sch)
    if conv is None:
        return False
    block = sch.get(conv)
    extents = [int(iv.dom.extent) for iv in block.iter_vars]  # b, i, j, c, rh, rw
    width = output_width_loop(sch, conv)
    if width is None:
        return False
    attrs = block.annotations[DEPTHWISE_BLOCK_ATTR]
    per_pass = _pass_size(extents[2], positions, extents[3])
    compute_in_passes(sch, conv, width, per_pass)
    _tensorize_pass(sch, conv, [per_pass, *extents[3:]], int(attrs["stride"]),
                    str(attrs.get("kernel", DEPTHWISE_KERNEL)), bool(int(attrs.get("shared", 0))))
    tensorize_epilogue(sch, kernel=str(attrs.get("requantize", REQUANTIZE_CHANNELS_KERNEL)))
    inline_copies_and_casts(sch)
    fuse_elementwise(sch)
    return True


def _tensorize_pass(
    sch: s_tir.Schedule, conv: s_tir.SBlockRV, extents: list[int], stride: int, kernel: str,
    shared: bool,
) -> None:
    """One pass's reduction as ``(rh,) positions, channels, taps``, tensorized.

    ``compute_at`` made a loop for each iteration variable of the pass longer than 1 (positions,
    channels, kernel rows, taps); a pass of one position gets a unit loop for the intrinsic. A
    one-row kernel is tensorized whole with the intrinsic that writes its sums; with more rows
    the accumulators are zeroed (``decompose_reduction``) and each row's call adds to them.
    """
    positions, channels, kh, taps = extents
    present = iter(sch.get_loops(conv)[3:])  # below batch, rows and the pass loop
    loops = {axis: next(present) if extent > 1 else None
             for axis, extent in zip(("j", "c", "rh", "rw"), extents, strict=True)}
    if loops["j"] is None:
        loops["j"] = sch.add_unit_loop(loops["c"])
    if loops["rh"] is not None:
        sch.reorder(loops["rh"], loops["j"], loops["c"])
        sch.decompose_reduction(conv, loops["rh"])
    sch.tensorize(loops["j"], depthwise_intrin(positions, channels, taps, stride, kernel, shared,
                                               accumulate=loops["rh"] is not None))
