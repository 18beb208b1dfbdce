"""``pla-tvm tune``: search kernel schedules for a board with MetaSchedule, measured in QEMU."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pla_tvm.commands import add_force_argument, add_sandbox_argument, emit, positive_int
from pla_tvm.commands.compile import add_model_arguments
from pla_tvm.deploy import tune_model
from pla_tvm.files import output_folder


def _tune(args: argparse.Namespace) -> int:
    from micro.tuning import DATABASE_FILES, SUMMARY_FILE

    with output_folder(args.db, option="--db", marker=SUMMARY_FILE, force=args.force,
                       keep=DATABASE_FILES) as work:
        result = tune_model(args.model, args.board, work, trials=args.trials, pla=args.pla,
                            backend=args.backend, boundary=args.boundary, seed=args.seed,
                            trials_per_iteration=args.trials_per_iteration,
                            strategy=args.strategy, workers=args.workers,
                            progress=not args.json, dsp=args.dsp, sandbox=not args.no_sandbox)
    result["db"] = str(Path(args.db).resolve())
    if args.json:
        emit(args, json.dumps(result, indent=2, sort_keys=True))
        return 0
    lines = [f"tuned {len(result['kernels'])} kernels for {result['board']} "
             f"({result['backend']} kernels), {result['trials']} trials in "
             f"{result['tuning_seconds']:.1f} s"]
    lines += [f"  {name:<40} {'no successful trial' if count is None else f'{count:,}'}"
              f"{'' if count is None else ' instructions'}"
              for name, count in result["kernels"].items()]
    lines.append(f"database in {result['db']}; next: pla-tvm compile ... --db {args.db}")
    emit(args, "\n".join(lines))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``tune``."""
    parser = subparsers.add_parser(
        "tune", help="tune the kernels of a (PLA-swapped) model for a board",
        description="MetaSchedule search over every kernel of the module 'compile' would build, "
        "each candidate measured by its exact instruction count in QEMU. The database in --db "
        "is what 'pla-tvm compile --db' applies.")
    add_model_arguments(parser)
    parser.add_argument("--trials", type=positive_int, required=True,
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
    add_force_argument(parser)
    add_sandbox_argument(parser)
    parser.set_defaults(func=_tune)
