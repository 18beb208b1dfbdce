"""A WFDB record as the ADC delivered it: one lead's digital samples, its rate and its beats.

The streaming front end takes the record's digital values (``rdrecord(physical=False)``), not
physical units: what an ADC hands the firmware. Every way a record cannot be streamed is one
:class:`~pla_tvm.errors.DataError` naming the record and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pla_tvm.data.records import BEAT_SYMBOL_CLASSES, lead_index
from pla_tvm.errors import DataError, DataNotFoundError

#: WFDB's invalid-sample value of each signal format (what a NaN is stored as).
_INVALID = {"8": -128, "16": -32768, "61": -32768, "80": -128, "160": -32768, "212": -2048,
            "310": -512, "311": -512, "24": -(2 ** 23), "32": -(2 ** 31)}


@dataclass(frozen=True, eq=False)
class RawRecord:
    """One lead of a WFDB record as int16 ADC values.

    Attributes
    ----------
    path : Path
        The record (without extension).
    lead : str
        The lead's name.
    fs : int
        Samples per second.
    samples : np.ndarray
        int16 digital values.
    adc_bits : int
        The ADC's resolution from the header.
    beats : np.ndarray or None
        int64 sample indices of the reference beat annotations (``atr``), None without them.
    symbols : tuple of str or None
        Their annotation symbols.
    """

    path: Path
    lead: str
    fs: int
    samples: np.ndarray
    adc_bits: int
    beats: np.ndarray | None
    symbols: tuple[str, ...] | None

    @property
    def seconds(self) -> float:
        """Duration of the record."""
        return self.samples.size / self.fs


def read_raw_record(path: str | Path, lead: int | str = 0, annotator: str = "atr",
                    sampto: int | None = None) -> RawRecord:
    """Read one lead of a WFDB record as int16 ADC values, with its beat annotations if any.

    Parameters
    ----------
    path : str or Path
        The record without extension (``…/mitdb/100``) or its ``.hea`` file.
    lead : int or str
        Lead index or name (``"MLII"``).
    annotator : str
        Annotation file extension of the reference beats.
    sampto : int, optional
        Read only the first ``sampto`` samples.

    Returns
    -------
    RawRecord

    Raises
    ------
    DataNotFoundError
        If the header does not exist.
    DataError
        If the record cannot be read, the lead does not exist, the rate is not a whole number
        of samples per second, the samples do not fit int16 or the lead has invalid (NaN)
        samples.
    """
    import wfdb

    path = Path(path)
    path = path.with_suffix("") if path.suffix == ".hea" else path
    header = path.with_name(path.name + ".hea")
    if not header.is_file():
        raise DataNotFoundError(f"{header}: WFDB header not found (expected RECORD.hea and its "
                                "signal file, e.g. 100.hea + 100.dat)")
    try:
        record = wfdb.rdrecord(str(path), physical=False, sampto=sampto)
    except Exception as error:  # wfdb raises bare ValueError/IndexError/OSError on bad files
        raise DataError(f"{header}: unreadable WFDB record ({type(error).__name__}: {error})") \
            from None
    names = list(record.sig_name or [])
    index = lead_index(names, lead, path)
    fs = float(record.fs or 0)
    if not (fs > 0 and fs == int(fs)):
        raise DataError(f"{header}: sampling frequency {record.fs!r}; streaming needs a whole "
                        "number of samples per second")
    digital = np.asarray(record.d_signal[:, index], dtype=np.int64)
    invalid = digital == _INVALID.get(str(record.fmt[index]), -32768)
    if invalid.any():
        first = int(np.argmax(invalid))
        raise DataError(f"{path}: lead {names[index]} has {int(invalid.sum()):,} invalid (NaN) "
                        f"samples, the first at sample {first:,} ({first / fs:.2f} s); the "
                        "stream needs every sample")
    if digital.min(initial=0) < -32768 or digital.max(initial=0) > 32767:
        raise DataError(f"{path}: lead {names[index]} has values outside int16 "
                        f"([{digital.min()}, {digital.max()}]); an ADC stream is int16")
    beats = symbols = None
    annotation_file = path.with_name(f"{path.name}.{annotator}")
    if annotation_file.is_file():
        try:
            annotation = wfdb.rdann(str(path), annotator, sampto=sampto)
        except Exception as error:
            raise DataError(f"{annotation_file}: unreadable annotation file "
                            f"({type(error).__name__}: {error})") from None
        kept = [(int(s), sym) for s, sym in zip(annotation.sample, annotation.symbol)
                if sym in BEAT_SYMBOL_CLASSES]
        beats = np.array([s for s, _ in kept], dtype=np.int64)
        symbols = tuple(sym for _, sym in kept)
    adc = record.adc_res[index] if record.adc_res else 0
    return RawRecord(path=path, lead=names[index], fs=int(fs),
                     samples=digital.astype(np.int16), adc_bits=int(adc or 16), beats=beats,
                     symbols=symbols)
