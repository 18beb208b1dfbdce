"""``pla-tvm tune``: search kernel schedules for a board with MetaSchedule, measured in QEMU."""

from __future__ import annotations

import argparse
import json

from pla_tvm.commands.compile import add_model_arguments
from pla_tvm.deploy import tune_model


def _tune(args: argparse.Namespace) -> int:
    result = tune_model(args.model, args.board, args.db, trials=args.trials, pla=args.pla,
                        backend=args.backend, boundary=args.boundary, seed=args.seed,
                        trials_per_iteration=args.trials_per_iteration, strategy=args.strategy,
                        workers=args.workers, progress=not args.json, dsp=args.dsp)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    print(f"tuned {len(result['kernels'])} kernels for {result['board']} ({result['backend']} "
          f"kernels), {result['trials']} trials in {result['tuning_seconds']:.1f} s")
    for name, count in result["kernels"].items():
        print(f"  {name:<40} {'no successful trial' if count is None else f'{count:,}'}"
              f"{'' if count is None else ' instructions'}")
    print(f"database in {result['db']}; next: pla-tvm compile ... --db {args.db}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``tune``."""
    parser = subparsers.add_parser(
        "tune", help="tune the kernels of a (PLA-swapped) model for a board",
        description="MetaSchedule search over every kernel of the module 'compile' would build, "
        "each candidate measured by its exact instruction count in QEMU. The database in --db "
        "is what 'pla-tvm compile --db' applies.")
    add_model_arguments(parser)
    parser.add_argument("--trials", type=int, required=True,
                        help="candidates measured over all kernels")
    parser.add_argument("--db", required=True, metavar="DIR", help="database directory")
    parser.add_argument("--trials-per-iteration", type=int, default=16,
                        help="candidates per search round (default: %(default)s)")
    parser.add_argument("--strategy", choices=("evolutionary", "replay-trace"),
                        default="evolutionary", help="MetaSchedule search: evolutionary (slow "
                        "to start, better over many trials) or replay-trace (random schedules, "
                        "quick for a few trials) (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="search seed (default: 0)")
    parser.add_argument("--workers", type=int,
                        help="candidates built and run at once (default: one per core)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=_tune)
