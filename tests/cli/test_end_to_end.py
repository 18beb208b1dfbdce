"""The CI end-to-end test: tf_keras baseline → TFLite → PLA → TVM Relax → firmware → QEMU.

``pla-tvm compile`` and ``pla-tvm run`` are driven through the command line (in-process) on the
tiny trained baseline, and the firmware is checked against two references:

* the host Relax VM running the same prepared module (:class:`pla_tvm.graph.HostRunner`) —
  identical integer graph, so int8 outputs must be bit-exact (float: within 1e-5);
* TFLite Micro running PLA's ``pla_int8.tflite`` — a different graph: it ends at the int8 head
  (the baseline's, copied by ``compress``) and outputs logits, while the firmware keeps the
  baseline's imported int8 head and its int8 softmax. Only the predicted classes are
  comparable; their agreement is measured (see docs/cli.md).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from micro.api import _build as build_with_test_hook
from pla_tvm.cli import main
from pla_tvm.deploy import MANIFEST_FILE, model_inputs, prepare, read_manifest
from pla_tvm.files import sha256_of, write_json_atomically
from pla_tvm.graph import HostRunner
from pla_tvm.inference import TFLiteRunner, predict_classes
from tests.cli.conftest import BOARD, cli_error, cli_json, needs_micro_tools

pytestmark = needs_micro_tools

LIMIT = 200


def _run(capsys, directory: Path, limit: int, tmp_path: Path) -> tuple[dict, dict]:
    """``pla-tvm run DIR --limit N --json --outputs FILE``: the report and the saved arrays."""
    saved = tmp_path / f"{directory.name}-outputs.npz"
    report = cli_json(capsys, "run", str(directory), "--limit", str(limit),
                      "--outputs", str(saved))
    with np.load(saved) as arrays:
        return report, {name: arrays[name] for name in arrays.files}


def _host_outputs(directory: Path, beats: np.ndarray) -> np.ndarray:
    """The same module on the host Relax VM, fed the records the firmware received."""
    manifest = read_manifest(directory)
    pla = manifest["pla"]["path"] if manifest["pla"] else None
    runner = HostRunner(prepare(manifest["model"]["path"], pla, manifest["boundary"]))
    return runner.run(model_inputs(beats, manifest))


def test_compile_writes_a_manifest_describing_the_int8_input(int8_pla_firmware, tiny_pla):
    manifest = read_manifest(int8_pla_firmware)
    assert (int8_pla_firmware / MANIFEST_FILE).is_file()
    assert manifest["board"] == BOARD and manifest["backend"] == "c"
    assert manifest["pla"]["path"] == str((tiny_pla / "pla.npz").resolve())
    assert len(manifest["model"]["sha256"]) == 64
    assert manifest["input"]["dtype"] == "int8" and manifest["input"]["shape"] == [1, 140, 1]
    assert manifest["input"]["quantization"]["scale"] > 0
    assert manifest["output"]["dtype"] == "int8"
    assert manifest["float_ops"] == []  # the int8 softmax is lowered to fixed point too
    memory = manifest["memory"]
    assert memory["peak_kernel"] and memory["arena_bytes"] >= sum(
        t["bytes"] for t in memory["peak_tensors"])
    assert manifest["footprint"]["model_flash_bytes"] > 0
    header = (int8_pla_firmware / "src" / "model.h").read_text()
    assert "MODEL_INPUT_SCALE" in header and "MODEL_INPUT_ZERO_POINT" in header


def test_int8_pla_firmware_equals_host_vm_and_agrees_with_tflite_micro(
        int8_pla_firmware, tiny_baseline, tiny_pla, ecg5000, capsys, tmp_path):
    report, arrays = _run(capsys, int8_pla_firmware, LIMIT, tmp_path)
    beats = ecg5000.test.subset(LIMIT)

    for key in ("accuracy", "n", "instructions_per_inference", "model_flash_bytes",
                "model_ram_bytes", "stack_bytes", "board", "f1", "image_flash_bytes"):
        assert key in report, key
    assert report["n"] == LIMIT and report["board"] == BOARD
    assert report["counting"] == "plugin" and report["instructions_per_inference"] > 0
    np.testing.assert_array_equal(arrays["labels"], beats.y)
    assert report["accuracy"] == pytest.approx(np.mean(arrays["predictions"] == beats.y))

    # the firmware got the records TFLite's QUANTIZE makes of the beats
    tflite = TFLiteRunner((tiny_baseline / "baseline_int8.tflite").read_bytes(), "baseline")
    np.testing.assert_array_equal(
        model_inputs(beats.x, read_manifest(int8_pla_firmware)).reshape(LIMIT, -1),
        tflite.quantize_input(beats.x).reshape(LIMIT, -1))

    host = _host_outputs(int8_pla_firmware, beats.x)
    np.testing.assert_array_equal(arrays["outputs"], host)  # same integer graph: bit-exact
    np.testing.assert_array_equal(arrays["predictions"], predict_classes(host))

    # PLA's int8 logits in TFLite Micro vs the firmware's int8 softmax of (the same) int8 logits:
    # quantized softmax is monotone, so TFLM's class is always among the firmware's top outputs;
    # the classes differ only where the softmax's 1/256 steps tie distinct logits.
    tflm = TFLiteRunner((tiny_pla / "pla_int8.tflite").read_bytes(), "pla_int8.tflite", "tflm")
    tflm_classes = predict_classes(tflm.outputs(beats.x))
    outputs = arrays["outputs"]
    top = outputs == outputs.max(axis=1, keepdims=True)
    assert top[np.arange(LIMIT), tflm_classes].all(), "TFLM's class is not a firmware top class"
    untied = top.sum(axis=1) == 1
    np.testing.assert_array_equal(tflm_classes[untied], arrays["predictions"][untied])
    agreement = np.mean(tflm_classes == arrays["predictions"])
    assert agreement >= 0.9, f"firmware and TFLite Micro agree on {agreement:.1%} of beats"


def test_float_pla_firmware_is_within_1e5_of_the_host(tiny_baseline, tiny_pla, ecg5000,
                                                       capsys, tmp_path):
    out = tmp_path / "fw-float"
    manifest = cli_json(capsys, "compile", str(tiny_baseline / "baseline_float.tflite"),
                        "--pla", str(tiny_pla / "pla.npz"), "--board", BOARD, "--out", str(out))
    assert manifest["input"]["dtype"] == "float32"
    assert manifest["input"]["quantization"] is None
    assert manifest["float_ops"] == []  # a float model has no dequantize/quantize regions
    report, arrays = _run(capsys, out, 50, tmp_path)
    host = _host_outputs(out, ecg5000.test.subset(50).x)
    np.testing.assert_allclose(arrays["outputs"], host, rtol=0, atol=1e-5)
    assert report["n"] == 50


def test_int8_baseline_alone_equals_host_vm(tiny_baseline, ecg5000, capsys, tmp_path):
    out = tmp_path / "fw-baseline"
    manifest = cli_json(capsys, "compile", str(tiny_baseline / "baseline_int8.tflite"),
                        "--board", BOARD, "--out", str(out))
    assert manifest["pla"] is None
    # LowerQDQToInteger lowers the int8 head's softmax too: nothing is left in float.
    assert manifest["float_ops"] == []
    report, arrays = _run(capsys, out, 3, tmp_path)
    np.testing.assert_array_equal(arrays["outputs"],
                                  _host_outputs(out, ecg5000.test.subset(3).x))
    assert report["instructions_per_inference"] > 0


@pytest.mark.parametrize("hook", ["fault", "hang"])
def test_run_reports_a_faulting_or_hanging_firmware_in_one_line(tiny_baseline, tiny_pla, hook,
                                                                capsys, tmp_path):
    out = tmp_path / hook
    assert main(["compile", str(tiny_baseline / "baseline_int8.tflite"), "--pla",
                 str(tiny_pla / "pla.npz"), "--board", BOARD, "--out", str(out)]) == 0
    manifest = read_manifest(out)  # rebuild the same image with micro's test hook
    module = prepare(manifest["model"]["path"], manifest["pla"]["path"])
    firmware = build_with_test_hook(module, BOARD, out, test_hook=hook)
    write_json_atomically(out / MANIFEST_FILE, {**manifest, "firmware": {
        **manifest["firmware"], "elf_sha256": sha256_of(firmware.elf)}})
    message = cli_error(capsys, "run", str(out), "--limit", "2", "--timeout", "5")
    assert ("took a" if hook == "fault" else "within 5 s") in message, message


@needs_micro_tools
def test_export_of_a_compiled_folder_and_its_mistakes(int8_pla_firmware, tmp_path, capsys):
    metadata = cli_json(capsys, "export", str(int8_pla_firmware), "--out", str(tmp_path / "lib"))
    assert metadata["prefix"] == "fw"  # the compiled folder's name
    assert (tmp_path / "lib" / "include" / "fw.h").is_file()
    assert all(symbol.startswith("fw_") for symbol in metadata["symbols"])
    assert "prefix '1x' is not usable" in cli_error(
        capsys, "export", str(int8_pla_firmware), "--out", str(tmp_path / "other"),
        "--prefix", "1x")
    assert "no manifest" in cli_error(capsys, "export", str(tmp_path), "--out",
                                      str(tmp_path / "other"))
    assert "is (inside) the compiled folder" in cli_error(
        capsys, "export", str(int8_pla_firmware), "--out", str(int8_pla_firmware))
    firmware_copy = tmp_path / "fw-copy"  # a firmware folder: its metadata.json is micro's
    shutil.copytree(int8_pla_firmware, firmware_copy)
    assert "is not an exported library's" in cli_error(
        capsys, "export", str(int8_pla_firmware), "--out", str(firmware_copy))
    assert (firmware_copy / "manifest.json").is_file()
    assert not (tmp_path / "other").exists()
    again = cli_json(capsys, "export", str(int8_pla_firmware), "--out", str(tmp_path / "lib"),
                     "--prefix", "ecg2")  # a previous export is replaced
    assert again["prefix"] == "ecg2" and not (tmp_path / "lib" / "include" / "fw.h").exists()


def test_compile_summary_names_the_region_holding_the_constants():
    from pla_tvm.commands.compile import _region_lines

    footprint = {"constants_region": "sram",
                 "region_bytes": {"flash": 23_000, "ram": 97_000, "sram": 811_040}}
    assert _region_lines(footprint) == [
        "  sram: 811,040 B (the model's constants: flash is too small)"]
    assert _region_lines({"constants_region": "flash", "region_bytes": {"flash": 1}}) == []
