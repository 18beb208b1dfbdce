"""The public entry points: :func:`build` a Relax module into firmware, :func:`run` it in QEMU.

These functions only sequence the stages (lowering, graph extraction, memory planning, kernel
generation, entry point, firmware build, footprint, emulation); each stage lives in its own
module. Everything a later run needs is kept in the returned :class:`Firmware` and in
``metadata.json`` next to the image, from which :meth:`Firmware.load` gets it back.

:func:`build` is where a board name is resolved to its :class:`~micro.boards.Board` and where the
micro-kernels are registered (:func:`micro.kernels.register`); the stages below it take the
``Board``.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm

from . import contract
from . import kernels as kernel_libraries
from .aot import FORMAT_VERSION, write_entry_point
from .app import App
from .app import config_defines as app_config_defines
from .boards import Board, get_board
from .codegen import generate_kernels
from .counter import (
    build_counter_plugin,
    marker_addresses,
    plugin_option,
    plugin_path,
    read_counts,
)
from .errors import (
    FirmwareError,
    InvalidAppError,
    InvalidInputError,
    MetadataError,
    UnknownBoardError,
)
from .firmware import compile_and_link, write_project
from .footprint import Footprint, check_model_fits, measure, place_constants
from .graph import INPUT, OUTPUT, Graph, TensorInfo, extract_graph
from .memplan import ALIGNMENT, MemoryPlan, align_up, plan_memory
from .qemu import Report, run_firmware
from .schedules import schedule_unscheduled
from .toolchain import Toolchain, find_toolchain

logger = logging.getLogger(__name__)
_FULL_WARNING = 0.9
_C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: micro's description of a firmware folder, beside ``src/`` and ``build/``.
METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class Firmware:
    """A built firmware image and what is needed to run it.

    Attributes
    ----------
    elf : Path
        The image.
    out_dir : Path
        Project folder (``src/``, ``build/``, ``metadata.json``).
    board : Board
        Board it was built for.
    input, output : TensorInfo
        The model's input and output.
    footprint : Footprint
        Flash and RAM use.
    toolchain : Toolchain
        Programs used to build it (and to run it).
    backend : str
        Kernel back end, ``"c"`` or ``"llvm"``.
    quantization : dict or None
        Quantization metadata given to :func:`build`.
    counter_plugin : Path or None
        The exact instruction counter (None: SysTick counts only).
    markers : tuple of int
        Addresses of the counting markers in the image.
    memory : dict or None
        The RAM plan (:func:`memory_plan_summary`): the arena, the kernels' workspace, the
        input and output buffers, and the tensors alive at the arena's peak.
    app : App or None
        The user code the harness runs per input record (:class:`micro.App`), or None: the
        model once per record. A loaded firmware's app names the copies of its sources in
        ``src/``.
    """

    elf: Path
    out_dir: Path
    board: Board
    input: TensorInfo
    output: TensorInfo
    footprint: Footprint
    toolchain: Toolchain
    backend: str
    quantization: dict | None = None
    counter_plugin: Path | None = None
    markers: tuple[int, int] = (0, 0)
    memory: dict | None = None
    app: App | None = None

    @classmethod
    def load(cls, out_dir: str | Path, *, toolchain_path: str | Path | None = None) -> Firmware:
        """Load a firmware folder written by :func:`build`, to :func:`run` it without rebuilding.

        Parameters
        ----------
        out_dir : str or Path
            The ``out_dir`` given to :func:`build` (its ``metadata.json`` describes the image).
        toolchain_path : str or Path, optional
            As for :func:`build`: where QEMU and the binutils are, instead of ``PATH``.

        Returns
        -------
        Firmware
            The same description :func:`build` returned (counting plugin and markers included).

        Raises
        ------
        MetadataError
            If ``metadata.json`` is missing, unreadable, of another format version, or names a
            board, image or app source (the copy in ``src/``) that is not there.
        ToolchainNotFoundError
            If a program is missing.
        """
        out_dir = Path(out_dir).resolve()
        path = out_dir / METADATA_FILE
        fields = _read_metadata(path)
        elf = fields.pop("elf")
        if not elf.is_file():
            raise MetadataError(f"{path}: the image it names, {elf}, is missing (build again)")
        toolchain = find_toolchain(toolchain_path)
        plugin = plugin_path(elf.parent)
        return cls(
            elf=elf,
            out_dir=out_dir,
            toolchain=toolchain,
            counter_plugin=plugin if plugin.is_file() else None,
            markers=marker_addresses(toolchain, elf),
            **fields,
        )


@dataclass(frozen=True)
class RunResult:
    """Outcome of :func:`run`.

    Attributes
    ----------
    outputs : numpy.ndarray
        Model outputs, shape ``(N, *output_shape)``. With an app: every byte its steps wrote,
        in order, as a 1-D ``uint8`` array.
    instructions_per_inference : float
        Mean instructions per inference (with an app: per step).
    instructions_min, instructions_max : int
        Fastest and slowest inference (with an app: step).
    instruction_counts : numpy.ndarray or None
        Exact count of each inference (with an app: of each step, one per input record; None
        without the counting plugin).
    counting : str
        ``"plugin"`` (exact) or ``"systick"`` (ticks × instructions per tick).
    ticks_total : int
        SysTick ticks inside the model (with an app: inside the steps) over all inferences.
    stack_bytes : int
        Stack used by one inference (entry point and kernels); with an app, the most any step
        used (the model's calls included).
    stack_total_bytes : int
        Stack high-water mark of the whole firmware run.
    footprint : Footprint
        Flash and RAM use of the image.
    wall_seconds : float
        Host time of the QEMU run.
    """

    outputs: np.ndarray
    instructions_per_inference: float
    instructions_min: int
    instructions_max: int
    instruction_counts: np.ndarray | None
    counting: str
    ticks_total: int
    stack_bytes: int
    stack_total_bytes: int
    footprint: Footprint
    wall_seconds: float


def _warn_if_nearly_full(footprint: Footprint, board: Board) -> None:
    for what, used, size in (
        ("flash", footprint.image_flash_bytes, board.flash.length),
        ("RAM", footprint.image_ram_bytes, board.ram.length),
    ):
        if used > _FULL_WARNING * size:
            logger.warning("firmware uses %d of %d bytes of %s on %s", used, size, what, board.name)


def _normalize_quantization(quantization: Mapping | None) -> dict | None:
    """Plain floats and ints (NumPy scalars would not serialise), only known roles."""
    if not quantization:
        return None
    unknown = set(quantization) - {"input", "output"}
    if unknown:
        raise ValueError(f"quantization roles must be 'input' and/or 'output', got {unknown}")
    return {
        role: {"scale": float(q["scale"]), "zero_point": int(q["zero_point"])}
        for role, q in quantization.items()
        if q is not None
    }


def _write_metadata(firmware: Firmware, entry: str) -> None:
    """Write ``metadata.json`` (read back by :func:`_read_metadata`)."""
    def tensor(info: TensorInfo) -> dict:
        return {"shape": list(info.shape), "dtype": info.dtype, "bytes": info.nbytes}

    metadata = {
        "version": FORMAT_VERSION,
        "board": firmware.board.name,
        "backend": firmware.backend,
        "entry_point": entry,
        "input": tensor(firmware.input),
        "output": tensor(firmware.output),
        "quantization": firmware.quantization,
        "footprint": firmware.footprint.as_dict(),
        "memory": firmware.memory,
        "elf": str(firmware.elf.relative_to(firmware.out_dir)),
        "app": firmware.app.as_metadata() if firmware.app else None,
    }
    text = json.dumps(metadata, indent=2, sort_keys=True)
    (firmware.out_dir / METADATA_FILE).write_text(text + "\n", encoding="utf-8")


def _read_metadata(path: Path) -> dict:
    """The :class:`Firmware` fields ``metadata.json`` holds (``elf`` as an absolute path).

    Raises
    ------
    MetadataError
        Naming the file and what is wrong with it.
    """
    if not path.is_file():
        raise MetadataError(f"{path}: not found; {path.parent} is not a folder written by"
                            " micro.build (build again)")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MetadataError(f"{path}: unreadable ({error})") from None
    version = metadata.get("version") if isinstance(metadata, dict) else None
    if version != FORMAT_VERSION:
        raise MetadataError(f"{path}: format version {version!r}, this micro reads version"
                            f" {FORMAT_VERSION} (build again)")

    def tensor(name: str) -> TensorInfo:
        raw = metadata[name]
        return TensorInfo(name, tuple(int(d) for d in raw["shape"]), str(raw["dtype"]))

    try:
        app = metadata.get("app")
        return {
            "app": None if app is None else App.from_metadata(app, path.parent / "src"),
            "elf": path.parent / str(metadata["elf"]),
            "board": get_board(str(metadata["board"])),
            "input": tensor(INPUT),
            "output": tensor(OUTPUT),
            "footprint": Footprint(**metadata["footprint"]),
            "backend": str(metadata["backend"]),
            "quantization": _normalize_quantization(metadata["quantization"]),
            "memory": metadata.get("memory"),
        }
    except (UnknownBoardError, InvalidAppError) as error:
        raise MetadataError(f"{path}: {error}") from None
    except (KeyError, TypeError, ValueError) as error:
        raise MetadataError(f"{path}: a field is missing or malformed ({error!r})") from None


def build(
    mod: tvm.IRModule,
    board: str | Board,
    out_dir: str | Path,
    *,
    backend: str = "c",
    entry: str = "model_run",
    quantization: Mapping[str, Mapping[str, float]] | None = None,
    stack_bytes: int | None = None,
    heap_bytes: int | None = None,
    toolchain_path: str | Path | None = None,
    dsp: bool | None = None,
    app: App | None = None,
    plain: bool = False,
) -> Firmware:
    """Compile a static Relax module into bare-metal firmware for a board.

    The board's kernel library (:func:`micro.kernels.library_for`: the SMLAD micro-kernels of
    :mod:`micro.kernels.dsp` on cores with the DSP extension and no MVE, the scalar ones of
    :mod:`micro.kernels.scalar` on Armv6-M and Armv7-M) schedules what it takes (int8 dot
    products, requantizations, convolutions, ...); every other kernel's element-wise stages are
    computed in their consumers' loops (:mod:`micro.schedules`). Kernels that are already
    scheduled (e.g. applied from a tuning database) are kept.

    Parameters
    ----------
    mod : tvm.IRModule
        Relax module whose ``main`` takes one tensor and returns one tensor, static shapes.
    board : str or Board
        Board name (see :func:`micro.list_boards`) or description.
    out_dir : str or Path
        Project folder; created if needed, generated files are overwritten.
    backend : {"c", "llvm"}
        Generate kernels as C for ``arm-none-eabi-gcc`` or as an object from TVM's LLVM.
    entry : str
        Name of the C entry point, also the prefix of the kernel symbols.
    quantization : mapping, optional
        ``{"input": {"scale": s, "zero_point": z}, "output": {...}}``, written to ``model.h``.
    stack_bytes, heap_bytes : int, optional
        Stack and heap reservations; the board's defaults when omitted.
    toolchain_path : str or Path, optional
        Folder holding the cross tools and QEMU, instead of ``PATH``.
    dsp : bool, optional
        None: the board's library (:func:`micro.kernels.library_for`); False: TVM's plain
        lowering (as ``plain=True``); True: the DSP library, which the board must have.
    app : App, optional
        Your C code around the model: the harness calls its ``step`` once per input record
        instead of running the model per record (:class:`micro.App`, docs/micro.md
        "Applications").
    plain : bool
        TVM's plain lowering, no micro-kernels of any library.

    Returns
    -------
    Firmware
        The image and its description.

    Raises
    ------
    ValueError
        If ``backend``, ``entry`` or ``quantization`` is invalid.
    InvalidAppError
        If ``app`` is not an :class:`App`, names a missing include folder, or a source clashes
        with a kernel library source of the project.
    UnknownBoardError
        If the board name is unknown.
    ToolchainNotFoundError
        If a program is missing.
    UnsupportedModelError
        If the module is outside the supported subset.
    ModelTooLargeError
        If the model or the image does not fit the board.
    BuildError
        If code generation, compilation or linking fails, or ``dsp=True`` on a board without
        the DSP extension (or with ``plain=True``).
    """
    return _build(
        mod, board, out_dir, backend=backend, entry=entry, quantization=quantization,
        stack_bytes=stack_bytes, heap_bytes=heap_bytes, toolchain_path=toolchain_path, dsp=dsp,
        app=app, plain=plain,
    )  # fmt: skip


def _build(
    mod: tvm.IRModule,
    board: str | Board,
    out_dir: str | Path,
    *,
    backend: str = "c",
    entry: str = "model_run",
    quantization: Mapping[str, Mapping[str, float]] | None = None,
    stack_bytes: int | None = None,
    heap_bytes: int | None = None,
    toolchain_path: str | Path | None = None,
    dsp: bool | None = None,
    test_hook: str | None = None,
    app: App | None = None,
    plain: bool = False,
) -> Firmware:
    """:func:`build`, whose firmware can also misbehave on purpose, for micro's own tests.

    ``test_hook="fault"`` or ``"hang"`` makes the firmware fault or hang before the first
    inference, so that tests reach the host's error handling; ``"host_files"`` makes it try to
    read and write host files outside its run folder (:data:`micro.contract.TEST_HOOKS`), to
    test the sandbox; the other arguments are :func:`build`'s.
    """
    if not _C_IDENTIFIER.fullmatch(entry):
        raise ValueError(f"entry must be a C identifier, got {entry!r}")
    if app is not None:
        if not isinstance(app, App):
            raise InvalidAppError(f"app must be a micro.App, got {type(app).__name__}")
        app.check_include_dirs()
    toolchain = find_toolchain(toolchain_path)
    board = get_board(board)
    board.tvm_target(backend)  # rejects an unknown backend before any work
    kernel_libraries.register()
    library = kernel_libraries.resolve(board, dsp=dsp, plain=plain)
    lowered = kernel_libraries.lower(mod, board, library)  # Relax → a chain of TIR kernel calls
    scheduled = schedule_unscheduled(kernel_libraries.schedule_module(lowered, board, library))
    return _build_graph(
        scheduled,
        extract_graph(scheduled),
        board,
        Path(out_dir),
        toolchain,
        backend=backend,
        entry=entry,
        quantization=_normalize_quantization(quantization),
        stack_bytes=board.stack_bytes if stack_bytes is None else stack_bytes,
        heap_bytes=board.heap_bytes if heap_bytes is None else heap_bytes,
        test_hook=test_hook,
        app=app,
    )


def build_graph(
    lowered: tvm.IRModule,
    graph: Graph,
    board: Board,
    out_dir: Path,
    toolchain: Toolchain,
    *,
    backend: str,
    entry: str,
    stack_bytes: int,
    heap_bytes: int,
    quantization: Mapping | None = None,
) -> Firmware:
    """Build firmware for an already extracted graph (the stages after :func:`build`'s lowering).

    For callers that make the graph themselves, like the tuner's one-kernel benchmarks. Kernels
    that call micro-kernels need them registered (:func:`micro.kernels.register`;
    :func:`build` and :func:`micro.tuning.tune` do it).

    Parameters
    ----------
    lowered : tvm.IRModule
        Module holding the graph's kernels (PrimFuncs by name).
    graph : Graph
        Tensors and kernel calls.
    board : Board
        Target board.
    out_dir : Path
        Project folder.
    toolchain : Toolchain
        Programs to use.
    backend, entry, stack_bytes, heap_bytes, quantization
        As for :func:`build` (sizes resolved).

    Returns
    -------
    Firmware
        The image and its description.
    """
    return _build_graph(
        lowered, graph, board, out_dir, toolchain, backend=backend, entry=entry,
        stack_bytes=stack_bytes, heap_bytes=heap_bytes, quantization=quantization,
    )  # fmt: skip


def _build_graph(
    lowered: tvm.IRModule,
    graph: Graph,
    board: Board,
    out_dir: Path,
    toolchain: Toolchain,
    *,
    backend: str,
    entry: str,
    stack_bytes: int,
    heap_bytes: int,
    quantization: Mapping | None = None,
    test_hook: str | None = None,
    app: App | None = None,
) -> Firmware:
    """:func:`build_graph` with :func:`_build`'s ``test_hook`` and :func:`build`'s ``app``."""
    out_dir = Path(out_dir).resolve()  # the compiler runs in the build folder: no relative paths
    src_dir, build_dir = out_dir / "src", out_dir / "build"
    src_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_memory(graph)
    io_bytes = align_up(graph.input.nbytes) + align_up(graph.output.nbytes)
    constant_bytes = sum(align_up(c.nbytes, ALIGNMENT) for c in graph.constants.values())
    check_model_fits(board, constant_bytes, plan.arena_bytes + io_bytes, stack_bytes, heap_bytes)

    kernels = generate_kernels(lowered, graph.kernels, board, backend, src_dir, entry, ALIGNMENT)
    check_model_fits(
        board,
        constant_bytes,
        plan.arena_bytes + kernels.workspace_bytes + io_bytes,
        stack_bytes,
        heap_bytes,
    )
    write_entry_point(graph, plan, kernels, src_dir, entry, quantization)
    app_sources = _app_sources(app, kernels.extern_sources)
    constants_region = place_constants(board, constant_bytes)
    if constants_region != "flash":
        logger.info("the model's %d bytes of constants go to %s's %s (flash: %d bytes)",
                    constant_bytes, board.name, constants_region, board.flash.length)
    linker_script = write_project(
        src_dir, board, stack_bytes, heap_bytes, test_hook,
        app_defines=app_config_defines(app, board) if app else None,
        app_sources=app.sources if app else (), constants_region=constants_region,
    )  # fmt: skip
    elf, objects = compile_and_link(
        src_dir, build_dir, board, kernels, toolchain, linker_script,
        app_sources=app_sources, include_dirs=app.include_dirs if app else (),
    )  # fmt: skip
    model_objects = ["model", "kernels", *(path.stem for path in kernels.extern_sources)]
    footprint = measure(
        toolchain, board, elf, [objects[name] for name in model_objects],
        [objects[Path(name).stem] for name in app_sources],
    )  # fmt: skip
    _warn_if_nearly_full(footprint, board)
    firmware = Firmware(
        elf=elf,
        out_dir=out_dir,
        board=board,
        input=graph.input,
        output=graph.output,
        footprint=footprint,
        toolchain=toolchain,
        backend=backend,
        quantization=dict(quantization) if quantization else None,
        counter_plugin=build_counter_plugin(toolchain, build_dir),
        markers=marker_addresses(toolchain, elf),
        memory=memory_plan_summary(graph, plan, kernels.workspace_bytes, io_bytes),
        app=app,
    )
    _write_metadata(firmware, entry)
    logger.info(
        "built %s for %s: model %d B flash / %d B RAM, image %d B flash / %d B RAM",
        elf, board.name, footprint.model_flash_bytes, footprint.model_ram_bytes,
        footprint.image_flash_bytes, footprint.image_ram_bytes,
    )  # fmt: skip
    return firmware


def _app_sources(app: App | None, extern_sources: tuple[Path, ...]) -> list[str]:
    """The names of the app's sources in ``src/``, none of them a kernel library's source."""
    if app is None:
        return []
    names = [path.name for path in app.sources]
    clash = sorted(set(names) & {path.name for path in extern_sources})
    if clash:
        raise InvalidAppError(f"App.sources: {', '.join(clash)} is also the name of a kernel "
                              f"library source this model needs; rename it")
    return names


def memory_plan_summary(
    graph: Graph, plan: MemoryPlan, workspace_bytes: int, io_bytes: int
) -> dict:
    """The RAM plan of a build as plain data (``Firmware.memory``, ``metadata.json``).

    Parameters
    ----------
    graph : Graph
        The model's kernel calls.
    plan : MemoryPlan
        Its arena plan.
    workspace_bytes : int
        The largest workspace a kernel requests (kernels run one at a time).
    io_bytes : int
        The input and output buffers.

    Returns
    -------
    dict
        ``arena_bytes``, ``workspace_bytes``, ``io_bytes``, ``peak_kernel`` (the kernel running
        when the most intermediates are alive, or None) and ``peak_tensors`` (those tensors:
        name, shape, dtype, bytes, largest first).
    """
    peak = None if plan.peak_step is None else graph.steps[plan.peak_step].kernel
    tensors = [
        {"name": name, "shape": list(graph.intermediates[name].shape),
         "dtype": graph.intermediates[name].dtype, "bytes": graph.intermediates[name].nbytes}
        for name in plan.peak_tensors
    ]
    return {"arena_bytes": plan.arena_bytes, "workspace_bytes": workspace_bytes,
            "io_bytes": io_bytes, "peak_kernel": peak, "peak_tensors": tensors}


def _as_batch(firmware: Firmware, inputs: np.ndarray) -> np.ndarray:
    inputs = np.asarray(inputs)
    expected = firmware.input
    if inputs.dtype != np.dtype(expected.dtype):
        raise InvalidInputError(
            f"inputs have dtype {inputs.dtype}, the model takes {expected.dtype}"
        )
    if inputs.shape == expected.shape:
        inputs = inputs[np.newaxis]
    if inputs.shape[1:] != expected.shape or inputs.shape[0] == 0:
        raise InvalidInputError(
            f"inputs have shape {inputs.shape}, expected (N, {', '.join(map(str, expected.shape))})"
            f" with N >= 1, or {expected.shape} for one input"
        )
    return np.ascontiguousarray(inputs.astype(inputs.dtype.newbyteorder("<"), copy=False))


def _as_records(app: App, inputs: np.ndarray) -> np.ndarray:
    """An app's input records: the first axis counts them, each ``app.input_bytes`` bytes."""
    inputs = np.asarray(inputs)
    if inputs.dtype.kind not in "biufc":
        raise InvalidInputError(f"inputs have dtype {inputs.dtype}; an app's records must be a"
                                f" numeric array")
    record = inputs.dtype.itemsize * int(np.prod(inputs.shape[1:], dtype=np.int64))
    if inputs.ndim == 0 or inputs.shape[0] == 0 or record != app.input_bytes:
        raise InvalidInputError(
            f"inputs have shape {inputs.shape} and dtype {inputs.dtype}: records of {record}"
            f" bytes, the app reads records of input_bytes={app.input_bytes} (first axis:"
            f" N >= 1 records)"
        )
    return np.ascontiguousarray(inputs.astype(inputs.dtype.newbyteorder("<"), copy=False))


def _instruction_stats(
    report: Report, counts: np.ndarray | None, board: Board, count: int
) -> tuple[float, int, int]:
    """Mean, min and max instructions per inference: exact counts if any, else SysTick."""
    if counts is None:
        per_tick = board.instructions_per_tick
        mean = report.ticks_total * per_tick / count
        return mean, round(report.ticks_min * per_tick), round(report.ticks_max * per_tick)
    if len(counts) != count:
        raise FirmwareError(f"the counting plugin recorded {len(counts)} of {count} inferences")
    return float(counts.mean()), int(counts.min()), int(counts.max())


def run(
    firmware: Firmware, inputs: np.ndarray, *, timeout: float = 120.0, sandbox: bool = True
) -> RunResult:
    """Run the model on a batch of inputs in one QEMU session.

    With an app (``firmware.app``), the inputs are its records and the outputs the bytes its
    steps wrote (see :class:`RunResult`).

    Parameters
    ----------
    firmware : Firmware
        Output of :func:`build` (or :meth:`Firmware.load`).
    inputs : numpy.ndarray
        Shape ``(N, *input_shape)`` (or ``input_shape`` for one input), the model's dtype.
        With an app: any numeric array whose first axis counts the records and whose other
        axes hold ``app.input_bytes`` bytes each (e.g. int16 of shape ``(N,)`` for two-byte
        records, or uint8 of shape ``(N, input_bytes)``).
    timeout : float
        Wall-clock seconds before the run is treated as a hang and killed.
    sandbox : bool
        Run QEMU confined to a temporary run folder (:mod:`micro.sandbox`; default). False
        gives the firmware's semihosting the user's whole file access: only for trusted images
        on a host without ``bwrap``.

    Returns
    -------
    RunResult
        Outputs, instruction counts, stack use and footprint.

    Raises
    ------
    InvalidInputError
        If the inputs' dtype or shape does not match the model (the app's record size).
    FirmwareTimeoutError, FirmwareFaultError, FirmwareError
        If the firmware hangs, faults or ends abnormally.
    SandboxUnavailableError
        If ``sandbox`` is set and ``bwrap`` is missing or cannot start.
    """
    app = firmware.app
    batch = _as_batch(firmware, inputs) if app is None else _as_records(app, inputs)
    out_info = firmware.output
    with tempfile.TemporaryDirectory(prefix="run-", dir=firmware.out_dir) as work:
        work_dir = Path(work)
        (work_dir / contract.INPUT_FILE).write_bytes(batch.tobytes())
        plugin = firmware.counter_plugin
        extra = plugin_option(plugin, firmware.markers) if plugin else []
        start = time.perf_counter()
        report = run_firmware(
            firmware.toolchain, firmware.board, firmware.elf, work_dir, timeout, extra,
            read_only=[plugin] if plugin else [], sandbox=sandbox,
        )
        wall = time.perf_counter() - start
        raw = (work_dir / contract.OUTPUT_FILE).read_bytes()
        counts = read_counts(work_dir) if plugin else None
    count = batch.shape[0]
    if app is not None:
        if report.inferences != count or report.app_output_bytes != len(raw):
            raise FirmwareError(
                f"sent {count} records but the firmware reports {report.inferences} steps and"
                f" {report.app_output_bytes} output bytes, and wrote {len(raw)} bytes"
            )
        outputs = np.frombuffer(raw, dtype=np.uint8).copy()
    elif report.inferences != count or len(raw) != count * out_info.nbytes:
        raise FirmwareError(
            f"sent {count} inputs but the firmware reports {report.inferences} inferences and"
            f" wrote {len(raw)} bytes ({out_info.nbytes} per output)"
        )
    else:
        dtype = np.dtype(out_info.dtype).newbyteorder("<")
        outputs = np.frombuffer(raw, dtype=dtype).astype(out_info.dtype)
        outputs = outputs.reshape(count, *out_info.shape)
    mean, low, high = _instruction_stats(report, counts, firmware.board, count)
    return RunResult(
        outputs=outputs,
        instructions_per_inference=mean,
        instructions_min=low,
        instructions_max=high,
        instruction_counts=counts,
        counting="plugin" if counts is not None else "systick",
        ticks_total=report.ticks_total,
        stack_bytes=report.stack_model_bytes,
        stack_total_bytes=report.stack_total_bytes,
        footprint=firmware.footprint,
        wall_seconds=wall,
    )
