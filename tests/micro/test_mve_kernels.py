"""The Helium micro-kernels (micro.kernels.mve) on the Cortex-M55 (mps3-an547): scheduling, the
requantization's vector arithmetic against TVM's host build of micro.fixed_point_tir, each
kernel alone in firmware on edge shapes, the cluster-gated operator against relay_passes'
reference, and the PLA graph of the bench (instructions per beat)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tvm
from tvm import relax, te
from tvm.script import tirx as T

import micro
from micro.kernels import mve
from micro.kernels.mve.dot_product import calls, schedule_mve_dots
from relay_passes import (
    QuantizedClusterGatedLinearParams,
    emit_cluster_gated_linear,
    make_cluster_gated_linear_int8_kernel,
    reference_forward,
)

from .graphs import build_and_compare, conv_block, host_reference, random_inputs, requires_toolchain
from .test_requantize_dsp import _accumulators, _host_requantize, requantized_conv

BOARD = "mps3-an547"
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
LENGTHS = (1, 15, 16, 17, 140, 263)
OUTPUTS = (1, 3, 5, 16, 128)


# ---- Scheduling --------------------------------------------------------------------------------


def test_operator_kernel_calls_the_helium_kernels_with_reduction_innermost_weights():
    kernel = make_cluster_gated_linear_int8_kernel(1, 140, 3, 16, -4, True)
    scheduled, relaid_out = schedule_mve_dots(kernel)
    assert calls(scheduled) == 2  # centroids (3 outputs), the chosen cluster's map (16)
    assert calls(scheduled, mve.REQUANTIZE_KERNEL) == 1
    # [k, D, d] -> [k, d, D], never the DSP library's interleaving
    assert [index for index, _ in relaid_out] == [3]
    assert [int(s) for s in scheduled.params[3].shape] == [3, 16, 140]
    assert "micro_dsp" not in scheduled.script()


def test_requantization_with_left_shifts_stays_tir():
    kernel = make_cluster_gated_linear_int8_kernel(1, 140, 3, 16, -4, False)
    scheduled, _ = schedule_mve_dots(kernel)
    assert calls(scheduled) == 2
    assert calls(scheduled, mve.REQUANTIZE_KERNEL) == 0


def test_board_policy():
    assert mve.board_uses_mve(micro.get_board(BOARD))
    assert not mve.board_uses_mve(micro.get_board("mps2-an505"))
    model = _cluster_module(_params(np.random.default_rng(0), 2, 24, 8))
    m4 = micro.get_board("mps2-an386")
    assert mve.apply_mve(model, m4) is not None  # default on an M4: the plain lowered module
    with pytest.raises(micro.BuildError, match="mps2-an386"):
        mve.apply_mve(model, m4, mve=True)


def test_tuning_preparation_annotates_and_tensorize_annotated_matches_the_schedule():
    board = micro.get_board(BOARD)
    model = _cluster_module(_params(np.random.default_rng(1), 3, 64, 16))
    prepared = mve.prepare_for_tuning(model, board)
    func = prepared["cluster_gated_linear_int8"]
    assert func.script().count(f'"schedule_rule": "{mve.SCHEDULE_RULE}"') == 2
    sch = tvm.s_tir.Schedule(func)
    mve.tensorize_annotated(sch)
    assert calls(sch.mod["main"]) == 2
    assert calls(sch.mod["main"], mve.REQUANTIZE_KERNEL) == 1


_IMPORT_REGISTERS_NOTHING = """
from micro import codegen
import micro.kernels.mve as mve
assert not any(s.startswith("micro_mve") for s in codegen._EXTERN_SOURCES)
mve.register(); mve.register()
assert {s for s in codegen._EXTERN_SOURCES if s.startswith("micro_mve")} == {
    "micro_mve_dot_q7", "micro_mve_dot_q7q4", "micro_mve_requantize_q7", "micro_mve_conv_q7",
    "micro_mve_requantize_channels_q7"}
