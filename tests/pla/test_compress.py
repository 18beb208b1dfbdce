"""``pla-tvm compress`` end to end on ECG5000 with a tiny teacher, and the baseline reader."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from pla_tvm.commands import compress as compress_command
from pla_tvm.errors import ModelError
from pla_tvm.pla.costs import PLAShape, int8_tflite_bytes
from pla_tvm.pla.npz_io import load_pla
from pla_tvm.pla.pipeline import compress
from pla_tvm.pla.reference import int8_predict
from pla_tvm.pla.teacher import load_teacher, read_int8_baseline


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pla-tvm")
    compress_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_teacher_reads_features_head_and_int8_boundary(tiny_teacher, ecg5000):
    features = tiny_teacher.features(ecg5000.train.x[:8])
    assert features.shape == (8, tiny_teacher.head_weights.shape[0])
    assert tiny_teacher.head_weights.shape[1] == tiny_teacher.head_bias.size == 5
    probabilities = tiny_teacher.keras_model.predict(ecg5000.train.x[:8, :, None], verbose=0)
    logits = features @ tiny_teacher.head_weights + tiny_teacher.head_bias
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(softmax / softmax.sum(1, keepdims=True), probabilities, atol=1e-5)
    assert tiny_teacher.int8.input.scale > 0 and tiny_teacher.int8.features.scale > 0
    assert len(tiny_teacher.sha256) == 64


def test_compress_writes_outputs(tmp_path, tiny_teacher, ecg5000):
    out = tmp_path / "pla"
    metrics = compress(tiny_teacher, ecg5000, out, k=2, alpha=10.0, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [
        "metrics.json", "pla.npz", "pla_float.tflite", "pla_int8.tflite"]
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert metrics["chosen"]["k"] == 2 and metrics["selection"] is None
    test = {name: m["accuracy"] for name, m in metrics["test"].items()}
    assert test["pla_float"] >= test["baseline"] - 0.03  # tiny teacher: a loose sanity bound
    assert abs(test["pla_int8"] - test["pla_float"]) <= 0.005
    assert test["pla_float_tflite"] == test["pla_float"]
    assert metrics["agreement"]["int8_tflm_vs_reference_bit_exact"]
    assert metrics["agreement"]["int8_tflite_vs_reference_max_lsb"] <= 1
    assert metrics["tflite_bytes"]["int8"] == (out / "pla_int8.tflite").stat().st_size
    assert metrics["baseline"]["int8_quantization_from_baseline"]
    assert metrics["references"]["logistic_regression"]["test"]["n"] == len(ecg5000.test)
    predictions = int8_predict(load_pla(out / "pla.npz").quantized, ecg5000.test.x)
    assert np.mean(predictions == ecg5000.test.y) == pytest.approx(test["pla_int8"])


def test_compress_cli_on_a_train_output(tmp_path, tiny_baseline, data_root, capsys):
    """``pla-tvm compress`` on what ``pla-tvm train`` wrote (the pipeline's tiny baseline)."""
    out = tmp_path / "pla"
    status = _run_cli(["compress", "--baseline", str(tiny_baseline), "--out", str(out),
                       "--k", "2", "--lam", "10", "--data-dir", str(data_root / "ecg5000"),
                       "--json"])
    assert status == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "metrics.json").read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["pla"]  # no partial folder, no lock left
    bundle = load_pla(out / "pla.npz")
    teacher = load_teacher(tiny_baseline)
    assert bundle.baseline.sha256 == teacher.sha256
    # the int8 PLA speaks the int8 baseline's input and penultimate tensors and keeps its head
    assert bundle.quantized.input == teacher.int8.input
    assert bundle.quantized.features == teacher.int8.features
    np.testing.assert_array_equal(bundle.quantized.head_weights_q, teacher.int8.head.weights_q)


