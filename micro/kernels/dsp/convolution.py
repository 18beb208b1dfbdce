"""int8 convolution on the Cortex-M DSP extension (M4, M7, M33): lowering, intrinsics, schedule.

An int8 convolution (NHWC, HWIO weights, int32 result) costs TVM's plain lowering about nine
instructions per multiply-accumulate (MAC) on a Cortex-M4, and its explicit padding and its
whole int32 result each take a copy of a tensor in RAM. Here it becomes:

* **a lowering** (:func:`lower_conv2d_windows`, a Relax rewrite run before legalization): the
  convolution, with a constant ``pad`` before it folded in, as two TE stages
  (:func:`conv2d_window_te`) in one of three forms (:func:`conv2d_form`). ``"window"`` (input
  channels a multiple of 4, even outputs): ``window`` holds the padded input as int16, each quad
  of four channels in SXTB16's order ``(v0, v2, v1, v3)``, padding written by bounds (no padded
  copy of the input), and ``conv2d_nhwc_window`` reduces it with the weights re-laid out at
  compile time as pairs of output channels, ``[O/2, KH, KW, C/4, 2, 4]``; ``"columns"`` (other
  input channel counts, even outputs): one zero-padded im2col column of ``KH * KW * C`` values
  per position, weights ``[O/2, R/4, 2, 4]``; ``"plain"`` (odd outputs): natural order, plain
  TIR loops over the same window; ``"int8"`` (for libraries whose micro-kernel multiplies int8
  by int8, :attr:`ConvKernels.int8_window`): the padded window kept int8 in natural order, weights
  ``[O, KH, KW, C]``, any channel counts. Grouped (depthwise) convolutions go to
  :mod:`.depthwise`;
* **tensor intrinsics** (:func:`conv_intrin`, :func:`columns_intrin`) whose descriptions are
  those whole reductions for one or two output positions and all output channels, written (not
  added) to the accumulators, implemented by the micro-kernel ``micro_dsp_conv_q15q7``
  (``c/dsp/convolution.c``): two positions by two output channels per pass of its inner loop,
  16 instructions per 16 MACs plus 2 per four quads, the loops over output pairs in the same
  assembly;
* **a schedule** (:func:`schedule_conv2d`): the output positions in passes; every stage of the
  kernel is computed at the output's pass loop, consumers first (the epilogue: bias,
  requantization, clamp, any element-wise work fused after it such as a residual add and the
  stages rescaling its other operand; then the reduction; then the window rows it reads, a
  buffer of ``(P - 1) * stride + KW`` rows, the per-row im2col buffer of CMSIS-NN without
  duplicating overlapping windows), so no whole-tensor int32 accumulator or padded copy remains;
  per pass the micro-kernel is called per pair of positions and writes the accumulators (no
  zeroing: see :data:`micro.codegen.OVERWRITES_ATTR`), and a TFLite requantization epilogue goes
  on ``micro_dsp_requantize_channels_q7`` for the same positions
  (:func:`.requantize.tensorize_epilogue`; other epilogues stay TIR).
  MetaSchedule searches the positions per pass and the unrolling (:data:`CONV_RULE`).

What it does not handle (those convolutions keep TVM's lowering): dilation, weights that are not
int8 constants, layouts other than NHWC/HWIO.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from importlib import resources

import numpy as np
import tvm
from tvm import relax, s_tir, te, tirx
from tvm.script import tirx as T

from ...codegen import OVERWRITES_ATTR, register_extern_source
from ...schedules import fuse_elementwise, inline_copies_and_casts
from . import depthwise, widen
from .passes import (
    compute_in_passes,
    find_annotated_block,
    iter_var,
    output_width_loop,
    register_intrinsic,
)
from .requantize import REQUANTIZE_CHANNELS_KERNEL, tensorize_epilogue
from .widen import WIDEN_KERNEL, tensorize_window

CONV_KERNEL = "micro_dsp_conv_q15q7"
#: Block annotation of the reduction stage :func:`conv2d_window_te` writes (its width stride,
#: form and the micro-kernels of :class:`ConvKernels`).
CONV_BLOCK_ATTR = "micro.conv2d_window"


@dataclass(frozen=True)
class ConvKernels:
    """The micro-kernels a convolution lowered by this module calls: this library's, or another
    library's with the same C contracts (``c/dsp/convolution.h``, ``widen.h``, ``depthwise.h``,
    ``requantize.h``), so that the lowering and the schedules serve other cores too.

    The lowering records them in the kernel's block annotation, from which the default schedule
    and the tuning rule read them.

    Attributes
    ----------
    int8_window : bool
        Dense convolutions in the ``"int8"`` form (:func:`conv2d_window_te`), whose ``conv``
        kernel has :func:`conv_int8_intrin`'s contract, instead of :func:`conv2d_form`'s.
    conv, widen, depthwise, requantize : str
        C symbols: the dense convolution (:data:`CONV_KERNEL`), the window widening
        (:data:`.widen.WIDEN_KERNEL`), the depthwise convolution
        (:data:`.depthwise.DEPTHWISE_KERNEL`) and the per-channel requantization epilogue
        (:data:`.requantize.REQUANTIZE_CHANNELS_KERNEL`).
    """

    conv: str = CONV_KERNEL
    widen: str = WIDEN_KERNEL
    depthwise: str = depthwise.DEPTHWISE_KERNEL
    requantize: str = REQUANTIZE_CHANNELS_KERNEL
    int8_window: bool = False

    def annotation(self) -> dict[str, str]:
        """The symbols as the block annotations hold them."""
        return {"kernel": self.conv, "widen": self.widen, "requantize": self.requantize}


#: This library's micro-kernels.
DSP_KERNELS = ConvKernels()
_SOURCES = resources.files("micro.kernels").joinpath("c", "dsp")


def register() -> None:
    """Declare the micro-kernels' C sources to the code generator and the convolution's
    MetaSchedule rule to TVM (idempotent)."""
    register_extern_source(
        CONV_KERNEL, _SOURCES.joinpath("convolution.c"),
        header=_SOURCES.joinpath("convolution.h"),
    )
    widen.register()
    tvm.register_global_func(f"s_tir.meta_schedule.cpu.{CONV_RULE}", _search_rule, override=True)


def conv2d_supported(data_shape, weight_shape, strides, dilation, groups: int) -> bool:
    """Whether :func:`lower_conv2d_windows` takes a dense convolution of these shapes.

    Parameters
    ----------
    data_shape : sequence of int
        NHWC input shape.
    weight_shape : sequence of int
        HWIO weight shape.
    strides, dilation : sequence of int
        ``(h, w)``.
    groups : int
        Convolution groups.

    Returns
    -------
    bool
        True for a dense convolution (one group) with dilation 1.
    """
    return (
        groups == 1 and tuple(int(d) for d in dilation) == (1, 1)
        and int(data_shape[-1]) == int(weight_shape[2]) and all(int(s) >= 1 for s in strides)
    )  # fmt: skip


#: The forms :func:`conv2d_window_te` writes (see :func:`conv2d_form`).
FORMS = ("window", "columns", "plain", "int8")


def conv2d_form(weight_shape) -> str:
    """How :func:`conv2d_window_te` lays out a convolution with these HWIO weights.

    ``"window"``: input channels a multiple of 4 and an even number of outputs, the window rows
    of a pass shared by its positions (micro-kernel); ``"columns"``: other input channel counts
    with an even number of outputs, one zero-padded column of ``KH * KW * C`` values per
    position (the im2col of CMSIS-NN; micro-kernel); ``"plain"``: an odd number of outputs,
    natural order and plain TIR loops over a window.
    """
    _, _, in_channels, out_channels = (int(v) for v in weight_shape)
    if out_channels % 2:
        return "plain"
    return "window" if in_channels % 4 == 0 else "columns"


def relayout_weights(weight: np.ndarray, form: str) -> np.ndarray:
    """HWIO int8 weights in the layout :func:`conv2d_window_te` reads for ``form``.

    ``"window"``: pairs of output channels, ``[O/2, KH, KW, C/4, 2, 4]``: element
    ``[o // 2, kh, kw, q, o % 2, e]`` is the weight of output ``o`` and input channel ``4 q + e``
    (natural order: SXTB16 pairs it with the window's reordered activations). ``"columns"``:
    ``[O/2, R/4, 2, 4]`` over the flattened ``(kh, kw, c)`` index, zero-padded to a multiple of
    4 (``R``). ``"plain"`` and ``"int8"``: ``[O, KH, KW, C]``.

    Parameters
    ----------
    weight : numpy.ndarray
        ``[KH, KW, C, O]`` int8.
    form : str
        One of :data:`FORMS`.

    Returns
    -------
    numpy.ndarray
        The re-laid-out weights, contiguous.
    """
    kh, kw, c, o = weight.shape
    if form in ("plain", "int8"):
        return np.ascontiguousarray(weight.transpose(3, 0, 1, 2))
    if form == "window":
        pairs = weight.reshape(kh, kw, c // 4, 4, o // 2, 2).transpose(4, 0, 1, 2, 5, 3)
        return np.ascontiguousarray(pairs)
    flat = weight.reshape(kh * kw * c, o)
    padded = np.zeros((-(-flat.shape[0] // 4) * 4, o), dtype=weight.dtype)
    padded[: flat.shape[0]] = flat
    quads = padded.shape[0] // 4
    return np.ascontiguousarray(padded.reshape(quads, 4, o // 2, 2).transpose(2, 0, 3, 1))


def _pair_order(e):
    """The channel SXTB16's order puts at quad element ``e``: (0, 2, 1, 3), as arithmetic."""
    return (e % 2) * 2 + e // 2


def conv2d_window_te(
    data: te.Tensor, weight: te.Tensor, strides, padding, pad_value: int, form: str,
    kernel_size, kernels: ConvKernels = DSP_KERNELS,
) -> te.Tensor:
    """The int8 convolution as a widened window (or column) stage and a reduction.

    Parameters
    ----------
    data : tvm.te.Tensor
        ``[N, H, W, C]`` int8.
    weight : tvm.te.Tensor
        int8 weights from :func:`relayout_weights` for ``form``.
    strides : sequence of int
        ``(h, w)``.
    padding : sequence of int
        ``(top, left, bottom, right)``.
    pad_value : int
        The value a padded input element has (an int8 zero point, for instance).
    form : str
        One of :data:`FORMS` (see :func:`conv2d_form`).
    kernel_size : sequence of int
        ``(KH, KW)``.
    kernels : ConvKernels
        The micro-kernels the schedule calls (recorded in the block's annotation).

    Returns
    -------
    tvm.te.Tensor
        ``[N, OH, OW, O]`` int32.
    """
    batch, height, width, channels = (int(v) for v in data.shape)
    kh, kw = (int(k) for k in kernel_size)
    out_channels = int(weight.shape[0]) * (1 if form in ("plain", "int8") else 2)
    top, left, bottom, right = (int(p) for p in padding)
    sh, sw = (int(s) for s in strides)
    rows, cols = height + top + bottom, width + left + right
    out_h, out_w = (rows - kh) // sh + 1, (cols - kw) // sw + 1
    attrs = {CONV_BLOCK_ATTR: {"stride": sw, "form": form, **kernels.annotation()}}

    def padded(b, i, j, channel, dtype="int16"):
        value = data[b, i - top, j - left, channel]
        value = value if dtype == "int8" else value.astype(dtype)
        if form != "window":
            inside = tirx.all(i >= top, i < top + height, j >= left, j < left + width)
            return tirx.if_then_else(inside, value, tirx.const(pad_value, dtype))
        # The window form tests only the padded sides: without padding its rows are a plain
        # cast, which the widening micro-kernel's intrinsic states (.widen).
        tests = [i >= top] if top else []
        tests += [i < top + height] if bottom else []
        tests += [j >= left] if left else []
        tests += [j < left + width] if right else []
        if not tests:
            return value
        return tirx.if_then_else(tirx.all(*tests), value, tirx.const(pad_value, "int16"))

    def reduce(name, extent):
        return te.reduce_axis((0, extent), name)

    if form == "columns":
        length = kh * kw * channels
        quads = -(-length // 4)

        def column(b, i, j, q, e):
            r = q * 4 + _pair_order(e)
            value = padded(b, i * sh + r // (kw * channels), j * sw + r // channels % kw,
                           r % channels)
            return tirx.if_then_else(r < length, value, tirx.const(0, "int16"))

        columns = te.compute((batch, out_h, out_w, quads, 4), column, name="columns")
        rq, re = reduce("rq", quads), reduce("re", 4)
        return te.compute(
            (batch, out_h, out_w, out_channels),
            lambda b, i, j, o: te.sum(
                columns[b, i, j, rq, re].astype("int32")
                * weight[o // 2, rq, o % 2, re].astype("int32"),
                axis=[rq, re],
            ),
            name="conv2d_nhwc_columns", attrs=attrs,
        )
    rh, rw = reduce("rh", kh), reduce("rw", kw)
    if form in ("plain", "int8"):
        dtype = "int8" if form == "int8" else "int16"
        window = te.compute((batch, rows, cols, channels),
                            lambda b, i, j, c: padded(b, i, j, c, dtype), name="window")
        rc = reduce("rc", channels)
        return te.compute(
            (batch, out_h, out_w, out_channels),
            lambda b, i, j, o: te.sum(
                window[b, i * sh + rh, j * sw + rw, rc].astype("int32")
                * weight[o, rh, rw, rc].astype("int32"),
                axis=[rh, rw, rc],
            ),
            name="conv2d_nhwc_window", attrs=attrs,
        )
    window = te.compute(
        (batch, rows, cols, channels // 4, 4),
        lambda b, i, j, q, e: padded(b, i, j, q * 4 + _pair_order(e)),
        name="window",
    )
    rq, re = reduce("rq", channels // 4), reduce("re", 4)
    return te.compute(
        (batch, out_h, out_w, out_channels),
        lambda b, i, j, o: te.sum(
            window[b, i * sh + rh, j * sw + rw, rq, re].astype("int32")
            * weight[o // 2, rh, rw, rq, o % 2, re].astype("int32"),
            axis=[rh, rw, rq, re],
        ),
        name="conv2d_nhwc_window", attrs=attrs,
    )


def conv_intrin(
    positions: int, outputs: int, kh: int, kw: int, channels: int, stride: int,
    kernel: str = CONV_KERNEL,
) -> str:
    """Register (once) the convolution intrinsic for one shape and return its name.

    Description: ``C[0, 0, p, o] = sum int32(A[0, rh, p * stride + rw, q, e]) *
    int32(B[o // 2, rh, rw, q, o % 2, e])`` over the whole kernel (``rh < kh``, ``rw < kw``,
    ``4 q + e < channels``) for ``p < positions``, ``o < outputs``: the window rows of a pass and
    the weights of ``outputs / 2`` channel pairs. The sums are written, not added: the
    description's root block does not read ``C`` and its reduction starts from 0, so it only
    matches a block whose whole reduction lies inside the tensorized loops (one not decomposed:
    it keeps its init, which :func:`micro.codegen.OVERWRITES_ATTR` on the implementation lets the
    code generator drop). Implementation: :data:`CONV_KERNEL`.

    Parameters
    ----------
    positions : int
        Output positions per call ``P``.
    outputs : int
        Output channels per call, even.
    kh, kw : int
        Kernel height and width.
    channels : int
        Input channels, a multiple of 4.
    stride : int
        Stride along the width.
    kernel : str
        The micro-kernel called (:data:`CONV_KERNEL`'s contract).

    Returns
    -------
    str
        Name for ``Schedule.tensorize``.
    """
    name = f"{kernel}_{positions}x{outputs}_k{kh}x{kw}_c{channels}_s{stride}"
    return register_intrinsic(
        name, lambda: _conv_intrin(positions, outputs, kh, kw, channels, stride, kernel)
    )


def _conv_intrin(
    positions: int, outputs: int, kh: int, kw: int, channels: int, stride: int, kernel: str
) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
    rows = (positions - 1) * stride + kw
    quads = channels // 4
    a_shape = (1, kh, rows, quads, 4)
    b_shape = (outputs // 2, kh, kw, quads, 2, 4)
    c_shape = (1, 1, positions, outputs)

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, a_shape, "int16", offset_factor=1)
        B = T.match_buffer(b, b_shape, "int8", offset_factor=1)
        C = T.match_buffer(c, c_shape, "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(A[0, 0:kh, 0:rows, 0:quads, 0:4],
                    B[0:outputs // 2, 0:kh, 0:kw, 0:quads, 0:2, 0:4])
            T.writes(C[0, 0, 0:positions, 0:outputs])
            for p, o, rh, rw, rq, re in T.grid(positions, outputs, kh, kw, quads, 4):
                with T.sblock("update"):
                    vp = T.meta_var(iter_var(T.axis.spatial, positions, p))
                    vo = T.axis.spatial(outputs, o)
                    vrh = T.meta_var(iter_var(T.axis.reduce, kh, rh))
                    vrw = T.meta_var(iter_var(T.axis.reduce, kw, rw))
                    vrq = T.meta_var(iter_var(T.axis.reduce, quads, rq))
                    vre = T.axis.reduce(4, re)
                    T.reads(C[0, 0, vp, vo], A[0, vrh, vp * stride + vrw, vrq, vre],
                            B[vo // 2, vrh, vrw, vrq, vo % 2, vre])
                    T.writes(C[0, 0, vp, vo])
                    with T.init():
                        C[0, 0, vp, vo] = 0
                    C[0, 0, vp, vo] = C[0, 0, vp, vo] + T.Cast(
                        "int32", A[0, vrh, vp * stride + vrw, vrq, vre]
                    ) * T.Cast("int32", B[vo // 2, vrh, vrw, vrq, vo % 2, vre])

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        a_kernel_row = T.int32()
        a_row = T.int32()
        c_row = T.int32()
        A = T.match_buffer(a, a_shape, "int16", offset_factor=1,
                           strides=[T.int32(), a_kernel_row, a_row, 4, 1])
        B = T.match_buffer(b, b_shape, "int8", offset_factor=1,
                           strides=[kh * kw * quads * 8, kw * quads * 8, quads * 8, 8, 4, 1])
        C = T.match_buffer(c, c_shape, "int32", offset_factor=1,
                           strides=[T.int32(), T.int32(), c_row, 1])
        with T.sblock("root"):
            T.reads(A[0, 0:kh, 0:rows, 0:quads, 0:4],
                    B[0:outputs // 2, 0:kh, 0:kw, 0:quads, 0:2, 0:4])
            T.writes(C[0, 0, 0:positions, 0:outputs])
            T.sblock_attr({OVERWRITES_ATTR: True})
            T.evaluate(T.call_extern(
                "int32", kernel, A.access_ptr("r"), B.access_ptr("r"), C.access_ptr("w"),
                kw * quads, kh, T.Cast("int32", a_kernel_row), positions,
                T.Cast("int32", a_row * stride), outputs // 2, T.Cast("int32", c_row)))

    return desc, impl


def conv_int8_intrin(
    positions: int, outputs: int, kh: int, kw: int, channels: int, stride: int, kernel: str
) -> str:
    """Register (once) the int8-window convolution intrinsic for one shape; return its name.

    Description: ``C[0, 0, p, o] = sum int32(A[0, rh, p * stride + rw, c]) *
    int32(B[o, rh, rw, c])`` over the whole kernel for ``p < positions``, ``o < outputs``: the
    int8 window rows of a pass (a kernel row's ``KW * C`` values of a position contiguous) and
    the natural-order weights; written, not added, as for :func:`conv_intrin`. Implementation:
    ``kernel`` (a library's, e.g. ``micro_mve_conv_q7``), called as ``kernel(A, B, C, KW * C,
    KH, A's kernel-row stride, positions, C * stride, outputs, C's row stride)``.

    Parameters
    ----------
    positions, outputs : int
        Output positions and channels per call.
    kh, kw, channels, stride : int
        Kernel height and width, input channels, stride along the width.
    kernel : str
        The micro-kernel called.

    Returns
    -------
    str
        Name for ``Schedule.tensorize``.
    """
    name = f"{kernel}_{positions}x{outputs}_k{kh}x{kw}_c{channels}_s{stride}"
    return register_intrinsic(
        name, lambda: _conv_int8_intrin(positions, outputs, kh, kw, channels, stride, kernel))


def _conv_int8_intrin(
    positions: int, outputs: int, kh: int, kw: int, channels: int, stride: int, kernel: str
) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
    rows = (positions - 1) * stride + kw
    a_shape = (1, kh, rows, channels)
    b_shape = (outputs, kh, kw, channels)
    c_shape = (1, 1, positions, outputs)

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, a_shape, "int8", offset_factor=1)
        B = T.match_buffer(b, b_shape, "int8", offset_factor=1)
        C = T.match_buffer(c, c_shape, "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(A[0, 0:kh, 0:rows, 0:channels], B[0:outputs, 0:kh, 0:kw, 0:channels])
            T.writes(C[0, 0, 0:positions, 0:outputs])
            for p, o, rh, rw, rc in T.grid(positions, outputs, kh, kw, channels):
                with T.sblock("update"):
                    vp = T.meta_var(iter_var(T.axis.spatial, positions, p))
                    vo = T.meta_var(iter_var(T.axis.spatial, outputs, o))
                    vrh = T.meta_var(iter_var(T.axis.reduce, kh, rh))
                    vrw = T.meta_var(iter_var(T.axis.reduce, kw, rw))
                    vrc = T.meta_var(iter_var(T.axis.reduce, channels, rc))
                    T.reads(C[0, 0, vp, vo], A[0, vrh, vp * stride + vrw, vrc],
                            B[vo, vrh, vrw, vrc])
                    T.writes(C[0, 0, vp, vo])
                    with T.init():
                        C[0, 0, vp, vo] = 0
                    C[0, 0, vp, vo] = C[0, 0, vp, vo] + T.Cast(
                        "int32", A[0, vrh, vp * stride + vrw, vrc]
                    ) * T.Cast("int32", B[vo, vrh, vrw, vrc])

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        a_kernel_row = T.int32()
        c_row = T.int32()
        A = T.match_buffer(a, a_shape, "int8", offset_factor=1,
                           strides=[T.int32(), a_kernel_row, channels, 1])
        B = T.match_buffer(b, b_shape, "int8", offset_factor=1,
                           strides=[kh * kw * channels, kw * channels, channels, 1])
        C = T.match_buffer(c, c_shape, "int32", offset_factor=1,
                           strides=[T.int32(), T.int32(), c_row, 1])
        with T.sblock("root"):
            T.reads(A[0, 0:kh, 0:rows, 0:channels], B[0:outputs, 0:kh, 0:kw, 0:channels])
            T.writes(C[0, 0, 0:positions, 0:outputs])
            T.sblock_attr({OVERWRITES_ATTR: True})
            T.evaluate(T.call_extern(
                "int32", kernel, A.access_ptr("r"), B.access_ptr("r"), C.access_ptr("w"),
                kw * channels, kh, T.Cast("int32", a_kernel_row), positions, channels * stride,
                outputs, T.Cast("int32", c_row)))

    return desc, impl


def columns_intrin(positions: int, outputs: int, quads: int, kernel: str = CONV_KERNEL) -> str:
    """Register (once) the column-form convolution intrinsic for one shape; return its name.

    Description: ``C[0, 0, p, o] = sum int32(A[0, 0, p, q, e]) * int32(B[o // 2, q, o % 2, e])``
    over ``quads`` quads for ``p < positions``, ``o < outputs``: one zero-padded column per
    position and the weights of ``outputs / 2`` channel pairs; written, not added, as for
    :func:`conv_intrin`. Implementation: :data:`CONV_KERNEL` with one kernel row, the columns
    being windows that do not overlap.

    Parameters
    ----------
    positions : int
        Output positions per call.
    outputs : int
        Output channels per call, even.
    quads : int
        Quads of a column.
    kernel : str
        The micro-kernel called (:data:`CONV_KERNEL`'s contract).

    Returns
    -------
    str
        Name for ``Schedule.tensorize``.
    """
    name = f"{kernel}_columns_{positions}x{outputs}_q{quads}"
    return register_intrinsic(name, lambda: _columns_intrin(positions, outputs, quads, kernel))


def _columns_intrin(
    positions: int, outputs: int, quads: int, kernel: str
) -> tuple[tirx.PrimFunc, tirx.PrimFunc]:
    a_shape = (1, 1, positions, quads, 4)
    b_shape = (outputs // 2, quads, 2, 4)
    c_shape = (1, 1, positions, outputs)

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, a_shape, "int16", offset_factor=1)
        B = T.match_buffer(b, b_shape, "int8", offset_factor=1)
        C = T.match_buffer(c, c_shape, "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(A[0, 0, 0:positions, 0:quads, 0:4], B[0:outputs // 2, 0:quads, 0:2, 0:4])
            T.writes(C[0, 0, 0:positions, 0:outputs])
            for p, o, rq, re in T.grid(positions, outputs, quads, 4):
                with T.sblock("update"):
                    vp = T.meta_var(iter_var(T.axis.spatial, positions, p))
                    vo = T.axis.spatial(outputs, o)
                    vrq = T.meta_var(iter_var(T.axis.reduce, quads, rq))
                    vre = T.axis.reduce(4, re)
                    T.reads(C[0, 0, vp, vo], A[0, 0, vp, vrq, vre], B[vo // 2, vrq, vo % 2, vre])
                    T.writes(C[0, 0, vp, vo])
                    with T.init():
                        C[0, 0, vp, vo] = 0
                    C[0, 0, vp, vo] = C[0, 0, vp, vo] + T.Cast(
                        "int32", A[0, 0, vp, vrq, vre]
                    ) * T.Cast("int32", B[vo // 2, vrq, vo % 2, vre])

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        a_row = T.int32()
        c_row = T.int32()
        A = T.match_buffer(a, a_shape, "int16", offset_factor=1,
                           strides=[T.int32(), T.int32(), a_row, 4, 1])
        B = T.match_buffer(b, b_shape, "int8", offset_factor=1, strides=[quads * 8, 8, 4, 1])
        C = T.match_buffer(c, c_shape, "int32", offset_factor=1,
                           strides=[T.int32(), T.int32(), c_row, 1])
        with T.sblock("root"):
            T.reads(A[0, 0, 0:positions, 0:quads, 0:4], B[0:outputs // 2, 0:quads, 0:2, 0:4])
            T.writes(C[0, 0, 0:positions, 0:outputs])
            T.sblock_attr({OVERWRITES_ATTR: True})
            T.evaluate(T.call_extern(
                "int32", kernel, A.access_ptr("r"), B.access_ptr("r"), C.access_ptr("w"),
                quads, 1, 0, positions, T.Cast("int32", a_row), outputs // 2,
                T.Cast("int32", c_row)))

    return desc, impl


#: Output positions per pass of the default schedule at least: measured on the paper-size
#: ResNet (docs/dsp.md), larger passes fill fewer overlapping window rows but hold more
#: accumulators.
DEFAULT_POSITIONS = 2
#: The most bytes the default schedule gives a pass's buffers (its int32 accumulators and its
#: widened window): passes grow from :data:`DEFAULT_POSITIONS` while they fit. A pass's buffers
#: come from the workspace pool, as large as the largest kernel's, so wide layers (the paper
#: ResNet's 128 and 144 channels) keep passes of 2 positions and the model's RAM, and narrow ones
#: (a small CNN's 1x1 convolution of 16 to 32 channels) get longer passes: fewer calls, each
#: covering more positions.
MAX_PASS_BYTES = 2048
#: Largest pass the tuning rule samples (its accumulators are ``positions x O`` int32).
MAX_SEARCHED_POSITIONS = 28
#: MetaSchedule rule of the convolution block (``schedule_rule`` annotation, target key cpu).
CONV_RULE = "micro_dsp_conv2d"


def _per_call(out_w: int) -> int:
    """Positions per micro-kernel call: a pair where the width allows, else one."""
    return 2 if out_w % 2 == 0 else 1


def _pass_choices(out_w: int, limit: int) -> list[int]:
    """Positions per pass: multiples of the call's positions that divide the output width, up
    to ``limit`` (at least one call)."""
    per_call = _per_call(out_w)
    return [p for p in range(per_call, out_w + 1, per_call)
            if out_w % p == 0 and p <= max(limit, per_call)]


def _pass_bytes(positions: int, form: str, extents: list[int], stride: int) -> int:
    """Bytes of a pass's accumulators and window (or columns) for ``positions`` positions."""
    out_c = extents[3]
    if form == "columns":
        window = positions * extents[4] * 4 * 2
    else:  # kernel rows x window rows x channels, int16 (int8 for the "int8" form)
        kh, kw = extents[4], extents[5]
        channels = extents[6] * (4 if form == "window" else 1)
        window = kh * ((positions - 1) * stride + kw) * channels * (1 if form == "int8" else 2)
    return positions * out_c * 4 + window


def _default_pass(choices: list[int], form: str, extents: list[int], stride: int) -> int:
    """The largest pass whose buffers fit in :data:`MAX_PASS_BYTES`, at least the smallest
    of :data:`DEFAULT_POSITIONS` or more."""
    floor = [p for p in choices if p <= DEFAULT_POSITIONS][-1:] or choices[:1]
    fits = [p for p in choices if _pass_bytes(p, form, extents, stride) <= MAX_PASS_BYTES]
    return max(floor + fits)


def find_conv_block(sch: s_tir.Schedule) -> s_tir.SBlockRV | None:
    """The reduction block :func:`conv2d_window_te` made, if the kernel has one."""
    return find_annotated_block(sch, CONV_BLOCK_ATTR)


def schedule_conv2d(
    sch: s_tir.Schedule, positions: int | None = None, *, sample: bool = False
) -> bool:
    """Tensorize a windowed convolution kernel with its whole epilogue computed per pass.

    The kernel's output positions are split into passes; every stage is computed at the pass
    loop for the pass's positions (``compute_at``, consumers first: the epilogue, stages that
    rescale another operand of a fused residual add, the reduction, then the window rows it
    reads), so no stage keeps a whole tensor. In a pass the micro-kernel is called on each pair
    of positions (one position where the width is odd) and writes their accumulators; the
    epilogue, when it is TFLite's per-channel requantization, goes on its micro-kernel for the
    same positions per call (:func:`.requantize.tensorize_epilogue`; otherwise it stays TIR).

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of one kernel (a fused ``conv2d_nhwc_window`` or ``conv2d_nhwc_columns`` and
        its element-wise consumers), changed in place.
    positions : int, optional
        Output positions per pass (the largest pass up to it that divides the output width);
        by default the largest whose buffers fit in :data:`MAX_PASS_BYTES`, at least
        :data:`DEFAULT_POSITIONS`. Without ``sample`` the micro-kernels are called once per
        pass (the convolution's assembly loops over its pairs of positions); with it, per pair.
    sample : bool
        Sample the positions per pass instead (``Schedule.sample_categorical`` over the passes
        up to :data:`MAX_SEARCHED_POSITIONS`): the knob MetaSchedule searches.

    Returns
    -------
    bool
        False, with ``sch`` unchanged, when the kernel has no windowed convolution or its
        output is not written by an NHWC loop nest.
    """
    conv = find_conv_block(sch)
    if conv is None:
        return False
    block = sch.get(conv)
    extents = [int(iv.dom.extent) for iv in block.iter_vars]
    attrs = block.annotations[CONV_BLOCK_ATTR]
    out_w, form = extents[2], str(attrs["form"])
    width = output_width_loop(sch, conv)
    if width is None:
        return False
    stride = int(attrs["stride"])
    if sample:
        choices = _pass_choices(out_w, MAX_SEARCHED_POSITIONS)
        pass_size = sch.sample_categorical(choices, [1.0 / len(choices)] * len(choices))
    elif positions is None:
        pass_size = _default_pass(_pass_choices(out_w, out_w), form, extents, stride)
    else:
        pass_size = _pass_choices(out_w, positions)[-1]
    pass_loop = compute_in_passes(sch, conv, width, pass_size)
    per_pass = int(sch.get(pass_size)) if sample else pass_size
    # A tuning rule's intrinsics cannot depend on the sampled pass: they cover one call.
    per_call = _per_call(out_w) if sample else per_pass
    if form == "window":
        kh, kw, quads = extents[4:7]
        tensorize_window(sch, sch.get_producers(conv)[0], pass_loop, kh,
                         (per_pass - 1) * stride + kw, quads * 4, per_pass * stride,
                         str(attrs.get("widen", WIDEN_KERNEL)))
    _tensorize_pass(sch, conv, form, [per_pass, *extents[3:]], per_call)
    tensorize_epilogue(sch, per_call, str(attrs.get("requantize", REQUANTIZE_CHANNELS_KERNEL)))
    return True


def _tensorize_pass(
    sch: s_tir.Schedule, conv: s_tir.SBlockRV, form: str, extents: list[int], per_call: int
) -> None:
    """Shape one pass's reduction for the intrinsic (positions per call outermost of the call's
    loops) and tensorize; the plain form only gets its accumulators zeroed apart.

    ``compute_at`` made a loop for each iteration variable of the pass longer than 1, in the
    block's order (positions, outputs, then the reduction); the description has a loop for
    each, so the missing ones are added as unit loops. The reduction is not decomposed: the
    intrinsic covers all of it and writes its sums, so the block keeps an init that the code
    generator drops (:data:`micro.codegen.OVERWRITES_ATTR`) and no zeroing remains.
    """
    axes = {"window": ["j", "o", "rh", "rw", "rq", "re"], "columns": ["j", "o", "rq", "re"],
            "plain": ["j", "o", "rh", "rw", "rc"], "int8": ["j", "o", "rh", "rw", "rc"]}[form]
    present = iter(sch.get_loops(conv)[3:])  # below batch, rows and the pass loop
    loops = {axis: next(present) if extent > 1 else None
             for axis, extent in zip(axes, extents, strict=True)}
    region = [] if form == "plain" else axes[1:]  # the intrinsic's loops after the positions
    if region and loops[region[-1]] is None:  # one input channel (int8): a unit loop innermost
        loops[region[-1]] = sch.add_unit_loop(conv)
    for index in reversed(range(len(region) - 1)):
        if loops[region[index]] is None:
            loops[region[index]] = sch.add_unit_loop(loops[region[index + 1]])
    if loops["j"] is None:
        first = next((loop for loop in loops.values() if loop is not None), None)
        loops["j"] = sch.add_unit_loop(conv if first is None else first)
    calls, inner = sch.split(loops["j"], [None, per_call])
    intrin = _intrin_for(sch.get(conv), per_call)
    if intrin is None:
        sch.decompose_reduction(conv, calls)
    else:
        sch.tensorize(inner, intrin)


def annotate_for_tuning(func: tirx.PrimFunc) -> tirx.PrimFunc | None:
    """Hand a windowed convolution kernel to :data:`CONV_RULE` alone in a MetaSchedule search.

    The convolution block gets ``schedule_rule = CONV_RULE``; the window and the epilogue,
    which that rule places, and the root block get ``"None"``, so that MetaSchedule's generic
    rules leave them (a parallel or vectorized outer loop would split the passes' nest).

    Parameters
    ----------
    func : tvm.tirx.PrimFunc
        A lowered kernel.

    Returns
    -------
    tvm.tirx.PrimFunc or None
        The annotated kernel; None when it has no windowed convolution.
    """
    sch = s_tir.Schedule(func)
    conv = find_conv_block(sch)
    if conv is None:
        return None
    # The intrinsics a database's records name must be registered when it is loaded (in another
    # process, say): the default schedule of a throwaway copy registers them.
    schedule_conv2d(s_tir.Schedule(func))
    root = sch.get_sblock("root")
    for block_rv in [root, *sch.get_child_blocks(root)]:
        rule = CONV_RULE if sch.get(block_rv).same_as(sch.get(conv)) else "None"
        sch.annotate(block_rv, "schedule_rule", rule)
    return sch.mod["main"]


def _intrin_for(block: tirx.SBlock, per_call: int) -> str | None:
    """The intrinsic a windowed convolution block is tensorized with for ``per_call``
    positions per call (registered), or None for the plain form."""
    attrs = block.annotations[CONV_BLOCK_ATTR]
    extents = [int(iv.dom.extent) for iv in block.iter_vars]
    out_c = extents[3]
    kernel = str(attrs.get("kernel", CONV_KERNEL))
    if attrs["form"] == "int8":
        return conv_int8_intrin(per_call, out_c, extents[4], extents[5], extents[6],
                                int(attrs["stride"]), kernel)
    if attrs["form"] == "columns":
        return columns_intrin(per_call, out_c, extents[4], kernel)
    if attrs["form"] == "window":
        return conv_intrin(per_call, out_c, extents[4], extents[5], extents[6] * 4,
                           int(attrs["stride"]), kernel)
    return None


def schedule_conv2d_kernel(sch: s_tir.Schedule, **options) -> bool:
    """:func:`schedule_conv2d`, then the epilogue's element-wise stages fused per element
    (:func:`micro.schedules.fuse_elementwise`): the whole default schedule of such a kernel."""
    if not schedule_conv2d(sch, **options):
        return False
    inline_copies_and_casts(sch)
    fuse_elementwise(sch)
    return True


#: Explicit unrolling limits the tuning rule samples for the window and epilogue loops.
UNROLL_CHOICES = (0, 16, 64, 512)


def _search_rule(sch: s_tir.Schedule, _block_rv: s_tir.SBlockRV) -> list[s_tir.Schedule]:
    """:data:`CONV_RULE`: the default schedule with the positions per pass sampled, and the
    unrolling of the plain loops (the window's widening, the epilogue) as a second knob."""
    schedule_conv2d_kernel(sch, sample=True)
    unroll = sch.sample_categorical(list(UNROLL_CHOICES), [1 / len(UNROLL_CHOICES)] * 4)
    sch.annotate(sch.get_sblock("root"), "meta_schedule.unroll_explicit", unroll)
    return [sch]


def _const_value(expr: relax.Expr, bindings: dict) -> np.ndarray | None:
    while isinstance(expr, relax.Var) and expr in bindings:
        expr = bindings[expr]
    if isinstance(expr, tvm.ir.expr.GenericConst):
        return expr.value.numpy()
    return None


@relax.expr_functor.mutator
class _Conv2DWindowLowerer(relax.PyExprMutator):
    """Rebinds each int8 ``conv2d`` the DSP library takes to its windowed TE kernel."""

    def __init__(self, mod: tvm.IRModule, kernels: ConvKernels) -> None:
        super().__init__(mod)
        self.mod = mod
        self.kernels = kernels
        self.bindings: dict = {}

    def transform(self) -> tvm.IRModule:
        for gvar, func in self.mod.functions_items():
            if isinstance(func, relax.Function):
                self.bindings = relax.analysis.get_var2val(func)
                self.builder_.update_func(gvar, self.visit_expr(func))
        return self.builder_.get()

    def visit_call_(self, call: relax.Call) -> relax.Expr:
        lowered = None
        if getattr(call.op, "name", "") == "relax.nn.conv2d":
            lowered = self._windowed(call)
        return super().visit_call_(call) if lowered is None else lowered

    def _windowed(self, call: relax.Call) -> relax.Expr | None:
        attrs = call.attrs
        data, weight = call.args
        kernel_layout = "HWOI" if int(attrs.groups) > 1 else "HWIO"  # grouped: depthwise
        if (attrs.data_layout, attrs.kernel_layout, attrs.out_layout) != ("NHWC", kernel_layout,
                                                                          "NHWC"):
            return None
        if str(call.ty.dtype) != "int32" or str(data.ty.dtype) != "int8":
            return None
        weights = _const_value(weight, self.bindings)
        if weights is None or weights.dtype != np.int8:
            return None
        padding = [int(p) for p in attrs.padding]
        pad_value = 0
        source = self.bindings.get(data) if isinstance(data, relax.Var) else None
        if getattr(getattr(source, "op", None), "name", "") == "relax.nn.pad":
            widths = [int(w) for w in source.attrs.pad_width]
            spatial = widths[2:6]  # NHWC: (before, after) of H, then of W
            if (source.attrs.pad_mode == "constant" and not any(widths[:2] + widths[6:])
                    and not any(padding)):
                value = float(source.attrs.pad_value)
                if value == int(value) and -128 <= value <= 127:
                    data, pad_value = source.args[0], int(value)
                    padding = [spatial[0], spatial[2], spatial[1], spatial[3]]
        shape = [int(s) for s in data.ty.shape]
        if int(attrs.groups) > 1:
            if not depthwise.depthwise_supported(shape, weights.shape, attrs.strides,
                                                 attrs.dilation, int(attrs.groups)):
                return None
            return self.builder_.call_te(
                depthwise.depthwise_te, self.visit_expr(data),
                relax.const(depthwise.relayout_weights(weights)),
                [int(s) for s in attrs.strides], padding, pad_value, weights.shape[:2],
                self.kernels.depthwise, self.kernels.requantize,
                primfunc_name_hint="depthwise_conv2d",
            )
        if not conv2d_supported(shape, weights.shape, attrs.strides, attrs.dilation,
                                            int(attrs.groups)):
            return None
        if shape[-1] == 1 and weights.shape[3] > 1 and not self.kernels.int8_window:
            # One input channel: the depthwise kernel with one window row for every output.
            return self.builder_.call_te(
                depthwise.depthwise_te, self.visit_expr(data),
                relax.const(depthwise.relayout_weights(weights.transpose(0, 1, 3, 2))),
                [int(s) for s in attrs.strides], padding, pad_value, weights.shape[:2],
                self.kernels.depthwise, self.kernels.requantize,
                primfunc_name_hint="conv2d_one_channel",
            )
        form = "int8" if self.kernels.int8_window else conv2d_form(weights.shape)
        return self.builder_.call_te(
            partial(conv2d_window_te, kernels=self.kernels), self.visit_expr(data),
            relax.const(relayout_weights(weights, form)),
            [int(s) for s in attrs.strides], padding, pad_value, form, weights.shape[:2],
            primfunc_name_hint=f"conv2d_{form}",
        )


def lower_conv2d_windows(
    mod: tvm.IRModule, kernels: ConvKernels = DSP_KERNELS
) -> tvm.IRModule:
    """Rewrite int8 ``conv2d`` (with a constant ``pad`` before it folded in) to windowed kernels.

    The convolutions :func:`conv2d_supported` takes become :func:`conv2d_window_te` kernels
    (grouped ones :func:`.depthwise.depthwise_te` kernels) with re-laid-out weight constants; a
    ``pad`` whose only job was to feed one of them is left unused (dead code elimination removes
    it). Run before ``LegalizeOps``.

    Parameters
    ----------
    mod : tvm.IRModule
        Relax module.
    kernels : ConvKernels
        The micro-kernels the kernels call (this library's, or another's with their contracts),
        recorded in each kernel for the schedule.

    Returns
    -------
    tvm.IRModule
        The rewritten module.
    """
    rewritten = _Conv2DWindowLowerer(mod, kernels).transform()
    return relax.transform.DeadCodeElimination()(rewritten)
