"""micro: static Relax modules → bare-metal Cortex-M firmware, run and measured in QEMU.

microTVM left upstream TVM in v0.19; this package is its successor for this project. It lowers a
Relax module to TIR kernels with plain C signatures (C or LLVM code for the board's core), writes
an ahead-of-time C entry point with statically planned buffers, links both into a firmware
template for a board described as data, runs it in ``qemu-system-arm`` on a whole batch of inputs
at once, and reports outputs, instructions per inference, stack and flash/RAM footprint.
It does not depend on the rest of pla-tvm. Kernel tuning with MetaSchedule, measured in QEMU, is in
:mod:`micro.tuning` (imported separately: it loads MetaSchedule).

Examples
--------
>>> fw = micro.build(mod, board="mps2-an386", out_dir="build/an386")  # doctest: +SKIP
>>> result = micro.run(fw, inputs)                                     # doctest: +SKIP
>>> result.outputs, result.instructions_per_inference                  # doctest: +SKIP
>>> micro.run(micro.Firmware.load("build/an386"), inputs)             # doctest: +SKIP
>>> micro.export("build/an386", "lib/ecg", prefix="ecg")              # doctest: +SKIP
>>> app = micro.App(sources=["qrs.c"], step="qrs_step", input_bytes=2,
...                 output_max_bytes=8)                                 # doctest: +SKIP
>>> micro.build(mod, "mps2-an386", "build/qrs", app=app)               # doctest: +SKIP
"""

from .api import Firmware, RunResult, build, run
from .app import App
from .boards import Board, MemoryRegion, get_board, list_boards
from .errors import (
    BuildError,
    ExportError,
    FirmwareError,
    FirmwareFaultError,
    FirmwareTimeoutError,
    InvalidAppError,
    InvalidInputError,
    MetadataError,
    MicroError,
    ModelTooLargeError,
    SandboxUnavailableError,
    ToolchainNotFoundError,
    UnknownBoardError,
    UnsupportedModelError,
)
from .footprint import Footprint
from .graph import TensorInfo
from .library import Library, export

__all__ = [
    "App",
    "Board",
    "BuildError",
    "ExportError",
    "Firmware",
    "FirmwareError",
    "FirmwareFaultError",
    "FirmwareTimeoutError",
    "Footprint",
    "InvalidAppError",
    "InvalidInputError",
    "Library",
    "MemoryRegion",
    "MetadataError",
    "MicroError",
    "ModelTooLargeError",
    "RunResult",
    "SandboxUnavailableError",
    "TensorInfo",
    "ToolchainNotFoundError",
    "UnknownBoardError",
    "UnsupportedModelError",
    "build",
    "export",
    "get_board",
    "list_boards",
    "run",
]
