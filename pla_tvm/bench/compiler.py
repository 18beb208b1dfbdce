"""The compiler stages of the benchmark: the TVM swap on the host, and firmware in QEMU.

``swap_stage`` checks the Relax side on the whole test split: the PLA operator against the numpy
reference (float within 1e-5 relative, int8 bit for bit), the swapped baseline graphs' accuracy
against PLA's, and the integer lowering of the int8 baseline (constant bytes against the
TFLite weights, outputs against the TFLite reference kernels). ``firmware_stage`` builds the
swapped int8 graph for every board with micro's default lowering (int8 dot products on the SMLAD
micro-kernel of :mod:`micro.kernels.dsp` where the core has the DSP extension) and, on those
boards, with
TVM's plain lowering too, runs them in QEMU and compares every output with the host's (the int8
baseline's builds are :mod:`pla_tvm.bench.baseline_firmware`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

import micro
from micro.kernels import library_for
from pla_tvm.baseline.pipeline import FLOAT_TFLITE_FILE, INT8_TFLITE_FILE
from pla_tvm.data.beats import Dataset
from pla_tvm.deploy import model_quantization
from pla_tvm.graph import (
    HostRunner,
    constant_bytes,
    operator_module,
    operator_params,
    prepare_module,
)
from pla_tvm.inference import TFLiteRunner, predict_classes, quantize
from pla_tvm.metrics import classification_metrics
from pla_tvm.pla import costs
from pla_tvm.pla.npz_io import PLABundle
from relay_passes import reference_forward

LOG = logging.getLogger(__name__)

#: Boards the PLA int8 firmware is measured on (every core the project supports).
PLA_BOARDS = ("mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547", "microbit")
#: The board of the head-to-head comparison with the baseline (the paper's class of core).
COMPARISON_BOARD = "mps2-an386"
#: The model column of the 16 KiB PLA's firmware rows.
SMALL_PLA_MODEL = "PLA int8, 16 KiB (factored)"
#: The firmware table's name of the PLA with 4-bit maps.
PLA4_MODEL = "PLA int8, 4-bit maps"
#: Test beats compared between the lowered int8 baseline and the TFLite reference kernels.
LOWERING_CHECK_BEATS = 200


def _tflite_weight_bytes(path: Path) -> int:
    import tflite

    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    return sum(model.Buffers(i).DataLength() for i in range(model.BuffersLength()))


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest error of a row relative to that row's largest magnitude (``assert_allclose`` with
    ``rtol`` alone would divide by near-zero features and report float32 rounding as 2 %)."""
    scale = np.maximum(np.abs(expected).max(axis=-1, keepdims=True), 1e-30)
    return float(np.max(np.abs(actual - expected) / scale))


def swap_stage(baseline_dir: Path, bundle: PLABundle, dataset: Dataset) -> dict[str, Any]:
    """Host-side checks of the swap pass and the integer lowering on the whole test split."""
    test = dataset.test
    names = test.class_names
    x_q = bundle.quantized.input.quantize(test.x)
    result: dict[str, Any] = {"beats": len(test)}

    float_params = operator_params(bundle, int8=False)
    features = HostRunner(operator_module(float_params, len(test))).run(test.x[None])
    features = features.reshape(len(test), -1)
    expected = reference_forward(float_params, test.x)
    int8_params = operator_params(bundle, int8=True)
    features_q = HostRunner(operator_module(int8_params, len(test))).run(x_q[None])
    features_q = features_q.reshape(len(test), -1)
    result["operator"] = {
        "float_max_error_relative_to_row_max": _relative_error(features, expected),
        "float_max_abs_error": float(np.max(np.abs(features - expected))),
        "int8_bit_exact": bool(np.array_equal(features_q, reference_forward(int8_params, x_q))),
    }

    for variant, file_name, inputs in (("float", FLOAT_TFLITE_FILE, test.x),
                                       ("int8", INT8_TFLITE_FILE, x_q)):
        started = time.perf_counter()
        mod = prepare_module(baseline_dir / file_name, bundle)
        outputs = HostRunner(mod).run(inputs)
        classes = predict_classes(outputs)
        pla_classes = (bundle.model.predict(test.x) if variant == "float" else
                       predict_classes(_pla_int8_logits(bundle, x_q)))
        result[f"swapped_{variant}"] = {
            **classification_metrics(test.y, classes, names),
            "class_agreement_with_pla": float(np.mean(classes == pla_classes)),
            "pla_accuracy": float(np.mean(pla_classes == test.y)),
            "constant_bytes": constant_bytes(mod),
            "seconds": round(time.perf_counter() - started, 1),
        }
        if variant == "float":
            probabilities = _softmax(bundle.model.logits(test.x))
            result["swapped_float"]["max_error_vs_pla_softmax"] = float(
                np.max(np.abs(outputs - probabilities)))
    result["lowered_int8_baseline"] = _lowering_check(baseline_dir / INT8_TFLITE_FILE, test)
    return result


