"""Running a firmware image in ``qemu-system-arm`` and reading its report.

QEMU runs with ``-icount shift=0`` (one instruction per virtual nanosecond), which makes SysTick,
and so the instruction counts, deterministic. Semihosting gives the firmware the host's files
(relative to QEMU's working directory) and its exit code becomes QEMU's; QEMU runs in the
sandbox of :mod:`micro.sandbox`, so those files are the run folder's only. A run that exceeds the
time limit is killed and reported as a hang; fault exit codes are mapped back to the fault's name.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import contract
from .boards import Board
from .errors import (
    FirmwareError,
    FirmwareFaultError,
    FirmwareTimeoutError,
    SandboxUnavailableError,
)
from .proc import run_command
from .sandbox import SANDBOX_HINT, confine, find_sandbox, sandbox_failure
from .toolchain import Toolchain


@dataclass(frozen=True)
class Report:
    """What the harness printed.

    Attributes
    ----------
    inferences : int
        Records processed.
    ticks_total, ticks_min, ticks_max : int
        SysTick ticks spent in the model: over all records, fastest and slowest record.
    stack_model_bytes : int
        Stack used by one call of the entry point.
    stack_total_bytes : int
        High-water mark of the whole program.
    stack_reserved_bytes : int
        Size of the stack region.
    stdout : str
        Everything the firmware printed.
    app_output_bytes : int or None
        With an app: the bytes its steps wrote (``MICRO:APP``); None without.
    """

    inferences: int
    ticks_total: int
    ticks_min: int
    ticks_max: int
    stack_model_bytes: int
    stack_total_bytes: int
    stack_reserved_bytes: int
    stdout: str
    app_output_bytes: int | None = None


def qemu_command(qemu: Path, board: Board, elf: Path, extra_args: Sequence[str] = ()) -> list[str]:
    """Return the QEMU command line that runs ``elf`` on ``board``.

    Parameters
    ----------
    qemu : Path
        ``qemu-system-arm``.
    board : Board
        Supplies the machine name.
    elf : Path
        Firmware image.
    extra_args : sequence of str
        More options (e.g. the counting plugin).

    Returns
    -------
    list of str
        Arguments, starting with the program.
    """
    return [
        str(qemu),
        "-M", board.qemu_machine,
        "-nographic",
        "-monitor", "none",
        "-serial", "null",
        "-semihosting-config", "enable=on,target=native",
        "-icount", "shift=0",
        *extra_args,
        "-kernel", str(elf),
    ]  # fmt: skip


def _fault_detail(stderr: str) -> str:
    """The fault handler's line, with the CFSR bits spelled out."""
    match = contract.FAULT_RE.search(stderr)
    if not match:
        return stderr.strip()[-500:]
    detail = match.group(0)
    cfsr = contract.CFSR_RE.search(detail)
    value = int(cfsr.group(1), 16) if cfsr else 0
    causes = [name for bit, name in contract.CFSR_BITS.items() if value >> bit & 1]
    if causes:
        detail += f" [{', '.join(causes)}]"
    if "STKOF" in causes:
        detail += " (stack overflow: build with a larger stack_bytes)"
    return detail


def _raise_for_exit(returncode: int, stdout: str, stderr: str) -> None:
    faults = {code: name for name, code in contract.FAULT_EXITS.items()}
    statuses = {code: name for name, code in contract.STATUS_EXITS.items()}
    if returncode in faults:
        raise FirmwareFaultError(
            f"the firmware took a {faults[returncode]} (exit code {returncode}): "
            + _fault_detail(stderr),
            faults[returncode],
        )
    errors = contract.ERROR_RE.findall(stdout)
    reason = statuses.get(returncode, "unknown status")
    raise FirmwareError(
        f"the firmware exited with code {returncode} ({reason})"
        + (f": {errors[-1]}" if errors else "")
        + (f"; stderr: {stderr.strip()[-500:]}" if stderr.strip() else "")
    )


def parse_report(stdout: str) -> Report:
    """Parse the MICRO:* lines of a finished run.

    Parameters
    ----------
    stdout : str
        The firmware's standard output.

    Returns
    -------
    Report
        Parsed counters.

    Raises
    ------
    FirmwareError
        If a marker line is missing.
    """
    result, stack = contract.RESULT_RE.search(stdout), contract.STACK_RE.search(stdout)
    if not (
        contract.BEGIN_RE.search(stdout) and result and stack and contract.END_RE.search(stdout)
    ):
        raise FirmwareError(f"the firmware's report is incomplete:\n{stdout[-2000:]}")
    inferences, total, low, high = (int(v) for v in result.groups())
    model, whole, reserved = (int(v) for v in stack.groups())
    app = contract.APP_RE.search(stdout)
    app_bytes = int(app.group(1)) if app else None
    return Report(inferences, total, low, high, model, whole, reserved, stdout, app_bytes)


def run_firmware(
    toolchain: Toolchain,
    board: Board,
    elf: Path,
    work_dir: Path,
    timeout: float,
    extra_args: Sequence[str] = (),
    *,
    read_only: Sequence[Path] = (),
    sandbox: bool = True,
) -> Report:
    """Run a firmware image in QEMU until it exits, and parse its report.

    QEMU runs confined (:mod:`micro.sandbox`): it sees ``elf``, ``read_only`` and ``work_dir``
    only, so the firmware's semihosting cannot reach other host files.

    Parameters
    ----------
    toolchain : Toolchain
        Provides ``qemu-system-arm``.
    board : Board
        Machine to emulate.
    elf : Path
        Firmware image.
    work_dir : Path
        QEMU's working directory; holds the input file and receives the output file.
    timeout : float
        Seconds of wall time before the run is considered hung.
    extra_args : sequence of str
        More QEMU options.
    read_only : sequence of Path
        Files those options name (the counting plugin), visible read-only in the sandbox.
    sandbox : bool
        Confine QEMU (default). False runs it with the user's full file access: only for
        firmware you trust, where no sandbox can run.

    Returns
    -------
    Report
        The harness's counters.

    Raises
    ------
    FirmwareTimeoutError
        If QEMU runs longer than ``timeout`` (it is killed).
    FirmwareFaultError
        If a fault handler ran (``fault`` attribute names it).
    FirmwareError
        For any other abnormal exit or an incomplete report.
    SandboxUnavailableError
        If ``sandbox`` is set and ``bwrap`` is missing or cannot start.
    """
    command = qemu_command(toolchain.qemu, board, elf.resolve(), extra_args)
    if sandbox:
        command = confine(
            command, bwrap=find_sandbox(), work_dir=work_dir, read_only=[elf, *read_only]
        )
    try:
        result = run_command(command, cwd=work_dir, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise FirmwareTimeoutError(
            f"{elf.name} did not finish on {board.name} within {timeout:g} s; QEMU was killed"
            " (a hang, or too many inputs for the time limit)"
        ) from exc
    if result.returncode != 0:
        failure = sandbox_failure(result.stderr) if sandbox else None
        if failure:
            raise SandboxUnavailableError(
                f"the sandbox could not start ({failure}); {SANDBOX_HINT}"
            )
        _raise_for_exit(result.returncode, result.stdout, result.stderr)
    return parse_report(result.stdout)
