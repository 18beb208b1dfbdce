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


def _stream_app(mod, quantization: dict, fs: int, adc_bits: int):
    """The streaming front end around ``mod`` (:mod:`pla_tvm.stream`): its config and app.

    The model must take one int8 beat ``[1, L, 1]`` or ``[1, L]`` with a known quantization.
    """
    from pla_tvm.stream.config import StreamConfig
    from pla_tvm.stream.firmware import stream_app

    main = mod["main"]
    params = main.params
    info, output = params[0].ty, main.ret_ty
    shape = [int(d) for d in info.shape]
    if (str(info.dtype) != "int8" or quantization.get("input") is None or shape[0] != 1
            or len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] != 1)):
        raise ModelError(f"--stream needs a full-int8 model taking one beat [1, L, 1] with its "
                         f"input quantization; this one takes {info.dtype}{shape}")
    if str(output.dtype) not in ("int8", "float32"):
        raise ModelError(f"--stream needs int8 or float32 outputs, the model gives "
                         f"{output.dtype}")
    config = StreamConfig(fs=fs, length=shape[1], adc_bits=adc_bits,
                          input_scale=quantization["input"]["scale"],
                          input_zero_point=int(quantization["input"]["zero_point"]))
    out_bytes = int(np.prod([int(d) for d in output.shape])) * np.dtype(str(output.dtype)).itemsize
    return config, stream_app(config, out_bytes, str(output.dtype) == "float32")


def compile_model(model: str | Path, board: str, out_dir: str | Path, *,
                  pla: str | Path | None = None, backend: str = "c",
                  db: str | Path | None = None, boundary: str | None = None,
                  dsp: bool | None = None, stream_fs: int | None = None,
                  adc_bits: int = 12) -> dict[str, Any]:
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
        micro's ``dsp=`` option: None, the board's kernel library (:func:`micro.kernels.
        library_for`: the SMLAD micro-kernels where the core has the DSP extension, the scalar
        ones on Armv6-M/Armv7-M); False, TVM's plain lowering (``--plain``). Give ``tune_model``
        the same value, so that the database matches.
    stream_fs : int, optional
        Build the streaming firmware instead (docs/stream.md): its input is a stream of raw
        int16 ADC samples at this rate, the ECG front end (:mod:`pla_tvm.stream`) finds and
        prepares the beats and the model classifies each.
    adc_bits : int
        With ``stream_fs``: the ADC's resolution (sizes the front end's slope scaling).

    Returns
    -------
    dict
        The manifest (also written to ``out_dir/manifest.json``); its ``float_ops`` lists the
        operators an int8 model still computes in float between a dequantize and a quantize
        (``relay_passes.float_regions``; empty for the int8 baseline, whose softmax is lowered).

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
    stream, app = (None, None) if stream_fs is None else _stream_app(mod, quantization,
                                                                      stream_fs, adc_bits)
    out_dir = Path(out_dir).resolve()  # micro.build resolves it too: keep paths comparable
    library = micro.kernels.resolve(board_info, dsp=dsp)
    firmware = micro.build(mod, board_info, out_dir, backend=backend, dsp=dsp,
                           quantization={k: v for k, v in quantization.items() if v}, app=app)
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "pla_tvm_version": __version__,
        "model": _file_entry(model),
        "pla": _file_entry(pla) if pla is not None else None,
        "boundary": boundary,
        "board": board_info.name,
        "backend": backend,
        "dsp": library is micro.kernels.dsp,
        "kernels": micro.kernels.library_name(library),
        "db": str(Path(db).resolve()) if db is not None else None,
        "input": _tensor_entry(firmware.input, quantization["input"]),
        "output": _tensor_entry(firmware.output, quantization["output"]),
        "float_ops": float_ops,
        "firmware": {"elf": str(firmware.elf.relative_to(out_dir)),
                     "elf_sha256": sha256_of(firmware.elf),
                     "metadata": MICRO_METADATA_FILE},
        "footprint": firmware.footprint.as_dict(),
        "memory": firmware.memory,
        "stream": None if stream is None else {
            "fs": stream.fs, "adc_bits": stream.adc_bits, "length": stream.length,
            "front_end_ram_bytes": stream.ram_bytes()},
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


