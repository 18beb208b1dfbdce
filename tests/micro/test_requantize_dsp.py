"""The requantization micro-kernel of int8 convolution epilogues (micro_dsp_requantize_channels_q7):
its arithmetic against TVM's host build of micro.fixed_point_tir, its C contract in firmware on
every path, and convolution graphs with TFLite's epilogue built for a Cortex-M4 and compared bit
for bit with TVM's host build of the same Relax module."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import tvm
from tvm import relax, te
from tvm.script import tirx as T

import micro
from micro import fixed_point_tir
from micro.kernels import dsp
from micro.kernels.dsp.requantize import REQUANTIZE_CHANNELS_KERNEL, composed_clamp
from relay_passes.fixed_point import te_multiply_by_quantized_multiplier, te_requantize

from .graphs import build_and_compare, host_reference, random_inputs, requires_toolchain

BOARD = "mps2-an386"
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _host_requantize(acc, bias, mult, shift, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """``micro.fixed_point_tir.requantize(acc + bias, mult, shift)`` element by element, built
    by TVM for the host (the reference every firmware result is compared with)."""
    n = len(acc)
    tensors = [te.placeholder((n,), dtype, name=name) for name, dtype in
               (("acc", "int32"), ("bias", "int32"), ("mult", "int32"), ("shift", "int8"))]
    a, b, m, s = tensors
    out = te.compute((n,), lambda i: fixed_point_tir.requantize(
        a[i] + b[i], m[i], s[i], zero_point, qmin, qmax), name="out")
    lib = tvm.compile(tvm.IRModule({"main": te.create_prim_func([*tensors, out])}),
                      target="llvm")
    args = [tvm.runtime.tensor(np.ascontiguousarray(v, dtype=dtype)) for v, dtype in
            ((acc, np.int32), (bias, np.int32), (mult, np.int32), (shift, np.int8))]
    result = tvm.runtime.tensor(np.zeros(n, np.int8))
    lib["main"](*args, result)
    return result.numpy()


def _accumulators(rng: np.random.Generator, n: int) -> np.ndarray:
    """int32 values of every magnitude (log-uniform), both signs, and the int32 edges."""
    magnitude = np.exp2(rng.uniform(0, 31, n)).astype(np.int64)
    values = np.where(rng.random(n) < 0.5, -magnitude, magnitude)
    edges = [INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1, 2**30, -(2**30), 0, -1, 1]
    values[: min(n, len(edges))] = edges[:n]
    return np.clip(values, INT32_MIN, INT32_MAX).astype(np.int32)


def _kernel_model(x: np.ndarray, mult: np.ndarray, shift: np.ndarray, zero_point: int,
                  qmin: int, qmax: int) -> np.ndarray:
    """The assembly's arithmetic (requantize.c) in numpy, for the channels it takes:
    ``hi(x * mult + (khi : 2^30) - [x < 0] 2^31) >> (e - 1)``, with the zero point in
    ``khi = (2 zp + 1) << (e - 2)`` for e <= 24, else ``khi = 1 << (e - 2)`` and the zero point
    added after the shift; then saturated to int8 and clamped."""
    x, mult = x.astype(np.int64), mult.astype(np.int64)
    e = -shift.astype(np.int64)
    assert np.all((e >= 2) & (e <= 31) & (mult >= 0))
    folded = e <= 24
    khi = np.where(folded, 2 * zero_point + 1, 1) << (e - 2)
    y = x * mult + (khi << 32) + 2**30 - (x < 0) * 2**31
    hi = y >> 32
    assert np.all((hi >= INT32_MIN) & (hi <= INT32_MAX))  # SMLAL's 64-bit sum, no overflow
    scaled = (hi >> (e - 1)) + np.where(folded, 0, zero_point)
    return np.clip(np.clip(scaled, -128, 127), qmin, qmax).astype(np.int8)


@pytest.mark.parametrize(("zero_point", "qmin", "qmax"),
                         [(-128, -128, 127), (127, -128, 127), (-5, -5, 127), (3, -60, 70)])
def test_the_assembly_arithmetic_equals_tvm_host_build_of_the_description(zero_point, qmin, qmax):
    """The 64-bit form of the double rounding (the nudge and the zero point added to the
    product, the sign of x for the sign of high) against TVM's own build of
    micro.fixed_point_tir, on 400,000 values per clamp: every shift the assembly takes,
    multipliers up to 2**31 - 1, sums of accumulator and bias up to the int32 limits, rounding
    ties."""
    rng = np.random.default_rng(11)
    n = 400_000
    x = _accumulators(rng, n).astype(np.int64)
    bias = np.where(rng.random(n) < 0.3, rng.integers(INT32_MIN, INT32_MAX, n), 0)
    bias = np.where((x - bias >= INT32_MIN) & (x - bias <= INT32_MAX), bias, 0)
    acc = (x - bias).astype(np.int32)  # the sum never wraps: TVM's host build assumes it
    mult = rng.integers(0, 2**31, n)
    mult[rng.random(n) < 0.1] = INT32_MAX
    mult[rng.random(n) < 0.05] = 2**30  # high = x / 2 exactly: rounding ties below
    mult[rng.random(n) < 0.01] = 0
    shift = -rng.integers(2, 32, n)
    ties = slice(n - 50_000, n)  # x * 2**30 makes high = ceil(x / 2); ties at odd multiples
    e = -shift[ties]
    k = rng.integers(-(2**20), 2**20, 50_000)
    acc[ties] = (2 * (k * 2**e + 2 ** (e - 1)) + rng.integers(-2, 3, 50_000)).clip(
        INT32_MIN, INT32_MAX)
    bias[ties], mult[ties] = 0, 2**30
    x = acc.astype(np.int64) + bias
    expected = _host_requantize(acc, bias, mult, shift, zero_point, qmin, qmax)
    np.testing.assert_array_equal(_kernel_model(x, mult, shift, zero_point, qmin, qmax),
                                  expected)
    assert len(np.unique(expected)) > 100 or qmax - qmin < 150  # not all saturated


def test_an_int8_clip_after_the_requantization_is_one_clamp():
    values = np.arange(-300, 300)
    for qmin, qmax, clip in [(-128, 127, (-128, 127)), (-20, 127, (0, 50)), (-20, 10, (30, 60)),
                             (40, 60, (-128, 0)), (5, 5, None), (10, 3, (0, 7))]:
        inner = np.maximum(np.minimum(values, qmax), qmin)
        outer = inner if clip is None else np.maximum(np.minimum(inner, clip[1]), clip[0])
        low, high = composed_clamp(qmin, qmax, clip)
        np.testing.assert_array_equal(np.maximum(np.minimum(values, high), low), outer)


#: Per channel: shifts of every path (0, 1 and -25 and below in C, -2 to -24 in assembly),
#: and multipliers at the ends of the range (a negative one in C).
_SHIFTS = [0, -1, -2, -3, -7, -12, -23, -24, -25, -31, -5, -9, -16]
_MULTIPLIERS = [2**30, 1518500250, 0, 1, -5, 1073741823, 2**31 - 2, 1600000000]
#: (positions, channels, acc_step, out_step, zero_point, qmin, qmax): pairs of positions and a last
#: one, a single position, steps wider than the channels, every clamp (none, a lower bound as a
#: ReLU, an upper bound, both, one value), zero points at both ends with every shift, unequal
#: steps (C).
_CASES = [
    (2, 26, 26, 26, -128, -128, 127),
    (3, 26, 26, 26, 127, -128, 127),
    (1, 7, 7, 7, 5, -128, 127),
    (5, 4, 6, 6, -3, -3, 127),
    (4, 9, 9, 9, -128, -128, 100),
    (2, 6, 6, 6, 0, -100, 50),
    (3, 3, 3, 3, -128, 20, 20),
    (2, 5, 5, 7, 10, -128, 127),
    (6, 13, 13, 13, -20, -128, 127),
]
_SENTINEL = 0x5A


def _case_sizes(case) -> tuple[int, int]:
    positions, channels, acc_step, out_step, *_ = case
    return (positions - 1) * acc_step + channels, (positions - 1) * out_step + channels


def _call_kernel(case, offset: int, total: int) -> tvm.tirx.PrimFunc:
    """A kernel that fills its output with the sentinel, then calls the micro-kernel once."""
    positions, channels, acc_step, out_step, zero_point, qmin, qmax = case
    _, outputs = _case_sizes(case)

    @T.prim_func(private=True)
    def kernel(acc: T.Buffer((total,), "int32"), bias: T.Buffer((channels,), "int32"),
               mult: T.Buffer((channels,), "int32"), shift: T.Buffer((channels,), "int8"),
               out: T.Buffer((outputs,), "int8")):
        T.func_attr({"op_pattern": 8})
        for i in range(outputs):
            out[i] = T.int8(_SENTINEL)
        T.evaluate(T.call_extern(
            "int32", REQUANTIZE_CHANNELS_KERNEL, acc.access_ptr("r", offset=offset),
            bias.access_ptr("r"), mult.access_ptr("r"), shift.access_ptr("r"),
            out.access_ptr("w"), positions, channels, acc_step, out_step, zero_point, qmin,
            qmax))

    return kernel


def _case_parameters(rng, channels: int, index: int):
    """Bias, multiplier, shift per channel: every shift, first with the largest multiplier, then
    with the others; biases of every size."""
    c = np.arange(channels) + index
    shift = np.array(_SHIFTS, np.int8)[c % len(_SHIFTS)]
    others = np.array(_MULTIPLIERS, np.int32)[c % len(_MULTIPLIERS)]
    mult = np.where((c // len(_SHIFTS)) % 2 == 0, INT32_MAX, others).astype(np.int32)
    bias = rng.integers(-3000, 3000, channels).astype(np.int32)
    bias[::3] = rng.integers(INT32_MIN, INT32_MAX, len(bias[::3]))
    return bias, mult, shift


def _wrap(values: np.ndarray) -> np.ndarray:
    return ((values.astype(np.int64) + 2**31) % 2**32 - 2**31).astype(np.int32)


def _case_inputs(rng, case, bias, mult, shift) -> np.ndarray:
    """Rows of accumulators for one case: random of every size; sums (with the bias, wrapping)
    at and one or two away from the rounding ties of outputs in the int8 range; sums at each
    int32 limit (where the assembly's 64-bit sum comes closest to overflowing)."""
    positions, channels, acc_step, *_ = case
    size = _case_sizes(case)[0]
    rows = [_accumulators(rng, size)]
    e = -shift.astype(np.int64)
    m = np.maximum(mult.astype(np.int64), 1)
    for _ in range(2):  # x * m / 2**(31 + e) at a half, near outputs -140 .. 140
        target = rng.integers(-140, 141, size) + 0.5
        channel = np.arange(size) % acc_step % channels
        x = np.floor(target * 2.0 ** (31 + e[channel]) / m[channel]) + rng.integers(-2, 3, size)
        rows.append(_wrap(np.clip(x, INT32_MIN, INT32_MAX).astype(np.int64)
                          - bias[channel]))
    for limit in (INT32_MAX, INT32_MIN):
        rows.append(_wrap(limit - bias[np.arange(size) % acc_step % channels].astype(np.int64)))
    return np.stack(rows)


def _case_reference(case, acc, bias, mult, shift) -> np.ndarray:
    """The host build on the sums wrapped to int32 (the contract; the host build of ``acc + bias``
    itself assumes that it does not overflow), the sentinel elsewhere."""
    positions, channels, acc_step, out_step, zero_point, qmin, qmax = case
    out = np.full(_case_sizes(case)[1], _SENTINEL, np.int8)
    p, c = np.meshgrid(np.arange(positions), np.arange(channels), indexing="ij")
    wrapped = _wrap(acc[(p * acc_step + c).ravel()].astype(np.int64) + bias[c.ravel()])
    values = _host_requantize(wrapped, np.zeros_like(wrapped), mult[c.ravel()], shift[c.ravel()],
                              zero_point, qmin, qmax)
    out[(p * out_step + c).ravel()] = values
    return out


def check_epilogue_kernel(out_dir, board: str, cases, rng, parameters, kernel, constants) -> None:
    """Build one firmware calling an epilogue micro-kernel once per case (``kernel(case, offset,
    total)``, a kernel filling its output with the sentinel first) on rows of accumulators
    (:func:`_case_inputs`) and compare every output with :func:`_case_reference`.

    ``parameters(rng, channels, index)`` gives a case's bias, multiplier and shift,
    ``constants(case, bias, mult, shift)`` the constants its kernel takes after the input.
    """
    sizes = [_case_sizes(case)[0] for case in cases]
    total = sum(sizes)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((total,), "int32"))
    per_case, rows, offset = [], [], 0
    with bb.function("main", [x]):
        with bb.dataflow():
            outputs = []
            for index, (case, size) in enumerate(zip(cases, sizes, strict=True)):
                bias, mult, shift = parameters(rng, case[1], index)
                per_case.append((offset, bias, mult, shift))
                rows.append(_case_inputs(rng, case, bias, mult, shift))
                gvar = bb.add_func(kernel(case, offset, total), f"epilogue_case{index}")
                outputs.append(bb.emit(relax.call_tir(
                    gvar, [x] + [relax.const(v) for v in constants(case, bias, mult, shift)],
                    relax.TensorType((_case_sizes(case)[1],), "int8"))))
                offset += size
            out = bb.emit_output(relax.op.concat(outputs, axis=0))
        bb.emit_func_output(out)
    inputs = np.concatenate(rows, axis=1)
    result = micro.run(micro.build(bb.get(), board, out_dir), inputs)
    for acc, outputs in zip(inputs, result.outputs, strict=True):
        expected = [_case_reference(case, acc[start:], bias, mult, shift)
                    for case, (start, bias, mult, shift) in zip(cases, per_case, strict=True)]
        np.testing.assert_array_equal(outputs, np.concatenate(expected))


