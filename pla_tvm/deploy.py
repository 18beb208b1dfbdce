"""Glue between pla-tvm and :mod:`micro`: compile a baseline (optionally PLA-swapped) into
firmware, describe it in a manifest, and run beats through it in QEMU.

``micro`` knows nothing of ECG beats, TFLite files or quantized inputs; ``pla_tvm.graph`` knows
nothing of boards. This module joins them so the ``compile``, ``run`` and ``tune`` commands stay
thin. A compiled directory holds micro's project (``metadata.json``, ``src/``, ``build/``) and
:data:`MANIFEST_FILE`, which records where the firmware came from (model and PLA files with their
SHA-256) and what a later ``run`` needs to feed it float beats (input dtype, shape, scale and zero
point), so ``run`` never has to reopen the model files.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pla_tvm import __version__
from pla_tvm.errors import ModelError, PlaTvmError
from pla_tvm.files import sha256_of, write_json_atomically
from pla_tvm.inference import TFLiteRunner, predict_classes, quantize

#: The manifest ``compile`` writes next to micro's project.
MANIFEST_FILE = "manifest.json"
#: What the manifest's ``format`` field says, so a stray JSON file is not taken for one.
MANIFEST_FORMAT = "pla-tvm-firmware"
#: Bumped whenever a field changes meaning; ``run`` refuses other versions.
MANIFEST_VERSION = 1
#: micro's own description of the project (written by :func:`micro.build`, read by
#: :meth:`micro.Firmware.load`).
MICRO_METADATA_FILE = "metadata.json"

LOG = logging.getLogger(__name__)


class DeploymentError(PlaTvmError):
    """A compiled firmware directory is missing, incomplete or incompatible, or an option is
    out of range."""


def model_quantization(tflite_path: str | Path) -> dict[str, dict[str, float] | None]:
    """Input and output quantization (scale, zero point) of a TFLite model; None for float tensors.

    The prepared module keeps the baseline's input and output tensors (the PLA swap replaces only
    the trunk), so the baseline file is the authority on how beats are quantized and how the
    outputs read.

    Raises
    ------
    ModelError
        If the file is missing or not a TFLite model taking a beat.
    """
    path = Path(tflite_path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    runner = TFLiteRunner(path.read_bytes(), str(path), "litert")

    def params(detail: dict) -> dict[str, float] | None:
        if np.dtype(detail["dtype"]) != np.int8:
            return None
        quant = detail["quantization_parameters"]
        return {"scale": float(quant["scales"][0]), "zero_point": int(quant["zero_points"][0])}

    return {"input": params(runner.input_detail), "output": params(runner.output_detail)}


def _check_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: {what} file not found")
    return path


def prepare(model: str | Path, pla: str | Path | None = None, boundary: str | None = None):
    """The Relax module to compile or tune: the baseline, PLA-swapped when ``pla`` is given.

    Raises
    ------
    ModelError
        If a file is missing or corrupt.
    relay_passes.PassError
        If the trunk cannot be swapped for this PLA bundle.
    """
    from pla_tvm.graph import prepare_module
    from pla_tvm.pla.npz_io import load_pla

    bundle = load_pla(_check_file(pla, "PLA")) if pla is not None else None
    if bundle is not None:
        _warn_on_other_baseline(Path(pla), bundle.baseline, Path(model))
    return prepare_module(_check_file(model, "model"), bundle, boundary)


def _warn_on_other_baseline(pla: Path, fitted_to, model: Path) -> None:
    """Warn when ``pla`` was fitted to another baseline than the one ``model`` comes from.

    ``compress`` records the SHA-256 of the int8 model it read (``--int8``, or the ``train``
    folder's ``baseline_int8.tflite``) and of the Keras model; a model from another training run
    has other features, so the swapped graph (that model's input and head around this PLA
    operator) will not reach the accuracy ``compress`` measured. Files of older ``compress``
    runs only hold the Keras hash, checked against ``baseline.keras`` beside ``model``.
    """
    if fitted_to.int8_sha256 and sha256_of(model) == fitted_to.int8_sha256:
        return
    if not fitted_to.sha256:
        return
    keras_file = model.parent / "baseline.keras"
    if keras_file.is_file() and sha256_of(keras_file) == fitted_to.sha256:
        return
    if fitted_to.int8_sha256:
        found = f"{model} has sha256 {sha256_of(model)[:12]}"
        expected = f"the int8 model with sha256 {fitted_to.int8_sha256[:12]}"
    else:
        found = (f"{model}'s folder's baseline.keras has sha256 {sha256_of(keras_file)[:12]}"
                 if keras_file.is_file() else f"{model}'s folder has no baseline.keras")
        expected = f"the Keras model with sha256 {fitted_to.sha256[:12]}"
    LOG.warning("%s was fitted to %s (from %s), but %s: the swapped graph may not match the "
                "accuracy compress measured", pla, expected, fitted_to.path, found)


def compile_model(model: str | Path, board: str, out_dir: str | Path, *,
                  pla: str | Path | None = None, backend: str = "c",
                  db: str | Path | None = None, boundary: str | None = None,
                  dsp: bool | None = None) -> dict[str, Any]:
    """Build firmware for a board and write the manifest ``run`` reads.

    Parameters
    ----------
    model : str or Path
        The baseline ``.tflite`` (float or full-int8).
    board : str
        micro board name, e.g. ``"mps2-an386"``.
    out_dir : str or Path
        Directory for micro's project and :data:`MANIFEST_FILE` (created).
    pla : str or Path, optional
        A ``pla.npz``; its operator replaces the baseline's trunk.
    backend : {"c", "llvm"}
        micro's kernel back end.
    db : str or Path, optional
        Tuning database of ``pla-tvm tune`` (same model, PLA file, board and backend).
    boundary : str, optional
        Relax name of the trunk's output, when the structural default is not wanted.
    dsp : bool, optional
        micro's ``dsp=`` option: None, the board's default (int8 dot products on the SMLAD
        micro-kernel where the core has the DSP extension); False, TVM's plain lowering. Give
        ``tune_model`` the same value, so that the database matches.

    Returns
    -------
    dict
        The manifest (also written to ``out_dir/manifest.json``); its ``float_ops`` lists the
        operators an int8 model still computes in float between a dequantize and a quantize
        (``relay_passes.float_regions``; the classifier's softmax today).

    Raises
    ------
    ModelError, relay_passes.PassError, micro.MicroError
        As the stages raise them (a wrong ``db``: ``micro.tuning.DatabaseNotFoundError``); each
        names the file or value at fault.
    """
    import micro
    from relay_passes import float_regions

    started = time.perf_counter()
    board_info = micro.get_board(board)  # an unknown board fails before any import work
    mod = prepare(model, pla, boundary)
    float_ops = [op for region in float_regions(mod) for op in region.ops]
    quantization = model_quantization(model)
    if db is not None:
        from micro.tuning import apply_database

        mod = apply_database(mod, board_info, db, dsp=dsp)
    out_dir = Path(out_dir).resolve()  # micro.build resolves it too: keep paths comparable
    firmware = micro.build(mod, board_info, out_dir, backend=backend, dsp=dsp,
                           quantization={k: v for k, v in quantization.items() if v})
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "pla_tvm_version": __version__,
        "model": _file_entry(model),
        "pla": _file_entry(pla) if pla is not None else None,
        "boundary": boundary,
        "board": board_info.name,
        "backend": backend,
        "dsp": micro.kernels.dsp.uses_dsp(board_info, dsp),
        "db": str(Path(db).resolve()) if db is not None else None,
        "input": _tensor_entry(firmware.input, quantization["input"]),
        "output": _tensor_entry(firmware.output, quantization["output"]),
        "float_ops": float_ops,
        "firmware": {"elf": str(firmware.elf.relative_to(out_dir)),
                     "elf_sha256": sha256_of(firmware.elf),
                     "metadata": MICRO_METADATA_FILE},
        "footprint": firmware.footprint.as_dict(),
        "memory": firmware.memory,
        "compile_seconds": round(time.perf_counter() - started, 2),
    }
    write_json_atomically(out_dir / MANIFEST_FILE, manifest)
    return manifest


def _file_entry(path: str | Path) -> dict[str, str]:
    path = Path(path)
    return {"path": str(path.resolve()), "sha256": sha256_of(path)}


def _tensor_entry(info, quantization: dict | None) -> dict[str, Any]:
    return {"dtype": info.dtype, "shape": list(info.shape), "quantization": quantization}


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """The manifest of a compiled directory, checked for format and version.

    Raises
    ------
    DeploymentError
        If the directory or manifest is missing, unreadable, or of another format or version.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise DeploymentError(f"{out_dir}: directory not found; run 'pla-tvm compile --out "
                              f"{out_dir}' first")
    path = out_dir / MANIFEST_FILE
    if not path.is_file():
        raise DeploymentError(f"{path}: no manifest; {out_dir} was not written by "
                              "'pla-tvm compile'")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DeploymentError(f"{path}: unreadable manifest ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DeploymentError(f"{path}: not a pla-tvm firmware manifest "
                              f"(format {MANIFEST_FORMAT!r} expected)")
    if manifest.get("version") != MANIFEST_VERSION:
        raise DeploymentError(f"{path}: manifest version {manifest.get('version')!r}, this "
                              f"pla-tvm reads version {MANIFEST_VERSION}; compile again")
    return manifest


def load_firmware(out_dir: str | Path, manifest: dict[str, Any]):
    """micro's :class:`~micro.Firmware` of a compiled directory, without recompiling.

    Checks that the image is the one the manifest describes, then loads it with
    :meth:`micro.Firmware.load` (which reads micro's ``metadata.json``).

    Raises
    ------
    DeploymentError
        If the image is missing or no longer matches the manifest.
    micro.MetadataError
        If micro's metadata is missing, corrupt or of another version.
    micro.MicroError
        If the toolchain or QEMU is missing.
    """
    import micro

    out_dir = Path(out_dir)
    elf = out_dir / manifest["firmware"]["elf"]
    if not elf.is_file():
        raise DeploymentError(f"{elf}: missing from the compiled directory; compile again")
    if sha256_of(elf) != manifest["firmware"]["elf_sha256"]:
        raise DeploymentError(f"{elf}: image changed since the manifest was written; "
                              "compile again")
    return micro.Firmware.load(out_dir)


def model_inputs(beats: np.ndarray, manifest: dict[str, Any]) -> np.ndarray:
    """Float beats ``[n, L]`` as the firmware's input records ``[n, *input_shape]``.

    int8 models get the inputs TFLite's QUANTIZE would give (round half away from zero, clamp),
    with the scale and zero point recorded at compile time.
    """
    spec = manifest["input"]
    beats = np.asarray(beats, dtype=np.float32)
    if spec["quantization"] is not None:
        records = quantize(beats, spec["quantization"]["scale"], spec["quantization"]["zero_point"])
    else:
        records = beats.astype(spec["dtype"])
    return records.reshape(len(beats), *spec["shape"])


@dataclass(frozen=True)
class Evaluation:
    """What one QEMU run over a set of beats gives.

    Attributes
    ----------
    report : dict
        JSON-ready metrics and measurements (see :func:`evaluate`).
    outputs : numpy.ndarray
        Raw model outputs ``[n, C]`` in the output dtype.
    predictions : numpy.ndarray
        Predicted class per beat (argmax, lowest index on ties).
    """

    report: dict[str, Any]
    outputs: np.ndarray
    predictions: np.ndarray


def evaluate(out_dir: str | Path, beats, *, timeout: float | None = None,
             sandbox: bool = True) -> Evaluation:
    """Classify beats with the compiled firmware in one QEMU run and score the predictions.

    Parameters
    ----------
    out_dir : str or Path
        A directory written by :func:`compile_model`.
    beats : pla_tvm.data.beats.BeatSet
        Float beats and labels (unlabelled beats, ``y < 0``, are run but not scored).
    timeout : float, optional
        Seconds before QEMU counts as hung (default: 60 s + 0.5 s per beat).
    sandbox : bool
        Confine QEMU to its run folder (``micro.run``'s option; default).

    Returns
    -------
    Evaluation
        Report, raw outputs and predicted classes. The report always has ``class_counts``
        (predictions per class); the classification metrics (``accuracy`` ...) only when some
        beats are labelled, computed on those (``n_scored``).
    """
    import micro

    manifest = read_manifest(out_dir)
    firmware = load_firmware(out_dir, manifest)
    if len(beats) == 0:
        raise DeploymentError("no beats to run (empty split or --limit 0)")
    inputs = model_inputs(beats.x, manifest)
    timeout = 60.0 + 0.5 * len(beats) if timeout is None else timeout
    result = micro.run(firmware, inputs, timeout=timeout, sandbox=sandbox)
    outputs = result.outputs.reshape(len(beats), -1)
    predictions = predict_classes(outputs)
    from pla_tvm.metrics import prediction_report

    report = prediction_report(beats.y, predictions, beats.class_names)
    footprint = result.footprint
    report.update(
        board=manifest["board"],
        backend=manifest["backend"],
        model=manifest["model"]["path"],
        pla=manifest["pla"]["path"] if manifest["pla"] else None,
        tuned=manifest["db"] is not None,
        instructions_per_inference=result.instructions_per_inference,
        instructions_min=result.instructions_min,
        instructions_max=result.instructions_max,
        counting=result.counting,
        stack_bytes=result.stack_bytes,
        stack_total_bytes=result.stack_total_bytes,
        model_flash_bytes=footprint.model_flash_bytes,
        model_ram_bytes=footprint.model_ram_bytes,
        image_flash_bytes=footprint.image_flash_bytes,
        image_ram_bytes=footprint.image_ram_bytes,
        qemu_wall_seconds=round(result.wall_seconds, 3),
    )
    return Evaluation(report=report, outputs=outputs, predictions=predictions)


def tune_model(model: str | Path, board: str, db: str | Path, *, trials: int,
               pla: str | Path | None = None, backend: str = "c",
               boundary: str | None = None, seed: int | None = 0,
               trials_per_iteration: int = 16, strategy: str = "evolutionary",
               workers: int | None = None, progress: bool = True,
               dsp: bool | None = None, sandbox: bool = True) -> dict[str, Any]:
    """Search schedules for every kernel of the prepared module, measured in QEMU.

    The database lands in ``db``; ``compile_model(..., db=db)`` applies it later, so tuning (slow)
    and building (fast) can be repeated independently.

    Parameters
    ----------
    model, pla, boundary, dsp
        As for :func:`compile_model` (the same ``dsp`` there, so that the database matches).
    board, backend
        Board and kernel back end (use the ones you will compile with).
    db : str or Path
        MetaSchedule work folder (created; an existing database is extended).
    trials : int
        Candidates measured over all kernels.
    trials_per_iteration : int
        Candidates per search round.
    strategy : {"evolutionary", "replay-trace"}
        MetaSchedule search strategy: the evolutionary search (slow to start, better over many
        trials) or plain random sampling of schedules (quick for a handful of trials).
    seed : int, optional
        Search seed.
    workers : int, optional
        Candidates built and run at the same time (micro's default: one per core).
    progress : bool
        Show micro's progress bar.
    sandbox : bool
        Confine the QEMU runs of the candidates (micro's option; default).

    Returns
    -------
    dict
        Board, backend, trials, seconds and the best instruction count per kernel
        (:func:`best_instructions`).
    """
    import micro
    import micro.tuning

    if trials < 1:
        raise DeploymentError(f"--trials must be at least 1, got {trials}")
    board_info = micro.get_board(board)
    mod = prepare(model, pla, boundary)
    options: dict[str, Any] = {"progress": progress, "strategy": strategy,
                               "trials_per_iteration": trials_per_iteration}
    if workers is not None:
        options["workers"] = workers
    started = time.perf_counter()
    micro.tuning.tune(mod, board_info, db, max_trials=trials, backend=backend, seed=seed,
                      dsp=dsp, sandbox=sandbox, **options)
    return {
        "board": board_info.name,
        "backend": backend,
        "trials": trials,
        "strategy": strategy,
        "db": str(Path(db).resolve()),
        "tuning_seconds": round(time.perf_counter() - started, 1),
        "kernels": best_instructions(db),
    }


def best_instructions(db: str | Path) -> dict[str, int | None]:
    """Fewest instructions per call measured for each kernel, from micro's tuning summary.

    Kernels without a successful candidate map to None; a database without the summary (written
    by :func:`micro.tuning.tune` at the end of a search) gives an empty mapping.
    """
    from micro.tuning import SUMMARY_FILE

    summary = Path(db) / SUMMARY_FILE
    if not summary.is_file():
        return {}
    kernels = json.loads(summary.read_text(encoding="utf-8")).get("kernels", {})
    return {name: kernel.get("best_instructions") for name, kernel in sorted(kernels.items())}
