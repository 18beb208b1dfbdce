"""Tuning kernels with MetaSchedule, each candidate measured in QEMU.

MetaSchedule's own runners load modules on the host and cannot run Arm code; the builder and
runner of :mod:`micro.measuring` link each candidate into a one-kernel benchmark firmware and
count its instructions in QEMU, so the search compares schedules, not noise. :func:`tune` runs
the search over every kernel of a model with a progress bar, writes the database and a summary
to its work folder, and returns the module with the best schedules applied
(:func:`apply_database`, which refuses a database of another core or model), ready for
:func:`micro.build`. On boards with a kernel library (:func:`micro.kernels.library_for`: DSP or
scalar) the module is first prepared for its micro-kernels
(:func:`micro.kernels.prepare_for_tuning`), as :func:`micro.build` schedules it by default:
every candidate then calls the micro-kernels and the search tunes the rest. For measuring on
other machines see :mod:`micro.rpc_runner`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType

import tvm
from tqdm.auto import tqdm
from tvm import relax, s_tir
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.arg_info import ArgInfo
from tvm.s_tir.meta_schedule.builder import BuilderInput, BuilderResult, PyBuilder
from tvm.s_tir.meta_schedule.measure_callback import MeasureCallback, PyMeasureCallback
from tvm.s_tir.meta_schedule.runner import (
    PyRunner,
    RunnerInput,
    RunnerResult,
)
from tvm.s_tir.meta_schedule.search_strategy import SearchStrategy
from tvm.s_tir.meta_schedule.space_generator import SpaceGenerator

from . import kernels as kernel_libraries
from .boards import Board, get_board
from .errors import MicroError
from .measuring import QemuBuilder, QemuRunner, search_target
from .schedules import fuse_elementwise
from .toolchain import find_toolchain

logger = logging.getLogger(__name__)

_MS_LOGGER = "tvm.s_tir.meta_schedule"
_MAX_ERRORS_KEPT = 5  # error messages kept per kernel in the summary
SUMMARY_FILE = "tuning_summary.json"
DATABASE_FILES = ("database_workload.json", "database_tuning_record.json")


class DatabaseNotFoundError(MicroError, FileNotFoundError):
    """The folder given to :func:`apply_database` holds no MetaSchedule JSON database."""


@dataclass
class KernelSummary:
    """Search results for one kernel (a MetaSchedule task).

    Attributes
    ----------
    trials : int
        Candidates measured.
    failed : int
        Candidates that failed to build or run.
    best_instructions : int or None
        Fewest instructions per call among the successful candidates.
    errors : list of str
        The failed candidates' messages (first few).
    default_instructions : int or None
        Instructions per call of the kernel's default schedule (what :func:`micro.build` does
        without a database), measured the same way and committed to the database as a
        candidate; None if it failed.
    """

    trials: int = 0
    failed: int = 0
    best_instructions: int | None = None
    errors: list[str] = field(default_factory=list)
    default_instructions: int | None = None


@derived_object
class ProgressCallback(PyMeasureCallback):
    """Shows a progress bar over the trials with the best cost so far and collects a summary.

    Parameters
    ----------
    board : Board
        Supplies the clock (run times back to instruction counts).
    kernels : sequence of str
        Task names, so that kernels the budget never reaches show up with no trials.
    total : int
        Trials expected (the bar's length).
    disable : bool
        No bar (the summary is still collected).
    """

    def __init__(
        self, board: Board, kernels: Sequence[str], total: int, disable: bool = False
    ) -> None:
        super().__init__()
        self.board = board
        self.kernels = {name: KernelSummary() for name in kernels}
        self.bar = tqdm(total=total, unit="trial", desc="tuning", disable=disable)

    def apply(
        self,
        task_scheduler: ms.task_scheduler.TaskScheduler,
        task_id: int,
        measure_candidates: list,
        builder_results: list[BuilderResult],
        runner_results: list[RunnerResult],
    ) -> None:
        """Record one batch of measured candidates of a task and update the bar."""
        name = str(task_scheduler.tasks_[task_id].ctx.task_name)
        kernel = self.kernels.setdefault(name, KernelSummary())
        for built, ran in zip(builder_results, runner_results):
            kernel.trials += 1
            error = built.error_msg or ran.error_msg
            if error is not None:
                kernel.failed += 1
                if len(kernel.errors) < _MAX_ERRORS_KEPT:
                    kernel.errors.append(str(error))
                continue
            seconds = [float(s) for s in ran.run_secs]
            instructions = round(sum(seconds) / len(seconds) * self.board.clock_hz)
            if kernel.best_instructions is None or instructions < kernel.best_instructions:
                kernel.best_instructions = instructions
        if self.bar.n + len(runner_results) > self.bar.total:  # MetaSchedule may overshoot
            self.bar.total = self.bar.n + len(runner_results)
        self.bar.update(len(runner_results))
        self.bar.set_postfix(
            kernel=name[:24],
            best=kernel.best_instructions,
            failed=sum(k.failed for k in self.kernels.values()),
        )

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()


def default_schedule(mod: tvm.IRModule, library: ModuleType | bool | None) -> s_tir.Schedule:
    """The schedule :func:`micro.build` gives a prepared kernel without a database.

    Parameters
    ----------
    mod : tvm.IRModule
        One kernel as MetaSchedule sees it (prepared by
        :func:`micro.kernels.prepare_for_tuning`).
    library : module or None
        The kernel library the module was prepared for (:func:`micro.kernels.resolve`), None for
        TVM's plain lowering; True and False (the former ``dsp`` flag) mean the DSP library and
        none.

    Returns
    -------
    tvm.s_tir.Schedule
        Its DSP blocks tensorized and element-wise chains fused, with the trace of those steps.
    """
    sch = s_tir.Schedule(mod)
    if isinstance(library, bool):
        library = kernel_libraries.dsp_library if library else None
    kernel_libraries.tensorize_annotated(sch, library)
    fuse_elementwise(sch)
    return sch


def _seed_default_schedules(
    tasks: Sequence, target: tvm.target.Target, work_dir: Path, builder: PyBuilder,
    runner: PyRunner, progress: ProgressCallback, library: ModuleType | None,
) -> None:
    """Measure every kernel's default schedule and commit it to the database as a candidate.

    MetaSchedule's search space need not contain the default schedule (fused element-wise
    chains are not one of its rules), so without it a short search could end worse than not
    tuning at all. As a measured record it is one more candidate: the database's best is never
    slower than the default, and the evolutionary search starts from it.
    """
    database = ms.database.JSONDatabase(*(str(work_dir / name) for name in DATABASE_FILES))
    schedules = [default_schedule(task.dispatched[0], library) for task in tasks]
    built = builder.build([BuilderInput(sch.mod, target) for sch in schedules])
    runs = runner.run([
        RunnerInput(b.artifact_path, "cpu", ArgInfo.from_entry_func(sch.mod))
        for b, sch in zip(built, schedules, strict=True) if b.error_msg is None
    ])  # fmt: skip
    results = iter(run.result() for run in runs)
    for task, sch, build in zip(tasks, schedules, built, strict=True):
        result = None if build.error_msg else next(results)
        summary = progress.kernels.setdefault(task.task_name, KernelSummary())
        # Every kernel's workload is in the database, measured or not: a kernel that is not
        # searched (searched) and whose default failed keeps that default when applied.
        workload = database.commit_workload(task.dispatched[0])
        if result is None or result.error_msg is not None:
            logger.warning("default schedule of %s failed: %s", task.task_name,
                           build.error_msg or result.error_msg)
            continue
        seconds = [float(s) for s in result.run_secs]
        summary.default_instructions = round(sum(seconds) / len(seconds) * progress.board.clock_hz)
        database.commit_tuning_record(ms.database.TuningRecord(
            sch.trace, workload, seconds, target,
            ArgInfo.from_entry_func(sch.mod, remove_preproc=True),
        ))  # fmt: skip


#: A kernel none of whose blocks iterates over this many points is not searched (its default
#: schedule is measured and recorded as every kernel's is): a search costs minutes for some of
#: them (TFLite's integer softmax over five logits has some fifteen stages) and gains nothing
#: measurable.
TINY_KERNEL_POINTS = 256


def searched(task) -> bool:
    """Whether :func:`tune` searches an extracted task: not a tiny kernel
    (:data:`TINY_KERNEL_POINTS`)."""
    sch = s_tir.Schedule(task.dispatched[0])
    largest = 0
    for block_rv in sch.get_child_blocks(sch.get_sblock("root")):
        points = 1
        for iv in sch.get(block_rv).iter_vars:
            extent = iv.dom.extent
            points *= int(extent) if isinstance(extent, tvm.tirx.IntImm) else TINY_KERNEL_POINTS
        largest = max(largest, points)
    return largest >= TINY_KERNEL_POINTS


def _quiet_metaschedule(work_dir: Path) -> None:
    """Send MetaSchedule's per-round tables to its log files only (``work_dir/logs``).

    MetaSchedule copies the level of its top logger to its console handler; WARNING keeps the
    console to problems while the files under ``logs/`` still get everything. Its logging set-up
    also lists the handlers already on that logger by name and fails on an unnamed one (pytest's
    capture handlers end up there after a first tuning run), so those are removed.
    """
    ms_logger = logging.getLogger(_MS_LOGGER)
    if ms_logger.level in (logging.NOTSET, logging.DEBUG, logging.INFO):
        ms_logger.setLevel(logging.WARNING)
    for handler in [h for h in ms_logger.handlers if h.get_name() is None]:
        ms_logger.removeHandler(handler)
    logger.info("MetaSchedule logs: %s", work_dir / "logs")


def _write_summary(progress: ProgressCallback, work_dir: Path, seconds: float) -> None:
    """Write ``tuning_summary.json`` (read by ``pla-tvm tune``) and log one line per kernel."""
    path = work_dir / SUMMARY_FILE
    summary = {
        "board": progress.board.name,
        "seconds": round(seconds, 1),
        "kernels": {name: asdict(k) for name, k in sorted(progress.kernels.items())},
    }
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    for name, kernel in sorted(progress.kernels.items()):
        logger.info(
            "%s: best %s instructions, %d trials, %d failed",
            name,
            kernel.best_instructions,
            kernel.trials,
            kernel.failed,
        )


def apply_database(
    mod: tvm.IRModule, board: str | Board, db_dir: str | Path, *, dsp: bool | None = None,
    plain: bool = False,
) -> tvm.IRModule:
    """Lower a model and apply the best schedules of a tuning database.

    The model is prepared as :func:`tune` prepared it (same ``dsp``/``plain``), so that its
    kernels match
    the database's. Kernels without a record keep TVM's default schedule (and :func:`micro.build`
    schedules their int8 dot products as usual), so a partial database is fine.

    Parameters
    ----------
    mod : tvm.IRModule
        Relax module, as for :func:`micro.build`.
    board : str or Board
        The board the database was tuned for.
    db_dir : str or Path
        Folder with ``database_workload.json`` and ``database_tuning_record.json`` (the
        ``work_dir`` of :func:`tune`).
    dsp : bool, optional
        As given to :func:`tune` (None: the board's kernel library, see
        :func:`micro.kernels.resolve`).
    plain : bool
        As given to :func:`tune` (TVM's plain lowering, no micro-kernels).

    Returns
    -------
    tvm.IRModule
        The lowered module with the tuned kernels; pass it to :func:`micro.build` with the same
        board.

    Raises
    ------
    DatabaseNotFoundError
        If ``db_dir`` lacks the database files, holds no record, holds records for another core,
        or lacks a record for one of this module's kernels (:func:`tune` records every kernel's
        default schedule first, so a database of this build has them all: a missing one means
        another model or ``dsp``).
    """
    db_dir = Path(db_dir)
    missing = [name for name in DATABASE_FILES if not (db_dir / name).is_file()]
    if missing:
        raise DatabaseNotFoundError(
            f"{db_dir} is not a tuning database: {', '.join(missing)} missing (run tune first)"
        )
    board = get_board(board)
    kernel_libraries.register()
    library = kernel_libraries.resolve(board, dsp=dsp, plain=plain)
    prepared = kernel_libraries.prepare_for_tuning(mod, board, library)
    _check_database_matches(prepared, board, db_dir)
    with search_target(board), tvm.transform.PassContext(opt_level=3):
        return relax.transform.MetaScheduleApplyDatabase(str(db_dir))(prepared)


def _check_database_matches(prepared: tvm.IRModule, board: Board, db_dir: Path) -> None:
    """Refuse a database with no record, or none for this module's kernels on this target."""
    paths = [str(db_dir / name) for name in DATABASE_FILES]
    try:
        database = ms.database.JSONDatabase(*paths, allow_missing=False)
    except Exception as exc:  # TVM raises its own error types for unreadable JSON lines
        intrinsic = re.search(r"TensorIntrin '(\w+)' is not registered", str(exc))
        if intrinsic:
            raise DatabaseNotFoundError(
                f"the database {db_dir} was tuned for another model or board: its schedules use "
                f"the micro-kernel {intrinsic.group(1)}, which this build does not; tune for "
                "this build"
            ) from None
        raise DatabaseNotFoundError(f"{db_dir} holds an unreadable tuning database: {exc}") from exc
    if len(database) == 0:
        raise DatabaseNotFoundError(
            f"{db_dir} holds no tuning records (empty database files: an interrupted tune?); "
            "tune again"
        )
    target = search_target(board)
    cpus = {str(record.target.attrs.get("mcpu", "")) for record in
            database.get_all_tuning_records()}
    if str(target.attrs.get("mcpu", "")) not in cpus:
        raise DatabaseNotFoundError(
            f"the database {db_dir} was tuned for {', '.join(sorted(cpus))}, not for "
            f"{board.name}'s {target.attrs.get('mcpu')}; tune for this board"
        )
    tasks = ms.relax_integration.extract_tasks(prepared, target)
    found = sum(database.has_workload(task.dispatched[0]) for task in tasks)
    if found < len(tasks):  # tune records every kernel's default schedule first
        raise DatabaseNotFoundError(
            f"the database {db_dir} has records for {found} of the model's {len(tasks)} "
            f"kernels: it was tuned for another model or DSP option (this build: {board.name}); "
            "tune for this build"
        )


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
    space: SpaceGenerator | str = "post-order-apply",
    strategy: SearchStrategy | str = "evolutionary",
    runner: PyRunner | None = None,
    workers: int | None = None,
    progress: bool = True,
    dsp: bool | None = None,
    sandbox: bool = True,
    plain: bool = False,
) -> tvm.IRModule:
    """Search schedules for every kernel of a model, measuring candidates in QEMU.

    Parameters
    ----------
    mod : tvm.IRModule
        Relax module, as for :func:`micro.build`.
    board : str or Board
        Board whose QEMU model measures the candidates.
    work_dir : str or Path
        MetaSchedule database (what :func:`apply_database` reads), ``logs/``, candidate projects
        and ``tuning_summary.json`` (per kernel: trials, failed, best instructions, errors).
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
    space : SpaceGenerator or str
        MetaSchedule space generator, e.g. one with board-specific schedule rules (passed to
        ``tune_relax``).
    strategy : SearchStrategy or str
        MetaSchedule search strategy (passed to ``tune_relax``); e.g.
        ``ms.search_strategy.ReplayTrace()`` samples schedules without the evolutionary search's
        per-round cost (seconds per kernel), which suits very small trial budgets.
    runner : PyRunner, optional
        Measures the candidates; default :class:`QemuRunner` on this host. Use
        :class:`micro.rpc_runner.RPCQemuRunner` to measure on machines behind a TVM RPC tracker.
    workers : int, optional
        Candidates built (and, with the default runner, run) at the same time; default the
        host's cores.
    progress : bool
        Show a progress bar with the best cost so far.
    dsp : bool, optional
        Prepare the kernels for a kernel library's micro-kernels as :func:`micro.build` does
        (:func:`micro.kernels.resolve`; None: the board's library, False: none, True: the DSP
        library). Pass the same value to :func:`apply_database`.
    sandbox : bool
        Confine the default runner's QEMU runs to their run folders (:mod:`micro.sandbox`;
        default). An RPC server decides this for itself.
    plain : bool
        TVM's plain lowering, no micro-kernels (as ``dsp=False``); pass it to
        :func:`apply_database` too.

    Returns
    -------
    tvm.IRModule
        The lowered module with the best schedule found for each kernel applied; pass it to
        :func:`micro.build` with the same board and backend.
    """
    toolchain = find_toolchain(toolchain_path)
    board = get_board(board)
    kernel_libraries.register()
    library = kernel_libraries.resolve(board, dsp=dsp, plain=plain)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    _quiet_metaschedule(work_dir)
    lowered = kernel_libraries.prepare_for_tuning(mod, board, library)
    target = search_target(board)
    tasks = ms.relax_integration.extract_tasks(lowered, target)
    kernels = [task.task_name for task in tasks]
    if max_trials < len(kernels) * trials_per_iteration:
        # MetaSchedule's first rounds give each kernel in turn trials_per_iteration candidates.
        logger.warning(
            "%d kernels x %d trials per iteration > max_trials=%d: kernels after the first %d"
            " may get no trials (raise max_trials or lower trials_per_iteration)",
            len(kernels),
            trials_per_iteration,
            max_trials,
            max(1, max_trials // trials_per_iteration),
        )
    callback = ProgressCallback(board, kernels, max_trials, disable=not progress)
    builder = QemuBuilder(board, work_dir / "candidates", toolchain, backend, workers)
    runner = runner or QemuRunner(board, toolchain, repeats, timeout, workers, sandbox)
    started = time.perf_counter()
    search = [task.task_name for task in tasks if searched(task)]
    try:
        _seed_default_schedules(tasks, target, work_dir, builder, runner, callback, library)
        if search:  # op_names=[] would mean every kernel
            ms.relax_integration.tune_relax(
                lowered,
                {},
                target,
                str(work_dir),
                max_trials,
                op_names=search,
                num_trials_per_iter=trials_per_iteration,
                builder=builder,
                runner=runner,
                cost_model=cost_model,
                measure_callbacks=[*MeasureCallback.create("default"), callback],
                space=space,
                strategy=strategy,
                seed=seed,
            )
    finally:
        callback.close()
    _write_summary(callback, work_dir, time.perf_counter() - started)
    return apply_database(mod, board, work_dir, dsp=dsp, plain=plain)
