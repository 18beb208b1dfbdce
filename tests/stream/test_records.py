"""Reading a WFDB lead as ADC values for the stream, and the one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from pla_tvm.errors import DataError, DataNotFoundError
from pla_tvm.stream.records import read_raw_record


def _write(tmp_path, signal: np.ndarray, fs: float = 250, name: str = "rec"):
    wfdb = pytest.importorskip("wfdb")
    wfdb.wrsamp(name, fs=fs, units=["mV", "mV"], sig_name=["MLII", "V5"],
                p_signal=signal, fmt=["16", "16"], adc_gain=[200, 200], baseline=[0, 0],
                write_dir=str(tmp_path))
    return tmp_path / name


def test_mitdb_100_as_adc_values(data_root):
    path = data_root / "mitdb" / "100"
    if not path.with_suffix(".hea").is_file():
        pytest.skip("MIT-BIH record 100 not in the shared data")
    record = read_raw_record(path, "MLII", sampto=3600)
    assert record.fs == 360 and record.lead == "MLII" and record.adc_bits == 11
    assert record.samples.dtype == np.int16 and record.samples.size == 3600
    assert record.beats is not None and record.beats.max() < 3600
    assert set(record.symbols) <= {"N", "A", "V"}


def test_errors_name_the_record_and_the_problem(tmp_path):
    signal = np.zeros((1000, 2))
    path = _write(tmp_path, signal)
    with pytest.raises(DataError, match=r"rec: no lead named 'II'; the record has \['MLII', "
                                        r"'V5'\]"):
        read_raw_record(path, "II")
    with pytest.raises(DataError, match="lead index 2 out of range"):
        read_raw_record(path, 2)
    signal[400:410, 0] = np.nan
    path = _write(tmp_path, signal, name="nan")
    with pytest.raises(DataError, match=r"nan: lead MLII has 10 invalid \(NaN\) samples, the "
                                        r"first at sample 400 \(1.60 s\)"):
        read_raw_record(path, "MLII")
    assert read_raw_record(path, "V5").samples.size == 1000
    path = _write(tmp_path, np.zeros((100, 2)), fs=250.5, name="odd")
    with pytest.raises(DataError, match="sampling frequency 250.5; streaming needs a whole"):
        read_raw_record(path)
    with pytest.raises(DataNotFoundError, match="missing.hea: WFDB header not found"):
        read_raw_record(tmp_path / "missing")
