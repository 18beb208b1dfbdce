"""``pla-tvm compile``: a baseline TFLite model (PLA-swapped with ``--pla``) → Cortex-M firmware."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pla_tvm.commands import add_force_argument, emit
from pla_tvm.deploy import MANIFEST_FILE, DeploymentError, compile_model
from pla_tvm.files import output_folder


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``compile`` and ``tune`` share: what to build, for which board and back end.

    ``tune`` must see the same module, lowering and back end as the later ``compile --db``, so
    both read them from the same options.
    """
    parser.add_argument("model", help="baseline .tflite (float, or full-int8 from 'pla-tvm train')")
    parser.add_argument("--pla", help="pla.npz from 'pla-tvm compress': swap the baseline's trunk "
                        "for the PLA operator (int8 for an int8 model)")
    parser.add_argument("--board", required=True,
                        help="micro board, e.g. mps2-an386 (see docs/micro.md)")
    parser.add_argument("--backend", choices=("c", "llvm"), default="c",
                        help="kernel code: C for arm-none-eabi-gcc, or TVM's LLVM "
                        "(default: %(default)s)")
    parser.add_argument("--boundary", help="Relax name of the trunk's output tensor "
                        "(default: found structurally, the input of the dense head)")
    parser.add_argument("--plain", "--no-dsp", dest="dsp", action="store_const", const=False,
                        default=None, help="TVM's plain lowering, no micro-kernels (by default "
                        "the board's kernel library: DSP on the M4/M7/M33, scalar on the M0/M3; "
                        "--no-dsp is the former name)")


def _memory_lines(memory: dict[str, Any] | None) -> list[str]:
    """The RAM plan: the arena, what makes its peak, the kernels' workspace, input and output."""
    if not memory:
        return []
    tensors = ", ".join(f"{t['name']} {t['dtype']}{t['shape']} {t['bytes']:,} B"
                        for t in memory["peak_tensors"])
    lines = [f"  RAM plan: arena {memory['arena_bytes']:,} B + kernel workspace "
             f"{memory['workspace_bytes']:,} B + input/output {memory['io_bytes']:,} B"]
    if memory["peak_kernel"]:
        lines.append(f"  arena peak during {memory['peak_kernel']}: {tensors}")
    return lines


def _library_note(manifest: dict[str, Any]) -> str:
    """``, dsp micro-kernels`` (the library that built the kernels), nothing for plain TVM."""
    library = manifest.get("kernels", "dsp" if manifest["dsp"] else "plain")
    return "" if library == "plain" else f", {library} micro-kernels"


def _region_lines(footprint: dict[str, Any]) -> list[str]:
    """The board regions beyond flash and RAM the image uses (the model's constants when flash
    cannot hold them, micro.footprint.place_constants)."""
    extra = {name: used for name, used in (footprint.get("region_bytes") or {}).items()
             if name not in ("flash", "ram")}
    return [f"  {name}: {used:,} B (the model's constants: flash is too small)"
            if name == footprint.get("constants_region") else f"  {name}: {used:,} B"
            for name, used in extra.items()]


def _summary(manifest: dict[str, Any], out: str) -> str:
    footprint = manifest["footprint"]
    what = "PLA-swapped " if manifest["pla"] else ""
    quant = manifest["input"]["quantization"]
    lines = [
        f"compiled {what}{manifest['model']['path']} for {manifest['board']} "
        f"({manifest['backend']} kernels{_library_note(manifest)}"
        f"{', tuned' if manifest['db'] else ''}) "
        f"in {manifest['compile_seconds']:.1f} s",
        f"  model: {footprint['model_flash_bytes']:,} B flash, "
        f"{footprint['model_ram_bytes']:,} B RAM",
        f"  image: {footprint['image_flash_bytes']:,} B flash, "
        f"{footprint['image_ram_bytes']:,} B RAM (incl. stack and heap reservations)",
        *_region_lines(footprint),
        *_memory_lines(manifest.get("memory")),
        f"  input {manifest['input']['dtype']}{manifest['input']['shape']}"
        + (f" scale {quant['scale']:g} zero point {quant['zero_point']}" if quant else ""),
        f"  wrote {out}/{MANIFEST_FILE}; next: pla-tvm run {out}, or take the model home "
        f"with pla-tvm export {out} --out LIB",
    ]
    if manifest.get("stream"):
        stream = manifest["stream"]
        lines.insert(-1, f"  streaming: raw int16 samples at {stream['fs']} Hz "
                     f"({stream['adc_bits']}-bit ADC) through the ECG front end, beats of "
                     f"{stream['length']} samples; front end {stream['front_end_ram_bytes']:,} B "
                     f"RAM, application {footprint.get('app_flash_bytes', 0):,} B flash")
    if manifest["float_ops"]:
        lines.insert(-1, f"  left in float between dequantize and quantize: "
                     f"{', '.join(manifest['float_ops'])}")
    return "\n".join(lines)


def _compile(args: argparse.Namespace) -> int:
    if args.fs is not None and not args.stream:
        raise DeploymentError("--fs goes with --stream (the rate of the raw sample stream)")
    if args.stream and args.fs is None:
        raise DeploymentError("--stream needs --fs HZ, the sampling rate of the ADC stream")
    with output_folder(args.out, option="--out", marker=MANIFEST_FILE,
                       force=args.force) as work:
        manifest = compile_model(args.model, args.board, work, pla=args.pla,
                                 backend=args.backend, db=args.db, boundary=args.boundary,
                                 dsp=args.dsp, stream_fs=args.fs, adc_bits=args.adc_bits)
    emit(args, json.dumps(manifest, indent=2, sort_keys=True) if args.json
         else _summary(manifest, args.out))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``compile``."""
    parser = subparsers.add_parser(
        "compile", help="compile a baseline (optionally PLA-swapped) into Cortex-M firmware",
        description="Import the baseline TFLite model into TVM Relax, swap its trunk for the PLA "
        "operator (--pla), apply a tuning database (--db), and build bare-metal firmware for a "
        "board with micro. DIR receives micro's project and manifest.json for 'pla-tvm run'.")
    add_model_arguments(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--stream", action="store_true", help="streaming firmware: raw int16 "
                        "ADC samples in, R peaks and classes out (the ECG front end of "
                        "docs/stream.md in front of the model)")
    parser.add_argument("--fs", type=int, metavar="HZ", help="with --stream: samples per second "
                        "of the stream (125 to 1000)")
    parser.add_argument("--adc-bits", type=int, default=12, metavar="BITS", help="with --stream: "
                        "the ADC's resolution (default: %(default)s)")
    parser.add_argument("--db", metavar="DIR", help="tuning database of 'pla-tvm tune' (same "
                        "model, --pla, board, backend and --plain)")
    parser.add_argument("--json", action="store_true", help="print the manifest")
    add_force_argument(parser)
    parser.set_defaults(func=_compile)
