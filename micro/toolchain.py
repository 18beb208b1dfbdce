"""Finding the cross toolchain and the emulator.

The firmware needs ``arm-none-eabi-gcc`` (with newlib), ``arm-none-eabi-size``/``-nm`` and
``qemu-system-arm``. They are looked up once per build, either in an explicit directory or on
``PATH``, so that a missing package is reported before any work starts, with the command that
installs it. A host C compiler is optional: it builds the exact instruction counter (a QEMU
plugin); without it, counts come from SysTick.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import INSTALL_HINT, ToolchainNotFoundError

_TOOLS = {
    "gcc": "arm-none-eabi-gcc",
    "size": "arm-none-eabi-size",
    "nm": "arm-none-eabi-nm",
    "qemu": "qemu-system-arm",
}
_HOST_CC = "cc"


@dataclass(frozen=True)
class Toolchain:
    """Absolute paths of the programs :mod:`micro` runs.

    Attributes
    ----------
    gcc, size, nm, qemu : Path
        ``arm-none-eabi-gcc``, ``arm-none-eabi-size``, ``arm-none-eabi-nm``, ``qemu-system-arm``.
    host_cc : Path or None
        The host's C compiler (``cc``), if any.
    """

    gcc: Path
    size: Path
    nm: Path
    qemu: Path
    host_cc: Path | None = None


def find_toolchain(search_path: str | os.PathLike | None = None) -> Toolchain:
    """Locate every program of the toolchain.

    Parameters
    ----------
    search_path : str or PathLike, optional
        A directory (or ``os.pathsep``-separated list) to search instead of ``PATH``.

    Returns
    -------
    Toolchain
        Paths of all programs.

    Raises
    ------
    ToolchainNotFoundError
        Naming every missing program and how to install it.
    """
    where = os.fspath(search_path) if search_path is not None else None
    found = {key: shutil.which(name, path=where) for key, name in _TOOLS.items()}
    missing = [_TOOLS[key] for key, path in found.items() if path is None]
    if missing:
        place = f"in {where!r}" if where is not None else "on PATH"
        raise ToolchainNotFoundError(
            f"{', '.join(missing)} not found {place}; install with {INSTALL_HINT}"
        )
    host_cc = shutil.which(_HOST_CC, path=where)
    return Toolchain(
        **{key: Path(path) for key, path in found.items()},
        host_cc=Path(host_cc) if host_cc else None,
    )