def _pla_int8_logits(bundle: PLABundle, x_q: np.ndarray) -> np.ndarray:
    from pla_tvm.pla.reference import int8_logits

    return int8_logits(bundle.quantized, x_q)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _lowering_check(tflite_path: Path, test) -> dict[str, Any]:
    """Constant bytes and output differences of the integer-lowered int8 baseline."""
    mod = prepare_module(tflite_path)
    beats = test.subset(LOWERING_CHECK_BEATS)
    beats_q = quantize(beats.x, **model_quantization(tflite_path)["input"])
    lowered = HostRunner(mod).run(beats_q).astype(np.int32)
    reference = TFLiteRunner(tflite_path.read_bytes(), str(tflite_path),
                             "litert-ref").raw_outputs(beats_q).astype(np.int32)
    difference = np.abs(lowered - reference)
    constants = constant_bytes(mod)
    weights = _tflite_weight_bytes(tflite_path)
    return {"beats": len(beats), "constant_bytes": constants, "tflite_buffer_bytes": weights,
            "constant_ratio": constants["total"] / weights,
            "max_lsb_vs_tflite_reference": int(difference.max()),
            "outputs_differing": int(np.count_nonzero(difference.max(axis=1))),
            "class_agreement": float(np.mean(lowered.argmax(1) == reference.argmax(1)))}


def _firmware_row(mod, board: str, out_dir: Path, inputs: np.ndarray, host: np.ndarray,
                  labels: np.ndarray, names, timeout: float, dsp: bool | None = None
                  ) -> dict[str, Any]:
    started = time.perf_counter()
    firmware = micro.build(mod, board, out_dir, dsp=dsp)
    compile_seconds = time.perf_counter() - started
    run = micro.run(firmware, inputs.reshape((len(inputs), *firmware.input.shape)),
                    timeout=timeout)
    outputs = run.outputs.reshape(len(inputs), -1)
    exact = host.dtype.kind == "i"
    difference = np.abs(outputs.astype(np.float64) - host.astype(np.float64))
    footprint = run.footprint
    return {
        "board": board,
        **classification_metrics(labels, predict_classes(outputs), names),
        "host_equal": bool(np.array_equal(outputs, host)) if exact else None,
        "host_max_abs_difference": float(difference.max()),
        "instructions_per_inference": run.instructions_per_inference,
        "instructions_min": run.instructions_min, "instructions_max": run.instructions_max,
        "counting": run.counting,
        "model_flash_bytes": footprint.model_flash_bytes,
        "model_ram_bytes": footprint.model_ram_bytes,
        "image_flash_bytes": footprint.image_flash_bytes,
        "image_ram_bytes": footprint.image_ram_bytes,
        "stack_bytes": run.stack_bytes,
        "compile_seconds": round(compile_seconds, 2),
        "qemu_seconds": round(run.wall_seconds, 2),
    }


def deployed_macs(bundle: PLABundle) -> int:
    """Multiply-accumulates per beat of a PLA as the operator computes it (gated; factored when
    its int8 maps are)."""
    shape = costs.PLAShape.of(bundle.model, factored=hasattr(bundle.quantized.operator, "rank"))
    full = costs.PLAShape(shape.k, shape.D, shape.d, shape.C)
    if shape.r is None:
        return costs.flops_per_beat(full)["macs"]
    return costs.low_rank_flops_per_beat(full, shape.r)["macs"]


def firmware_stage(baseline_dir: Path, bundle: PLABundle, dataset: Dataset,
                   work_dir: Path, small_bundle: PLABundle | None = None,
                   pla4_bundle: PLABundle | None = None) -> dict[str, Any]:
    """PLA int8 (every board) and float (M4) firmware on all test beats, every output compared
    with the host VM's (the int8 baseline's firmware is :mod:`pla_tvm.bench.baseline_firmware`);
    with ``small_bundle`` and ``pla4_bundle``, the 16 KiB and the 4-bit PLA's int8 firmware on
    every board too. Each PLA row holds its operator's MACs per beat (``macs``)."""
    test = dataset.test
    names = test.class_names
    x_q = bundle.quantized.input.quantize(test.x)
    rows = []
    pla_int8 = prepare_module(baseline_dir / INT8_TFLITE_FILE, bundle)
    host_int8 = HostRunner(pla_int8).run(x_q)
    for board in PLA_BOARDS:
        LOG.info("firmware: PLA int8 on %s, %d beats", board, len(test))
        rows.append({"model": "PLA int8", "macs": deployed_macs(bundle), **_firmware_row(
            pla_int8, board, work_dir / f"pla-int8-{board}", x_q, host_int8, test.y, names,
            timeout=600)})
    for board in (b for b in PLA_BOARDS if library_for(micro.get_board(b)) is not None):
        LOG.info("firmware: PLA int8 with TVM's plain lowering on %s", board)
        rows.append({"model": "PLA int8, plain TVM lowering", "macs": deployed_macs(bundle),
                     **_firmware_row(
            pla_int8, board, work_dir / f"pla-int8-plain-{board}", x_q, host_int8, test.y, names,
            timeout=600, dsp=False)})
    for model, folder, variant in ((SMALL_PLA_MODEL, "pla-16k-int8", small_bundle),
                                   (PLA4_MODEL, "pla-4bit-int8", pla4_bundle)):
        if variant is None:
            continue
        module = prepare_module(baseline_dir / INT8_TFLITE_FILE, variant)
        host = HostRunner(module).run(x_q)
        for board in PLA_BOARDS:
            LOG.info("firmware: %s on %s", model, board)
            rows.append({"model": model, "macs": deployed_macs(variant), **_firmware_row(
                module, board, work_dir / f"{folder}-{board}", x_q, host, test.y, names,
                timeout=600)})
    pla_float = prepare_module(baseline_dir / FLOAT_TFLITE_FILE, bundle)
    host_float = HostRunner(pla_float).run(test.x)
    LOG.info("firmware: PLA float on %s", COMPARISON_BOARD)
    rows.append({"model": "PLA float", **_firmware_row(
        pla_float, COMPARISON_BOARD, work_dir / f"pla-float-{COMPARISON_BOARD}", test.x,
        host_float, test.y, names, timeout=600)})
    return {"rows": rows}