@requires_toolchain
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an500", "mps2-an505"])  # M4, M7, M33
def test_micro_kernel_is_bit_exact_on_every_path(tmp_path, board):
    """The C contract of micro_dsp_requantize_channels_q7 (requantize.h): each case's outputs
    equal TVM's host build of micro.fixed_point_tir, and nothing else in the output changes."""
    check_epilogue_kernel(tmp_path, board, _CASES, np.random.default_rng(3), _case_parameters,
                          _call_kernel, lambda case, bias, mult, shift: (bias, mult, shift))


def _requantize_te(acc: te.Tensor, mult: te.Tensor, shift: te.Tensor, zero_point: int, qmin: int,
                   qmax: int) -> te.Tensor:
    """TFLite's per-channel requantization as the integer lowering writes it."""
    return te_requantize(acc, lambda *i: mult[i[-1]], lambda *i: shift[i[-1]], zero_point, qmin,
                         qmax, shifts_nonpositive=True)


def _add_te(a: te.Tensor, b: te.Tensor) -> te.Tensor:
    """TFLite's int8 ADD as the integer lowering writes it: each operand less its zero point,
    shifted left by 20, rescaled (a requantization without clamp), the sum requantized with
    scalars."""

    def rescaled(x: te.Tensor, zero_point: int, multiplier: int, name: str) -> te.Tensor:
        shifted = te.compute(x.shape, lambda *i: (x(*i).astype("int32") - zero_point) << 20,
                             name=f"{name}_shifted")
        return te_multiply_by_quantized_multiplier(
            shifted, lambda *i: tvm.tirx.const(multiplier, "int32"),
            lambda *i: tvm.tirx.const(-2, "int32"), name)

    lhs, rhs = rescaled(a, -128, 1518500250, "lhs"), rescaled(b, -3, 1273788416, "rhs")
    total = te.compute(lhs.shape, lambda *i: lhs(*i) + rhs(*i), name="sum")
    return te_requantize(total, lambda *i: tvm.tirx.const(1431655765, "int32"),
                         lambda *i: tvm.tirx.const(-18, "int32"), 4)


