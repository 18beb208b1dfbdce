"""Reshape-like kernels become aliases: no call, no copy, no extra buffer, same outputs."""

from __future__ import annotations

import numpy as np
import pytest

import micro
from micro.graph import INPUT, OUTPUT, Graph, extract_graph
from micro.lowering import lower_to_kernel_calls
from micro.memplan import plan_memory

from .graphs import RESHAPE_PLACES, host_reference, random_inputs, requires_toolchain, with_reshape


def _graph(place: str) -> Graph:
    return extract_graph(lower_to_kernel_calls(with_reshape(place)))


def _reshape_kernels(graph: Graph) -> list[str]:
    return [k for k in graph.kernels if k.startswith("reshape")]


@pytest.mark.parametrize("place", ["input", "middle", "output"])
def test_reshapes_are_not_steps(place):
    graph = _graph(place)
    assert _reshape_kernels(graph) == []
    named = {t for step in graph.steps for t in step.inputs + step.outputs}
    assert named <= {INPUT, OUTPUT, *graph.constants, *graph.intermediates}


def test_reshape_of_input_is_read_in_place_and_needs_no_arena():
    graph = _graph("input")
    assert [(s.inputs, s.outputs) for s in graph.steps] == [((INPUT,), (OUTPUT,))]
    assert plan_memory(graph).arena_bytes == 0


def test_reshaped_result_is_written_straight_into_the_output():
    graph = _graph("output")
    assert graph.output.shape == (2, 3, 4) and graph.intermediates == {}
    assert graph.steps[0].outputs == (OUTPUT,)
    assert plan_memory(graph).arena_bytes == 0


def test_reshape_of_the_input_as_the_output_stays_a_copy():
    graph = _graph("input_to_output")
    assert [(s.inputs, s.outputs) for s in graph.steps] == [((INPUT,), (OUTPUT,))]
    assert _reshape_kernels(graph) == graph.kernels


def test_viewed_storage_lives_until_the_view_is_read():
    graph = _graph("middle")
    plan = plan_memory(graph)
    last = graph.steps[-1]
    read = [t for t in last.inputs if t in graph.intermediates]
    assert len(read) == 2  # the reshaped first matmul and the reshaped second one
    spans = sorted((plan.offsets[t], plan.offsets[t] + graph.intermediates[t].nbytes) for t in read)
    assert spans[0][1] <= spans[1][0]
    assert plan.arena_bytes == sum(graph.intermediates[t].nbytes for t in read)


@requires_toolchain
@pytest.mark.parametrize("place", RESHAPE_PLACES)
def test_firmware_with_reshapes_matches_host(tmp_path, place):
    model = with_reshape(place)
    inputs = random_inputs(model, 3)
    firmware = micro.build(model, board="mps2-an386", out_dir=tmp_path)
    result = micro.run(firmware, inputs)
    np.testing.assert_allclose(result.outputs, host_reference(model, inputs), rtol=1e-6, atol=1e-6)
    kernels = (tmp_path / "src" / "kernels.c").read_text()
    assert ("model_run_reshape" in kernels) == (place == "input_to_output")
