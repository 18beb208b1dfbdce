"""Entry point of ``make bench``: run the stages in order and write the report.

Stages: the paper-size baseline (cached), PLA (cached on the baseline's hash), the TVM swap and
integer lowering checked on the host, firmware for every board in QEMU, MetaSchedule tuning of
the PLA int8 graph for the Cortex-M4 (database cached), three small int8 CNNs compiled for the
Cortex-M4 and checked against TFLite Micro (not cached, well under a minute), then plots and the
report. Progress is logged with timestamps; the slow stages say how long they usually take.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pla_tvm.bench.baseline_firmware import baseline_firmware_stage
from pla_tvm.bench.compiler import firmware_stage, swap_stage
from pla_tvm.bench.plots import write_plots
from pla_tvm.bench.report import write_report
from pla_tvm.bench.small_cnns import small_cnns_stage
from pla_tvm.bench.stages import baseline_stage, pla_stage
from pla_tvm.bench.tuning import tuning_stage
from pla_tvm.data import load_ecg5000
from pla_tvm.pla.npz_io import load_pla
from pla_tvm.pla.pipeline import NPZ_FILE

LOG = logging.getLogger("pla_tvm.bench")


def _timed(results: dict, name: str, stage, *args):
    started = time.perf_counter()
    LOG.info("stage %s: start", name)
    results[name] = stage(*args)
    results.setdefault("stage_seconds", {})[name] = round(time.perf_counter() - started, 1)
    LOG.info("stage %s: done in %.0f s", name, results["stage_seconds"][name])
    return results[name]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark stages and write the report."""
    parser = argparse.ArgumentParser(prog="python -m pla_tvm.bench", description=__doc__)
    parser.add_argument("--cache", type=Path, default=Path("bench-cache"),
                        help="stage artifacts, reused when their inputs are unchanged")
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="where results go")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--fresh", action="store_true", help="ignore cached stages")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.perf_counter()
    dataset = load_ecg5000(args.data_dir)
    results: dict = {}
    _timed(results, "baseline", baseline_stage, args.cache, dataset, args.seed, args.fresh)
    baseline_dir = args.cache / f"baseline-paper-seed{args.seed}"
    _timed(results, "pla", pla_stage, args.cache, dataset, baseline_dir, args.seed, args.fresh)
    bundle = load_pla(args.cache / f"pla-seed{args.seed}" / NPZ_FILE)
    _timed(results, "swap", swap_stage, baseline_dir, bundle, dataset)
    _timed(results, "firmware", firmware_stage, baseline_dir, bundle, dataset,
           args.cache / "firmware")
    _timed(results, "baseline_firmware", baseline_firmware_stage, baseline_dir, dataset,
           args.cache, args.fresh)
    _timed(results, "tuning", tuning_stage, baseline_dir, args.cache / f"pla-seed{args.seed}" /
           NPZ_FILE, bundle, dataset, args.cache, args.fresh)
    _timed(results, "small_cnns", small_cnns_stage, args.cache / "small-cnns", args.seed)
    results["plots"] = write_plots(results, bundle, args.docs)
    results["bench_seconds"] = round(time.perf_counter() - started, 1)
    write_report(results, args.docs)
    print(f"wrote {args.docs / 'results.md'} and {args.docs / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