def requantized_conv(
    length: int, channels: int, filters: int, kernel: int, *, stride: int = 1,
    depthwise: bool = False, zero_point: int = -128, relu: bool = False,
    clip: tuple[int, int] | None = None, residual: bool = False, seed: int = 0,
    fast_shifts: bool = False,
) -> tvm.IRModule:
    """An int8 convolution with TFLite's epilogue, as relay_passes lowers it: ``pad`` with the
    input zero point, ``conv2d`` to int32, a per-channel bias, the per-channel requantization
    (``relu``: clamped below at the zero point), an int8 ``clip`` after it (as the TFLite front
    end writes one) and, with ``residual``, an int8 add of the input requantized again (a
    stage the epilogue's micro-kernel must leave alone, as TFLite's ADD: :func:`_add_te`).

    The per-channel multipliers and shifts run through every path of the micro-kernel (shifts
    0 and 1, 2 to 23, beyond; multipliers near 2**31); some biases are near -2**31 or 2**31, as
    near as the accumulators allow without the sum overflowing (which TVM's host build, the
    reference, assumes it does not). ``fast_shifts``: only shifts of the assembly's fast path
    (-2 to -24, as TFLite's per-channel convolutions have), which the DSP library tabulates
    (:mod:`micro.kernels.dsp.requantize_table`).
    """
    rng = np.random.default_rng(seed)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 1, length, channels), "int8"))
    qmin = zero_point if relu else -128
    with bb.function("main", [x]):
        with bb.dataflow():
            left = (kernel - 1) // 2
            data = bb.emit(relax.op.nn.pad(x, [0, 0, 0, 0, left, kernel - 1 - left, 0, 0],
                                           pad_value=-3.0))
            w = rng.integers(-128, 128, (1, kernel, channels, 1 if depthwise else filters),
                             dtype=np.int8)
            acc = bb.emit(relax.op.nn.conv2d(
                data, relax.const(w), strides=(1, stride), groups=channels if depthwise else 1,
                data_layout="NHWC", kernel_layout="HWOI" if depthwise else "HWIO",
                out_dtype="int32"))
            bias = rng.integers(-3000, 3000, filters).astype(np.int32)
            reach = 128 * 128 * kernel * (1 if depthwise else channels)  # the largest |sum|
            bias[1::4] = INT32_MAX - reach - rng.integers(0, 1000, len(bias[1::4]))
            bias[3::5] = INT32_MIN + reach + rng.integers(0, 1000, len(bias[3::5]))
            acc = bb.emit(relax.op.add(acc, relax.const(bias)))
            shifts = [-9, -24, -12, -3, -6, -2, -23, -13] if fast_shifts else [
                -9, 0, -12, -1, -6, -2, -23, -13, -26]
            shift = np.array([shifts[c % len(shifts)] for c in range(filters)], np.int8)
            mult = rng.integers(2**30, 2**31 - 1, filters).astype(np.int32)
            mult[::3] = INT32_MAX
            out = bb.emit(bb.call_te(_requantize_te, acc, relax.const(mult), relax.const(shift),
                                     zero_point, qmin, 127, primfunc_name_hint="requantize"))
            if clip is not None:
                out = bb.emit(relax.op.clip(out, *clip))
            if residual:
                out = bb.emit(bb.call_te(_add_te, out, x, primfunc_name_hint="quantized_add"))
            out = bb.emit_output(out)
        bb.emit_func_output(out)
    return bb.get()


