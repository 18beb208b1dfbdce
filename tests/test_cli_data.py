"""``pla-tvm data summary`` end to end, through the console entry point's ``main``."""

import json

from pla_tvm.cli import main


def _run_json(capsys, *argv):
    assert main(["data", "summary", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_ecg5000_summary(capsys, data_root):
    summary = _run_json(capsys, "--source", "ecg5000", "--data-dir", str(data_root))
    assert summary["total_beats"] == 4999
    assert summary["splits"]["train"]["beats"] == 500
    assert summary["splits"]["test"]["beats"] == 4499
    assert summary["splits"]["test"]["per_class"] == {
        "normal": 2626, "R-on-T PVC": 1590, "PVC": 86, "SVPB/ectopic": 175, "unclassified": 22}
    assert summary["total_skipped"] == 0


def test_wfdb_summary_reports_skipped_beats(capsys, mitdb_record):
    summary = _run_json(capsys, "--source", f"wfdb:{mitdb_record}")
    assert summary["total_beats"] == 2272
    assert summary["splits"]["all"]["per_symbol"] == {"A": 33, "N": 2238, "V": 1}
    assert summary["total_skipped"] == 2


def test_table_output(capsys, data_root):
    assert main(["data", "summary", "--data-dir", str(data_root / "ecg5000")]) == 0
    out = capsys.readouterr().out
    assert "test" in out and "4499" in out and "skipped: none" in out


def test_errors_are_one_line_and_exit_2(capsys, tmp_path):
    assert main(["data", "summary", "--source", f"wfdb:{tmp_path / 'x'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pla-tvm data: error:") and "x.hea: WFDB header not found" in err
    assert main(["data", "summary", "--source", "kaggle:foo"]) == 2
    assert "unknown data source 'kaggle:foo'" in capsys.readouterr().err