def test_compress_cli_low_rank_variant_is_deployed_factored(tmp_path, tiny_baseline, data_root,
                                                             capsys):
    """--rank/--target/--class-weight/--weight-bits reach the estimator, metrics.json records
    them, and the int8 model is the factored 4-bit one: TFLM bit-exact, budgeted at its INT4
    file's size and stored factored."""
    from relay_passes import QuantizedFactoredClusterGatedLinearParams

    out = tmp_path / "pla"
    status = _run_cli(["compress", "--baseline", str(tiny_baseline), "--out", str(out),
                       "--k", "2", "--lam", "10", "--rank", "3", "--target", "logits",
                       "--class-weight", "balanced", "--weight-bits", "4",
                       "--data-dir", str(data_root / "ecg5000"), "--json"])
    assert status == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["chosen"]["estimator_params"] == {"rank": 3, "target": "logits",
                                                     "class_weight": "balanced",
                                                     "weight_bits": 4}
    assert metrics["chosen"]["deployed_rank"] == 3
    assert metrics["agreement"]["int8_tflm_vs_reference_bit_exact"]
    bundle = load_pla(out / "pla.npz")
    assert isinstance(bundle.quantized.operator, QuantizedFactoredClusterGatedLinearParams)
    assert bundle.model.rank == 3 and bundle.quantized.operator.weight_bits == 4
    assert (metrics["tflite_bytes"]["int4"] == metrics["tflite_bytes"]["deployed"]
            == int8_tflite_bytes(PLAShape.of(bundle.model))
            == (out / "pla_int4.tflite").stat().st_size)
    assert metrics["agreement"]["int4_tflite_vs_reference_max_lsb"] <= 2
    assert metrics["low_rank_parameters"]["cluster_left"] == 2 * 140 * 3


def test_compress_cli_distils_by_default(tmp_path, tiny_baseline, data_root, capsys):
    """Without --target: the distilled maps at temperature 2, lambda 1 (not searched), k by
    5-fold x 3 cross-validation."""
    out = tmp_path / "pla"
    status = _run_cli(["compress", "--baseline", str(tiny_baseline), "--out", str(out),
                       "--k", "2", "--data-dir", str(data_root / "ecg5000"), "--json"])
    assert status == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["chosen"]["estimator_params"] == {"target": "probabilities",
                                                     "temperature": 2.0}
    assert metrics["chosen"]["alpha"] == 1.0 and len(metrics["selection"]["grid"]) == 1
    assert metrics["selection"]["cv_repeats"] == 3
    assert len(metrics["selection"]["grid"][0]["macro_f1_folds"]) == 15
    assert metrics["agreement"]["int8_tflm_vs_reference_bit_exact"]


@pytest.mark.parametrize("options, match", [
    (["--target", "features", "--temperature", "3"], "go with --target probabilities"),
    (["--temperature", "0"], "--temperature 0: should be > 0"),
    (["--label-weight", "1.5"], "--label-weight 1.5: should be in 0..1"),
    (["--cv-repeats", "0"], "--cv-repeats 0: should be at least 1"),
])
def test_compress_cli_names_bad_distillation_options(tmp_path, tiny_baseline, data_root,
                                                     options, match):
    with pytest.raises(ModelError, match=match):
        _run_cli(["compress", "--baseline", str(tiny_baseline), "--out", str(tmp_path / "pla"),
                  "--data-dir", str(data_root / "ecg5000"), *options])
    assert not (tmp_path / "pla").exists()


def test_missing_baseline_and_wrong_layers(tmp_path):
    with pytest.raises(ModelError, match="baseline model not found"):
        load_teacher(tmp_path)
    import tf_keras

    inputs = tf_keras.Input(shape=(140, 1))
    outputs = tf_keras.layers.Dense(5, name="other")(tf_keras.layers.Flatten()(inputs))
    tf_keras.Model(inputs, outputs).save(tmp_path / "baseline.keras")
    with pytest.raises(ModelError, match="needs layers named 'features'"):
        load_teacher(tmp_path)


def test_int8_boundary_rejects_non_tflite(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\0" * 64)
    with pytest.raises(ModelError, match="not a TFLite flatbuffer"):
        read_int8_baseline(path)


@pytest.mark.slow
def test_full_grid_on_ecg5000_within_five_minutes(tiny_teacher, ecg5000):
    from pla_tvm.pla.selection import select_pla

    result = select_pla(ecg5000.train.x, ecg5000.train.y,
                        teacher_features=tiny_teacher.features(ecg5000.train.x),
                        head_weights=tiny_teacher.head_weights,
                        head_bias=tiny_teacher.head_bias, progress=False)
    assert len(result.grid) == 30 and result.seconds <= 300
    assert result.best["accuracy_mean"] >= 0.85
