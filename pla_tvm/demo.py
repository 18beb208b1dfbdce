"""``make demo``: run the pipeline end to end on the real data and say what each stage did.

Stages are added as the project grows; each prints a heading, runs through the public command
line (so the demo exercises exactly what a user would type) and reports where its output landed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pla_tvm.cli import main as cli_main
from pla_tvm.data.locate import project_shared_data


def _stage(title: str, argv: Sequence[str]) -> None:
    print(f"\n== {title}\n$ pla-tvm {' '.join(argv)}", flush=True)
    started = time.perf_counter()
    status = cli_main(list(argv))
    if status != 0:
        raise SystemExit(f"demo stage failed ({title}): pla-tvm exited with {status}")
    print(f"-- done in {time.perf_counter() - started:.1f} s", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo stages; ``--out`` is where artifacts of later stages go."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/demo"),
                        help="directory for demo artifacts (default: %(default)s)")
    args = parser.parse_args(argv)
    record = project_shared_data() / "mitdb" / "100"
    baseline = args.out / "baseline-tiny"
    _stage("ECG5000: beats per split and class (the seed paper's data)",
           ["data", "summary", "--source", "ecg5000"])
    _stage("MIT-BIH record 100: beats cut from the raw record, resampled to 140 samples",
           ["data", "summary", "--source", f"wfdb:{record}"])
    _stage("Baseline (tiny preset, for speed): train, prune, int8, evaluate on Keras, TFLite and "
           "TFLite Micro", ["train", "--out", str(baseline), "--config", "tiny", "--epochs", "40",
                            "--finetune-epochs", "5", "--tflm-limit", "500"])
    _stage("Evaluate the pruned int8 TFLite model on the raw MIT-BIH record's beats",
           ["evaluate", str(baseline / "baseline_int8.tflite"), "--source", f"wfdb:{record}"])
    pla = args.out / "pla-tiny"
    _stage("PLA: choose k and lambda by 5-fold cross-validation, fit, quantize to int8, export",
           ["compress", "--baseline", str(baseline), "--out", str(pla)])
    firmware = args.out / "firmware-pla-int8-m4"
    _stage("TVM: import the int8 baseline, swap its trunk for the PLA operator, lower to integer "
           "arithmetic, build bare-metal firmware for the Cortex-M4 (mps2-an386)",
           ["compile", str(baseline / "baseline_int8.tflite"), "--pla", str(pla / "pla.npz"),
            "--board", "mps2-an386", "--out", str(firmware)])
    _stage("QEMU: run every ECG5000 test beat through the firmware in one run",
           ["run", str(firmware), "--source", "ecg5000"])
    library = args.out / "lib-ecg-pla"
    _stage("Take the model home: the compiled model as a C library for your own firmware",
           ["export", str(firmware), "--out", str(library), "--prefix", "ecg_pla"])
    stream = args.out / "firmware-stream-m3"
    _stage("On-device ECG: the same model behind the streaming front end (QRS detection, beat "
           "cutting, resampling, z-score, int8) for the Cortex-M3 (mps2-an385), 360 Hz",
           ["compile", str(baseline / "baseline_int8.tflite"), "--pla", str(pla / "pla.npz"),
            "--board", "mps2-an385", "--stream", "--fs", "360", "--adc-bits", "11",
            "--out", str(stream)])
    plot = args.out / "stream-mitdb100.png"
    _stage("QEMU: stream the whole MIT-BIH record 100 (MLII, 30 minutes) sample by sample, "
           "checked bit-exactly against the host",
           ["run", str(stream), "--source", f"wfdb:{record}", "--lead", "MLII",
            "--plot", str(plot)])
    print(f"\nDemo finished: loaded ECG5000 and a raw PhysioNet record, trained the tiny baseline "
          f"({baseline}), compressed it with PLA ({pla}), compiled the PLA-swapped int8 graph "
          f"to Cortex-M4 firmware ({firmware}), ran the test set in QEMU, exported the model "
          f"as a C library ({library}: include/ecg_pla.h) and streamed a raw record through "
          f"the Cortex-M3 streaming firmware ({stream}; R peaks coloured by class: {plot}). "
          f"The paper-size study is `make bench` (results in docs/results.md); your own model: "
          f"docs/byom.md; streaming: docs/stream.md.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
