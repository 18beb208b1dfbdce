"""Confining firmware runs: QEMU, and the firmware's semihosting, see only the run folder.

The harness reads its inputs and writes its outputs over Arm semihosting, which QEMU serves
from the host's file system (``-semihosting-config target=native``): without confinement a
firmware image can open, read and write any host file QEMU's user can. Every run of
:func:`micro.qemu.run_firmware` (``micro.run``, tuning candidates, the RPC measuring server) is
therefore wrapped by :func:`confine` in a bubblewrap (``bwrap``) sandbox:

- new user, mount, PID, IPC, UTS, cgroup and network namespaces (``--unshare-all``: no
  network), all capabilities dropped, a new session, killed with its parent;
- a root file system holding only QEMU's executable and the shared libraries it loads
  (read-only, found with ``ldd``), the firmware image and the counting plugin (read-only), a
  minimal ``/dev`` and ``/proc``, and the run folder, the only writable place, at its own path
  and as the working directory; the sandbox's root itself is read-only.

Host files outside the run folder do not exist for the firmware; what it writes elsewhere (an
absolute path, ``..``) fails. Where ``bwrap`` is missing or cannot create namespaces, runs
refuse with :class:`SandboxUnavailableError` unless the caller opts out explicitly
(``sandbox=False``; ``--no-sandbox`` on the command lines).
"""

from __future__ import annotations

import functools
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from .errors import SandboxUnavailableError
from .proc import run_command

#: The sandbox program (Debian package ``bubblewrap``).
SANDBOX_PROGRAM = "bwrap"
SANDBOX_HINT = (
    "install bubblewrap (sudo apt-get install bubblewrap, or `make setup`), or run unconfined "
    "with sandbox=False / --no-sandbox on firmware you trust"
)

_LDD_PATH = re.compile(r"(/\S+)")


def find_sandbox(search_path: str | None = None) -> Path:
    """Return the ``bwrap`` executable.

    Parameters
    ----------
    search_path : str, optional
        Directories to search instead of ``PATH`` (``os.pathsep``-separated).

    Raises
    ------
    SandboxUnavailableError
        If it is not installed.
    """
    found = shutil.which(SANDBOX_PROGRAM, path=search_path)
    if found is None:
        place = f"in {search_path!r}" if search_path else "on PATH"
        raise SandboxUnavailableError(
            f"firmware runs are confined with {SANDBOX_PROGRAM}, which is not {place}; "
            + SANDBOX_HINT
        )
    return Path(found)


@functools.lru_cache(maxsize=8)
def shared_libraries(program: Path) -> tuple[Path, ...]:
    """The shared libraries ``program`` loads (``ldd``), as the paths the loader opens.

    Raises
    ------
    SandboxUnavailableError
        If ``ldd`` cannot list them.
    """
    result = run_command(["ldd", program])
    if result.returncode != 0:
        raise SandboxUnavailableError(
            f"cannot list the shared libraries of {program} for the sandbox (ldd exited "
            f"{result.returncode}: {result.stderr.strip()[-300:]})"
        )
    paths = []
    for line in result.stdout.splitlines():
        match = _LDD_PATH.search(line.split("=>")[-1])
        if match:
            paths.append(Path(match.group(1)))
    return tuple(dict.fromkeys(paths))


def confine(
    command: Sequence[str],
    *,
    bwrap: Path,
    work_dir: Path,
    read_only: Sequence[Path] = (),
) -> list[str]:
    """Wrap ``command`` so it runs in a sandbox that sees only ``work_dir`` and what it needs.

    Parameters
    ----------
    command : sequence of str
        Program (an absolute path) and arguments, as run unconfined.
    bwrap : Path
        The sandbox program (:func:`find_sandbox`).
    work_dir : Path
        The run folder: bound read-write at its own absolute path, and the working directory.
    read_only : sequence of Path
        Further files the command reads (the firmware image, the counting plugin), bound
        read-only at their own absolute paths.

    Returns
    -------
    list of str
        The ``bwrap`` command line.
    """
    program = Path(command[0]).resolve()
    binds: list[str] = []
    for library in (*shared_libraries(program), *_plugin_libraries(read_only)):
        binds += ["--ro-bind", str(library.resolve()), str(library)]
    for path in (program, *read_only):
        resolved = Path(path).resolve()
        binds += ["--ro-bind", str(resolved), str(resolved)]
    work = str(Path(work_dir).resolve())
    return [
        str(bwrap),
        "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--dev", "/dev", "--proc", "/proc",
        *binds,
        "--bind", work, work,
        "--remount-ro", "/",
        "--chdir", work,
        "--", str(program), *command[1:],
    ]  # fmt: skip


def _plugin_libraries(paths: Sequence[Path]) -> tuple[Path, ...]:
    """Shared libraries of the shared objects among ``paths`` (the counting plugin)."""
    libraries: list[Path] = []
    for path in paths:
        if Path(path).suffix == ".so":
            libraries += shared_libraries(Path(path).resolve())
    return tuple(libraries)


def sandbox_failure(stderr: str) -> str | None:
    """The sandbox's own error line, when ``bwrap`` (not the command) failed; else None."""
    for line in stderr.splitlines():
        if line.startswith(f"{SANDBOX_PROGRAM}:"):
            return line.strip()
    return None
