"""int8 activations × packed signed 4-bit weights on ``micro_dsp_dot_q7q4`` (docs/dsp.md).

The kernels are written in TE with the expression of the cluster-gated operator's 4-bit
accumulate block, ``int32(x[n, r]) * ((int32(W[.., o, r // 2]) << 28 - r % 2 * 4) >> 28)``:
micro recognises the block by its TIR alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax, s_tir, te, tirx

import micro
from micro.kernels import dsp
from relay_passes import emit_cluster_gated_linear, pack_int4, reference_forward
from tests.relay_passes.test_cluster_gated_linear import _quantized_params
from tests.relay_passes.test_factored_cluster_gated_linear import factored_params

from .graphs import host_reference, random_inputs, requires_toolchain

NUM_CLUSTERS = 3
LENGTHS = (1, 7, 8, 9, 17, 144, 263)
OUTPUTS = (1, 3, 5, 16)


def _nibble(byte: te.Tensor, r: tirx.PrimExpr) -> tirx.PrimExpr:
    shift = tirx.const(28, "int32") - (r % 2) * 4
    return tirx.shift_right(tirx.shift_left(byte.astype("int32"), shift), tirx.const(28, "int32"))


def q4_kernel(length: int, outputs: int, gathered: bool = True) -> tirx.PrimFunc:
    """``acc[0, o] = Σ_r x[0, r] · w4(W[cluster, o], r)``, the cluster chosen from ``x[0, 0]``."""
    x = te.placeholder((1, length), "int8", name="x")
    r = te.reduce_axis((0, length), name="r")
    if gathered:
        w = te.placeholder((NUM_CLUSTERS, outputs, (length + 1) // 2), "int8", name="weights_q4")
        cluster = te.compute(
            (1,), lambda n: (x[n, 0].astype("int32") + 128) % NUM_CLUSTERS, name="cluster"
        )

        def weight(n, o):
            return w[cluster[n], o, r // 2]
    else:
        w = te.placeholder((outputs, (length + 1) // 2), "int8", name="weights_q4")

        def weight(n, o):
            return w[o, r // 2]

    acc = te.compute(
        (1, outputs),
        lambda n, o: te.sum(x[n, r].astype("int32") * _nibble(weight(n, o), r), axis=r),
        name="accumulate",
    )
    func = te.create_prim_func([x, w, acc]).without_attr("global_symbol")
    return func.with_attr("op_pattern", 8)  # opaque: not fused with the slice before it


def q4_module(shapes, seed: int = 0):
    """One Relax module calling a 4-bit kernel per ``(length, outputs, gathered, fill)``, the
    results concatenated; returns the module and, per shape, the unpacked weights."""
    rng = np.random.default_rng(seed)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, max(s[0] for s in shapes)), "int8"))
    unpacked = []
    with bb.function("main", [x]):
        with bb.dataflow():
            results = []
            for length, outputs, gathered, fill in shapes:
                lead = (NUM_CLUSTERS,) if gathered else ()
                if fill is None:
                    w = rng.integers(-8, 8, (*lead, outputs, length), dtype=np.int8)
                else:
                    w = np.full((*lead, outputs, length), fill, dtype=np.int8)
                unpacked.append(w)
                gvar = bb.add_func(q4_kernel(length, outputs, gathered),
                                   f"q4_{length}x{outputs}{'_gathered' if gathered else ''}")
                xs = bb.emit(relax.op.strided_slice(x, axes=[1], begin=[0], end=[length]))
                results.append(bb.emit(relax.call_tir(
                    gvar, [xs, relax.const(pack_int4(w))],
                    relax.TensorType((1, outputs), "int32"))))
            out = bb.emit_output(relax.op.concat(results, axis=1))
        bb.emit_func_output(out)
    return bb.get(), unpacked


def numpy_reference(shapes, unpacked, inputs: np.ndarray) -> np.ndarray:
    rows = []
    for x in inputs:
        parts = []
        for (length, _, gathered, _), w in zip(shapes, unpacked):
            cluster = (int(x[0, 0]) + 128) % NUM_CLUSTERS
            weights = w[cluster] if gathered else w
            parts.append(weights.astype(np.int64) @ x[0, :length].astype(np.int64))
        rows.append(np.concatenate(parts)[None].astype(np.int32))
    return np.stack(rows)


def _extern_calls(func: tirx.PrimFunc, symbol: str) -> int:
    return func.script().count(f'call_extern("int32", "{symbol}"')


def test_pack_int4_matches_the_te_expression():
    w = np.array([[[-8, 7, -1, 0, 3]]], dtype=np.int8)
    packed = pack_int4(w)
    shifts = (28 - (np.arange(5) % 2) * 4).astype(np.int32)
    nib = (packed[0, 0, np.arange(5) // 2].astype(np.int32) << shifts) >> 28
    assert nib.tolist() == w[0, 0].tolist()


@pytest.mark.parametrize("gathered", [True, False])
@pytest.mark.parametrize("length", LENGTHS)
def test_4bit_blocks_are_tensorized_without_relayout(length, gathered):
    for outputs in OUTPUTS:
        result = dsp.schedule_int8_dots(q4_kernel(length, outputs, gathered))
        if length == 1:
            # A reduction loop of extent 1 is bound outside blockize's region, where the
            # nibble's shift (28 - r % 2 * 4) cannot be matched: left to TVM's lowering.
            assert result is None
            continue
        scheduled, relaid_out = result
        assert _extern_calls(scheduled, dsp.MICRO_KERNEL_Q4) == 1
        assert relaid_out == []


def test_output_tile_splits_the_4bit_calls():
    scheduled, _ = dsp.schedule_int8_dots(q4_kernel(17, 16), output_tile=4)
    assert _extern_calls(scheduled, dsp.MICRO_KERNEL_Q4) == 1  # in a loop of four tiles
    assert s_tir.TensorIntrin.get("micro_dsp_dot_q7q4_17x4_gathered", allow_missing=True)
    assert "for o_0 in range(4)" in scheduled.script()


def test_tuning_preparation_tensorizes_4bit_blocks():
    """prepare_for_tuning annotates the block; the rule's default schedule tensorizes it."""
    dsp.register()
    model, _ = q4_module([(17, 5, True, None)])
    prepared = dsp.prepare_for_tuning(model, micro.get_board("mps2-an386"))
    kernel = prepared["q4_17x5_gathered"]
    assert dsp.SCHEDULE_RULE in kernel.script()
    sch = s_tir.Schedule(kernel)
    dsp.tensorize_annotated(sch)
    assert _extern_calls(sch.mod["main"], dsp.MICRO_KERNEL_Q4) == 1
    # The custom rule MetaSchedule's ApplyCustomRule calls on the annotated block.
    sch = s_tir.Schedule(kernel)
    rule = tvm.get_global_func(dsp._META_SCHEDULE_RULE)
    (scheduled,) = rule(sch, sch.get_sblock("accumulate"))
    assert _extern_calls(scheduled.mod["main"], dsp.MICRO_KERNEL_Q4) == 1


