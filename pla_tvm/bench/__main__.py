"""Entry point of ``make bench``: run the stages in order and write the report.

Stages: the paper-size baseline and PLA for each seed (``--seeds``, default 3 or
``$PLA_TVM_BENCH_SEEDS``; cached per seed, PLA on the baseline's hash; the extra seeds evaluate
TFLite Micro through the bit-identical TFLite reference kernels), then, on the first seed's
models only: the TVM swap and
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
from pla_tvm.bench.seeds import SEEDS_ENV, aggregate, default_seeds, seed_run
from pla_tvm.bench.small_cnns import small_cnns_stage
from pla_tvm.bench.stages import (
    TFLM_CHECK_BEATS,
    baseline_dir,
    baseline_stage,
    pla4_dir,
    pla4_stage,
    pla_dir,
    pla_stage,
    small_pla_dir,
    small_pla_stage,
)
from pla_tvm.bench.streaming import streaming_stage
from pla_tvm.bench.tuning import tuning_stage
from pla_tvm.data import load_ecg5000
from pla_tvm.pla.npz_io import load_pla
from pla_tvm.pla.pipeline import NPZ_FILE

LOG = logging.getLogger("pla_tvm.bench")


def _timed(results: dict, name: str, stage, *args, **kwargs):
    started = time.perf_counter()
    LOG.info("stage %s: start", name)
    value = stage(*args, **kwargs)
    results.setdefault("stage_seconds", {})[name] = round(time.perf_counter() - started, 1)
    LOG.info("stage %s: done in %.0f s", name, results["stage_seconds"][name])
    return value


def _model_stages(results: dict, cache: Path, dataset, seeds: list[int], fresh: bool) -> None:
    """Baseline and PLA for every seed: the first into ``results['baseline']`` and
    ``results['pla']`` (the models of every later stage), all into ``results['seeds']``."""
    runs = []
    for index, seed in enumerate(seeds):
        suffix = "" if index == 0 else f"_seed{seed}"
        baseline = _timed(results, f"baseline{suffix}", baseline_stage, cache, dataset, seed,
                          fresh, tflm_check=None if index == 0 else TFLM_CHECK_BEATS)
        pla = _timed(results, f"pla{suffix}", pla_stage, cache, dataset,
                     baseline_dir(cache, seed), seed, fresh)
        small = _timed(results, f"small_pla{suffix}", small_pla_stage, cache, dataset,
                       baseline_dir(cache, seed), seed, fresh)
        pla4 = _timed(results, f"pla_4bit{suffix}", pla4_stage, cache, dataset,
                      baseline_dir(cache, seed), seed, fresh)
        if index == 0:
            results["baseline"], results["pla"] = baseline, pla
            results["small_pla"], results["pla_4bit"] = small, pla4
        runs.append(seed_run(seed, baseline, pla, {"pla_16k": small, "pla_4bit": pla4}))
    results["seeds"] = {"runs": runs, "aggregate": aggregate(runs), "firmware_seed": seeds[0],
                        "tflm_check_beats": TFLM_CHECK_BEATS}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark stages and write the report."""
    parser = argparse.ArgumentParser(prog="python -m pla_tvm.bench", description=__doc__)
    parser.add_argument("--cache", type=Path, default=Path("bench-cache"),
                        help="stage artifacts, reused when their inputs are unchanged")
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="where results go")
    parser.add_argument("--seed", type=int, default=0,
                        help="first seed: its models go through firmware, QEMU and tuning")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help=f"train and compress N seeds (--seed, --seed+1, ...) and report mean "
                        f"± std (default: ${SEEDS_ENV}, else 3); each extra seed adds about "
                        "6-9 minutes on 2 cores")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--fresh", action="store_true", help="ignore cached stages")
    args = parser.parse_args(argv)
    try:
        n_seeds = default_seeds() if args.seeds is None else args.seeds
    except ValueError as error:
        parser.error(str(error))
    if n_seeds < 1:
        parser.error("--seeds: at least one seed is needed")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.perf_counter()
    dataset = load_ecg5000(args.data_dir)
    results: dict = {}
    _model_stages(results, args.cache, dataset, list(range(args.seed, args.seed + n_seeds)),
                  args.fresh)
    baseline = baseline_dir(args.cache, args.seed)
    pla_npz = pla_dir(args.cache, args.seed) / NPZ_FILE
    bundle = load_pla(pla_npz)
    small_bundle = load_pla(small_pla_dir(args.cache, args.seed) / NPZ_FILE)
    pla4_bundle = load_pla(pla4_dir(args.cache, args.seed) / NPZ_FILE)
    results["swap"] = _timed(results, "swap", swap_stage, baseline, bundle, dataset)
    results["firmware"] = _timed(results, "firmware", firmware_stage, baseline, bundle, dataset,
                                 args.cache / "firmware", small_bundle=small_bundle,
                                 pla4_bundle=pla4_bundle)
    results["baseline_firmware"] = _timed(results, "baseline_firmware", baseline_firmware_stage,
                                          baseline, dataset, args.cache, args.fresh)
    results["tuning"] = _timed(results, "tuning", tuning_stage, baseline, pla_npz, bundle,
                               dataset, args.cache, args.fresh)
    results["small_cnns"] = _timed(results, "small_cnns", small_cnns_stage,
                                   args.cache / "small-cnns", args.seed)
    results["streaming"] = _timed(results, "streaming", streaming_stage, baseline, pla_npz,
                                  args.cache / "streaming", args.docs, args.data_dir)
    results["plots"] = write_plots(results, bundle, args.docs)
    results["bench_seconds"] = round(time.perf_counter() - started, 1)
    write_report(results, args.docs)
    print(f"wrote {args.docs / 'results.md'} and {args.docs / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
