"""The SMLAD micro-kernels (micro.kernels.dsp): board policy, tensorization, bit-exact firmware, the
default lowering of micro.build and micro.tuning.tune on boards with the DSP extension."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tvm
from tvm import relax
from tvm.s_tir import meta_schedule as ms

import micro
from micro import fixed_point_tir
from micro.kernels import dsp
from micro.tuning import apply_database, tune
from relay_passes import (
    QuantizedClusterGatedLinearParams,
    emit_cluster_gated_linear,
    make_cluster_gated_linear_int8_kernel,
)
from relay_passes.fixed_point import tir_requantize

from .graphs import host_reference, random_inputs, requires_toolchain


def pla_int8(
    num_clusters: int, input_size: int, output_size: int, seed: int = 0, head: int = 0
) -> tvm.IRModule:
    """The int8 cluster-gated linear operator with random parameters, as a Relax module.

    ``head > 0`` adds an int8 dense layer to that many outputs (``matmul(h, W, out_dtype=int32)``,
    shifted and clipped back to int8).
    """
    rng = np.random.default_rng(seed)
    k, dim, d = num_clusters, input_size, output_size
    params = QuantizedClusterGatedLinearParams(
        input_scale=0.05,
        input_zero_point=-3,
        centroids_q=rng.integers(-128, 128, (k, dim), dtype=np.int8),
        weights_q=rng.integers(-128, 128, (k, dim, d), dtype=np.int8),
        weight_scales=(0.001 + 0.01 * rng.random((k, d))).astype(np.float32),
        bias_q=rng.integers(-5000, 5000, (k, d), dtype=np.int32),
        output_scale=0.2,
        output_zero_point=5,
    )
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, dim), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = emit_cluster_gated_linear(bb, x, params)
            if head:
                w = relax.const(rng.integers(-128, 128, (output_size, head), dtype=np.int8))
                acc = bb.emit(relax.op.matmul(out, w, out_dtype="int32"))
                shifted = relax.op.right_shift(acc, relax.const(7, "int32"))
                out = bb.emit(relax.op.astype(relax.op.clip(shifted, -128, 127), "int8"))
            out = bb.emit_output(out)
        bb.emit_func_output(out)
    return bb.get()


@pytest.mark.parametrize(
    ("board", "expected"),
    [("mps2-an386", True), ("mps2-an505", True), ("mps2-an385", False), ("mps3-an547", False),
     ("microbit", False)],
)  # fmt: skip
def test_dsp_only_on_cores_with_dsp_and_without_mve(board, expected):
    assert dsp.board_uses_dsp(micro.get_board(board)) is expected


def test_dsp_policy_follows_the_board_data():
    with_dsp = [name for name in micro.list_boards() if micro.get_board(name).dsp]
    assert with_dsp == ["mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547"]
    m4 = micro.get_board("mps2-an386")
    assert not dsp.board_uses_dsp(dataclasses.replace(m4, dsp=False))
    assert dsp.uses_dsp(micro.get_board("mps3-an547"), True)
    assert not dsp.uses_dsp(m4, False)
    with pytest.raises(micro.BuildError, match="mps2-an385"):
        dsp.uses_dsp(micro.get_board("mps2-an385"), True)


def _extern_calls(func: tvm.tirx.PrimFunc, symbol: str) -> int:
    return func.script().count(f'call_extern("int32", "{symbol}"')


def test_operator_kernel_is_tensorized_and_weights_interleaved():
    kernel = make_cluster_gated_linear_int8_kernel(1, 140, 3, 16, 0)
    scheduled, relaid_out = dsp.schedule_int8_dots(kernel)
    # The centroid dot products (3 outputs) call the two-output kernel, the chosen cluster's
    # affine map (16 outputs, 140 inputs) the four-output one; only the weights (parameter 3)
    # change layout: [k, D, d] -> [k, d/4, D/4, 4, 4].
    assert _extern_calls(scheduled, dsp.MICRO_KERNEL) == 1
    assert _extern_calls(scheduled, dsp.MICRO_KERNEL_X4) == 1
    assert [index for index, _ in relaid_out] == [3]
    assert [int(s) for s in scheduled.params[3].shape] == [3, 4, 35, 4, 4]
    weights = np.arange(3 * 140 * 16, dtype=np.int32).reshape(3, 140, 16)
    interleaved = relaid_out[0][1].map_tensor(tvm.runtime.tensor(weights)).numpy()
    np.testing.assert_array_equal(interleaved[1, 2, 5, 3, 1], weights[1, 4 * 5 + 1, 4 * 2 + 3])


@pytest.mark.parametrize("shifts_nonpositive", [True, False])
def test_requantization_runs_on_its_micro_kernel_only_without_left_shifts(shifts_nonpositive):
    kernel = make_cluster_gated_linear_int8_kernel(1, 140, 3, 16, -5, shifts_nonpositive)
    scheduled, _ = dsp.schedule_int8_dots(kernel)
    assert _extern_calls(scheduled, dsp.REQUANTIZE_KERNEL) == int(shifts_nonpositive)


def test_requantization_is_recognised_by_its_structure_without_annotation():
    # The front end's block annotation is documentation only: micro finds the requantization by
    # the arithmetic the block computes, and reads its zero point and clamp range from it.
    kernel = make_cluster_gated_linear_int8_kernel(1, 140, 3, 16, -5, True)
    sch = tvm.s_tir.Schedule(kernel)
    for name in ("requantize", "requantize_high"):
        block_rv = sch.get_sblock(name)
        for key in sch.get(block_rv).annotations:
            sch.unannotate(block_rv, key)
    bare = sch.mod["main"]
    assert "sblock_attr" not in bare.script()
    scheduled, _ = dsp.schedule_int8_dots(bare)
    assert _extern_calls(scheduled, dsp.REQUANTIZE_KERNEL) == 1
    # zero point -5 and the full int8 range, as immediates of the call
    assert f'"{dsp.REQUANTIZE_KERNEL}"' in scheduled.script()
    assert ", 16, -5, -128, 127)" in scheduled.script()


def test_clamp_like_block_with_other_arithmetic_is_left_alone():
    # int8(clamp(x >> 3) + 5) ends like a requantization (so it is tried) but computes otherwise.
    acc = tvm.te.placeholder((1, 8), "int32", name="acc")
    out = tvm.te.compute(
        acc.shape,
        lambda n, o: tvm.tirx.Cast(
            "int8", tvm.tirx.max(tvm.tirx.min(acc[n, o] >> 3, 122), -133) + 5),
        name="shift_clamp",
    )
    kernel = tvm.te.create_prim_func([acc, out])
    sch = tvm.s_tir.Schedule(kernel)
    assert fixed_point_tir.clamp_constants(sch.get(sch.get_sblock("shift_clamp")).body.value) == (
        5, -128, 127)
    dsp.tensorize_requantizations(sch)
    tvm.ir.assert_structural_equal(sch.mod["main"], kernel)


def test_micro_states_the_same_requantization_as_relay_passes():
    # The description must be the very TIR the front end generates, or tensorize will not match.
    a, m = tvm.tirx.Var("a", "int32"), tvm.tirx.Var("m", "int32")
    s = tvm.tirx.Var("s", "int8")
    for zero_point, qmin, qmax in ((-5, -128, 127), (0, -128, 127), (17, 0, 100)):
        ours = fixed_point_tir.requantize(a, m, s, zero_point, qmin, qmax)
        theirs = tir_requantize(a, m, s, zero_point, qmin, qmax, shifts_nonpositive=True)
        tvm.ir.assert_structural_equal(ours, theirs, map_free_vars=True)
        assert fixed_point_tir.clamp_constants(ours) == (zero_point, qmin, qmax)


def test_weights_whose_lengths_are_not_multiples_of_four_are_transposed():
    kernel = make_cluster_gated_linear_int8_kernel(1, 30, 2, 6, 0)
    scheduled, relaid_out = dsp.schedule_int8_dots(kernel)
    assert _extern_calls(scheduled, dsp.MICRO_KERNEL) == 2
    assert [int(s) for s in scheduled.params[relaid_out[0][0]].shape] == [2, 6, 30]


def test_kernel_without_int8_dot_products_is_left_alone(int8_model):
    lowered = micro.lowering.lower_to_kernel_calls(int8_model)  # int32 matmul after folding
    assert all(
        dsp.schedule_int8_dots(f) is None
        for f in lowered.functions.values()
        if isinstance(f, tvm.tirx.PrimFunc)
    )


@requires_toolchain
@pytest.mark.parametrize("backend", ["c", "llvm"])
def test_default_build_uses_the_micro_kernel_bit_exactly_and_faster(tmp_path, backend):
    model = pla_int8(3, 140, 128)
    inputs = random_inputs(model, 4)
    default = micro.build(model, "mps2-an386", tmp_path / "default", backend=backend)
    plain = micro.build(model, "mps2-an386", tmp_path / "plain", backend=backend, dsp=False)
    assert (default.out_dir / "src" / "dot_product.c").is_file()
    assert not (plain.out_dir / "src" / "dot_product.c").exists()
    fast, slow = micro.run(default, inputs), micro.run(plain, inputs)
    np.testing.assert_array_equal(fast.outputs, slow.outputs)
    np.testing.assert_array_equal(fast.outputs, host_reference(model, inputs))
    assert fast.instructions_per_inference < 0.6 * slow.instructions_per_inference


@requires_toolchain
def test_micro_kernel_edge_paths_are_bit_exact(tmp_path):
    # D = 262: one full chunk of 64 quads, then an odd quad and a two-element tail;
    # d = 7 and k = 3: output pairs plus a single output.
    model = pla_int8(3, 262, 7, seed=4)
    inputs = random_inputs(model, 6)
    lowered = dsp.apply_dsp(model, micro.get_board("mps2-an505"), output_tile=7)
    firmware = micro.build(lowered, "mps2-an505", tmp_path / "dsp", backend="c")
    np.testing.assert_array_equal(
        micro.run(firmware, inputs).outputs, host_reference(model, inputs)
    )


@requires_toolchain
@pytest.mark.parametrize(
    ("dim", "outputs", "board", "backend"),
    [(264, 8, "mps2-an505", "c"), (140, 4, "mps2-an386", "llvm"), (12, 12, "mps2-an500", "c")],
)  # fmt: skip
def test_four_output_micro_kernel_is_bit_exact(tmp_path, dim, outputs, board, backend):
    # 264 inputs: a full chunk of 64 quads and a chunk of 2; 140: an odd number of quads (35);
    # 12: three quads, three groups of four outputs. M33, M4 and M7; C and LLVM kernels.
    model = pla_int8(3, dim, outputs, seed=4, head=3)
    lowered = dsp.apply_dsp(model, micro.get_board(board))
    assert any(
        _extern_calls(f, dsp.MICRO_KERNEL_X4) for f in lowered.functions.values()
        if isinstance(f, tvm.tirx.PrimFunc)
    )  # fmt: skip
    inputs = random_inputs(model, 6)
    firmware = micro.build(lowered, board, tmp_path / "dsp", backend=backend)
    np.testing.assert_array_equal(
        micro.run(firmware, inputs).outputs, host_reference(model, inputs)
    )


@requires_toolchain
def test_int8_dense_head_is_tensorized_too(tmp_path):
    # Legalized matmul indexes in int64: the micro-kernel's stride argument must still be int32.
    model = pla_int8(2, 24, 8, head=3)
    lowered = dsp.apply_dsp(model, micro.get_board("mps2-an386"))
    calls = [
        _extern_calls(f, dsp.MICRO_KERNEL) + _extern_calls(f, dsp.MICRO_KERNEL_X4)
        for f in lowered.functions.values()
        if isinstance(f, tvm.tirx.PrimFunc)
    ]
    assert sorted(calls) == [1, 2]  # the head; the operator's centroids and affine map
    inputs = random_inputs(model, 3)
    firmware = micro.build(lowered, "mps2-an386", tmp_path / "dsp", backend="c")
    np.testing.assert_array_equal(
        micro.run(firmware, inputs).outputs, host_reference(model, inputs)
    )


@requires_toolchain
def test_board_without_dsp_gets_the_plain_build(tmp_path):
    model = pla_int8(2, 24, 8)
    inputs = random_inputs(model, 3)
    firmware = micro.build(model, "mps2-an385", tmp_path / "m3", backend="c")
    assert dsp.MICRO_KERNEL not in (firmware.out_dir / "src" / "kernels.c").read_text()
    np.testing.assert_array_equal(
        micro.run(firmware, inputs).outputs, host_reference(model, inputs)
    )


def _tuned_kernels(mod: tvm.IRModule) -> list[str]:
    return [
        gvar.name_hint
        for gvar, func in mod.functions.items()
        if isinstance(func, tvm.tirx.PrimFunc) and func.attrs.get("tirx.is_scheduled", False)
    ]


@requires_toolchain
def test_tuning_on_a_dsp_board_uses_the_micro_kernel_and_its_database_applies(tmp_path):
    model = pla_int8(3, 64, 16)
    inputs = random_inputs(model, 4)
    db = tmp_path / "tune"
    tune(
        model, "mps2-an386", db, max_trials=2, trials_per_iteration=2,
        strategy=ms.search_strategy.ReplayTrace(), progress=False,
    )  # fmt: skip
    applied = apply_database(model, "mps2-an386", db)  # what `pla-tvm compile --db` does
    assert _tuned_kernels(applied) == ["cluster_gated_linear_int8"]
    assert _extern_calls(applied["cluster_gated_linear_int8"], dsp.MICRO_KERNEL_X4) == 1
    tuned = micro.build(applied, "mps2-an386", tmp_path / "tuned")
    untuned = micro.build(model, "mps2-an386", tmp_path / "untuned")
    np.testing.assert_array_equal(
        micro.run(tuned, inputs).outputs, micro.run(untuned, inputs).outputs
    )
    np.testing.assert_array_equal(micro.run(tuned, inputs).outputs, host_reference(model, inputs))


_APPLY_IN_A_FRESH_PROCESS = """
import sys
from micro.tuning import apply_database
from tests.micro.test_dsp import pla_int8
applied = apply_database(pla_int8(3, 64, 16), "mps2-an386", sys.argv[1])
print(applied["cluster_gated_linear_int8"].script())
"""


@requires_toolchain
def test_a_tuning_database_applies_in_another_process(tmp_path):
    # Its records name tensor intrinsics that are registered on demand: preparing the module
    # must register them before the database is read, as `pla-tvm compile --db` does.
    db = tmp_path / "tune"
    tune(
        pla_int8(3, 64, 16), "mps2-an386", db, max_trials=2, trials_per_iteration=2,
        strategy=ms.search_strategy.ReplayTrace(), progress=False,
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", _APPLY_IN_A_FRESH_PROCESS, str(db)],
        capture_output=True, text=True, cwd=Path(__file__).parents[2], check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert f'"{dsp.REQUANTIZE_KERNEL}"' in result.stdout