def _calls_epilogue_kernel(out_dir) -> bool:
    return f"{REQUANTIZE_CHANNELS_KERNEL}(" in (out_dir / "src" / "kernels.c").read_text()


@requires_toolchain
@pytest.mark.parametrize(
    ("length", "channels", "filters", "kernel", "stride", "options"),
    [
        (24, 8, 12, 1, 1, {}),  # pairs of positions, no clamp
        (24, 8, 12, 3, 1, {"zero_point": 127}),
        (23, 8, 12, 3, 1, {"relu": True, "zero_point": -20}),  # odd width: one position a pass
        (20, 6, 6, 5, 2, {"clip": (-100, 90)}),  # 6 channels, a clip after
        (19, 3, 5, 3, 1, {"relu": True, "zero_point": 7, "clip": (-128, 127)}),  # odd outputs
        (15, 6, 6, 3, 1, {"depthwise": True, "zero_point": 127}),  # 15 positions a pass
        (16, 5, 5, 5, 1, {"depthwise": True, "relu": True, "zero_point": -9}),
    ],
)
def test_convolution_epilogues_run_on_the_micro_kernel_bit_exactly(
    tmp_path, length, channels, filters, kernel, stride, options
):
    mod = requantized_conv(length, channels, filters, kernel, stride=stride, **options)
    build_and_compare(mod, BOARD, tmp_path)
    assert _calls_epilogue_kernel(tmp_path)


