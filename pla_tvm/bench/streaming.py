"""``make bench``: the streaming firmware on MIT-BIH record 100 (issue 16's targets).

The first seed's PLA-swapped int8 baseline is compiled with ``--stream`` for the Cortex-M3
(mps2-an385, the target's board) and the Cortex-M4, and the whole of record 100's MLII lead
(30 minutes at 360 Hz) is streamed through each in one QEMU run; the same record resampled to
250 Hz (a copy the stage writes, its annotations moved to the new rate) is streamed on the M3 and
its beat count compared with the host's QRS detector (``wfdb.processing.xqrs_detect``, the
``wfdb:`` source's ``--beats detect``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from pla_tvm.baseline.pipeline import INT8_TFLITE_FILE
from pla_tvm.data.locate import data_roots
from pla_tvm.deploy import compile_model, stream_record
from pla_tvm.errors import DataNotFoundError
from pla_tvm.stream.records import read_raw_record

LOG = logging.getLogger(__name__)

#: Boards streamed at 360 Hz; the first carries the targets.
STREAM_BOARDS = ("mps2-an385", "mps2-an386")
#: The record and lead of the targets.
RECORD, LEAD = "100", "MLII"
#: The second rate the pipeline is checked at.
SECOND_FS = 250
#: Issue 16's limits.
MAX_INSTRUCTIONS_PER_SECOND = 480_000
MAX_STREAM_RAM_BYTES = 8 * 1024
MIN_DETECTION = 0.995
#: Beat counts at 250 Hz agree with the host detector's when within this fraction.
COUNT_TOLERANCE = 0.005
#: The stretch drawn (seconds): the record's first SVPB is at 5.7 s.
PLOT_START_S, PLOT_FILE = 0.0, "stream_mitdb100.png"


def find_record(data_dir: Path | None) -> Path:
    """MIT-BIH record 100 in the shared data (beside ECG5000's folder, or a data root)."""
    roots = ([Path(data_dir).parent] if data_dir is not None else []) + data_roots()
    for root in roots:
        path = root / "mitdb" / RECORD
        if path.with_suffix(".hea").is_file():
            return path
    raise DataNotFoundError(f"MIT-BIH record {RECORD} not found under "
                            f"{', '.join(str(r / 'mitdb') for r in roots)}")


def resampled_record(source: Path, fs: int, folder: Path) -> Path:
    """A copy of a record's MLII lead at another rate (digital values, annotations moved)."""
    import wfdb
    from wfdb import processing

    record = wfdb.rdrecord(str(source), physical=False, channel_names=[LEAD])
    annotation = wfdb.rdann(str(source), "atr")
    signal, moved = processing.resample_singlechan(
        record.d_signal[:, 0].astype(np.float64), annotation, record.fs, fs)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{RECORD}_{fs}hz"
    wfdb.wrsamp(name, fs=fs, units=record.units, sig_name=[LEAD],
                d_signal=np.round(signal).astype(np.int64)[:, None], fmt=["16"],
                adc_gain=record.adc_gain, baseline=record.baseline, write_dir=str(folder))
    wfdb.wrann(name, "atr", np.asarray(moved.sample), moved.symbol, write_dir=str(folder))
    return folder / name


def _host_detector_count(path: Path, length: int) -> int:
    """R peaks the host's ``wfdb:`` pipeline finds with QRS detection (kept and skipped)."""
    from pla_tvm.data.records import load_record

    beats = load_record(path, lead=LEAD, beats="detect", length=length)
    return len(beats) + sum(beats.skipped.values())


def _stream(model: Path, pla: Path, board: str, fs: int, record, out: Path) -> dict[str, Any]:
    LOG.info("streaming: %s at %d Hz on %s (%.0f s of signal)", record.path.name, fs, board,
             record.seconds)
    compile_model(model, board, out, pla=pla, stream_fs=fs, adc_bits=11)
    report, outcome = stream_record(out, record)
    return {**report, "outcome": outcome}


def streaming_stage(baseline_dir: Path, pla_npz: Path, work_dir: Path, docs_dir: Path,
                    data_dir: Path | None = None) -> dict[str, Any]:
    """Stream record 100 on each board of :data:`STREAM_BOARDS` and at :data:`SECOND_FS` on the
    M3, draw a stretch, and check the targets.

    Returns
    -------
    dict
        ``rows`` (one report per board and rate, :func:`pla_tvm.deploy.stream_record`),
        ``second_rate`` (the 250 Hz row's beat count and the host detector's) and ``plot``.
    """
    from pla_tvm.stream.plot import plot_stream

    model = Path(baseline_dir) / INT8_TFLITE_FILE
    source = find_record(data_dir)
    record = read_raw_record(source, LEAD)
    rows = []
    for board in STREAM_BOARDS:
        row = _stream(model, pla_npz, board, record.fs, record,
                      Path(work_dir) / f"stream-{board}-{record.fs}")
        outcome = row.pop("outcome")
        if board == STREAM_BOARDS[0]:
            plot = plot_stream(
                Path(docs_dir) / "plots" / PLOT_FILE, record.samples, record.fs,
                outcome.r_peaks, outcome.beat_peaks, outcome.classes, reference=record.beats,
                start_s=PLOT_START_S, title=f"MIT-BIH {RECORD} {LEAD}, streamed on {board} "
                "(PLA int8): R peaks coloured by the firmware's class")
        rows.append(row)
    slow = read_raw_record(resampled_record(source, SECOND_FS, Path(work_dir) / "records"), LEAD)
    row = _stream(model, pla_npz, STREAM_BOARDS[0], SECOND_FS, slow,
                  Path(work_dir) / f"stream-{STREAM_BOARDS[0]}-{SECOND_FS}")
    row.pop("outcome")
    rows.append(row)
    host_count = _host_detector_count(slow.path, row["beat_length"])
    return {"rows": rows, "plot": f"plots/{PLOT_FILE}" if plot else None,
            "second_rate": {"fs": SECOND_FS, "beats_found": row["beats_found"],
                            "host_detector_beats": host_count}}


def stream_target_rows(stage: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Issue 16's targets: (label, measured, met)."""
    target = stage["rows"][0]
    detection, cost = target["detection"], target["cost"]
    second = stage["second_rate"]
    difference = abs(second["beats_found"] - second["host_detector_beats"])
    exact = all(all(row["bit_exact_with_host_reference"].values()) for row in stage["rows"])
    return [
        (f"R-peak sensitivity >= {100 * MIN_DETECTION:.1f} % ({target['board']}, 360 Hz)",
         f"{100 * detection['sensitivity']:.2f} %", detection["sensitivity"] >= MIN_DETECTION),
        (f"R-peak positive predictivity >= {100 * MIN_DETECTION:.1f} %",
         f"{100 * detection['positive_predictivity']:.2f} %",
         detection["positive_predictivity"] >= MIN_DETECTION),
        (f"instructions per second of ECG <= {MAX_INSTRUCTIONS_PER_SECOND:,} ({target['board']})",
         f"{cost['instructions_per_second_of_signal']:,.0f}",
         cost["instructions_per_second_of_signal"] <= MAX_INSTRUCTIONS_PER_SECOND),
        (f"stream RAM (buffers + model) <= {MAX_STREAM_RAM_BYTES:,} B",
         f"{cost['stream_ram_bytes']:,}", cost["stream_ram_bytes"] <= MAX_STREAM_RAM_BYTES),
        ("firmware bit-exact with the host reference on the whole record (every row)",
         "yes" if exact else "NO", exact),
        (f"{second['fs']} Hz: beats found as the host detector's (within "
         f"{100 * COUNT_TOLERANCE:.1f} %)",
         f"{second['beats_found']:,} vs {second['host_detector_beats']:,}",
         difference <= COUNT_TOLERANCE * second["host_detector_beats"]),
    ]