assert "micro_dsp_depthwise_q15" in codegen._EXTERN_SOURCES  # the DSP kernels it uses
"""


def test_importing_registers_nothing_and_register_is_idempotent():
    result = subprocess.run([sys.executable, "-c", _IMPORT_REGISTERS_NOTHING], capture_output=True,
                            text=True, cwd=Path(__file__).parents[2], check=False)
    assert result.returncode == 0, result.stderr[-2000:]


# ---- The requantization's vector arithmetic (requantize_mve.c), modelled on the host ----------


def _vector_requantize(x, mult, shift, zero_point: int, qmin: int, qmax: int):
    """The kernel's instruction sequence on Python integers, lane by lane, and whether a
    saturation set FPSCR.QC (then the kernel takes its scalar path)."""
    out, saturated = [], False
    for xi, mi, si in zip(x.tolist(), mult.tolist(), shift.tolist(), strict=True):
        high = (2 * xi * mi + 2**31) >> 32  # VQRDMULH before saturation
        if high > INT32_MAX:
            high, saturated = INT32_MAX, True
        fix = -1 if (high & si) < 0 else 0  # VAND, VSHR #31 (sign of high & s)
        v = high + fix  # VQADD
        if v < INT32_MIN:
            v, saturated = INT32_MIN, True
        e = -si
        q = (v + (1 << (e - 1))) >> e if e else v  # VRSHL by -e
        q = max(min(q, qmax - zero_point), qmin - zero_point) + zero_point
        out.append(((q + 128) % 256) - 128)  # VSTRB.32: the low byte
    return np.array(out, np.int8), saturated


@pytest.mark.parametrize(("zero_point", "qmin", "qmax"), [(-128, -128, 127), (5, -128, 127),
                                                          (0, -20, 100)])
def test_vector_sequence_equals_the_tir_requantization(zero_point, qmin, qmax):
    rng = np.random.default_rng(7)
    n = 6000
    x = _accumulators(rng, n)
    shift = -rng.integers(0, 32, n).astype(np.int8)
    mult = rng.integers(0, INT32_MAX, n, dtype=np.int64).astype(np.int32)
    mult[::7] = INT32_MAX
    mult[1::7] = 1 << 30
    mult[2::7] = 0
    # exact ties of the rounding division: m = 2^30 gives high = floor((x + 1) / 2)
    ties = slice(3, None, 7)
    e = -shift[ties].astype(np.int64)
    j = rng.integers(-200, 200, len(e))
    half = np.where(e > 0, (2 * j + 1) << np.maximum(e - 1, 0), j)
    x[ties] = np.clip(2 * half - 1, INT32_MIN, INT32_MAX)
    mult[ties] = 1 << 30
    got, saturated = _vector_requantize(x, mult, shift, zero_point, qmin, qmax)
    assert not saturated
    expected = _host_requantize(x, np.zeros_like(x), mult, shift, zero_point, qmin, qmax)
    np.testing.assert_array_equal(got, expected)


def test_vector_sequence_saturates_only_where_vqrdmulh_differs():
    x = np.array([INT32_MIN, INT32_MIN, INT32_MAX], np.int32)
    mult = np.array([INT32_MIN, INT32_MAX, INT32_MIN], np.int32)
    shift = np.zeros(3, np.int8)
    _, saturated = _vector_requantize(x[:1], mult[:1], shift[:1], 0, -128, 127)
    assert saturated  # TIR wraps 2^31 to INT32_MIN: the kernel's scalar path takes the call
    got, saturated = _vector_requantize(x[1:], mult[1:], shift[1:], 0, -128, 127)
    assert not saturated
    np.testing.assert_array_equal(
        got, _host_requantize(x[1:], np.zeros(2, np.int32), mult[1:], shift[1:], 0, -128, 127))


# ---- Each kernel alone in firmware -------------------------------------------------------------


def _dot_kernel(length: int, outputs: int, gathered: bool, clusters: int = 3):
    """``out[0, o] = sum_r x[0, r] * W[(I[0],) r, o]`` in int32, as a PrimFunc (TE)."""
    x = te.placeholder((1, length), "int8", name="x")
    r = te.reduce_axis((0, length), name="r")
    if gathered:
        w = te.placeholder((clusters, length, outputs), "int8", name="w")
        index = te.placeholder((1,), "int32", name="index")
        out = te.compute((1, outputs), lambda n, o: te.sum(
            x[n, r].astype("int32") * w[index[0], r, o].astype("int32"), axis=r), name="dot")
        return te.create_prim_func([x, w, index, out])
    w = te.placeholder((length, outputs), "int8", name="w")
    out = te.compute((1, outputs), lambda n, o: te.sum(
        x[n, r].astype("int32") * w[r, o].astype("int32"), axis=r), name="dot")
    return te.create_prim_func([x, w, out])


def _dot_module(length: int, gathered: bool, rng: np.random.Generator):
    """Every output count of :data:`OUTPUTS` over one input ``[1, length]``, outputs concatenated;
    with the weights (and chosen clusters) for the numpy reference."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, length), "int8"))
    weights = []
    with bb.function("main", [x]):
        with bb.dataflow():
            parts = []
            for outputs in OUTPUTS:
                gvar = bb.add_func(_dot_kernel(length, outputs, gathered),
                                   f"dot_{outputs}{'_gathered' if gathered else ''}")
                if gathered:
                    w = rng.integers(-128, 128, (3, length, outputs), dtype=np.int8)
                    chosen = int(rng.integers(0, 3))
                    args = [x, relax.const(w), relax.const(np.array([chosen], np.int32))]
                    weights.append(w[chosen])
                else:
                    w = rng.integers(-128, 128, (length, outputs), dtype=np.int8)
                    args = [x, relax.const(w)]
                    weights.append(w)
                parts.append(bb.emit(relax.call_tir(
                    gvar, args, relax.TensorType((1, outputs), "int32"))))
            out = bb.emit_output(relax.op.concat(parts, axis=1))
        bb.emit_func_output(out)
    return bb.get(), np.concatenate(weights, axis=1)


