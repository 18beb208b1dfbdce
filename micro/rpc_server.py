"""A TVM RPC server that measures benchmark firmware in QEMU for tuners on other machines.

TVM's RPC server (``tvm.rpc.Server``) runs only functions registered in its own process. Its
supported extension point is ``server_init_callback``: it runs in the server process before it
starts listening, and every session is a fork of that process, so a global function registered
there is callable by clients as ``session.get_function(MEASURE_FUNCTION)``. The function takes
the ELF image's bytes, the board name, the number of kernel calls and a time limit, runs QEMU
with the counting plugin (built once, at start-up, with this machine's C compiler) and answers a
JSON object: ``{"counts": [...]}`` or ``{"error": "<ErrorClass>: <message>"}``. Errors travel as
data so that a faulting candidate fails only its own trial.

Start one per machine (or several for several cores: a server serves one session at a time)::

    python -m tvm.exec.rpc_tracker --host 0.0.0.0 --port 9190          # once, anywhere
    python -m micro.rpc_server --tracker TRACKER_HOST:9190 --key micro   # on each machine

The machine needs the same tools as :func:`micro.run` (``make setup``: QEMU, Arm binutils, a
host ``cc``, bubblewrap). Each image a client sends runs in :mod:`micro.sandbox`'s sandbox (it
sees only its own run folder, no network); without ``bwrap`` the server refuses to start unless
``--no-sandbox``. The server listens on 127.0.0.1 unless ``--host`` says otherwise, and TVM's RPC
protocol has no authentication: whoever reaches the port can have images run and use TVM's
RPC functions, so expose it (``--host 0.0.0.0``) on trusted networks only.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import tvm_ffi
from tvm import rpc

from .boards import get_board
from .counter import build_counter_plugin
from .errors import MicroError, ToolchainNotFoundError
from .measuring import error_message, measure_counts
from .sandbox import find_sandbox
from .toolchain import find_toolchain

logger = logging.getLogger(__name__)

MEASURE_FUNCTION = "micro.rpc.measure_firmware"
DEFAULT_KEY = "micro"
_ELF_NAME = "candidate.elf"


def register_measure_function(toolchain_path: str | None = None, sandbox: bool = True) -> None:
    """Register :data:`MEASURE_FUNCTION` in this process (the server's init callback).

    Parameters
    ----------
    toolchain_path : str, optional
        As for :func:`micro.build`.
    sandbox : bool
        Confine every QEMU run to its run folder (:mod:`micro.sandbox`; default).

    Raises
    ------
    ToolchainNotFoundError
        If a tool is missing or there is no host C compiler for the counting plugin: a server
        that cannot count exactly would hand out wrong costs, so it refuses to start.
    """
    toolchain = find_toolchain(toolchain_path)
    plugin = build_counter_plugin(toolchain, Path(tempfile.mkdtemp(prefix="micro-rpc-plugin-")))
    if plugin is None:
        raise ToolchainNotFoundError("an RPC measuring server needs a host `cc` for the plugin")

    @tvm_ffi.register_global_func(MEASURE_FUNCTION, override=True)
    def measure(elf: bytes, board: str, repeats: int, timeout: float) -> str:
        with tempfile.TemporaryDirectory(prefix="micro-rpc-") as work:
            path = Path(work) / _ELF_NAME
            path.write_bytes(bytes(elf))
            try:
                counts = measure_counts(
                    path, get_board(board), toolchain, plugin, int(repeats), float(timeout),
                    sandbox,
                )
            except MicroError as exc:
                return json.dumps({"error": error_message(exc)})
        return json.dumps({"counts": counts})


def start_server(
    tracker: tuple[str, int] | None,
    key: str = DEFAULT_KEY,
    *,
    host: str = "127.0.0.1",
    port: int = 9091,
    port_end: int | None = None,
    custom_addr: str | None = None,
    toolchain_path: str | None = None,
    silent: bool = False,
    sandbox: bool = True,
) -> rpc.Server:
    """Start a measuring RPC server in a child process.

    Parameters
    ----------
    tracker : tuple of (str, int), optional
        Tracker to register with (None: clients connect directly).
    key : str
        Device key clients request from the tracker.
    host : str
        Address to listen on (default loopback only; ``"0.0.0.0"``: every interface).
    port : int
        First port to try.
    port_end : int, optional
        End of the port range (default ``port + 100``): several servers on one machine each
        take the next free port.
    custom_addr : str, optional
        Address reported to the tracker (when ``host`` is not reachable as such).
    toolchain_path : str, optional
        As for :func:`micro.build`.
    silent : bool
        Only errors in the server's log.
    sandbox : bool
        Confine every QEMU run (default). False runs clients' images with this user's file
        access: only for clients you trust.

    Returns
    -------
    tvm.rpc.Server
        Running server (``.port``; ``.terminate()`` stops it).

    Raises
    ------
    SandboxUnavailableError
        If ``sandbox`` is set and ``bwrap`` is not installed.
    """
    if sandbox:
        find_sandbox()
    return rpc.Server(
        host=host,
        port=port,
        port_end=port + 100 if port_end is None else port_end,
        tracker_addr=tracker,
        key=key,
        custom_addr=custom_addr,
        silent=silent,
        server_init_callback=functools.partial(register_measure_function, toolchain_path, sandbox),
    )


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: start a server and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m micro.rpc_server", description=__doc__)
    parser.add_argument("--tracker", type=_address, help="tracker HOST:PORT to register with")
    parser.add_argument("--key", default=DEFAULT_KEY, help="device key (default %(default)s)")
    parser.add_argument(
        "--host", default="127.0.0.1",
        help="listen address (default %(default)s; 0.0.0.0 exposes the server to the network)",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=9091, help="first port to try")
    parser.add_argument("--port-end", type=int, help="end of the port range (default port+100)")
    parser.add_argument("--custom-addr", help="address to report to the tracker")
    parser.add_argument("--toolchain-path", help="search the tools here instead of PATH")
    parser.add_argument(
        "--no-sandbox", action="store_true",
        help="run clients' images unconfined, with this user's file access (trusted clients only)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        server = start_server(
            args.tracker,
            args.key,
            host=args.host,
            port=args.port,
            port_end=args.port_end,
            custom_addr=args.custom_addr,
            toolchain_path=args.toolchain_path,
            sandbox=not args.no_sandbox,
        )
    except MicroError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    exposure = (
        "loopback only" if args.host in ("127.0.0.1", "localhost", "::1")
        else "reachable from the network; anyone who reaches it can run images on this machine"
    )
    confinement = (
        "sandboxed (each image sees only its run folder, no network)" if not args.no_sandbox
        else "UNCONFINED (images can read and write this user's files)"
    )
    logger.warning(
        "micro RPC server on %s:%d (key %r), %s; images run %s; Ctrl-C stops it",
        args.host, server.port, args.key, exposure, confinement,
    )  # fmt: skip
    # The server lives in a child process: stop it on SIGTERM too, or it outlives this one.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.terminate()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
