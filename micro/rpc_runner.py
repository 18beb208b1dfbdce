"""A MetaSchedule runner that measures candidates on QEMU servers found through a TVM RPC tracker.

When one machine is not enough, candidates are still built locally (:class:`~micro.measuring.
QemuBuilder`) but measured on any number of machines running :mod:`micro.rpc_server`. Each
candidate asks the tracker for a session with the servers' key (the tracker queues requests
until a server is free), sends the ELF image's bytes to the server's measuring function and gets
the exact instruction counts back: the same numbers the local :class:`~micro.measuring.QemuRunner`
reports, since both run :func:`micro.measuring.measure_counts`. A fault, a hang or a lost
connection fails only that candidate.

Example::

    from micro.rpc_runner import RPCQemuRunner
    runner = RPCQemuRunner(("tracker-host", 9190), "mps2-an386", key="micro", max_workers=8)
    micro.tuning.tune(mod, "mps2-an386", "tune-db", runner=runner)
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tvm import rpc
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.runner import PyRunner, RunnerInput

from .boards import Board, get_board
from .errors import MicroError
from .measuring import PoolFuture, submit_all
from .rpc_server import DEFAULT_KEY, MEASURE_FUNCTION

# Seconds a session may take beyond the candidate's own time limit (upload, QEMU start-up).
_SESSION_SLACK = 30.0


class RemoteMeasureError(MicroError):
    """The RPC server could not measure a candidate; the message holds the server's error."""


@derived_object
class RPCQemuRunner(PyRunner):
    """Measures benchmark firmware in QEMU on RPC servers registered with a tracker.

    Parameters
    ----------
    tracker : tuple of (str, int)
        Tracker host and port.
    board : str or Board
        Board the firmware was built for (the server emulates it).
    key : str
        Device key the servers registered (``python -m micro.rpc_server --key``).
    repeats : int
        Kernel calls per candidate (one count each).
    timeout : float
        Seconds before a candidate counts as hung (on the server).
    max_workers : int
        Sessions at the same time; match it to the number of servers.
    priority : int
        Tracker priority of the requests.
    """

    def __init__(
        self,
        tracker: tuple[str, int],
        board: str | Board,
        key: str = DEFAULT_KEY,
        repeats: int = 3,
        timeout: float = 60.0,
        max_workers: int = 1,
        priority: int = 1,
    ) -> None:
        super().__init__()
        self.tracker, self.key, self.board = tracker, key, get_board(board)
        self.repeats, self.timeout, self.priority = repeats, timeout, priority
        self._pool = ThreadPoolExecutor(max_workers, "micro-rpc")

    def measure(self, elf: Path) -> list[int]:
        """Measure one firmware image on a server and return its instruction counts.

        Parameters
        ----------
        elf : Path
            Benchmark firmware.

        Returns
        -------
        list of int
            One exact instruction count per kernel call.

        Raises
        ------
        RemoteMeasureError
            If the server reports an error (fault, hang, missing tool).
        """
        tracker = rpc.connect_tracker(*self.tracker)
        try:
            session = tracker.request(
                self.key, priority=self.priority, session_timeout=self.timeout + _SESSION_SLACK
            )
        finally:
            tracker.close()
        reply = json.loads(
            session.get_function(MEASURE_FUNCTION)(
                bytearray(elf.read_bytes()), self.board.name, self.repeats, self.timeout
            )
        )
        if "error" in reply:
            raise RemoteMeasureError(f"{self.key} server: {reply['error']}")
        return [int(c) for c in reply["counts"]]

    def run(self, runner_inputs: list[RunnerInput]) -> list[PoolFuture]:
        """Start every candidate's session; MetaSchedule polls the futures."""
        return submit_all(self._pool, self.measure, runner_inputs, self.board)
