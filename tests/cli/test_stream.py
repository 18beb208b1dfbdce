"""Streaming firmware through the CLI: compile --stream, run on a WFDB record in QEMU, bit-exact
with the host reference; every bad input gets one line."""

from __future__ import annotations

import numpy as np
import pytest

from pla_tvm.cli import main

from .conftest import cli_error, cli_json, needs_micro_tools

SECONDS = 60


@pytest.fixture(scope="module")
def mitdb_stretch(data_root, tmp_path_factory):
    """The first minute of MIT-BIH record 100 (both leads, digital values, its beat
    annotations) as a WFDB record of its own."""
    wfdb = pytest.importorskip("wfdb")
    source = data_root / "mitdb" / "100"
    if not source.with_suffix(".hea").is_file():
        pytest.skip("MIT-BIH record 100 not in the shared data")
    folder = tmp_path_factory.mktemp("mitdb")
    record = wfdb.rdrecord(str(source), physical=False, sampto=SECONDS * 360)
    wfdb.wrsamp("m100", fs=360, units=record.units, sig_name=record.sig_name,
                d_signal=record.d_signal, fmt=["16", "16"], adc_gain=record.adc_gain,
                baseline=record.baseline, write_dir=str(folder))
    annotation = wfdb.rdann(str(source), "atr", sampto=SECONDS * 360)
    wfdb.wrann("m100", "atr", annotation.sample, annotation.symbol, write_dir=str(folder))
    return folder / "m100"


def _compile_stream(model, out, *pla: str) -> None:
    assert main(["compile", str(model), *pla, "--board", "mps2-an385", "--stream", "--fs", "360",
                 "--adc-bits", "11", "--out", str(out)]) == 0


@pytest.fixture(scope="module")
def stream_firmware(tiny_baseline, tiny_pla, tmp_path_factory):
    out = tmp_path_factory.mktemp("fw-stream") / "fw"
    _compile_stream(tiny_baseline / "baseline_int8.tflite", out, "--pla",
                    str(tiny_pla / "pla.npz"))
    return out


@needs_micro_tools
def test_a_record_streams_bit_exact_with_the_host(stream_firmware, mitdb_stretch, tmp_path,
                                                  capsys):
    outputs, plot = tmp_path / "o.npz", tmp_path / "stretch.png"
    report = cli_json(capsys, "run", str(stream_firmware), "--source", f"wfdb:{mitdb_stretch}",
                      "--lead", "MLII", "--outputs", str(outputs), "--plot", str(plot))
    assert report["bit_exact_with_host_reference"] == {
        "r_peaks": True, "beat_peaks": True, "outputs": True, "classes": True}
    detection = report["detection"]
    assert detection["sensitivity"] >= 0.98 and detection["positive_predictivity"] >= 0.99
    cost = report["cost"]
    assert cost["samples"] == SECONDS * 360
    assert cost["most_instructions_on_one_beat"] >= cost["instructions_per_second_of_signal"] / 360
    assert 0 < cost["stream_ram_bytes"] <= 8192
    saved = np.load(outputs)
    assert saved["r_peaks"].dtype == np.int64 and saved["r_peaks"].size == report["beats_found"]
    assert saved["outputs"].shape == (report["beats_classified"], 5)
    assert saved["predictions"].size == report["beats_classified"]
    assert plot.stat().st_size > 10_000
    assert report["class_agreement_with_host_pipeline"]["beats_compared"] > 60


@needs_micro_tools
def test_the_whole_model_streams_without_pla(tiny_baseline, mitdb_stretch, tmp_path, capsys):
    out = tmp_path / "fw"
    _compile_stream(tiny_baseline / "baseline_int8.tflite", out)
    report = cli_json(capsys, "run", str(out), "--source", f"wfdb:{mitdb_stretch}", "--lead",
                      "MLII")
    assert all(report["bit_exact_with_host_reference"].values())
    assert report["beats_classified"] >= 70


@needs_micro_tools
def test_bad_streaming_inputs_get_one_line(stream_firmware, mitdb_stretch, tmp_path, capsys):
    wfdb = pytest.importorskip("wfdb")
    run = ["run", str(stream_firmware)]
    assert "a streaming firmware reads a raw record, --source wfdb:PATH/RECORD" in cli_error(
        capsys, *run)
    assert "no lead named 'II'; the record has ['MLII', 'V5']" in cli_error(
        capsys, *run, "--source", f"wfdb:{mitdb_stretch}", "--lead", "II")
    signal = np.zeros((3000, 1))
    wfdb.wrsamp("slow", fs=250, units=["mV"], sig_name=["MLII"], p_signal=signal, fmt=["16"],
                adc_gain=[200], baseline=[0], write_dir=str(tmp_path))
    assert ("is sampled at 250 Hz, the firmware in" in (message := cli_error(
        capsys, *run, "--source", f"wfdb:{tmp_path / 'slow'}"))
        and "streams 360 Hz (compile it with --fs 250)" in message)
    wfdb.wrsamp("short", fs=360, units=["mV"], sig_name=["MLII"], p_signal=signal[:1000],
                fmt=["16"], adc_gain=[200], baseline=[0], write_dir=str(tmp_path))
    assert "is shorter than one beat after the front end's learning phase" in cli_error(
        capsys, *run, "--source", f"wfdb:{tmp_path / 'short'}")
    signal = np.zeros((5000, 1))
    signal[100] = np.nan
    wfdb.wrsamp("gap", fs=360, units=["mV"], sig_name=["MLII"], p_signal=signal, fmt=["16"],
                adc_gain=[200], baseline=[0], write_dir=str(tmp_path))
    assert "lead MLII has 1 invalid (NaN) samples, the first at sample 100" in cli_error(
        capsys, *run, "--source", f"wfdb:{tmp_path / 'gap'}")
    assert "--fs goes with --stream" in cli_error(
        capsys, "compile", "x.tflite", "--board", "mps2-an385", "--fs", "360", "--out",
        str(tmp_path / "fw"))


def test_evaluate_streams_a_record_on_the_host(tiny_baseline, mitdb_stretch, capsys):
    report = cli_json(capsys, "evaluate", str(tiny_baseline / "baseline_int8.tflite"),
                      "--stream", "--source", f"wfdb:{mitdb_stretch}", "--lead", "MLII",
                      "--adc-bits", "11", "--interpreter", "tflm")
    assert report["fs"] == 360 and report["beats_found"] >= 70
    assert report["detection"]["sensitivity"] >= 0.98
    assert report["accuracy_vs_annotations"]["beats"] == report["beats_classified"]
    assert "--stream reads a raw record" in cli_error(
        capsys, "evaluate", str(tiny_baseline / "baseline_int8.tflite"), "--stream")