def _module_calls(mod: tvm.IRModule, symbol: str) -> int:
    return sum(calls(f, symbol) for f in mod.functions.values()
               if isinstance(f, tvm.tirx.PrimFunc))


@requires_toolchain
@pytest.mark.parametrize("gathered", [False, True], ids=["plain", "gathered"])
@pytest.mark.parametrize("length", LENGTHS)
def test_dot_kernel_alone_is_bit_exact(tmp_path, length, gathered):
    rng = np.random.default_rng(length)
    model, weights = _dot_module(length, gathered, rng)
    scheduled = mve.apply_mve(model, micro.get_board(BOARD))
    assert _module_calls(scheduled, mve.MICRO_KERNEL) == len(OUTPUTS)
    firmware = micro.build(scheduled, BOARD, tmp_path, dsp=False)
    assert "micro_mve_dot_q7(" in (firmware.out_dir / "src" / "kernels.c").read_text()
    inputs = random_inputs(model, 5, seed=length)
    inputs[0] = -128  # the largest products, all of one sign
    expected = (inputs[:, 0].astype(np.int64) @ weights.astype(np.int64)).astype(np.int32)
    got = micro.run(firmware, inputs).outputs
    np.testing.assert_array_equal(got[:, 0], expected)


_SENTINEL = 99
_REQUANTIZE_N = 131  # 32 full vectors and a predicated tail of three channels


def _requantize_call(n: int, zero_point: int, qmin: int, qmax: int) -> tvm.tirx.PrimFunc:
    """A kernel that fills its output with the sentinel, then calls the micro-kernel once."""

    @T.prim_func(private=True)
    def kernel(acc: T.Buffer((n,), "int32"), bias: T.Buffer((n,), "int32"),
               mult: T.Buffer((n,), "int32"), shift: T.Buffer((n,), "int8"),
               out: T.Buffer((n + 1,), "int8")):
        T.func_attr({"op_pattern": 8})
        for i in range(n + 1):
            out[i] = T.int8(_SENTINEL)
        T.evaluate(T.call_extern(
            "int32", mve.REQUANTIZE_KERNEL, acc.access_ptr("r"), bias.access_ptr("r"),
            mult.access_ptr("r"), shift.access_ptr("r"), out.access_ptr("w"), n, zero_point,
            qmin, qmax))

    return kernel


