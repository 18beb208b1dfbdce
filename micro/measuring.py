"""Measuring a kernel schedule in QEMU: the builder and runners :mod:`micro.tuning` searches with.

:class:`QemuBuilder` links each candidate schedule into a one-kernel benchmark firmware (the
kernel called on zeroed buffers in the static arena, through the same code generation as
:func:`micro.build`); :class:`QemuRunner` executes it in QEMU, in the sandbox of
:mod:`micro.sandbox`, and reports the exact instruction count as the candidate's cost (in
"seconds" at one instruction per clock cycle of the board, the unit MetaSchedule expects). The
count comes from the counting plugin, so it is identical between runs whatever the host's load.
Candidates are built and run in parallel threads (TVM's lowering releases the GIL; GCC and QEMU
are subprocesses). A candidate that fails to build, faults or hangs becomes a failed result with
the error's name and message; it never stops the search. :func:`measure_counts` is shared with
the RPC measuring server (:mod:`micro.rpc_server`), so local and remote counts are the same.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import tvm
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.builder import BuilderInput, BuilderResult, PyBuilder
from tvm.s_tir.meta_schedule.runner import (
    PyRunner,
    PyRunnerFuture,
    RunnerInput,
    RunnerResult,
)
from tvm.tirx.buffer import is_buffer_var

from . import contract
from .api import build_graph
from .boards import Board
from .counter import marker_addresses, plugin_option, plugin_path, read_counts
from .errors import ToolchainNotFoundError
from .graph import Graph, Step, TensorInfo
from .qemu import run_firmware
from .toolchain import Toolchain

_KERNEL = "main"
_BENCH_STACK_BYTES = 4096
_BENCH_HEAP_BYTES = 4096


def _default_workers() -> int:
    """One worker per host core: each candidate keeps one core busy in GCC or QEMU."""
    return os.cpu_count() or 1


def search_target(board: Board) -> tvm.target.Target:
    """The target MetaSchedule searches (and applies records) for on a board.

    The board's LLVM target, single core (the firmware runs parallel loops serially), also when
    the candidates are compiled with the C back end: the schedule is back-end independent.

    Parameters
    ----------
    board : Board
        Target board.

    Returns
    -------
    tvm.target.Target
        Target for tuning and for :func:`apply_database`.
    """
    return tvm.target.Target({**board.tvm_target("llvm"), "num-cores": 1})


def benchmark_graph(func: tvm.tirx.PrimFunc) -> Graph:
    """A graph that calls one kernel on buffers for all of its parameters.

    Parameters
    ----------
    func : tvm.tirx.PrimFunc
        The kernel (static shapes).

    Returns
    -------
    Graph
        One step; every parameter is a buffer of the arena (the model's input and output are
        one-byte placeholders the harness needs).
    """
    params = [p for p in func.params if is_buffer_var(p)]
    names = [f"arg{i}" for i in range(len(params))]
    graph = Graph(TensorInfo("input", (1,), "uint8"), TensorInfo("output", (1,), "uint8"))
    graph.intermediates = {
        name: TensorInfo(name, tuple(int(d) for d in p.shape), str(p.dtype))
        for name, p in zip(names, params)
    }
    graph.steps = [Step(_KERNEL, (), tuple(names))]  # all "outputs": alive together
    return graph


def measure_counts(
    elf: Path,
    board: Board,
    toolchain: Toolchain,
    plugin: Path,
    repeats: int,
    timeout: float,
    sandbox: bool = True,
) -> list[int]:
    """Run a benchmark firmware in QEMU and return the exact instructions of each kernel call.

    Shared by the local runner and the RPC server, so both measure in exactly the same way.

    Parameters
    ----------
    elf : Path
        Benchmark firmware (from :class:`QemuBuilder`).
    board : Board
        Board it was built for.
    toolchain : Toolchain
        Provides QEMU and ``nm``.
    plugin : Path
        Compiled counting plugin.
    repeats : int
        Kernel calls (one count each).
    timeout : float
        Seconds of wall time before the run counts as hung.
    sandbox : bool
        Confine QEMU to the run folder (:mod:`micro.sandbox`; default).

    Returns
    -------
    list of int
        One instruction count per call.

    Raises
    ------
    ToolchainNotFoundError
        If the plugin was not built (no host C compiler).
    FirmwareError
        If the firmware faults, hangs or exits abnormally (subclasses say which).
    """
    if not plugin.exists():
        raise ToolchainNotFoundError("tuning needs the counting plugin: install a host `cc`")
    with tempfile.TemporaryDirectory(prefix="run-", dir=elf.parent) as work:
        work_dir = Path(work)
        (work_dir / contract.INPUT_FILE).write_bytes(bytes(repeats))
        extra = plugin_option(plugin, marker_addresses(toolchain, elf))
        run_firmware(
            toolchain, board, elf, work_dir, timeout, extra, read_only=[plugin], sandbox=sandbox
        )
        return [int(c) for c in read_counts(work_dir)]


def error_message(exc: BaseException) -> str:
    """How a failed candidate's error is recorded: ``"<ExceptionClass>: <message>"``."""
    return f"{type(exc).__name__}: {exc}"


