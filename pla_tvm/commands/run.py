"""``pla-tvm run``: classify beats with compiled firmware in QEMU and measure it."""

from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from pla_tvm.commands import add_sandbox_argument, emit, positive_int
from pla_tvm.commands.data import add_source_arguments, load_for_model
from pla_tvm.deploy import Evaluation, evaluate, read_manifest
from pla_tvm.errors import DataError
from pla_tvm.files import write_atomically


def _summary(report: dict[str, Any]) -> str:
    lines = [f"{report['board']} ({report['backend']} kernels): {report['n']} beats of "
             f"{report['source']} {report['split']} in one QEMU run "
             f"({report['qemu_wall_seconds']:.1f} s)"]
    if report["n_scored"]:
        if report["n_scored"] < report["n"]:
            lines.append(f"  scored on the {report['n_scored']} labelled beats")
        lines += [f"  {key:<12} {report[key]:.4f}"
                  for key in ("accuracy", "sensitivity", "precision", "f1", "macro_f1")]
    else:
        lines.append("  no labelled beats: predictions only")
    lines.append("  predicted    " + ", ".join(f"{name} {count}"
                                              for name, count in report["class_counts"].items()))
    lines += [
        f"  instructions/beat {report['instructions_per_inference']:,.0f} "
        f"({report['counting']}; min {report['instructions_min']:,}, "
        f"max {report['instructions_max']:,})",
        f"  model {report['model_flash_bytes']:,} B flash, {report['model_ram_bytes']:,} B RAM, "
        f"stack {report['stack_bytes']:,} B; image {report['image_flash_bytes']:,} B flash, "
        f"{report['image_ram_bytes']:,} B RAM",
    ]
    return "\n".join(lines)


def save_outputs(path: str | Path, evaluation: Evaluation, beats) -> None:
    """Write raw outputs, predictions, labels and beat indices as one ``.npz`` (atomically)."""
    buffer = io.BytesIO()
    np.savez(buffer, outputs=evaluation.outputs, predictions=evaluation.predictions,
             labels=np.asarray(beats.y))
    write_atomically(Path(path), buffer.getvalue())