def _requantize_parameters(rng: np.random.Generator, n: int, fallback: bool):
    shift = -(np.arange(n) % 32).astype(np.int8)
    choices = np.array([INT32_MAX, 1 << 30, 1518500250, 1, 0, (1 << 29) + 3, 1234567890],
                       np.int64)
    mult = choices[(np.arange(n) // 32) % len(choices)].astype(np.int32)
    if fallback:
        mult[5] = INT32_MIN  # with acc + bias = INT32_MIN, VQRDMULH saturates
    bias = rng.integers(-3000, 3000, n).astype(np.int32)
    bias[::3] = rng.integers(INT32_MIN, INT32_MAX, len(bias[::3]))
    return bias, mult, shift


def _requantize_rows(rng, n, bias, mult, shift) -> np.ndarray:
    """Accumulators: random of every size, near and at rounding ties, at the int32 limits."""
    rows = [_accumulators(rng, n)]
    e = -shift.astype(np.int64)
    m = np.maximum(mult.astype(np.int64), 1)
    for _ in range(2):
        target = rng.integers(-140, 141, n) + 0.5
        x = np.floor(target * 2.0 ** (31 + e) / m) + rng.integers(-2, 3, n)
        rows.append(_wrap(np.clip(x, INT32_MIN, INT32_MAX).astype(np.int64) - bias))
    # exact ties where m = 2^30 (high = floor((x + 1) / 2)): x = 2 h - 1, h = (2 j + 1) 2^(e-1)
    j = rng.integers(-100, 100, n)
    half = np.where(e > 0, (2 * j + 1) << np.maximum(e - 1, 0), j)
    rows.append(_wrap(np.clip(2 * half - 1, INT32_MIN, INT32_MAX) - bias.astype(np.int64)))
    for limit in (INT32_MAX, INT32_MIN):
        rows.append(_wrap(limit - bias.astype(np.int64)))
    return np.stack(rows)


def _wrap(values: np.ndarray) -> np.ndarray:
    return ((values.astype(np.int64) + 2**31) % 2**32 - 2**31).astype(np.int32)


@requires_toolchain
@pytest.mark.parametrize(("zero_point", "qmin", "qmax"), [(-128, -128, 127), (7, -20, 100)])
def test_requantize_kernel_alone_is_bit_exact(tmp_path, zero_point, qmin, qmax):
    """The C contract of micro_mve_requantize_q7: the vector path and (second kernel: a lane
    with acc + bias = mult = INT32_MIN in the INT32_MIN row) the scalar path equal TVM's host
    build of micro.fixed_point_tir, and nothing after the n outputs is written."""
    mve.register()
    rng = np.random.default_rng(11)
    n = _REQUANTIZE_N
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((n,), "int32"))
    parameters, rows = [], []
    with bb.function("main", [x]):
        with bb.dataflow():
            parts = []
            for fallback in (False, True):
                bias, mult, shift = _requantize_parameters(rng, n, fallback)
                parameters.append((bias, mult, shift))
                rows.append(_requantize_rows(rng, n, bias, mult, shift))
                gvar = bb.add_func(_requantize_call(n, zero_point, qmin, qmax),
                                   f"requantize_{int(fallback)}")
                parts.append(bb.emit(relax.call_tir(
                    gvar, [x] + [relax.const(v) for v in (bias, mult, shift)],
                    relax.TensorType((n + 1,), "int8"))))
            out = bb.emit_output(relax.op.concat(parts, axis=0))
        bb.emit_func_output(out)
    inputs = np.concatenate(rows)  # every row goes through both kernels
    result = micro.run(micro.build(bb.get(), BOARD, tmp_path, dsp=False), inputs)
    for acc, outputs in zip(inputs, result.outputs, strict=True):
        for part, (bias, mult, shift) in zip(np.split(outputs, 2), parameters, strict=True):
            wrapped = _wrap(acc.astype(np.int64) + bias)
            expected = _host_requantize(wrapped, np.zeros(n, np.int32), mult, shift, zero_point,
                                        qmin, qmax)
            np.testing.assert_array_equal(part[:n], expected)
            assert part[n] == _SENTINEL


# ---- The cluster-gated operator -----------------------------------------------------------------


def _params(rng, k: int, dim: int, d: int) -> QuantizedClusterGatedLinearParams:
    return QuantizedClusterGatedLinearParams(
        input_scale=0.03, input_zero_point=int(rng.integers(-20, 20)),
        centroids_q=rng.integers(-128, 128, (k, dim), dtype=np.int8),
        weights_q=rng.integers(-127, 128, (k, dim, d), dtype=np.int8),
        weight_scales=rng.uniform(1e-3, 5e-3, (k, d)).astype(np.float32),
        bias_q=rng.integers(-20000, 20000, (k, d)).astype(np.int32),
        output_scale=0.25, output_zero_point=int(rng.integers(-30, 30)))


def _cluster_module(params: QuantizedClusterGatedLinearParams) -> tvm.IRModule:
    dim = params.centroids_q.shape[1]
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, dim), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(emit_cluster_gated_linear(bb, x, params))
        bb.emit_func_output(out)
    return bb.get()


