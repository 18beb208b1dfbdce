"""Writing outputs safely and measuring them.

Every artifact pla-tvm writes goes through a temporary file that is renamed into place, and
every output folder (``train``, ``compress``, ``compile``, ``tune``) is built in a temporary
sibling that replaces it only when complete (:func:`output_folder`), so an interrupted or failed
run never leaves a half-written model, report or firmware that a later stage would trust.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pla_tvm.errors import PlaTvmError


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary sibling of ``path`` and rename it over ``path``."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.part")
    partial.write_bytes(data)
    os.replace(partial, path)


def write_json_atomically(path: Path, payload: Any) -> None:
    """Pretty, key-sorted JSON written with :func:`write_atomically`."""
    write_atomically(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file (read in blocks), so a record says exactly which file it describes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sizes(path: Path) -> dict[str, int]:
    """Bytes on disk and gzip-compressed (level 9) bytes of a file."""
    data = Path(path).read_bytes()
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=9))}


#: Temporary folders of :func:`output_folder` made by this process (see
#: :func:`discard_partial_folders`).
_PARTIAL: set[Path] = set()


class OutputFolderError(PlaTvmError):
    """An output folder cannot be written: it is a file, read-only, locked by another command,
    or holds files the command did not write."""


@contextlib.contextmanager
def output_folder(
    out: str | Path,
    *,
    option: str,
    marker: str,
    force: bool = False,
    keep: Sequence[str] = (),
) -> Iterator[Path]:
    """Build an output folder in a temporary sibling and move it into place only when complete.

    The command writes into the yielded folder; when the ``with`` block ends normally, that
    folder replaces ``out`` (two renames in the same parent); when it raises (an error, Ctrl-C,
    SIGTERM), the temporary folder is deleted and ``out`` is left exactly as it was. A lock file
    beside ``out`` (``.NAME.lock``, ``flock``, removed when the command ends) makes a second
    command writing the same folder fail at once with one line instead of mixing the outputs.

    Parameters
    ----------
    out : str or Path
        The folder to write (created, or replaced).
    option : str
        The command-line option that named it, for messages (``"--out"``).
    marker : str
        The file the command writes last (its manifest or metrics): an existing ``out`` that
        holds it is a previous output of the same command and may be replaced; any other
        non-empty ``out`` holds somebody else's files and is refused unless ``force``.
    force : bool
        Replace a non-empty ``out`` whatever it holds.
    keep : sequence of str
        Files of a previous output to copy into the new one before the command starts (a tuning
        database that the command extends).

    Yields
    ------
    Path
        The temporary folder to write into.

    Raises
    ------
    OutputFolderError
        Before any work: ``out`` is a file, its parent cannot be created or written, another
        command holds the lock, or ``out`` holds other files (without ``force``).
    """
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{option} {out} is a file, expected a folder to write into")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(
            f"cannot create the parent folder of {option} {out}: {exc.strerror}"
        ) from None
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise OutputFolderError(f"cannot write {option} {out}: {out.parent} is not writable")
    lock_path = out.parent / f".{out.name}.lock"
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = lock_path.exists() and lock_path.stat().st_ino == os.fstat(lock.fileno()).st_ino
        except BlockingIOError:
            held = False
        if not held:  # locked, or removed by its previous holder while this one opened it
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise OutputFolderError(
                f"{option} {out} is being written by another pla-tvm command ({holder}); "
                "wait for it or choose another folder"
            )
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        try:
            yield from _build_and_swap(out, option, marker, force, keep)
        finally:
            lock_path.unlink(missing_ok=True)  # before unlocking: a waiter re-checks the inode
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_and_swap(
    out: Path, option: str, marker: str, force: bool, keep: Sequence[str]
) -> Iterator[Path]:
    """The body of :func:`output_folder` once the lock is held."""
    previous = out.is_dir() and any(out.iterdir())
    if previous and not force and not (out / marker).is_file():
        names = sorted(p.name for p in out.iterdir())
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise OutputFolderError(
            f"{option} {out} holds files this command did not write ({shown}; no {marker}); "
            "choose an empty or new folder, or pass --force to replace it"
        )
    work = _registered_folder(out.parent / f".{out.name}.partial-")
    try:
        work.mkdir()
        for name in keep if previous else ():
            if (out / name).is_file():
                shutil.copy2(out / name, work / name)
        yield work
        if not (work / marker).is_file():
            raise RuntimeError(f"the command finished without writing {marker} in {work}")
        old = None
        with _signals_deferred():  # the swap happens whole or not at all
            if out.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
                os.replace(out, old / out.name)
            os.replace(work, out)
            _PARTIAL.discard(work)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back during a few file-system calls, then deliver them.

    Only the main thread can change signal handlers; elsewhere (a library caller's worker
    thread) the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {number: signal.signal(number, lambda n, _frame: received.append(n))
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in received:
            signal.raise_signal(number)


def _registered_folder(prefix: Path) -> Path:
    """A new folder name ``PREFIX`` + random suffix, registered for :func:`discard_partial_folders`
    *before* the caller creates it: an interrupt can then never leave a created folder that
    nothing knows of (``tempfile.mkdtemp`` creates it first, and a Ctrl-C landing between its
    ``mkdir`` and the registration used to leave one behind)."""
    while True:
        candidate = prefix.with_name(prefix.name + secrets.token_hex(4))
        if not candidate.exists():
            _PARTIAL.add(candidate)
            return candidate


def discard_partial_folders() -> None:
    """Delete again every temporary folder :func:`output_folder` made in this process.

    After an interrupt, worker threads of a long command (MetaSchedule's builders) can still be
    writing and re-create part of a folder already deleted; the command line calls this just
    before the process exits, when no Python thread runs any more code of its own.
    """
    for work in list(_PARTIAL):
        shutil.rmtree(work, ignore_errors=True)
        _PARTIAL.discard(work)
