"""The benchmark's int8 baseline stage: the paper-size pruned-int8 ResNet compiled by micro on the
DSP cores, against TFLite Micro's interpreter on the same beats.

Builds, on the same QEMU boards and counted the same way (exact instruction counts):

* the default build (int8 convolutions on the DSP micro-kernels, :mod:`micro.kernels.dsp`) on
  the Cortex-M4, M7 and M33; on the Cortex-M55 (Helium convolution kernel,
  :mod:`micro.kernels.mve`, the constants in the AN547's SRAM) and the Cortex-M3 (scalar
  kernels, :mod:`micro.kernels.scalar`);
* a MetaSchedule-tuned build on the M4 and M7 (database cached under the baseline's hash and the
  compiler's sources, like the PLA tuning stage);
* TVM's plain lowering on the M4 (a few beats: ~10^9 instructions each);
* the default build with other numbers of output positions per convolution pass (M4), which is
  how the default was chosen.

Every build's outputs are compared with TFLite Micro's interpreter (reference kernels, on the
host) beat by beat on :data:`BEATS` evenly spaced test beats. The report takes the fastest
Cortex-M4 build as "the baseline" of every PLA-versus-baseline ratio.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

import micro
from micro import kernels
from micro.kernels.dsp import apply_dsp
from micro.tuning import SUMMARY_FILE, apply_database, tune
from pla_tvm.baseline.costs import model_macs
from pla_tvm.baseline.pipeline import INT8_TFLITE_FILE, KERAS_FILE
from pla_tvm.bench.tuning import compiler_digest
from pla_tvm.data.beats import Dataset
from pla_tvm.files import output_folder, sha256_of
from pla_tvm.graph import HostRunner, prepare_module
from pla_tvm.inference import TFLiteRunner, predict_classes
from pla_tvm.metrics import classification_metrics

LOG = logging.getLogger(__name__)

#: Boards of the default build: the cores with the DSP extension, the M55 and the M3.
BOARDS = ("mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547", "mps2-an385")
TUNED_BOARDS = ("mps2-an386", "mps2-an500")
#: The board whose fastest build the PLA ratios and the targets use.
M4 = "mps2-an386"
#: Evenly spaced test beats every build runs and TFLite Micro checks.
BEATS = 200
#: Beats of TVM's plain lowering (about 10^9 instructions each).
PLAIN_BEATS = 5
#: Output positions per convolution pass measured for the choice of the default (M4).
PASS_SIZES = (2, 4, 10, 14, 28)
PASS_SIZE_BEATS = 2
#: MetaSchedule budget for the baseline's kernels (each gets whole rounds).
TUNING_TRIALS = 128
TRIALS_PER_ROUND = 8
#: TFLite Micro with CMSIS-NN on mps2-an386, counted the same way (shared/design/
#: TOOLCHAIN_NOTES.md, measured 2026-12-06 on this model's architecture; not reproducible here:
#: TFLite Micro's C++ sources are in no registry this project can install from).
TFLM_CMSIS_NN = {"instructions_per_inference": 202_500_000, "arena_bytes": 96_068,
                 "reference_instructions_per_inference": 729_700_000}



def _row(build: str, board: str, firmware: micro.Firmware, inputs: np.ndarray,
         tflm: np.ndarray, host: np.ndarray, labels: np.ndarray, names, seconds: float
         ) -> dict[str, Any]:
    count = len(inputs)
    run = micro.run(firmware, inputs.reshape(count, *firmware.input.shape), timeout=3600)
    outputs = run.outputs.reshape(count, -1)
    equal = (outputs == tflm[:count]).all(axis=1)
    return {
        "build": build, "board": board, "beats": count,
        "instructions_per_inference": run.instructions_per_inference,
        "instructions_min": run.instructions_min, "instructions_max": run.instructions_max,
        "model_flash_bytes": firmware.footprint.model_flash_bytes,
        "model_ram_bytes": firmware.footprint.model_ram_bytes,
        "stack_bytes": run.stack_bytes,
        "beats_equal_tflm": int(equal.sum()),
        "max_abs_difference_tflm": int(np.abs(outputs.astype(int) - tflm[:count]).max()),
        "host_equal": bool(np.array_equal(outputs, host[:count])),
        "accuracy": classification_metrics(labels[:count], predict_classes(outputs),
                                           names)["accuracy"],
        "compile_seconds": round(seconds, 1), "qemu_seconds": round(run.wall_seconds, 1),
    }


def _built(mod, board: str, out_dir: Path) -> tuple[micro.Firmware, float]:
    started = time.perf_counter()
    return micro.build(mod, board, out_dir), time.perf_counter() - started


def _tuned(mod, board: str, baseline_path: Path, cache: Path, fresh: bool) -> tuple[Any, dict]:
    """Tune the baseline's kernels for ``board`` (or reuse the cached database)."""
    db_dir = cache / (f"tuning-baseline-{board}-{sha256_of(baseline_path)[:16]}-"
                      f"{compiler_digest()}-{TUNING_TRIALS}")
    summary_path = db_dir / "tuning_summary.json"
    if fresh or not summary_path.is_file():
        LOG.info("baseline: tuning %d trials on %s (a few minutes)", TUNING_TRIALS, board)
        with output_folder(db_dir, option="bench cache", marker=SUMMARY_FILE,
                           force=True) as work:
            tune(mod, board, work, max_trials=TUNING_TRIALS,
                 trials_per_iteration=TRIALS_PER_ROUND, progress=False)
    else:
        LOG.info("baseline: reusing the tuning database in %s", db_dir)
    summary = json.loads(summary_path.read_text())
    return apply_database(mod, board, db_dir), summary


