"""The UCR loader on the shared ECG5000 files and on small files written by the tests."""

import io
import zipfile

import numpy as np
import pytest

from pla_tvm.data import ECG5000_CLASSES, load_ucr, locate
from pla_tvm.data.ucr import read_ucr_labels_and_series
from pla_tvm.errors import DataError, DataNotFoundError

#: Per-class counts of the shared copy (../shared/data/README.md).
TRAIN_COUNTS = [292, 177, 10, 19, 2]
TEST_COUNTS = [2626, 1590, 86, 175, 22]


def test_ecg5000_splits_and_classes(ecg5000):
    assert (len(ecg5000.train), len(ecg5000.test)) == (500, 4499)
    assert ecg5000.class_names == ECG5000_CLASSES
    assert list(ecg5000.train.class_counts().values()) == TRAIN_COUNTS
    assert list(ecg5000.test.class_counts().values()) == TEST_COUNTS
    assert ecg5000.test.x.shape == (4499, 140) and ecg5000.test.x.dtype == np.float32
    assert ecg5000.test.y.min() == 0 and ecg5000.test.y.max() == 4


def test_ecg5000_found_through_the_environment_variable(data_root, monkeypatch):
    monkeypatch.setenv(locate.DATA_ENV, str(data_root))
    assert locate.locate_ucr("ECG5000")["train"] == data_root / "ecg5000" / "ECG5000_TRAIN.txt"


