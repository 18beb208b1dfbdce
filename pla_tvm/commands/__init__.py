"""Sub-commands of the ``pla-tvm`` command line, one module each (see :mod:`pla_tvm.cli`).

Helpers the commands share: :func:`add_force_argument` for commands that write a folder, and
:func:`emit`, which prints a command's result on the real standard output (with ``--json``,
:func:`pla_tvm.cli.main` sends everything else that is printed to standard error).
"""

from __future__ import annotations

import argparse
import sys


def add_force_argument(parser: argparse.ArgumentParser) -> None:
    """``--force``: replace an output folder that holds files the command did not write."""
    parser.add_argument("--force", action="store_true", help="replace the output folder even "
                        "if it holds files this command did not write")


def add_sandbox_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-sandbox``: run QEMU without micro's sandbox (see docs/micro.md)."""
    parser.add_argument("--no-sandbox", action="store_true", help="run the firmware in QEMU "
                        "without the bubblewrap sandbox, with your user's file access (only for "
                        "firmware you trust, on a host without bwrap)")


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def emit(args: argparse.Namespace, text: str) -> None:
    """Print a command's result (its summary, or its JSON with ``--json``) on standard output."""
    print(text, file=getattr(args, "result_stream", None) or sys.stdout)
