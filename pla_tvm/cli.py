"""The ``pla-tvm`` command line.

Each sub-command lives in its own module under :mod:`pla_tvm.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to the function that runs it.

Exit statuses (docs/cli.md): 0 success; 2 an error the user can fix (bad option or input, a
missing tool, a firmware fault: :class:`pla_tvm.errors.PlaTvmError`, the compiler packages'
error classes, and ``OSError`` on a named file), printed as one line
``pla-tvm COMMAND: error: ...``; 130 interrupted (Ctrl-C or SIGTERM: output folders being built
are removed, child processes are killed); 1 an internal error (a bug), also one line. A
traceback is printed only with ``--debug`` (or ``PLA_TVM_DEBUG=1``). With ``--json`` only the
JSON result goes to standard output; everything else printed on the way goes to standard error.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence

from pla_tvm import __version__
from pla_tvm.errors import PlaTvmError

#: Modules under pla_tvm.commands, in the order their commands appear in ``--help``.
COMMAND_MODULES = ("data", "train", "evaluate", "compress", "tune", "compile", "run", "export")


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Error classes that mean "the user gave bad input", not "pla-tvm has a bug"."""
    types: list[type[BaseException]] = [PlaTvmError]
    for module_name, class_name in (("micro.errors", "MicroError"),
                                    ("relay_passes.errors", "PassError")):
        try:
            types.append(getattr(importlib.import_module(module_name), class_name))
        except (ImportError, AttributeError):
            pass
    return tuple(types)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``pla-tvm run: error: ...``), exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Assemble the top-level parser from the command modules."""
    parser = _Parser(
        prog="pla-tvm",
        description="Compress an ECG classifier with PLA, compile it with TVM for Cortex-M, "
        "and measure it in QEMU.",
    )
    parser.add_argument("--version", action="version", version=f"pla-tvm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--debug", action="store_true",
                        help="print the traceback of an error (also PLA_TVM_DEBUG=1)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"pla_tvm.commands.{name}").register(subparsers)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the same clean-up as Ctrl-C runs."""


#: The signal that interrupted the running command ("Ctrl-C", "SIGTERM"), or None.
_interrupted: list[str] = []


def _on_signal(signum, frame) -> None:
    """Record the interrupt, then raise it. The record matters where an exception raised in a
    Python callback of TVM's C++ (MetaSchedule's search) comes back as another error type."""
    _interrupted.append("Ctrl-C" if signum == signal.SIGINT else "SIGTERM")
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated()


def _one_line(error: BaseException) -> str:
    """The message of an error, on one line (a tool's multi-line output keeps its last line)."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = build_parser().parse_args(argv)
    # TensorFlow's C++ informational lines are noise on a command line (set it to 0 to see them).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    debug = args.debug or os.environ.get("PLA_TVM_DEBUG", "") not in ("", "0")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    _interrupted.clear()
    logging.disable(logging.NOTSET)  # an interrupted earlier call in this process silenced it
    try:
        previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave the handlers alone
        previous = {}
    args.result_stream = sys.stdout
    quiet = contextlib.redirect_stdout(sys.stderr) if getattr(args, "json", False) \
        else contextlib.nullcontext()
    prefix = f"pla-tvm {args.command}"
    try:
        with quiet:
            return int(args.func(args) or 0)
    except (KeyboardInterrupt, Terminated) as stop:
        what = "Ctrl-C" if isinstance(stop, KeyboardInterrupt) else "SIGTERM"
        _silence_workers()
        print(f"{prefix}: interrupted ({what}); nothing half-written was kept", file=sys.stderr)
        return 130
    except Exception as error:
        if not _interrupted:
            return _report_error(prefix, error, debug)
        if debug:
            traceback.print_exc()
        _silence_workers()
        print(f"{prefix}: interrupted ({_interrupted[0]}); nothing half-written was kept",
              file=sys.stderr)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _silence_workers() -> None:
    """After an interrupt: worker threads still finishing their current step (a tuning build, a
    QEMU run) log nothing more, so the interrupt's line stays the last one; the next
    :func:`main` turns logging back on."""
    logging.disable(logging.CRITICAL)


def _report_error(prefix: str, error: Exception, debug: bool) -> int:
    """Print an error as one line (the traceback too with ``debug``); return the exit status."""
    if isinstance(error, (*_user_error_types(), OSError)):
        if debug:
            traceback.print_exc()
        print(f"{prefix}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    if debug:  # a bug: one line, the traceback with --debug
        traceback.print_exc()
    print(f"{prefix}: internal error: {type(error).__name__}: {_one_line(error)} (run with "
          "--debug for the traceback, and please report it)", file=sys.stderr)
    return 1


def run() -> None:
    """The ``pla-tvm`` program: :func:`main`, then exit with its status.

    After an interrupt, whose clean-up :func:`main` has done, further SIGINT and SIGTERM are
    ignored while Python shuts down (worker threads finish their current step, joblib's worker
    processes stop, libraries' exit hooks run), so the status stays 130; then any temporary
    output folder a worker thread re-created meanwhile is deleted again.
    """
    try:
        status = main()
    except KeyboardInterrupt:
        # A Ctrl-C that arrives (or that TVM's FFI re-raises) after main() has restored Python's
        # own handler, while it returns: the command was interrupted and has cleaned up.
        print("pla-tvm: interrupted (Ctrl-C); nothing half-written was kept", file=sys.stderr)
        status = 130
    if status == 130:
        from pla_tvm.files import discard_partial_folders

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        logging.disable(logging.CRITICAL)  # worker threads still finishing log nothing more
        atexit.register(discard_partial_folders)  # runs after the worker threads are joined
    sys.exit(status)


if __name__ == "__main__":
    run()