def _rows(n=4, length=140, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(1, 6, size=n), rng.normal(size=(n, length)).round(4)


def _write_txt(path, labels, series, separator=" "):
    lines = [separator.join([f"{label:.7e}"] + [f"{v:.7e}" for v in row])
             for label, row in zip(labels, series)]
    path.write_text("\n".join(lines) + "\n")


def _write_arff(path, labels, series):
    header = ["@relation test"] + [f"@attribute att{i} numeric" for i in range(series.shape[1])]
    header += ["@attribute target {1,2,3,4,5}", "", "@data"]
    rows = [",".join([f"{v}" for v in row] + [f"'{label}'"]) for label, row in zip(labels, series)]
    path.write_text("\n".join(header + rows) + "\n")


@pytest.mark.parametrize("suffix", [".txt", ".tsv", ".arff", "comma"])
def test_all_distributed_layouts_read_the_same(tmp_path, suffix):
    labels, series = _rows()
    path = tmp_path / f"X_TRAIN{suffix if suffix != 'comma' else ''}"
    if suffix == ".arff":
        _write_arff(path, labels, series)
    else:
        _write_txt(path, labels, series, {"comma": ",", ".tsv": "\t"}.get(suffix, "  "))
    read_labels, read_series = read_ucr_labels_and_series(path, n_classes=5)
    np.testing.assert_array_equal(read_labels, labels)
    np.testing.assert_allclose(read_series, series, rtol=1e-6)


def test_splits_are_mapped_to_zero_based_named_classes(tmp_path):
    for split, seed in (("TRAIN", 1), ("TEST", 2)):
        _write_txt(tmp_path / f"ECG5000_{split}.txt", *_rows(seed=seed))
    dataset = load_ucr("ECG5000", tmp_path)
    labels, _ = _rows(seed=1)
    np.testing.assert_array_equal(dataset.train.y, labels - 1)
    assert dataset.class_names == ECG5000_CLASSES


def test_other_ucr_datasets_get_generic_class_names(tmp_path):
    _write_txt(tmp_path / "Other_TRAIN.tsv", [1, 2], np.zeros((2, 140)), "\t")
    _write_txt(tmp_path / "Other_TEST.tsv", [3, 1], np.zeros((2, 140)), "\t")
    dataset = load_ucr("Other", tmp_path)
    assert dataset.class_names == ("class 1", "class 2", "class 3")
    assert dataset.test.y.tolist() == [2, 0]


def test_other_ucr_datasets_keep_their_series_length(tmp_path):
    for split, seed in (("TRAIN", 1), ("TEST", 2)):
        _write_txt(tmp_path / f"Long_{split}.txt", *_rows(length=187, seed=seed))
    dataset = load_ucr("Long", tmp_path)
    assert dataset.train.length == dataset.test.length == 187
    resampled = dataset.test.resampled(140)
    assert resampled.x.shape == (4, 140) and "resampled from 187 to 140" in resampled.source
    np.testing.assert_allclose(resampled.x.std(axis=1, ddof=1), 1.0, atol=1e-5)
    assert dataset.test.resampled(187) is dataset.test


def test_splits_of_different_lengths_are_refused(tmp_path):
    _write_txt(tmp_path / "Mixed_TRAIN.txt", *_rows(length=187))
    _write_txt(tmp_path / "Mixed_TEST.txt", *_rows(length=140))
    with pytest.raises(DataError, match=r"Mixed_TEST.txt, line 1: 141 columns, expected 188"):
        load_ucr("Mixed", tmp_path)


def _corrupt(tmp_path, edit):
    labels, series = _rows()
    path = tmp_path / "ECG5000_TRAIN.txt"
    _write_txt(path, labels, series)
    path.write_text(edit(path.read_text()))
    return path


def _replace_first_sample(text, value):
    label, first, rest = text.split(" ", 2)
    return f"{label} {value} {rest}"


@pytest.mark.parametrize("edit, message", [
    (lambda text: text[: len(text) // 2], r"line 2.*the file looks truncated"),
    (lambda text: text[: text.index("\n", 10) - 100], r"line 1: 13\d columns, expected 141"),
    (lambda text: text.replace("\n", " 1.0\n", 1), "line 1: 142 columns, expected 141"),
    (lambda text: _replace_first_sample(text, "abc"), "line 1, column 2: non-numeric value 'abc'"),
    (lambda text: _replace_first_sample(text, "NaN"), "line 1, column 2: NaN is not a finite"),
    (lambda text: "7" + text[text.index(" "):], "line 1: unknown label '7'; expected 1..5"),
    (lambda text: "1.5" + text[text.index(" "):], "line 1: unknown label '1.5'"),
    (lambda text: "\n\n", "contains no series"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, edit, message):
    path = _corrupt(tmp_path, edit)
    with pytest.raises(DataError, match=message) as error:
        read_ucr_labels_and_series(path, n_classes=5)
    assert str(path) in str(error.value)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(DataNotFoundError, match="NOPE_TRAIN.txt: file not found"):
        read_ucr_labels_and_series(tmp_path / "NOPE_TRAIN.txt")


def test_explicit_directory_without_files_says_where_to_put_them(tmp_path):
    with pytest.raises(DataNotFoundError, match="put ECG5000_TRAIN.txt and ECG5000_TEST.txt"):
        load_ucr("ECG5000", tmp_path)


def _isolate_roots(monkeypatch, tmp_path):
    monkeypatch.delenv(locate.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(locate, "project_shared_data", lambda: tmp_path / "nowhere")


def test_offline_failure_is_one_clear_sentence(tmp_path, monkeypatch):
    _isolate_roots(monkeypatch, tmp_path)
    monkeypatch.setattr(locate, "UCR_DOWNLOAD_URL", "http://127.0.0.1:9/{name}.zip")
    with pytest.raises(DataNotFoundError) as error:
        locate.locate_ucr("ECG5000")
    message = str(error.value)
    assert "download failed" in message and str(tmp_path / "cache" / "pla-tvm") in message
    assert message.count(".") >= 1 and "\n" not in message


def test_download_extracts_the_splits_into_the_user_cache(tmp_path, monkeypatch):
    _isolate_roots(monkeypatch, tmp_path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for split in ("TRAIN", "TEST"):
            archive.writestr(f"ECG5000_{split}.txt", "1 " + " ".join(["0.5"] * 140) + "\n")
        archive.writestr("ECG5000.arff", "ignored")
    (tmp_path / "ECG5000.zip").write_bytes(buffer.getvalue())
    monkeypatch.setattr(locate, "UCR_DOWNLOAD_URL", f"file://{tmp_path}/{{name}}.zip")
    files = locate.locate_ucr("ECG5000")
    assert files["test"] == tmp_path / "cache" / "pla-tvm" / "ecg5000" / "ECG5000_TEST.txt"
    assert not list((tmp_path / "cache").rglob("*.part"))