@requires_toolchain
def test_4bit_firmware_is_bit_exact(tmp_path):
    shapes = [(length, outputs, True, None) for length in LENGTHS for outputs in OUTPUTS]
    shapes += [(9, 5, False, None), (263, 3, False, None)]
    # The range edge: 256 products of -128 · -8 in one chunk, 2^30 once scaled by 4096.
    shapes += [(263, 3, True, -8), (263, 2, False, 7)]
    model, unpacked = q4_module(shapes)
    rng = np.random.default_rng(1)
    inputs = rng.integers(-128, 128, (4, 1, 263), dtype=np.int8)
    inputs[2] = -128
    inputs[3] = 127
    inputs[3, 0, 0] = -127  # another cluster
    lowered = dsp.apply_dsp(model, micro.get_board("mps2-an386"))
    kernels = {gv.name_hint: _extern_calls(f, dsp.MICRO_KERNEL_Q4)
               for gv, f in lowered.functions.items() if gv.name_hint.startswith("q4_")}
    assert len(kernels) == 4 * len(LENGTHS) + 3  # one function per shape
    assert all(calls == (not name.startswith("q4_1x")) for name, calls in kernels.items())
    firmware = micro.build(lowered, "mps2-an386", tmp_path / "dsp")
    got = micro.run(firmware, inputs).outputs
    expected = numpy_reference(shapes, unpacked, inputs)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, host_reference(model, inputs))