@requires_toolchain
@pytest.mark.parametrize(("k", "dim", "d"), [(3, 140, 128), (4, 263, 5), (2, 17, 16), (3, 15, 3),
                                             (2, 1, 1)])
def test_operator_is_bit_exact_with_the_reference(tmp_path, k, dim, d):
    params = _params(np.random.default_rng(k * dim + d), k, dim, d)
    model = _cluster_module(params)
    scheduled = mve.apply_mve(model, micro.get_board(BOARD))
    kernel = scheduled["cluster_gated_linear_int8"]
    assert calls(kernel) == 2
    # one channel: the (DSP library's) requantization description has no unit-extent form yet
    assert calls(kernel, mve.REQUANTIZE_KERNEL) == (d > 1)
    inputs = random_inputs(model, 8, seed=d)
    firmware = micro.build(scheduled, BOARD, tmp_path / "mve", dsp=False)
    got = micro.run(firmware, inputs).outputs
    np.testing.assert_array_equal(got, np.stack([reference_forward(params, x) for x in inputs]))
    np.testing.assert_array_equal(got, host_reference(model, inputs))


@requires_toolchain
@pytest.mark.parametrize(
    ("length", "kernel", "stride", "padding", "channels", "filters", "height"),
    [(23, 3, 1, "same", 16, 12, 1), (24, 5, 2, "same", 8, 10, 1), (23, 8, 1, "valid", 12, 6, 1),
     (23, 3, 1, "same", 3, 5, 1), (23, 1, 1, "valid", 1, 3, 1), (9, 3, 1, "same", 5, 4, 3)],
    ids=["k3", "k5-s2", "k8-valid", "3-in-5-out", "1x1-one-channel", "2d"],
)
def test_convolutions_run_on_the_helium_kernel_bit_exactly(
    tmp_path, length, kernel, stride, padding, channels, filters, height
):
    """Dense convolutions on the M55: the DSP library's lowering in its int8 form with the
    Helium micro-kernel, any channel counts, odd outputs and positions, 2-D; bit-exact with
    TVM's host build; the requantization epilogues on the DSP kernels (the M55 has the DSP
    extension)."""
    mod = conv_block(length, channels, filters, kernel, stride=stride, padding=padding,
                     height=height)
    build_and_compare(mod, BOARD, tmp_path)
    source = (tmp_path / "src" / "kernels.c").read_text()
    assert f"{mve.CONV_KERNEL}(" in source and "micro_dsp_conv_q15q7(" not in source


@requires_toolchain
@pytest.mark.parametrize("options", [{"zero_point": 127}, {"relu": True, "zero_point": -20},
                                     {"depthwise": True, "relu": True, "zero_point": -9},
                                     {"residual": True}],
                         ids=["requantized", "relu", "depthwise", "residual"])
def test_convolution_epilogues_run_on_the_helium_requantization(tmp_path, options):
    """TFLite's per-channel requantization after a convolution (dense or depthwise, a residual
    add fused after it) on micro_mve_requantize_channels_q7, bit-exact with TVM's host build."""
    filters = 8 if options.get("depthwise") or options.get("residual") else 12
    build_and_compare(requantized_conv(24, 8, filters, 3, **options), BOARD, tmp_path)
    source = (tmp_path / "src" / "kernels.c").read_text()
    assert f"{mve.CONV_KERNELS.requantize}(" in source
    assert "micro_dsp_requantize_channels_q7(" not in source


