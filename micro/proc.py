"""The one place where :mod:`micro` starts external programs.

Every compiler, binutils and QEMU invocation goes through :func:`run_command`, which logs the
command line before it runs (so a failing build can be replayed by hand) and turns a missing
executable into :class:`~micro.errors.ToolchainNotFoundError`.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .errors import INSTALL_HINT, ToolchainNotFoundError

logger = logging.getLogger(__name__)


def run_command(
    args: Sequence[str | Path],
    *,
    cwd: str | Path | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """Run a command, capture its output as text and return without checking its status.

    Parameters
    ----------
    args : sequence of str or Path
        Program and arguments.
    cwd : str or Path, optional
        Working directory.
    timeout : float, optional
        Seconds after which the process is killed and :class:`subprocess.TimeoutExpired`
        is raised.

    Returns
    -------
    subprocess.CompletedProcess
        With ``returncode``, ``stdout`` and ``stderr`` (str; bytes that are not UTF-8, such as a
        firmware's garbage output, become U+FFFD).

    Raises
    ------
    ToolchainNotFoundError
        If the program does not exist.
    subprocess.TimeoutExpired
        If ``timeout`` passed; the child has been killed.
    """
    argv = [str(a) for a in args]
    logger.info("run: %s%s", shlex.join(argv), f"  (cwd={cwd})" if cwd else "")
    try:
        return subprocess.run(
            argv, cwd=cwd, timeout=timeout, capture_output=True, text=True, errors="replace",
            check=False,
        )
    except FileNotFoundError as exc:
        raise ToolchainNotFoundError(
            f"cannot execute {argv[0]!r}: {exc.strerror}; install it with {INSTALL_HINT}"
        ) from exc
