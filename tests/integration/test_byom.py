"""Bring your own model, take the model home (docs/byom.md), end to end through the CLI.

Two small Keras classifiers of different shapes, with Keras's default layer names and file names
of their own, converted to full int8 as a user would (``TFLiteConverter.from_keras_model``):
compress → compile --pla → run, then both compiled models exported with different prefixes
into one firmware this test writes itself (tests/own_firmware.py), whose outputs must equal each
compile folder's ``run --outputs`` bit-exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pla_tvm.cli import main
from tests.cli.conftest import BOARD, cli_error, cli_json
from tests.micro.graphs import requires_toolchain
from tests.own_firmware import build_and_run

pytestmark = requires_toolchain

#: Beats run in QEMU per model (evenly spaced over ECG5000's test split).
LIMIT = 60


def _train(name: str, length: int, ecg5000, folder: Path) -> tuple[Path, Path]:
    """Train a small classifier on ECG5000 (resampled to ``length``), save it as ``NAME.keras``
    and its full-int8 conversion as ``NAME_int8.tflite``; Keras's default layer names."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    train = ecg5000.train.resampled(length)
    if name == "cnn":  # [batch, L, 1]; a Dropout between the features and the head
        model = keras.Sequential([
            keras.layers.Input((length, 1)),
            keras.layers.Conv1D(8, 5, activation="relu"),
            keras.layers.MaxPooling1D(4),
            keras.layers.Flatten(),
            keras.layers.Dense(24, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(5, activation="softmax"),
        ])
        x = train.x[..., None]
    else:  # [batch, L]; a linear head (logits)
        model = keras.Sequential([
            keras.layers.Input((length,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(5),
        ])
        x = train.x
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
        from_logits=name != "cnn"), metrics=["accuracy"])
    model.fit(x, train.y, epochs=15, batch_size=32, verbose=0)
    keras_path = folder / f"{name}.keras"
    model.save(keras_path)

    def representative():
        for row in x[:100]:
            yield [row[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    int8_path = folder / f"{name}_int8.tflite"
    int8_path.write_bytes(converter.convert())
    return keras_path, int8_path


@pytest.fixture(scope="module")
def user_models(ecg5000, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """A CNN on 140-sample beats and an MLP on 187-sample beats (ECG5000 resampled)."""
    folder = tmp_path_factory.mktemp("byom")
    return {"cnn": _train("cnn", 140, ecg5000, folder),
            "mlp": _train("mlp", 187, ecg5000, folder)}


def test_own_models_compress_compile_run_and_export_into_one_own_firmware(
        user_models, ecg5000, capsys, tmp_path):
    from pla_tvm.deploy import model_inputs, read_manifest

    libraries, inputs, expected = {}, {}, {}
    for name, (keras_path, int8_path) in user_models.items():
        resample = ["--resample"] if name == "mlp" else []
        pla = tmp_path / f"pla-{name}"
        metrics = cli_json(capsys, "compress", "--model", str(keras_path), "--int8",
                           str(int8_path), "--out", str(pla), "--k", "2", "--lam", "10",
                           "--jobs", "1", *resample)
        assert metrics["baseline"]["int8_quantization_from_baseline"]
        assert metrics["size_budget"]["replaced_model_bytes"] == int8_path.stat().st_size
        firmware = tmp_path / f"fw-{name}"
        cli_json(capsys, "compile", str(int8_path), "--pla", str(pla / "pla.npz"), "--board",
                 BOARD, "--out", str(firmware))
        outputs_file = tmp_path / f"{name}-outputs.npz"
        report = cli_json(capsys, "run", str(firmware), "--limit", str(LIMIT), "--outputs",
                          str(outputs_file), *resample)
        # The swapped graph on the board classifies as the PLA's own int8 TFLite model does.
        reference = cli_json(capsys, "evaluate", str(pla / "pla_int8.tflite"), "--interpreter",
                             "tflm", "--limit", str(LIMIT), *resample)
        assert report["n"] == reference["n"] == LIMIT
        assert report["accuracy"] == reference["accuracy"]
        assert report["class_counts"] == reference["class_counts"]
        # Take it home: a library with its own prefix.
        library = tmp_path / f"lib-{name}"
        exported = cli_json(capsys, "export", str(firmware), "--out", str(library), "--prefix",
                            f"{name}_ecg")
        assert all(symbol.startswith(f"{name}_ecg_") for symbol in exported["symbols"])
        assert exported["provenance"]["model"]["path"] == str(int8_path.resolve())
        libraries[f"{name}_ecg"] = library
        beats = ecg5000.test.resampled(int(np.prod(read_manifest(firmware)["input"]["shape"])))
        inputs[f"{name}_ecg"] = model_inputs(beats.subset(LIMIT).x, read_manifest(firmware))
        expected[f"{name}_ecg"] = np.load(outputs_file)["outputs"]
    outputs = build_and_run(libraries, inputs, tmp_path / "own-firmware")
    for prefix, rows in expected.items():
        np.testing.assert_array_equal(outputs[prefix].view(np.int8), rows.reshape(len(rows), -1))


def test_mistakes_with_own_models_are_one_line_each(user_models, capsys, tmp_path):
    keras_path, int8_path = user_models["cnn"]
    mlp_keras, mlp_int8 = user_models["mlp"]
    import tf_keras as keras

    # Keras numbers its default names per process (conv1d, conv1d_1, ...): read them back.
    layers = keras.models.load_model(keras_path, compile=False).layers
    conv, head = layers[0].name, layers[-1].name
    out = str(tmp_path / "out")
    assert f"features layer '{conv}' does not feed the head '{head}' directly; candidates" in \
        cli_error(capsys, "compress", "--model", str(keras_path), "--features", conv,
                  "--out", out)
    assert "features layer 'nope' is not in the model" in cli_error(
        capsys, "compress", "--model", str(keras_path), "--features", "nope", "--out", out)
    assert "its head (last FULLY_CONNECTED) has weights" in cli_error(
        capsys, "compress", "--model", str(keras_path), "--int8", str(mlp_int8), "--out", out)
    assert "ECG5000 has 140-sample beats but" in cli_error(
        capsys, "compress", "--model", str(mlp_keras), "--out", out)
    assert "pass --resample" in cli_error(capsys, "compress", "--model", str(mlp_keras),
                                          "--out", out)
    assert "--int8 and --features go with --model" in cli_error(
        capsys, "compress", "--baseline", str(tmp_path), "--int8", str(int8_path), "--out", out)
    # A size budget no PLA meets: the figures are named.
    message = cli_error(capsys, "compress", "--model", str(keras_path), "--int8", str(int8_path),
                        "--out", out, "--max-int8-bytes", "1000")
    assert (f"no PLA fits the size budget (--max-int8-bytes 1,000 and smaller than the model it "
            f"replaces ({int8_path.stat().st_size:,} B, int8 model file)): the smallest, k=1, "
            f"is ") in message
    assert not Path(out).exists()


def test_an_int8_model_under_another_name_in_a_train_folder_is_not_ignored(
        user_models, tiny_baseline, capsys, tmp_path):
    import shutil

    folder = tmp_path / "baseline"
    shutil.copytree(tiny_baseline, folder)
    (folder / "baseline_int8.tflite").rename(folder / "my_model_int8.tflite")
    message = cli_error(capsys, "compress", "--baseline", str(folder), "--out",
                        str(tmp_path / "out"))
    assert "no baseline_int8.tflite but" in message and "my_model_int8.tflite" in message


def test_compress_without_int8_model_says_the_quantization_is_its_own(user_models, capsys,
                                                                      tmp_path):
    keras_path, _ = user_models["cnn"]
    assert main(["compress", "--model", str(keras_path), "--out", str(tmp_path / "pla"),
                 "--k", "1", "--lam", "10", "--jobs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "quantization: the PLA's own (no int8 model given)" in printed
    metrics = json.loads((tmp_path / "pla" / "metrics.json").read_text())
    assert not metrics["baseline"]["int8_quantization_from_baseline"]
