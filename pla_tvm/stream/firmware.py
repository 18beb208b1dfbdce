"""The streaming firmware: the ECG front end and the compiled model in one micro image.

:func:`stream_app` describes the application micro builds around the model (a
:class:`micro.App`: ``c/ecg_stream.c``, the front end, and ``c/stream_app.c``, which runs the
model on each beat and writes one event record per R peak and per classified beat); its
constants are the :class:`~pla_tvm.stream.config.StreamConfig`'s, passed as defines.
:func:`parse_events` reads the records back and :func:`stream_metrics` turns a run into the
figures ``pla-tvm run`` reports (instructions per second of signal, the most on one sample and on
one beat, RAM, duty cycle).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from pla_tvm.stream.config import LEARNING_PEAKS, StreamConfig

#: The step and init functions of ``c/stream_app.c``.
STEP, INIT = "stream_app_step", "stream_app_init"
#: Event tags and the R-peak record's size (``c/stream_app.c``).
PEAK_EVENT, BEAT_EVENT, PEAK_EVENT_BYTES = 1, 2, 12
#: The clock the duty cycle is also given at (a typical wearable's core).
REFERENCE_CLOCK_HZ = 48_000_000
_SOURCES = resources.files("pla_tvm.stream").joinpath("c")


def beat_event_bytes(output_bytes: int) -> int:
    """Bytes of one beat record: 12 + the model's outputs, padded to 4."""
    return 12 + -(-output_bytes // 4) * 4


def stream_app(config: StreamConfig, output_bytes: int, output_float: bool):
    """The :class:`micro.App` of the streaming firmware for a model's outputs.

    Parameters
    ----------
    config : StreamConfig
        Rate and model input.
    output_bytes : int
        The model's output size in bytes.
    output_float : bool
        Whether the outputs are float32 (else int8).

    Returns
    -------
    micro.App
    """
    import micro
    from pla_tvm.stream.csource import config_defines

    # One step emits at most the learning phase's replay plus a decision and a search-back.
    most = (LEARNING_PEAKS + 2) * (PEAK_EVENT_BYTES + beat_event_bytes(output_bytes))
    folder = Path(str(_SOURCES))
    return micro.App(
        sources=(folder / "ecg_stream.c", folder / "stream_app.c"), step=STEP, init=INIT,
        input_bytes=2, output_max_bytes=most, include_dirs=(folder, folder / "firmware"),
        defines={**config_defines(config), "STREAM_OUTPUT_FLOAT": int(output_float)})


@dataclass(frozen=True, eq=False)
class StreamEvents:
    """The events of a streaming run, in order.

    Attributes
    ----------
    r_peaks, peak_steps : np.ndarray
        int64 sample index of every R peak, and of the sample whose processing found it.
    beat_peaks, beat_steps : np.ndarray
        int64 R peak of every classified beat, and the sample whose processing classified it.
    classes : np.ndarray
        int64 class of each beat (argmax of its outputs on the core).
    outputs : np.ndarray
        ``[beats, C]`` raw model outputs.
    """

    r_peaks: np.ndarray
    peak_steps: np.ndarray
    beat_peaks: np.ndarray
    beat_steps: np.ndarray
    classes: np.ndarray
    outputs: np.ndarray


def parse_events(raw: np.ndarray, output_shape: tuple[int, ...], output_dtype: str
                 ) -> StreamEvents:
    """Read the event records a streaming firmware wrote (``c/stream_app.c``).

    Parameters
    ----------
    raw : np.ndarray
        uint8 bytes, in order.
    output_shape : tuple of int
        The model's output shape (``[1, C]``).
    output_dtype : str
        ``"int8"`` or ``"float32"``.

    Returns
    -------
    StreamEvents

    Raises
    ------
    ValueError
        If a record is truncated or has an unknown tag (the firmware and this reader disagree).
    """
    data = np.asarray(raw, dtype=np.uint8).tobytes()
    count = int(np.prod(output_shape))
    out_bytes = count * np.dtype(output_dtype).itemsize
    beat_bytes = beat_event_bytes(out_bytes)
    peaks, peak_steps, starts, beat_steps, classes, outputs = [], [], [], [], [], []
    offset = 0
    while offset < len(data):
        tag = data[offset]
        size = PEAK_EVENT_BYTES if tag == PEAK_EVENT else beat_bytes
        if tag not in (PEAK_EVENT, BEAT_EVENT) or offset + size > len(data):
            raise ValueError(f"stream output: bad event record at byte {offset} (tag {tag}, "
                             f"{len(data) - offset} bytes left)")
        index, step = np.frombuffer(data, dtype="<u4", count=2, offset=offset + 4)
        if tag == PEAK_EVENT:
            peaks.append(index)
            peak_steps.append(step)
        else:
            starts.append(index)
            beat_steps.append(step)
            classes.append(data[offset + 1])
            outputs.append(np.frombuffer(data, dtype=output_dtype, count=count,
                                         offset=offset + 12))
        offset += size
    as_int = lambda values: np.array(values, dtype=np.int64)  # noqa: E731
    return StreamEvents(
        r_peaks=as_int(peaks), peak_steps=as_int(peak_steps), beat_peaks=as_int(starts),
        beat_steps=as_int(beat_steps), classes=as_int(classes),
        outputs=(np.stack(outputs) if outputs else np.zeros((0, count), dtype=output_dtype)))


def stream_metrics(counts: np.ndarray, events: StreamEvents, fs: int, clock_hz: int,
                   footprint, stack_bytes: int) -> dict[str, Any]:
    """The cost of a streaming run from its per-sample instruction counts.

    Parameters
    ----------
    counts : np.ndarray
        Exact instructions of each sample's step.
    events : StreamEvents
        What the run found.
    fs : int
        Samples per second.
    clock_hz : int
        The board's core clock.
    footprint : micro.Footprint
        The image's footprint (the app's RAM is the front end's buffers and the event buffer).
    stack_bytes : int
        Deepest stack of a step.

    Returns
    -------
    dict
        ``samples``, ``seconds_of_signal``, ``instructions_total``,
        ``instructions_per_second_of_signal``, ``most_instructions_on_one_sample``,
        ``most_instructions_on_one_beat`` (the step that classified it: detection, cutting,
        normalisation and the model), ``mean_instructions_per_beat_step``, ``stream_ram_bytes``
        (front end and application static RAM + the model's RAM), ``stack_bytes``,
        ``duty_cycle`` at the board's clock and at :data:`REFERENCE_CLOCK_HZ` (one instruction
        per cycle assumed).
    """
    counts = np.asarray(counts, dtype=np.int64)
    seconds = counts.size / fs
    per_second = float(counts.sum() / seconds) if seconds else 0.0
    beat_counts = counts[events.beat_steps] if events.beat_steps.size else np.zeros(0, np.int64)
    return {
        "samples": int(counts.size),
        "seconds_of_signal": seconds,
        "instructions_total": int(counts.sum()),
        "instructions_per_second_of_signal": per_second,
        "most_instructions_on_one_sample": int(counts.max(initial=0)),
        "most_instructions_on_one_beat": int(beat_counts.max(initial=0)),
        "mean_instructions_per_beat_step": (float(beat_counts.mean()) if beat_counts.size
                                            else None),
        "stream_ram_bytes": int(footprint.app_ram_bytes + footprint.model_ram_bytes),
        "app_ram_bytes": int(footprint.app_ram_bytes),
        "model_ram_bytes": int(footprint.model_ram_bytes),
        "stack_bytes": int(stack_bytes),
        "duty_cycle": {"board_clock_hz": clock_hz, "at_board_clock": per_second / clock_hz,
                       "at_48_mhz": per_second / REFERENCE_CLOCK_HZ},
    }
