"""A WFDB record streamed through a compiled streaming firmware, checked against the host.

:func:`run_stream` runs the whole record in one QEMU session and compares the firmware with
:func:`host_reference` (the integer front end of :mod:`pla_tvm.stream.reference` and the same
compiled model on the host, which must agree bit for bit), scores its R peaks against the
record's beat annotations (EC57's 150 ms window) and its classes against the host's beat
pipeline (annotated beats cut, resampled and z-normalised in float, ``wfdb:`` sources), and
measures its cost per second of signal. :func:`host_stream` is the same without firmware
(``pla-tvm evaluate --stream``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pla_tvm.data.beats import UNLABELLED
from pla_tvm.data.records import BEAT_SYMBOL_CLASSES
from pla_tvm.errors import DataError
from pla_tvm.stream.config import StreamConfig
from pla_tvm.stream.records import RawRecord
from pla_tvm.stream.reference import FrontEnd
from pla_tvm.stream.scoring import match_peaks


@dataclass(frozen=True, eq=False)
class StreamOutcome:
    """R peaks and classified beats of a stream (firmware or host).

    Attributes
    ----------
    r_peaks : np.ndarray
        int64 every detected R peak.
    beat_peaks : np.ndarray
        int64 R peak of each classified beat.
    outputs : np.ndarray
        ``[beats, C]`` raw model outputs.
    classes : np.ndarray
        int64 argmax of each beat's outputs (lowest index on ties).
    """

    r_peaks: np.ndarray
    beat_peaks: np.ndarray
    outputs: np.ndarray
    classes: np.ndarray


def check_record(record: RawRecord, config: StreamConfig, where: str) -> None:
    """Refuse a record the firmware cannot stream, in one line naming both.

    Raises
    ------
    DataError
        If the record's rate differs from the firmware's, or it is shorter than the learning
        phase plus one beat.
    """
    if record.fs != config.fs:
        raise DataError(f"{record.path}: lead {record.lead} is sampled at {record.fs} Hz, "
                        f"{where} streams {config.fs} Hz (compile it with --fs {record.fs})")
    shortest = config.learning + config.max_rr
    if record.samples.size < shortest:
        raise DataError(f"{record.path}: {record.samples.size:,} samples "
                        f"({record.seconds:.2f} s) is shorter than one beat after the front "
                        f"end's learning phase ({shortest:,} samples, "
                        f"{shortest / config.fs:.1f} s)")


def host_reference(config: StreamConfig, samples: np.ndarray, model) -> tuple[StreamOutcome,
                                                                               dict]:
    """The integer front end and the model on the host: what the firmware must reproduce.

    Parameters
    ----------
    config : StreamConfig
    samples : np.ndarray
        int16 raw samples.
    model : object
        Runs int8 beats, ``model.run(x) -> [n, C]`` (:class:`pla_tvm.graph.HostRunner` of the
        compiled module, or a TFLite runner's ``raw_outputs``).

    Returns
    -------
    StreamOutcome, dict
        The outcome and the front end's skipped beats by reason.
    """
    front = FrontEnd(config).run(samples)
    beats = front.beats.reshape(len(front.beats), -1)
    outputs = model.run(beats) if len(beats) else np.zeros((0, 0))
    outputs = np.asarray(outputs).reshape(len(beats), -1)
    return StreamOutcome(front.r_peaks, front.beat_peaks, outputs,
                         np.argmax(outputs, axis=1).astype(np.int64) if len(beats)
                         else np.zeros(0, np.int64)), front.skipped


def annotation_classes(record: RawRecord, peaks: np.ndarray) -> np.ndarray:
    """The ECG5000 class of the annotated beat each R peak matches (150 ms), or UNLABELLED."""
    labels = np.full(len(peaks), UNLABELLED, dtype=np.int64)
    if record.beats is None or not len(peaks):
        return labels
    score = match_peaks(peaks, record.beats, record.fs)
    for reference, detected in score["matches"]:
        labels[detected] = BEAT_SYMBOL_CLASSES[record.symbols[reference]]
    return labels


def _accuracy(labels: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    known = labels != UNLABELLED
    return {"beats": int(known.sum()),
            "accuracy": float(np.mean(classes[known] == labels[known])) if known.any() else None}


def stream_report(record: RawRecord, outcome: StreamOutcome, host_peaks: np.ndarray | None,
                  host_classes: np.ndarray | None) -> dict[str, Any]:
    """Detection and classification figures of a stream's outcome.

    Parameters
    ----------
    record : RawRecord
    outcome : StreamOutcome
    host_peaks, host_classes : np.ndarray, optional
        The host beat pipeline's R peaks and classes (float preprocessing of the annotated
        beats): the agreement is over the beats whose R peaks match within 150 ms.

    Returns
    -------
    dict
        ``beats_found`` (R peaks), ``beats_classified``, ``detection`` (EC57 scores against the
        annotations, or None), ``accuracy_vs_annotations`` (the classified beats that match an
        annotated beat), ``class_agreement_with_host_pipeline``, ``class_counts``.
    """
    detection = None
    if record.beats is not None:
        score = match_peaks(outcome.r_peaks, record.beats, record.fs)
        detection = {key: value for key, value in score.items() if key != "matches"}
    agreement = None
    if host_peaks is not None and len(outcome.beat_peaks) and len(host_peaks):
        pairs = match_peaks(outcome.beat_peaks, host_peaks, record.fs)["matches"]
        same = outcome.classes[pairs[:, 1]] == host_classes[pairs[:, 0]]
        agreement = {"beats_compared": int(len(pairs)),
                     "agreement": float(same.mean()) if len(pairs) else None}
    labels = annotation_classes(record, outcome.beat_peaks)
    counts = np.bincount(outcome.classes, minlength=5) if len(outcome.classes) else []
    return {
        "beats_found": int(len(outcome.r_peaks)),
        "beats_classified": int(len(outcome.beat_peaks)),
        "detection": detection,
        "accuracy_vs_annotations": _accuracy(labels, outcome.classes),
        "class_agreement_with_host_pipeline": agreement,
        "class_counts": [int(c) for c in counts],
    }


def report_lines(report: dict[str, Any]) -> list[str]:
    """The detection, accuracy and agreement lines of a stream's summary (``run``,
    ``evaluate --stream``)."""
    lines = [f"  R peaks {report['beats_found']:,}, beats classified "
             f"{report['beats_classified']:,}"
             + (f" (skipped: {report['skipped_beats']})" if report.get("skipped_beats") else "")]
    detection = report["detection"]
    if detection:
        lines.append(f"  against the annotations (150 ms): sensitivity "
                     f"{100 * detection['sensitivity']:.2f} %, positive predictivity "
                     f"{100 * detection['positive_predictivity']:.2f} % "
                     f"(TP {detection['true_positives']:,}, FN {detection['false_negatives']:,}, "
                     f"FP {detection['false_positives']:,})")
    accuracy = report["accuracy_vs_annotations"]
    if accuracy["accuracy"] is not None:
        lines.append(f"  class accuracy on the {accuracy['beats']:,} annotated beats "
                     f"{accuracy['accuracy']:.4f}")
    agreement = report["class_agreement_with_host_pipeline"]
    if agreement and agreement["agreement"] is not None:
        lines.append(f"  same class as the host beat pipeline on "
                     f"{100 * agreement['agreement']:.2f} % of {agreement['beats_compared']:,} "
                     "beats")
    return lines


def host_pipeline(record_path: Path, lead: str, length: int, quantization: dict, model,
                  annotated: bool) -> tuple[np.ndarray, np.ndarray]:
    """The host's beat pipeline on the same record: R peaks and classes of its beats.

    Beats from the annotations (or QRS detection without them), cut R to R, resampled and
    z-normalised in float (:func:`pla_tvm.data.records.load_record`), quantized with the model's
    input quantization and run by ``model``.
    """
    from pla_tvm.data.records import load_record
    from pla_tvm.inference import quantize

    beats = load_record(record_path, lead=lead, beats="annotations" if annotated else "detect",
                        length=length)
    x = quantize(beats.x, quantization["scale"], quantization["zero_point"])
    outputs = np.asarray(model.run(x)).reshape(len(x), -1)
    return beats.peaks, np.argmax(outputs, axis=1).astype(np.int64)


def outcomes_equal(firmware: StreamOutcome, host: StreamOutcome) -> dict[str, bool]:
    """Which parts of the firmware's outcome equal the host reference's exactly."""
    return {
        "r_peaks": bool(np.array_equal(firmware.r_peaks, host.r_peaks)),
        "beat_peaks": bool(np.array_equal(firmware.beat_peaks, host.beat_peaks)),
        "outputs": bool(firmware.outputs.shape == host.outputs.shape
                        and np.array_equal(firmware.outputs, host.outputs)),
        "classes": bool(np.array_equal(firmware.classes, host.classes)),
    }


def timed(function, *args, **kwargs):
    """``(result, seconds)`` of a call."""
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


class _Outputs:
    """A model as :func:`host_reference` runs it: ``run(int8 beats) -> outputs``."""

    def __init__(self, raw_outputs) -> None:
        self.run = raw_outputs


def host_stream(record: RawRecord, runner, adc_bits: int) -> tuple[dict[str, Any], StreamOutcome]:
    """``pla-tvm evaluate --stream``: the integer front end and a TFLite model on the host.

    Parameters
    ----------
    record : RawRecord
        One lead's ADC samples (any rate the front end takes).
    runner : pla_tvm.inference.TFLiteRunner
        A full-int8 model taking one beat.
    adc_bits : int
        The ADC's resolution.

    Returns
    -------
    dict, StreamOutcome
        The report (:func:`stream_report` and the skipped beats) and the outcome.

    Raises
    ------
    DataError
        If the model does not take int8 beats, or the record is too short.
    """
    detail = runner.input_detail
    if np.dtype(detail["dtype"]) != np.int8:
        raise DataError(f"{runner.description}: --stream needs a full-int8 model (its input is "
                        f"{np.dtype(detail['dtype'])})")
    quant = detail["quantization_parameters"]
    quantization = {"scale": float(quant["scales"][0]),
                    "zero_point": int(quant["zero_points"][0])}
    config = StreamConfig(fs=record.fs, length=runner.input_length, adc_bits=adc_bits,
                          input_scale=quantization["scale"],
                          input_zero_point=quantization["zero_point"])
    check_record(record, config, "the front end")
    model = _Outputs(runner.raw_outputs)
    outcome, skipped = host_reference(config, record.samples, model)
    peaks, classes = host_pipeline(record.path, record.lead, config.length, quantization, model,
                                   annotated=record.beats is not None)
    report = {"runner": runner.description, "record": str(record.path), "lead": record.lead,
              "fs": record.fs, "seconds_of_signal": record.seconds,
              **stream_report(record, outcome, peaks, classes), "skipped_beats": skipped}
    return report, outcome