@derived_object
class QemuBuilder(PyBuilder):
    """Links each candidate kernel into a benchmark firmware for the board, in parallel.

    Parameters
    ----------
    board : Board
        Target board.
    work_dir : Path
        Where candidate projects are written.
    toolchain : Toolchain
        Cross tools.
    backend : {"c", "llvm"}
        Kernel back end.
    max_workers : int, optional
        Candidates built at the same time (default: the host's cores). Threads suffice: TVM's
        lowering, most of a build, runs without the GIL, and GCC is a subprocess.
    """

    def __init__(
        self,
        board: Board,
        work_dir: Path,
        toolchain: Toolchain,
        backend: str,
        max_workers: int | None = None,
    ) -> None:
        super().__init__()
        self.board, self.work_dir = board, work_dir
        self.toolchain, self.backend = toolchain, backend
        self.max_workers = max_workers or _default_workers()

    def _build_one(self, mod: tvm.IRModule) -> str:
        out_dir = self.work_dir / f"candidate-{uuid.uuid4().hex[:12]}"
        firmware = build_graph(
            mod,
            benchmark_graph(mod[_KERNEL]),
            self.board,
            out_dir,
            self.toolchain,
            backend=self.backend,
            entry="bench",
            stack_bytes=_BENCH_STACK_BYTES,
            heap_bytes=_BENCH_HEAP_BYTES,
        )
        return str(firmware.elf)

    def build(self, build_inputs: list[BuilderInput]) -> list[BuilderResult]:
        """Build one firmware per candidate; a failure becomes that candidate's error."""
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="micro-build") as pool:
            futures = [pool.submit(self._build_one, c.mod) for c in build_inputs]
        # Any exception (also TVM's own, from code generation) fails only its candidate.
        return [
            BuilderResult(None, error_message(f.exception()))
            if f.exception()
            else BuilderResult(f.result(), None)
            for f in futures
        ]


@derived_object
class PoolFuture(PyRunnerFuture):
    """A candidate's measurement running in a worker thread.

    Parameters
    ----------
    future : concurrent.futures.Future
        Resolves to the instruction counts of the candidate.
    clock_hz : int
        The board's clock, to express counts as seconds at one instruction per cycle.
    """

    def __init__(self, future: Future, clock_hz: int) -> None:
        super().__init__()
        self._future, self._clock_hz = future, clock_hz

    def done(self) -> bool:
        return self._future.done()

    def result(self) -> RunnerResult:
        """The counts as run times, or the error (any exception fails only this candidate)."""
        exc = self._future.exception()
        if exc is not None:
            return RunnerResult(None, error_message(exc))
        return RunnerResult([c / self._clock_hz for c in self._future.result()], None)


def submit_all(
    pool: ThreadPoolExecutor,
    measure: Callable[[Path], list[int]],
    runner_inputs: Sequence[RunnerInput],
    board: Board,
) -> list[PoolFuture]:
    """Start measuring every candidate in ``pool``; the futures MetaSchedule will poll.

    Parameters
    ----------
    pool : ThreadPoolExecutor
        The runner's workers.
    measure : callable
        ELF path to instruction counts.
    runner_inputs : sequence of RunnerInput
        Candidates (``artifact_path`` is the ELF).
    board : Board
        Supplies the clock.

    Returns
    -------
    list of PoolFuture
        One per candidate, in order.
    """
    return [
        PoolFuture(pool.submit(measure, Path(c.artifact_path)), board.clock_hz)
        for c in runner_inputs
    ]


@derived_object
class QemuRunner(PyRunner):
    """Runs benchmark firmware in QEMU, in parallel; the cost is the exact instruction count.

    Candidate sources stay in the work folder (about 0.5 MB each) for inspection.

    Parameters
    ----------
    board : Board
        Board the firmware was built for.
    toolchain : Toolchain
        Provides QEMU and ``nm``.
    repeats : int
        Kernel calls per candidate (one measurement each).
    timeout : float
        Seconds before a candidate is considered hung.
    max_workers : int, optional
        QEMU processes at the same time (default: the host's cores). Counts do not depend on
        it: they are exact instruction counts, not timings.
    sandbox : bool
        Confine each QEMU run to its run folder (:mod:`micro.sandbox`; default).
    """

    def __init__(
        self,
        board: Board,
        toolchain: Toolchain,
        repeats: int,
        timeout: float,
        max_workers: int | None = None,
        sandbox: bool = True,
    ) -> None:
        super().__init__()
        self.board, self.toolchain = board, toolchain
        self.repeats, self.timeout, self.sandbox = repeats, timeout, sandbox
        self._pool = ThreadPoolExecutor(max_workers or _default_workers(), "micro-run")

    def measure(self, elf: Path) -> list[int]:
        """Measure one firmware image (see :func:`measure_counts`)."""
        plugin = plugin_path(elf.parent)
        return measure_counts(
            elf, self.board, self.toolchain, plugin, self.repeats, self.timeout, self.sandbox
        )

    def run(self, runner_inputs: list[RunnerInput]) -> list[PoolFuture]:
        """Start every candidate; MetaSchedule polls the futures."""
        return submit_all(self._pool, self.measure, runner_inputs, self.board)