def stream_config(manifest: dict[str, Any], out_dir: str | Path):
    """The :class:`~pla_tvm.stream.config.StreamConfig` a streaming firmware was built with.

    Raises
    ------
    DeploymentError
        If the firmware was not compiled with ``--stream``.
    """
    from pla_tvm.stream.config import StreamConfig

    stream = manifest.get("stream")
    if not stream:
        raise DeploymentError(f"{out_dir}: not a streaming firmware (it takes beats); compile "
                              "with --stream --fs HZ to stream raw samples")
    quant = manifest["input"]["quantization"]
    return StreamConfig(fs=stream["fs"], length=stream["length"], adc_bits=stream["adc_bits"],
                        input_scale=quant["scale"], input_zero_point=int(quant["zero_point"]))


def stream_record(out_dir: str | Path, record, *, timeout: float | None = None,
                  sandbox: bool = True) -> tuple[dict[str, Any], Any]:
    """Stream a whole record through a streaming firmware in one QEMU run and check it.

    The firmware's R peaks, beats and raw outputs are compared with the host reference (the
    integer front end and the same compiled model built for the host), its R peaks scored
    against the record's beat annotations and its classes against the host's beat pipeline
    (:mod:`pla_tvm.stream.pipeline`); its cost comes from the per-sample instruction counts.

    Parameters
    ----------
    out_dir : str or Path
        A directory written by :func:`compile_model` with ``stream_fs``.
    record : pla_tvm.stream.records.RawRecord
        One lead's ADC samples.
    timeout : float, optional
        Seconds before QEMU counts as hung (default: 120 s + 1 s per minute of signal).
    sandbox : bool
        Confine QEMU to its run folder.

    Returns
    -------
    dict, StreamOutcome
        The JSON-ready report and the firmware's outcome (R peaks, beats, outputs, classes).

    Raises
    ------
    DeploymentError, DataError
        A firmware that does not stream; a record of another rate or shorter than one beat.
    """
    import micro
    from pla_tvm.graph import HostRunner
    from pla_tvm.stream.firmware import parse_events, stream_metrics
    from pla_tvm.stream.pipeline import (
        StreamOutcome,
        check_record,
        host_pipeline,
        host_reference,
        outcomes_equal,
        stream_report,
        timed,
    )

    manifest = read_manifest(out_dir)
    config = stream_config(manifest, out_dir)
    check_record(record, config, f"the firmware in {out_dir}")
    firmware = load_firmware(out_dir, manifest)
    run = micro.run(firmware, record.samples, timeout=timeout or 120 + record.seconds / 60,
                    sandbox=sandbox)
    events = parse_events(run.outputs, tuple(manifest["output"]["shape"]),
                          manifest["output"]["dtype"])
    outcome = StreamOutcome(events.r_peaks, events.beat_peaks, events.outputs, events.classes)
    module = prepare(manifest["model"]["path"], manifest["pla"]["path"] if manifest["pla"]
                     else None, manifest["boundary"])
    host = HostRunner(module)
    (reference, skipped), host_seconds = timed(host_reference, config, record.samples, host)
    peaks, classes = host_pipeline(record.path, record.lead, config.length,
                                   manifest["input"]["quantization"], host,
                                   annotated=record.beats is not None)
    report = {
        "board": manifest["board"], "record": str(record.path), "lead": record.lead,
        "fs": record.fs, "seconds_of_signal": record.seconds, "beat_length": config.length,
        **stream_report(record, outcome, peaks, classes),
        "skipped_beats": skipped,
        "bit_exact_with_host_reference": outcomes_equal(outcome, reference),
        "host_reference_seconds": round(host_seconds, 1),
        "cost": stream_metrics(run.instruction_counts, events, config.fs,
                               micro.get_board(manifest["board"]).clock_hz, run.footprint,
                               run.stack_bytes),
        "counting": run.counting,
        "qemu_wall_seconds": round(run.wall_seconds, 2),
        "footprint": run.footprint.as_dict(),
    }
    return report, outcome