@pytest.mark.parametrize("board", [BOARD, "mps2-an385"])
def test_the_convolution_tuning_rule_calls_the_board_library_kernels(board):
    """prepare_for_tuning annotates a convolution for the DSP library's rule, which reads the
    micro-kernels from the lowered block: a sampled schedule on the M55 or the M3 calls that
    library's kernels, not the DSP ones."""
    from micro import kernels
    from micro.kernels.dsp import convolution

    target = micro.get_board(board)
    library = kernels.library_for(target)
    prepared = kernels.prepare_for_tuning(requantized_conv(24, 8, 12, 3), target, library)
    (func,) = [f for g, f in prepared.functions.items()
               if isinstance(f, tvm.tirx.PrimFunc) and "conv2d" in g.name_hint]
    sch = tvm.s_tir.Schedule(func)
    (scheduled,) = convolution._search_rule(sch, convolution.find_conv_block(sch))
    script = scheduled.mod["main"].script()
    assert f'"{library.CONV_KERNELS.conv}"' in script
    assert f'"{library.CONV_KERNELS.requantize}"' in script and "micro_dsp_" not in script


#: Cases of micro_mve_conv_q7's contract (n, rows, row_step, positions, window_step, outputs,
#: acc_step): n below, at and above a vector (1, 16, 17, 40), one to five positions, odd
#: outputs, several kernel rows, overlapping windows, gaps between sums.
_CONV_CASES = [
    (1, 1, 0, 1, 1, 1, 1), (16, 1, 0, 2, 16, 2, 2), (17, 1, 0, 3, 5, 3, 4),
    (40, 2, 50, 5, 8, 5, 7), (24, 3, 30, 4, 24, 2, 2), (7, 1, 0, 2, 7, 9, 11),
]


def _conv_reference(case, window: np.ndarray, weight: np.ndarray) -> np.ndarray:
    n, rows, row_step, positions, window_step, outputs, acc_step = case
    acc = np.full((positions - 1) * acc_step + outputs, 0x5A5A5A5A, dtype=np.int64)
    w = weight.astype(np.int64).reshape(outputs, rows, n)
    for p in range(positions):
        for o in range(outputs):
            acc[p * acc_step + o] = sum(
                int((window[k * row_step + p * window_step:][:n].astype(np.int64)
                     * w[o, k]).sum()) for k in range(rows))
    return acc.astype(np.int32)


@requires_toolchain
def test_convolution_kernel_alone_writes_its_sums_on_every_path(tmp_path):
    """micro_mve_conv_q7's C contract (convolution_mve.h) beyond the schedule's shapes: each
    case's sums equal numpy's over every int8 value, and nothing else in the output changes."""
    rng = np.random.default_rng(8)
    lengths = [(c[1] - 1) * c[2] + (c[3] - 1) * c[4] + c[0] for c in _CONV_CASES]
    total = sum(lengths)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((total,), "int8"))
    weights, offset = [], 0
    with bb.function("main", [x]):
        with bb.dataflow():
            outputs = []
            for index, (case, length) in enumerate(zip(_CONV_CASES, lengths, strict=True)):
                n, rows, row_step, positions, window_step, count, acc_step = case
                weight = rng.integers(-128, 128, count * rows * n, dtype=np.int8)
                weights.append((offset, weight))
                sums = (positions - 1) * acc_step + count

                @T.prim_func(private=True)
                def kernel(xb: T.Buffer((total,), "int8"), wb: T.Buffer((weight.size,), "int8"),
                           acc: T.Buffer((sums,), "int32")):
                    T.func_attr({"op_pattern": 8})
                    for i in range(sums):
                        acc[i] = 0x5A5A5A5A
                    T.evaluate(T.call_extern(
                        "int32", mve.CONV_KERNEL, xb.access_ptr("r", offset=offset),
                        wb.access_ptr("r"), acc.access_ptr("w"), n, rows, row_step, positions,
                        window_step, count, acc_step))

                gvar = bb.add_func(kernel, f"conv_case{index}")
                outputs.append(bb.emit(relax.call_tir(
                    gvar, [x, relax.const(weight)], relax.TensorType((sums,), "int32"))))
                offset += length
            out = bb.emit_output(relax.op.concat(outputs, axis=0))
        bb.emit_func_output(out)
    inputs = rng.integers(-128, 128, (2, total), dtype=np.int8)
    result = micro.run(micro.build(bb.get(), BOARD, tmp_path), inputs)
    for window, sums in zip(inputs, result.outputs, strict=True):
        expected = [_conv_reference(case, window[start:], weight)
                    for case, (start, weight) in zip(_CONV_CASES, weights, strict=True)]
        np.testing.assert_array_equal(sums, np.concatenate(expected))