def baseline_firmware_stage(baseline_dir: Path, dataset: Dataset, cache: Path,
                            fresh: bool) -> dict[str, Any]:
    """Every micro build of the int8 baseline on the DSP boards, checked against TFLite Micro."""
    import tf_keras  # noqa: PLC0415 (TensorFlow loads slowly; only this stage needs it)

    path = baseline_dir / INT8_TFLITE_FILE
    macs = model_macs(tf_keras.models.load_model(baseline_dir / KERAS_FILE, compile=False))
    subset = dataset.test.subset(BEATS)
    names = subset.class_names
    tflm_runner = TFLiteRunner(path.read_bytes(), path.name, "tflm")
    inputs = tflm_runner.quantize_input(subset.x)
    LOG.info("baseline: TFLite Micro on %d beats", len(inputs))
    tflm = tflm_runner.raw_outputs(inputs)
    mod = prepare_module(path)
    host = HostRunner(mod).run(inputs)
    work = cache / "firmware" / "baseline"
    rows, tuning = [], {}
    for board in BOARDS:
        count = len(inputs)
        LOG.info("baseline: default build on %s, %d beats", board, count)
        firmware, seconds = _built(mod, board, work / f"default-{board}")
        library = kernels.library_name(kernels.library_for(micro.get_board(board)))
        rows.append(_row(f"micro default ({library.upper()} micro-kernels)", board, firmware,
                         inputs[:count], tflm, host, subset.y, names, seconds))
    for board in TUNED_BOARDS:
        tuned_mod, summary = _tuned(mod, board, path, cache, fresh)
        firmware, seconds = _built(tuned_mod, board, work / f"tuned-{board}")
        rows.append(_row("micro tuned (MetaSchedule)", board, firmware, inputs, tflm, host,
                         subset.y, names, seconds))
        tuning[board] = {"seconds": summary["seconds"], "trials": TUNING_TRIALS,
                         "kernels": summary["kernels"]}
    LOG.info("baseline: TVM's plain lowering on %s, %d beats", M4, PLAIN_BEATS)
    started = time.perf_counter()
    plain = micro.build(mod, M4, work / "plain", dsp=False)
    rows.append(_row("TVM plain lowering (--no-dsp)", M4, plain, inputs[:PLAIN_BEATS], tflm,
                     host, subset.y, names, time.perf_counter() - started))
    passes = []
    board = micro.get_board(M4)
    for size in PASS_SIZES:
        firmware = micro.build(apply_dsp(mod, board, conv_positions=size), board,
                               work / f"pass-{size}")
        run = micro.run(firmware, inputs[:PASS_SIZE_BEATS].reshape(
            PASS_SIZE_BEATS, *firmware.input.shape), timeout=600)
        passes.append({"positions": size,
                       "instructions_per_inference": run.instructions_per_inference,
                       "model_ram_bytes": firmware.footprint.model_ram_bytes})
    return {"macs": macs, "beats": len(inputs), "rows": rows, "tuning": tuning,
            "pass_sizes": passes, "tflm_cmsis_nn": TFLM_CMSIS_NN}
