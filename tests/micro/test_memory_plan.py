"""The arena plan's peak: which kernel runs and which tensors are alive when it peaks."""

from __future__ import annotations

from micro.graph import Graph, Step, TensorInfo
from micro.memplan import plan_memory


def _graph() -> Graph:
    """input → a → b → c; a residual read again by the last step (a lives until then)."""
    graph = Graph(TensorInfo("input", (8,), "int8"), TensorInfo("output", (8,), "int8"))
    graph.intermediates = {
        name: TensorInfo(name, (size,), "int8") for name, size in (("a", 64), ("b", 32),
                                                                   ("c", 16))
    }
    graph.steps = [Step("k0", ("input",), ("a",)), Step("k1", ("a",), ("b",)),
                   Step("k2", ("b",), ("c",)), Step("k3", ("c", "a"), ("output",))]
    return graph


def test_peak_names_the_step_and_the_tensors_alive_there():
    plan = plan_memory(_graph())
    # k2 reads b while it writes c, and a waits for k3: 112 bytes, more than at any other step.
    assert plan.peak_step == 2
    assert plan.peak_tensors == ("a", "b", "c")
    assert plan.arena_bytes >= 112


def test_a_graph_without_intermediates_has_no_peak():
    graph = Graph(TensorInfo("input", (8,), "int8"), TensorInfo("output", (8,), "int8"))
    graph.steps = [Step("k0", ("input",), ("output",))]
    plan = plan_memory(graph)
    assert (plan.arena_bytes, plan.peak_step, plan.peak_tensors) == (0, None, ())