def _operator_module(params):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, params.input_size), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(emit_cluster_gated_linear(bb, x, params))
        bb.emit_func_output(out)
    return bb.get()


@requires_toolchain
def test_the_4bit_pla_operator_runs_its_maps_on_the_4bit_kernel(tmp_path):
    """relay_passes' operator with 4-bit maps, full and factored: every map on
    micro_dsp_dot_q7q4 (the centroids stay int8), firmware bit-exact with reference_forward."""
    rng = np.random.default_rng(4)
    full = _quantized_params(rng, k=3, dim=140, d=16, weight_bits=4,
                             weights_q=rng.integers(-8, 8, (3, 140, 16), dtype=np.int8),
                             weight_scales=rng.uniform(2e-2, 8e-2, (3, 16)).astype(np.float32))
    factored = factored_params(rng, k=3, dim=140, r=5, d=16, weight_bits=4,
                               left_q=rng.integers(-8, 8, (3, 140, 5), dtype=np.int8),
                               right_q=rng.integers(-8, 8, (3, 5, 16), dtype=np.int8))
    board = micro.get_board("mps2-an386")
    for name, params, maps in (("full", full, 1), ("factored", factored, 2)):
        model = _operator_module(params)
        lowered = dsp.apply_dsp(model, board)
        kernel = next(f for gv, f in lowered.functions.items()
                      if gv.name_hint.startswith("cluster_gated_linear"))
        assert _extern_calls(kernel, dsp.MICRO_KERNEL_Q4) == maps
        inputs = random_inputs(model, 6)
        got = micro.run(micro.build(lowered, board, tmp_path / name), inputs).outputs
        np.testing.assert_array_equal(
            got, np.stack([reference_forward(params, x) for x in inputs]))


@requires_toolchain
@pytest.mark.parametrize("board", ["mps2-an385", "microbit", "mps3-an547"])
def test_4bit_firmware_is_bit_exact_on_the_other_cores(tmp_path, board):
    """The same shapes on the Cortex-M3 and M0 (micro_scalar_dot_q7q4) and the M55
    (micro_mve_dot_q7q4): odd lengths, lengths below, at and above a vector, one to 16 outputs,
    plain and gathered, the range edges; bit-exact."""
    from micro import kernels

    shapes = [(length, outputs, True, None) for length in LENGTHS for outputs in OUTPUTS]
    shapes += [(9, 5, False, None), (263, 3, True, -8), (263, 2, False, 7)]
    model, unpacked = q4_module(shapes)
    rng = np.random.default_rng(2)
    inputs = rng.integers(-128, 128, (3, 1, 263), dtype=np.int8)
    inputs[2] = -128
    target = micro.get_board(board)
    library = kernels.library_for(target)
    lowered = kernels.schedule_module(kernels.lower(model, target, library), target, library)
    symbol = f"micro_{kernels.library_name(library)}_dot_q7q4"
    calls = {gv.name_hint: _extern_calls(f, symbol)
             for gv, f in lowered.functions.items() if gv.name_hint.startswith("q4_")}
    assert all(n == (not name.startswith("q4_1x")) for name, n in calls.items())
    got = micro.run(micro.build(model, board, tmp_path), inputs).outputs
    np.testing.assert_array_equal(got, numpy_reference(shapes, unpacked, inputs))
