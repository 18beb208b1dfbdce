"""The WFDB raw-record loader on MIT-BIH record 100 and on damaged copies of it."""

import shutil

import numpy as np
import pytest

from pla_tvm.data import UNLABELLED, BeatWindow, load_record
from pla_tvm.data.records import SKIP_EDGE, SKIP_NO_NEXT, SKIP_NON_BEAT
from pla_tvm.errors import DataError, DataNotFoundError


@pytest.fixture(scope="module")
def record_100(mitdb_record):
    return load_record(mitdb_record)


def test_annotated_beats_are_cut_resampled_and_normalised(record_100):
    beats = record_100
    assert beats.x.shape == (2272, 140) and beats.x.dtype == np.float32
    np.testing.assert_allclose(beats.x.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(beats.x.std(axis=1, ddof=1), 1.0, atol=1e-5)
    assert beats.class_counts() == {"normal": 2238, "R-on-T PVC": 0, "PVC": 1,
                                    "SVPB/ectopic": 33, "unclassified": 0}
    assert beats.symbols.count("A") == 33 and beats.symbols.count("V") == 1
    assert beats.skipped == {SKIP_NON_BEAT: 1, SKIP_NO_NEXT: 1}
    assert "lead MLII" in beats.source


def test_beats_are_cut_to_the_length_asked_for(mitdb_record, record_100):
    beats = load_record(mitdb_record, length=187)
    assert beats.x.shape == (len(record_100), 187)
    np.testing.assert_array_equal(beats.y, record_100.y)


def test_fixed_window_reports_beats_at_the_record_edge(mitdb_record):
    beats = load_record(mitdb_record, lead="V5", window=BeatWindow.parse("0.2,0.36"))
    assert beats.skipped[SKIP_EDGE] >= 1
    assert len(beats) + beats.skipped[SKIP_EDGE] == 2273


@pytest.fixture(scope="module")
def one_minute_record(mitdb_record, tmp_path_factory):
    """The first minute of record 100 without annotations, written with wfdb."""
    import wfdb

    directory = tmp_path_factory.mktemp("excerpt")
    record = wfdb.rdrecord(str(mitdb_record), sampto=360 * 60)
    wfdb.wrsamp("ex", fs=360, units=record.units, sig_name=record.sig_name,
                p_signal=record.p_signal, fmt=["212", "212"], write_dir=str(directory))
    annotated = wfdb.rdann(str(mitdb_record), "atr", sampto=360 * 60)
    return directory / "ex", sum(symbol == "N" or symbol == "A" for symbol in annotated.symbol)


def test_qrs_detection_finds_the_beats_when_there_are_no_annotations(one_minute_record):
    path, annotated_beats = one_minute_record
    beats = load_record(path)
    assert beats.symbols is None and set(beats.y.tolist()) == {UNLABELLED}
    assert abs(len(beats) + sum(beats.skipped.values()) - annotated_beats) <= 2
    assert beats.class_counts()["unlabelled"] == len(beats)


def test_annotations_required_but_absent(one_minute_record):
    with pytest.raises(DataNotFoundError, match=r"ex\.atr: annotation file not found"):
        load_record(one_minute_record[0], beats="annotations")


def _copy(mitdb_record, tmp_path):
    for suffix in (".hea", ".dat", ".atr"):
        shutil.copy(mitdb_record.with_name("100" + suffix), tmp_path)
    return tmp_path / "100"


def test_missing_header(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"nothing\.hea: WFDB header not found"):
        load_record(tmp_path / "nothing")


def test_unreadable_header(mitdb_record, tmp_path):
    path = _copy(mitdb_record, tmp_path)
    path.with_suffix(".hea").write_text("this is not a header\n")
    with pytest.raises(DataError, match=r"100\.hea: unreadable WFDB record"):
        load_record(path)


def test_truncated_signal_file(mitdb_record, tmp_path):
    path = _copy(mitdb_record, tmp_path)
    data = path.with_suffix(".dat")
    data.write_bytes(data.read_bytes()[:99999])
    with pytest.raises(DataError, match=r"100\.hea: unreadable WFDB record"):
        load_record(path)


@pytest.mark.parametrize("lead, message", [("II", "no lead named 'II'"), (5, "lead index 5")])
def test_unknown_lead(mitdb_record, lead, message):
    with pytest.raises(DataError, match=message):
        load_record(mitdb_record, lead=lead)


def test_record_without_usable_beats(one_minute_record, tmp_path):
    import wfdb

    wfdb.wrsamp("flat", fs=360, units=["mV"], sig_name=["MLII"],
                p_signal=np.zeros((3600, 1)), fmt=["16"], write_dir=str(tmp_path))
    wfdb.wrann("flat", "atr", np.array([500, 1000, 1500]), symbol=["N", "N", "N"],
               write_dir=str(tmp_path))
    with pytest.raises(DataError, match=r"flat: no usable beats in lead MLII .*flat signal"):
        load_record(tmp_path / "flat")
