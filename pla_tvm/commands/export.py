"""``pla-tvm export``: a compiled model as a C library for a firmware of your own."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from pla_tvm.commands import add_force_argument, emit
from pla_tvm.files import OutputFolderError, output_folder

#: The marker ``output_folder`` waits for: micro's metadata of the library.
LIBRARY_MARKER = "metadata.json"


def default_prefix(firmware_dir: str | Path) -> str:
    """A C prefix from the compiled folder's name: lower case, other characters as ``_``."""
    name = re.sub(r"[^a-z0-9_]", "_", Path(firmware_dir).resolve().name.lower()).strip("_")
    name = name if name[:1].isalpha() else f"model_{name}".rstrip("_")
    return name[:32].rstrip("_") or "model"


def _check_not_another_folder(compiled: Path, out: Path, force: bool) -> None:
    """Refuse an ``--out`` that is the compiled folder, lies inside it, or holds a
    ``metadata.json`` that is not an exported library's (a firmware folder has one too)."""
    from micro.library import EXPORT_FORMAT

    if out.resolve() == compiled.resolve() or compiled.resolve() in out.resolve().parents:
        raise OutputFolderError(f"--out {out} is (inside) the compiled folder {compiled}; "
                                f"choose a folder of its own")
    marker = out / LIBRARY_MARKER
    if force or not marker.is_file():
        return
    try:
        previous = json.loads(marker.read_text(encoding="utf-8")).get("format")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        previous = None
    if previous != EXPORT_FORMAT:
        raise OutputFolderError(f"--out {out} holds files this command did not write (its "
                                f"{LIBRARY_MARKER} is not an exported library's); choose an "
                                f"empty or new folder, or pass --force to replace it")


def _summary(metadata: dict[str, Any], out: str) -> str:
    prefix = metadata["prefix"]
    footprint = metadata["footprint"]
    provenance = metadata["provenance"]
    source = Path(provenance["model"]["path"]).name
    if provenance.get("pla"):
        source += f" with {Path(provenance['pla']['path']).name}"
    return "\n".join([
        f"exported the model compiled in {provenance['compiled']} ({source}) for "
        f"{metadata['board']} ({metadata['cpu']}) as the C library {prefix}",
        f"  API: include/{prefix}.h, int {prefix}_run(const void* input, void* output); "
        f"input {metadata['input']['bytes']} B, output {metadata['output']['bytes']} B",
        f"  sources: {len(metadata['symbols'])} global symbols, all prefixed "
        f"{prefix}_; build with {prefix}.mk or CMakeLists.txt (flags in README.md)",
        f"  model {footprint['model_flash_bytes']:,} B flash, "
        f"{footprint['model_ram_bytes']:,} B RAM",
        f"  wrote {out}",
    ])


def _export(args: argparse.Namespace) -> int:
    import micro
    from pla_tvm.deploy import load_firmware, read_manifest

    manifest = read_manifest(args.dir)
    prefix = micro.library.check_prefix(args.prefix or default_prefix(args.dir))
    _check_not_another_folder(Path(args.dir), Path(args.out), args.force)
    firmware = load_firmware(args.dir, manifest)
    provenance = {key: manifest[key] for key in ("model", "pla", "boundary", "backend", "dsp",
                                                  "db", "pla_tvm_version")}
    provenance["kernels"] = manifest.get("kernels", "dsp" if manifest["dsp"] else "plain")
    provenance["compiled"] = str(Path(args.dir).resolve())
    with output_folder(args.out, option="--out", marker=LIBRARY_MARKER,
                       force=args.force) as work:
        micro.export(firmware, work, prefix, provenance=provenance)
    metadata = json.loads((Path(args.out) / LIBRARY_MARKER).read_text(encoding="utf-8"))
    emit(args, json.dumps(metadata, indent=2, sort_keys=True) if args.json
         else _summary(metadata, args.out))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export``."""
    parser = subparsers.add_parser(
        "export", help="a compiled model as a C library for your own firmware",
        description="Take the model out of a 'pla-tvm compile' folder as a self-contained C "
        "library: include/PREFIX.h (PREFIX_run and the sizes and quantization), src/ (the "
        "model, micro-kernels and workspace allocator, every global symbol prefixed so several "
        "models link together), a Makefile fragment, CMakeLists.txt, README.md and "
        "metadata.json. No main, start-up code, linker script, semihosting or heap. Needs a "
        "model compiled with --backend c (the default).")
    parser.add_argument("dir", help="directory written by 'pla-tvm compile --out'")
    parser.add_argument("--out", required=True, metavar="LIB", help="the library's folder")
    parser.add_argument("--prefix", help="C prefix of the API and of every symbol (default: "
                        "the compiled folder's name, e.g. fw_pla)")
    parser.add_argument("--json", action="store_true", help="print the library's metadata")
    add_force_argument(parser)
    parser.set_defaults(func=_export)
