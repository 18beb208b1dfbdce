"""Exact instruction counts per inference with a QEMU TCG plugin.

SysTick under ``-icount shift=0`` counts instructions only in whole ticks (25–62.5 instructions
depending on the board's clock). For exact numbers, a small plugin (our own C source under
``templates/plugin``, compiled with the host's C compiler at build time against a hand-written
header for QEMU's plugin API v1, since Debian ships none) counts every executed instruction and
records the count at the harness's ``micro_count_begin``/``micro_count_end`` markers.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import BuildError
from .proc import run_command
from .toolchain import Toolchain

logger = logging.getLogger(__name__)

PLUGIN_SOURCE = "count_insns.c"
PLUGIN_NAME = "count_insns.so"
COUNTS_FILE = "micro_counts.txt"
MARKERS = ("micro_count_begin", "micro_count_end")


def plugin_path(build_dir: Path) -> Path:
    """Where :func:`build_counter_plugin` puts the plugin for a firmware build folder.

    Parameters
    ----------
    build_dir : Path
        The firmware's build folder.

    Returns
    -------
    Path
        Path of the shared object (which exists only if it was built).
    """
    return build_dir / PLUGIN_NAME


def build_counter_plugin(toolchain: Toolchain, build_dir: Path) -> Path | None:
    """Compile the counting plugin for the host.

    Parameters
    ----------
    toolchain : Toolchain
        Supplies the host C compiler.
    build_dir : Path
        Where ``count_insns.so`` is written.

    Returns
    -------
    Path or None
        The shared object, or None when the host has no C compiler (SysTick counts are used).

    Raises
    ------
    BuildError
        If the compiler rejects the plugin source.
    """
    if toolchain.host_cc is None:
        logger.info("no host C compiler: instruction counts will come from SysTick")
        return None
    plugin_dir = resources.files(__package__).joinpath("templates", "plugin")
    with resources.as_file(plugin_dir) as source_dir:
        output = plugin_path(build_dir)
        command = [
            toolchain.host_cc, "-O2", "-shared", "-fPIC", f"-I{source_dir}",
            source_dir / PLUGIN_SOURCE, "-o", output,
        ]  # fmt: skip
        result = run_command(command)
    if result.returncode != 0:
        raise BuildError(f"compiling the QEMU counting plugin failed:\n{result.stderr[-2000:]}")
    return output


def marker_addresses(toolchain: Toolchain, elf: Path) -> tuple[int, int]:
    """Return the addresses of the begin and end markers in a firmware image.

    Parameters
    ----------
    toolchain : Toolchain
        Supplies ``arm-none-eabi-nm``.
    elf : Path
        Firmware image.

    Returns
    -------
    tuple of int
        Begin and end addresses (Thumb bit cleared).

    Raises
    ------
    BuildError
        If a marker is missing from the image.
    """
    result = run_command([toolchain.nm, elf])
    symbols = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] in MARKERS:
            symbols[parts[2]] = int(parts[0], 16) & ~1
    missing = [name for name in MARKERS if name not in symbols]
    if missing:
        raise BuildError(f"{elf} lacks the counting markers {missing}")
    return symbols[MARKERS[0]], symbols[MARKERS[1]]


def plugin_option(plugin: Path, markers: tuple[int, int]) -> list[str]:
    """Return the QEMU arguments that load the plugin for the given markers.

    Parameters
    ----------
    plugin : Path
        Compiled plugin.
    markers : tuple of int
        Begin and end addresses.

    Returns
    -------
    list of str
        ``["-plugin", "<so>,begin=...,end=...,out=..."]``.
    """
    begin, end = markers
    return ["-plugin", f"{plugin.resolve()},begin={begin:#x},end={end:#x},out={COUNTS_FILE}"]


def read_counts(work_dir: Path) -> np.ndarray:
    """Read the per-inference counts the plugin wrote at exit.

    Parameters
    ----------
    work_dir : Path
        QEMU's working directory.

    Returns
    -------
    numpy.ndarray
        One int64 count per inference (empty if the plugin wrote nothing).
    """
    path = work_dir / COUNTS_FILE
    if not path.exists():
        return np.zeros(0, dtype=np.int64)
    return np.array(path.read_text().split(), dtype=np.int64)
