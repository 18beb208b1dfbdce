"""Static memory planning for the intermediate tensors of a model.

Intermediates live in one statically allocated arena. Two tensors may share bytes when their
lifetimes (from the step that writes one to the last step that reads it) do not overlap; a greedy
placement of the largest tensors first, each at the lowest offset that does not collide with an
already-placed tensor alive at the same time, gives a small arena that is known at build time
(so flash/RAM can be checked before anything runs and nothing is allocated on the device).
"""

from __future__ import annotations

from dataclasses import dataclass

from .graph import Graph

ALIGNMENT = 16
"""Byte alignment of every planned tensor, constant and workspace block (enough for MVE)."""


def align_up(value: int, alignment: int = ALIGNMENT) -> int:
    """Round ``value`` up to a multiple of ``alignment``.

    Parameters
    ----------
    value : int
        Size or offset in bytes.
    alignment : int
        A power of two.

    Returns
    -------
    int
        The smallest multiple of ``alignment`` that is ``>= value``.
    """
    return (value + alignment - 1) & ~(alignment - 1)


@dataclass(frozen=True)
class MemoryPlan:
    """Where each intermediate tensor lives in the arena.

    Attributes
    ----------
    offsets : dict of str to int
        Byte offset of each intermediate tensor.
    arena_bytes : int
        Size of the arena.
    peak_step : int or None
        Index of the step at which the most intermediate bytes are alive (None without
        intermediates).
    peak_tensors : tuple of str
        The intermediates alive at that step, largest first: what makes the arena's size.
    """

    offsets: dict[str, int]
    arena_bytes: int
    peak_step: int | None = None
    peak_tensors: tuple[str, ...] = ()


def _lifetimes(graph: Graph) -> dict[str, tuple[int, int]]:
    spans: dict[str, tuple[int, int]] = {}
    for index, step in enumerate(graph.steps):
        for name in step.outputs:
            if name in graph.intermediates:
                spans.setdefault(name, (index, index))
        for name in step.inputs:
            if name in spans:
                spans[name] = (spans[name][0], index)
    return spans


def plan_memory(graph: Graph, alignment: int = ALIGNMENT) -> MemoryPlan:
    """Assign arena offsets to the intermediates of ``graph``.

    Parameters
    ----------
    graph : Graph
        The model.
    alignment : int
        Alignment of each tensor's offset.

    Returns
    -------
    MemoryPlan
        Offsets and the arena size (0 when there are no intermediates).
    """
    spans = _lifetimes(graph)
    order = sorted(spans, key=lambda n: (-graph.intermediates[n].nbytes, n))
    placed: list[tuple[int, int, tuple[int, int]]] = []  # (offset, size, lifetime)
    offsets: dict[str, int] = {}
    for name in order:
        size = align_up(graph.intermediates[name].nbytes, alignment)
        first, last = spans[name]
        busy = sorted((o, s) for o, s, (born, dies) in placed if born <= last and first <= dies)
        offset = 0
        for other_offset, other_size in busy:
            if offset + size <= other_offset:
                break
            offset = max(offset, align_up(other_offset + other_size, alignment))
        offsets[name] = offset
        placed.append((offset, size, (first, last)))
    arena = max((o + s for o, s, _ in placed), default=0)
    peak_step, peak_tensors = _peak(graph, spans)
    return MemoryPlan(offsets, arena, peak_step, peak_tensors)


def _peak(graph: Graph, spans: dict[str, tuple[int, int]]) -> tuple[int | None, tuple[str, ...]]:
    """The step with the most intermediate bytes alive, and those tensors (largest first)."""
    best: tuple[int, int | None, tuple[str, ...]] = (0, None, ())
    for step in range(len(graph.steps)):
        alive = [n for n, (born, dies) in spans.items() if born <= step <= dies]
        total = sum(graph.intermediates[n].nbytes for n in alive)
        if total > best[0]:
            alive.sort(key=lambda n: (-graph.intermediates[n].nbytes, n))
            best = (total, step, tuple(alive))
    return best[1], best[2]