def check_outputs_file(path: str | None, option: str = "--outputs",
                       expected: str = "FILE.npz") -> None:
    """Refuse an output file (``--outputs``, ``--plot``) that could not be written, before the
    long run."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise DataError(f"{option} {target} is a folder, expected a file name ({expected})")
    folder = target.parent
    if not folder.is_dir():
        raise DataError(f"{option} {target}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise DataError(f"{option} {target}: folder {folder} is not writable")


def _stream_summary(report: dict[str, Any]) -> str:
    from pla_tvm.stream.pipeline import report_lines

    cost = report["cost"]
    equal = report["bit_exact_with_host_reference"]
    lines = [f"{report['board']}: {report['record']} lead {report['lead']}, "
             f"{report['seconds_of_signal']:,.1f} s at {report['fs']} Hz streamed in one QEMU "
             f"run ({report['qemu_wall_seconds']:.1f} s)", *report_lines(report)]
    lines += [
        "  bit-exact with the host reference: " + ", ".join(
            f"{key} {'yes' if value else 'NO'}" for key, value in equal.items()),
        f"  instructions per second of signal {cost['instructions_per_second_of_signal']:,.0f}; "
        f"most on one sample {cost['most_instructions_on_one_sample']:,}, on one beat "
        f"{cost['most_instructions_on_one_beat']:,}",
        f"  duty cycle {100 * cost['duty_cycle']['at_board_clock']:.2f} % at the board's "
        f"{cost['duty_cycle']['board_clock_hz'] / 1e6:g} MHz, "
        f"{100 * cost['duty_cycle']['at_48_mhz']:.2f} % at 48 MHz",
        f"  stream RAM {cost['stream_ram_bytes']:,} B (front end and application "
        f"{cost['app_ram_bytes']:,} B + model {cost['model_ram_bytes']:,} B), stack "
        f"{cost['stack_bytes']:,} B",
    ]
    return "\n".join(lines)


def _run_stream(args: argparse.Namespace) -> int:
    from pla_tvm.deploy import stream_record
    from pla_tvm.stream.records import read_raw_record

    kind, _, path = (args.source or "").partition(":")
    if kind != "wfdb" or not path:
        raise DataError(f"--source {args.source}: a streaming firmware reads a raw record, "
                        "--source wfdb:PATH/RECORD")
    record = read_raw_record(path, args.lead)
    report, outcome = stream_record(args.dir, record, timeout=args.timeout,
                                    sandbox=not args.no_sandbox)
    if args.plot:
        from pla_tvm.stream.plot import plot_stream

        plot_stream(args.plot, record.samples, record.fs, outcome.r_peaks, outcome.beat_peaks,
                    outcome.classes, reference=record.beats, start_s=args.plot_start,
                    title=f"{record.path.name} lead {record.lead} streamed on {report['board']}: "
                    "R peaks coloured by class")
        report["plot_file"] = str(args.plot)
    if args.outputs:
        buffer = io.BytesIO()
        np.savez(buffer, r_peaks=outcome.r_peaks, beat_peaks=outcome.beat_peaks,
                 predictions=outcome.classes, outputs=outcome.outputs)
        write_atomically(Path(args.outputs), buffer.getvalue())
        report["outputs_file"] = str(args.outputs)
    emit(args, json.dumps(report, indent=2, sort_keys=True) if args.json
         else _stream_summary(report))
    return 0


def _run(args: argparse.Namespace) -> int:
    manifest = read_manifest(args.dir)  # a wrong directory fails before the beats are loaded
    check_outputs_file(args.outputs)
    check_outputs_file(args.plot, "--plot", "FILE.png")
    if manifest.get("stream"):
        return _run_stream(args)
    if args.plot:
        raise DataError(f"--plot draws a streamed record; {args.dir} is not a streaming "
                        "firmware (compile with --stream --fs HZ)")
    # The firmware's input is one beat: [1, L, 1] or [1, L].
    dataset = load_for_model(args, int(np.prod(manifest["input"]["shape"])),
                             f"the firmware in {args.dir}")
    split = args.split or ("test" if "test" in dataset.splits else next(iter(dataset.splits)))
    if split not in dataset.splits:
        raise DataError(f"{dataset.name} has no split {split!r}; it has "
                        f"{', '.join(dataset.splits)}")
    beats = dataset[split].subset(args.limit)
    evaluation = evaluate(args.dir, beats, timeout=args.timeout, sandbox=not args.no_sandbox)
    report = {**evaluation.report, "source": dataset.name, "split": split}
    if args.outputs:
        save_outputs(args.outputs, evaluation, beats)
        report["outputs_file"] = str(args.outputs)
    emit(args, json.dumps(report, indent=2, sort_keys=True) if args.json else _summary(report))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``run``."""
    parser = subparsers.add_parser(
        "run", help="run compiled firmware on beats in QEMU: accuracy, instructions, memory",
        description="Quantize the beats as the int8 model expects, run them all through the "
        "firmware in one QEMU session, and report the paper's metrics with instructions per "
        "beat, stack and flash/RAM.")
    parser.add_argument("dir", help="directory written by 'pla-tvm compile --out'")
    parser.add_argument("--split", help="split to run (default: test, or the only one)")
    parser.add_argument("--limit", type=positive_int, help="run N beats evenly spaced over the "
                        "split (UCR files are sorted by class, so not the first N)")
    parser.add_argument("--timeout", type=float, help="seconds before QEMU counts as hung "
                        "(default: 60 + 0.5 per beat)")
    parser.add_argument("--outputs", metavar="FILE.npz", help="also save raw outputs, "
                        "predictions and labels")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="streaming firmware: also draw 10 s "
                        "of the record with the R peaks coloured by class")
    parser.add_argument("--plot-start", type=float, default=0.0, metavar="SECONDS",
                        help="where the --plot stretch starts (default: 0)")
    add_sandbox_argument(parser)
    add_source_arguments(parser, resample=True)
    parser.set_defaults(func=_run)
