"""Tuning kernels with MetaSchedule, each candidate measured in QEMU.

MetaSchedule's own runners load modules on the host and cannot run Arm code. Here a builder
links each candidate schedule into a one-kernel benchmark firmware (the kernel called on zeroed
buffers in the static arena, through the same code generation as :func:`micro.build`), and a
runner executes it in QEMU and reports the exact instruction count as the candidate's cost (in
"seconds" at one instruction per clock cycle of the board, the unit MetaSchedule expects).
:func:`tune` runs the search over every kernel of a model and returns the module with the best
schedules applied, ready for :func:`micro.build`.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import tvm
from tvm import relax
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
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
from .boards import Board, get_board
from .counter import marker_addresses, plugin_option, plugin_path, read_counts
from .errors import MicroError, ToolchainNotFoundError
from .graph import Graph, Step, TensorInfo
from .lowering import lower_to_kernel_calls
from .qemu import run_firmware
from .toolchain import Toolchain, find_toolchain

_KERNEL = "main"
_BENCH_STACK_BYTES = 4096
_BENCH_HEAP_BYTES = 4096


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


@derived_object
class QemuBuilder(PyBuilder):
    """Links each candidate kernel into a benchmark firmware for the board.

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
    """

    def __init__(self, board: Board, work_dir: Path, toolchain: Toolchain, backend: str) -> None:
        super().__init__()
        self.board, self.work_dir = board, work_dir
        self.toolchain, self.backend = toolchain, backend

    def build(self, build_inputs: list[BuilderInput]) -> list[BuilderResult]:
        """Build one firmware per candidate; a failure becomes that candidate's error."""
        results = []
        for candidate in build_inputs:
            out_dir = self.work_dir / f"candidate-{uuid.uuid4().hex[:12]}"
            try:
                firmware = build_graph(
                    candidate.mod,
                    benchmark_graph(candidate.mod[_KERNEL]),
                    self.board,
                    out_dir,
                    self.toolchain,
                    backend=self.backend,
                    entry="bench",
                    stack_bytes=_BENCH_STACK_BYTES,
                    heap_bytes=_BENCH_HEAP_BYTES,
                )
                results.append(BuilderResult(str(firmware.elf), None))
            except MicroError as exc:
                results.append(BuilderResult(None, f"{type(exc).__name__}: {exc}"))
        return results


@derived_object
class _Finished(PyRunnerFuture):
    """A runner future whose result is already known (QEMU runs synchronously)."""

    def __init__(self, result: RunnerResult) -> None:
        super().__init__()
        self._result = result

    def done(self) -> bool:
        return True

    def result(self) -> RunnerResult:
        return self._result


@derived_object
class QemuRunner(PyRunner):
    """Runs benchmark firmware in QEMU; the cost is the exact instruction count.

    Candidate projects stay in the work folder (about 0.5 MB each) for inspection.

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
    """

    def __init__(self, board: Board, toolchain: Toolchain, repeats: int, timeout: float) -> None:
        super().__init__()
        self.board, self.toolchain = board, toolchain
        self.repeats, self.timeout = repeats, timeout

    def _measure(self, elf: Path) -> list[float]:
        plugin = plugin_path(elf.parent)
        if not plugin.exists():
            raise ToolchainNotFoundError("tuning needs the counting plugin: install a host `cc`")
        with tempfile.TemporaryDirectory(prefix="run-", dir=elf.parent) as work:
            work_dir = Path(work)
            (work_dir / contract.INPUT_FILE).write_bytes(bytes(self.repeats))
            extra = plugin_option(plugin, marker_addresses(self.toolchain, elf))
            run_firmware(self.toolchain, self.board, elf, work_dir, self.timeout, extra)
            counts = read_counts(work_dir)
        return [float(c) / self.board.clock_hz for c in counts]

    def run(self, runner_inputs: list[RunnerInput]) -> list[_Finished]:
        """Run every candidate now and wrap the results as finished futures."""
        futures = []
        for candidate in runner_inputs:
            try:
                result = RunnerResult(self._measure(Path(candidate.artifact_path)), None)
            except MicroError as exc:
                result = RunnerResult(None, f"{type(exc).__name__}: {exc}")
            futures.append(_Finished(result))
        return futures


def tune(
    mod: tvm.IRModule,
    board: str | Board,
    work_dir: str | Path,
    *,
    max_trials: int = 64,
    trials_per_iteration: int = 16,
    backend: str = "c",
    cost_model: str = "random",
    repeats: int = 3,
    timeout: float = 60.0,
    seed: int | None = 0,
    toolchain_path: str | Path | None = None,
) -> tvm.IRModule:
    """Search schedules for every kernel of a model, measuring candidates in QEMU.

    Parameters
    ----------
    mod : tvm.IRModule
        Relax module, as for :func:`micro.build`.
    board : str or Board
        Board whose QEMU model measures the candidates.
    work_dir : str or Path
        MetaSchedule database and candidate projects.
    max_trials : int
        Candidates measured over all kernels.
    trials_per_iteration : int
        Candidates per search round.
    backend : {"c", "llvm"}
        Kernel back end of the candidates (use the one you will build with).
    cost_model : str
        MetaSchedule cost model: ``"random"`` or ``"xgb"`` (needs xgboost).
    repeats : int
        Measurements per candidate.
    timeout : float
        Seconds before a candidate counts as hung.
    seed : int, optional
        Search seed.
    toolchain_path : str or Path, optional
        As for :func:`micro.build`.

    Returns
    -------
    tvm.IRModule
        The lowered module with the best schedule found for each kernel applied; pass it to
        :func:`micro.build` with the same board and backend.
    """
    toolchain = find_toolchain(toolchain_path)
    board = get_board(board)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    target = tvm.target.Target({**board.tvm_target("llvm"), "num-cores": 1})
    lowered = lower_to_kernel_calls(mod)
    ms.relax_integration.tune_relax(
        lowered,
        {},
        target,
        str(work_dir),
        max_trials,
        num_trials_per_iter=trials_per_iteration,
        builder=QemuBuilder(board, work_dir / "candidates", toolchain, backend),
        runner=QemuRunner(board, toolchain, repeats, timeout),
        cost_model=cost_model,
        seed=seed,
    )
    with target, tvm.transform.PassContext(opt_level=3):
        return relax.transform.MetaScheduleApplyDatabase(str(work_dir))(lowered)
