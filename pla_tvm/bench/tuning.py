"""The tuning stage of the benchmark: MetaSchedule on the PLA int8 graph for the Cortex-M4,
every candidate measured in QEMU, then the tuned firmware checked against the untuned one.

The search prepares the graph the way the default build lowers it (int8 dot products on the SMLAD
micro-kernel on the Cortex-M4), so both builds here use the micro-kernel and the search tunes the
rest. The database is cached in the cache folder under the bundle's hash, that lowering and a hash
of the compiler's sources (``micro``, ``relay_passes``: a changed compiler produces other kernels,
which an old database would not match), so a rerun applies it instead of searching again;
``--fresh`` searches anew.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

import micro
import relay_passes
from micro.kernels import library_for, library_name
from micro.tuning import SUMMARY_FILE, apply_database, tune
from pla_tvm.baseline.pipeline import INT8_TFLITE_FILE
from pla_tvm.bench.compiler import COMPARISON_BOARD
from pla_tvm.data.beats import Dataset
from pla_tvm.files import output_folder, sha256_of
from pla_tvm.graph import prepare_module
from pla_tvm.inference import predict_classes
from pla_tvm.metrics import classification_metrics
from pla_tvm.pla.npz_io import PLABundle

LOG = logging.getLogger(__name__)

#: Candidates measured over all kernels, and per search round (each kernel gets whole rounds).
TUNING_TRIALS = 40
TRIALS_PER_ROUND = 8
#: Files whose change changes the kernels the compiler generates.
_SOURCE_SUFFIXES = frozenset({".py", ".c", ".h", ".json", ".in"})


def _run(mod, out_dir: Path, inputs: np.ndarray, dsp: bool | None = None):
    firmware = micro.build(mod, COMPARISON_BOARD, out_dir, dsp=dsp)
    return firmware, micro.run(firmware, inputs.reshape((len(inputs), *firmware.input.shape)),
                               timeout=600)


def compiler_digest() -> str:
    """Hash of the compiler's sources and templates (``micro`` and ``relay_passes``)."""
    digest = hashlib.sha256()
    for package in (micro, relay_passes):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in _SOURCE_SUFFIXES:
                digest.update(path.relative_to(root.parent).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def tuning_stage(baseline_dir: Path, bundle_path: Path, bundle: PLABundle, dataset: Dataset,
                 cache: Path, fresh: bool) -> dict[str, Any]:
    """Tune (or reuse the database), build tuned and untuned firmware, compare them."""
    digest = sha256_of(bundle_path)[:16]
    lowering = library_name(library_for(micro.get_board(COMPARISON_BOARD)))
    db_dir = cache / (f"tuning-{COMPARISON_BOARD}-{lowering}-{digest}-{compiler_digest()}"
                      f"-{TUNING_TRIALS}")
    summary_path = db_dir / "tuning_summary.json"
    mod = prepare_module(baseline_dir / INT8_TFLITE_FILE, bundle)
    if fresh or not summary_path.is_file():
        LOG.info("tuning: %d trials on %s (about 8 minutes on 2 cores)", TUNING_TRIALS,
                 COMPARISON_BOARD)
        with output_folder(db_dir, option="bench cache", marker=SUMMARY_FILE,
                           force=True) as work:
            tune(mod, COMPARISON_BOARD, work, max_trials=TUNING_TRIALS,
                 trials_per_iteration=TRIALS_PER_ROUND, progress=False)
    else:
        LOG.info("tuning: reusing the database in %s", db_dir)
    summary = json.loads(summary_path.read_text())
    test = dataset.test
    x_q = bundle.quantized.input.quantize(test.x)
    _, untuned = _run(mod, cache / "firmware" / "pla-int8-untuned", x_q)
    _, plain = _run(mod, cache / "firmware" / "pla-int8-plain", x_q, dsp=False)
    tuned_mod = apply_database(mod, COMPARISON_BOARD, db_dir)
    _, tuned = _run(tuned_mod, cache / "firmware" / "pla-int8-tuned", x_q)
    footprint = tuned.footprint
    return {
        "board": COMPARISON_BOARD, "trials": TUNING_TRIALS, "trials_per_round": TRIALS_PER_ROUND,
        "tuning_seconds": summary["seconds"], "kernels": summary["kernels"],
        "untuned_instructions": untuned.instructions_per_inference,
        "tuned_instructions": tuned.instructions_per_inference,
        "tuned_over_untuned": tuned.instructions_per_inference
        / untuned.instructions_per_inference,
        "plain_instructions": plain.instructions_per_inference,
        "untuned_model_flash_bytes": untuned.footprint.model_flash_bytes,
        "untuned_model_ram_bytes": untuned.footprint.model_ram_bytes,
        "untuned_stack_bytes": untuned.stack_bytes,
        "tuned_over_plain": tuned.instructions_per_inference / plain.instructions_per_inference,
        "outputs_equal_plain": bool(np.array_equal(tuned.outputs, plain.outputs)),
        "outputs_equal_untuned": bool(np.array_equal(tuned.outputs, untuned.outputs)),
        **classification_metrics(test.y, predict_classes(tuned.outputs.reshape(len(test), -1)),
                                 test.class_names),
        "model_flash_bytes": footprint.model_flash_bytes,
        "model_ram_bytes": footprint.model_ram_bytes, "stack_bytes": tuned.stack_bytes,
    }