@requires_toolchain
@pytest.mark.parametrize("backend", ["c", "llvm"])
def test_residual_add_keeps_its_requantization_in_tir(tmp_path, backend):
    """TFLite's ADD fused after the convolution: the convolution's requantization goes on the
    micro-kernel, into a per-pass int8 buffer the ADD's stages read (which storage reuse may
    place in the dead window: the call passes its address as int8); the ADD's requantization,
    of a sum of rescaled operands with scalars, does not match and stays TIR; bit-exact. The
    ADD's chain is rejected before anything is inlined: inlining it into its requantization to
    try it took minutes per kernel (the expression triples at each rescaling)."""
    mod = requantized_conv(24, 8, 8, 3, residual=True)
    start = time.perf_counter()
    lowered = dsp.apply_dsp(mod, micro.get_board(BOARD))
    assert time.perf_counter() - start < 20
    assert len(lowered["main"].body.blocks[0].bindings) == 1  # one kernel, the add fused in
    firmware = micro.build(mod, BOARD, tmp_path, backend=backend)
    inputs = random_inputs(mod, 4)
    result = micro.run(firmware, inputs)
    np.testing.assert_array_equal(result.outputs, host_reference(mod, inputs))
    (script,) = [f.script() for gvar, f in lowered.functions.items()
                 if isinstance(f, tvm.tirx.PrimFunc) and "conv2d" in gvar.name_hint]
    assert script.count(f'"{REQUANTIZE_CHANNELS_KERNEL}"') == 1
    assert "1431655765" in script  # the ADD's multiplier: its requantization in TIR


@requires_toolchain
def test_tuned_convolution_keeps_the_epilogue_micro_kernel(tmp_path):
    """MetaSchedule samples the positions per pass (ReplayTrace re-samples every decision); the
    epilogue's intrinsic covers one convolution call's positions, so every candidate's trace
    replays with it, and the applied best calls it, bit-exactly."""
    from tvm.s_tir import meta_schedule as ms  # noqa: PLC0415 (MetaSchedule loads slowly)

    from micro.tuning import SUMMARY_FILE, apply_database, tune  # noqa: PLC0415

    mod = requantized_conv(24, 8, 8, 3)
    db = tmp_path / "tune"
    tune(mod, BOARD, db, max_trials=6, trials_per_iteration=3,
         strategy=ms.search_strategy.ReplayTrace(), progress=False)
    summary = json.loads((db / SUMMARY_FILE).read_text())["kernels"]
    (kernel,) = (k for name, k in summary.items() if "conv2d" in name)
    assert kernel["failed"] == 0 and kernel["trials"] >= 3
    build_and_compare(apply_database(mod, BOARD, db), BOARD, tmp_path / "tuned", reference=mod)
    assert _calls_epilogue_kernel(tmp_path / "tuned")
