"""Train the tiny config end to end and check the exports against Keras and each other."""

import json

import numpy as np
import pytest

from pla_tvm.baseline.config import TrainSettings, get_config
from pla_tvm.baseline.pipeline import (
    FLOAT_TFLITE_FILE,
    INT8_TFLITE_FILE,
    KERAS_FILE,
    METRICS_FILE,
    PRUNED_KERAS_FILE,
    PruningSettings,
    run_training,
)
from pla_tvm.cli import main
from pla_tvm.errors import ModelError
from pla_tvm.inference import load_runner, predict_classes

TARGET_SPARSITY = 0.5


@pytest.fixture(scope="module")
def tiny_run(ecg5000, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-baseline")
    metrics = run_training(ecg5000, out, get_config("tiny"),
                           TrainSettings(epochs=4, patience=4, verbose=0),
                           PruningSettings(target_sparsity=TARGET_SPARSITY, finetune_epochs=3),
                           tflm_limit=200)
    return out, metrics


def test_run_directory_holds_every_artifact(tiny_run):
    out, metrics = tiny_run
    for name in (KERAS_FILE, FLOAT_TFLITE_FILE, PRUNED_KERAS_FILE, INT8_TFLITE_FILE, METRICS_FILE):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*part*")), "temporary files left behind"
    assert json.loads((out / METRICS_FILE).read_text())["parameters"] == metrics["parameters"]


def test_pruning_reaches_its_target_sparsity(tiny_run):
    sparsity = tiny_run[1]["sparsity"]
    assert sparsity["reached"] == pytest.approx(TARGET_SPARSITY, abs=0.01)
    sizes = tiny_run[1]["files"][INT8_TFLITE_FILE]
    assert sizes["gzip_bytes"] < sizes["bytes"]


def test_float_tflite_agrees_with_keras(tiny_run, ecg5000):
    out, _ = tiny_run
    beats = ecg5000.test.x[:64]
    keras_out = load_runner(out / KERAS_FILE).outputs(beats)
    tflite_out = load_runner(out / FLOAT_TFLITE_FILE).outputs(beats)
    np.testing.assert_allclose(tflite_out, keras_out, atol=1e-5)
    assert np.array_equal(predict_classes(tflite_out), predict_classes(keras_out))


def test_int8_tflite_is_within_quantization_error_of_the_pruned_model(tiny_run, ecg5000):
    out, _ = tiny_run
    beats = ecg5000.test.x[:200]
    runner = load_runner(out / INT8_TFLITE_FILE)
    quantization = runner.output_detail["quantization_parameters"]
    scale, zero_point = quantization["scales"][0], quantization["zero_points"][0]
    int8_probabilities = (runner.outputs(beats).astype(np.float32) - zero_point) * scale
    float_probabilities = load_runner(out / PRUNED_KERAS_FILE).outputs(beats)
    assert np.max(np.abs(int8_probabilities - float_probabilities)) < 0.08
    agreement = np.mean(predict_classes(int8_probabilities) == predict_classes(float_probabilities))
    assert agreement >= 0.95


def test_tflite_micro_matches_the_reference_interpreter_bit_for_bit(tiny_run, ecg5000):
    out, metrics = tiny_run
    beats = ecg5000.test.x[:50]
    micro = load_runner(out / INT8_TFLITE_FILE, "tflm")
    reference = load_runner(out / INT8_TFLITE_FILE, "litert-ref")
    np.testing.assert_array_equal(micro.outputs(beats), reference.outputs(beats))
    assert micro.arena_bytes > 0
    assert metrics["evaluations"]["int8_tflm"]["n"] == 200
    assert metrics["evaluations"]["int8_tflm"]["tflm_arena_bytes"] == micro.arena_bytes


def test_metrics_cover_the_papers_columns(tiny_run):
    result = tiny_run[1]["evaluations"]["keras"]
    assert result["n"] == 4499
    for key in ("accuracy", "sensitivity", "precision", "f1", "macro_f1", "per_class_recall",
                "confusion_matrix"):
        assert key in result
    assert np.sum(result["confusion_matrix"]) == 4499


def test_evaluate_command_prints_json(tiny_run, data_root, capsys):
    out, metrics = tiny_run
    status = main(["evaluate", str(out / INT8_TFLITE_FILE), "--source", "ecg5000",
                   "--data-dir", str(data_root), "--json"])
    assert status == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == metrics["evaluations"]["int8_tflite"]["accuracy"]


def test_a_model_for_another_input_length_takes_resampled_beats_only(tmp_path, data_root,
                                                                      capsys):
    from pla_tvm.baseline.config import ResNetConfig
    from pla_tvm.baseline.export import to_float_tflite
    from pla_tvm.baseline.model import build_resnet

    model = build_resnet(ResNetConfig(filters=(2,), kernel_sizes=(3,), input_length=100))
    path = tmp_path / "short.tflite"
    path.write_bytes(to_float_tflite(model))
    assert load_runner(path).input_length == 100
    argv = ["evaluate", str(path), "--data-dir", str(data_root), "--limit", "5", "--json"]
    assert main(argv) == 2
    assert ("ECG5000 has 140-sample beats but " in capsys.readouterr().err)
    assert main([*argv, "--resample"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 5


def test_a_model_that_does_not_take_one_beat_is_rejected(tmp_path):
    import tf_keras as keras

    model = keras.Sequential([keras.layers.Input((140, 2)), keras.layers.Flatten(),
                              keras.layers.Dense(5)])
    model.save(tmp_path / "two_leads.keras")
    with pytest.raises(ModelError, match=r"two_leads\.keras: input shape \(None, 140, 2\) does "
                                         r"not take a single-lead beat"):
        load_runner(tmp_path / "two_leads.keras")


@pytest.mark.parametrize("interpreter", ["litert", "tflm"])
def test_a_corrupt_tflite_file_is_named(tiny_run, tmp_path, interpreter):
    path = tmp_path / "corrupt.tflite"
    path.write_bytes((tiny_run[0] / INT8_TFLITE_FILE).read_bytes()[:300])
    with pytest.raises(ModelError, match=r"corrupt\.tflite: not a valid TFLite model"):
        load_runner(path, interpreter)


def test_missing_and_unknown_model_files(tmp_path, capsys):
    with pytest.raises(ModelError, match=r"nope\.tflite: model file not found"):
        load_runner(tmp_path / "nope.tflite")
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(ModelError, match="unknown model type '.onnx'"):
        load_runner(tmp_path / "model.onnx")
    assert main(["evaluate", str(tmp_path / "nope.keras")]) == 2
    assert "nope.keras: model file not found" in capsys.readouterr().err


def test_tflm_by_reference_kernels_only_when_bit_identical(tiny_run, ecg5000, monkeypatch):
    """Extra bench seeds: the reference kernels' metrics stand for TFLite Micro's after a check."""
    from pla_tvm.baseline import pipeline
    from pla_tvm.baseline.pipeline import evaluate_model, tflm_by_reference_kernels

    out, _ = tiny_run
    reference = evaluate_model(out / INT8_TFLITE_FILE, ecg5000, interpreter="litert-ref",
                               limit=40)
    metrics, classes = tflm_by_reference_kernels(out / INT8_TFLITE_FILE, ecg5000, 12, reference)
    assert metrics["tflm_check"]["bit_identical"] and metrics["tflm_check"]["beats"] == 12
    assert metrics["tflm_arena_bytes"] > 0
    assert "standing in" in metrics["runner"]
    assert {k: v for k, v in metrics.items() if k not in ("runner", "tflm_check",
                                                          "tflm_arena_bytes")} == \
        {k: v for k, v in reference[0].items() if k != "runner"}
    assert np.array_equal(classes, reference[1])

    real_load_runner = pipeline.load_runner

    class OffByOne:  # TFLite Micro giving another int8 output on one beat
        def __init__(self, runner):
            self.runner, self.arena_bytes = runner, None

        def outputs(self, x):
            outputs = self.runner.outputs(x).copy()
            outputs[0, 0] += 1
            return outputs

    monkeypatch.setattr(pipeline, "load_runner", lambda path, interpreter: OffByOne(
        real_load_runner(path, interpreter)) if interpreter == "tflm"
        else real_load_runner(path, interpreter))
    assert tflm_by_reference_kernels(out / INT8_TFLITE_FILE, ecg5000, 12, reference) is None
