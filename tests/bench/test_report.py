"""The benchmark report renders every section from a results dictionary of the real shape."""

import json

import numpy as np

from pla_tvm.bench.report import render_markdown, write_report
from pla_tvm.data.beats import ECG5000_CLASSES
from pla_tvm.metrics import classification_metrics


def _metrics(seed: int, n: int = 50) -> dict:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, n)
    predictions = np.where(rng.random(n) < 0.9, labels, rng.integers(0, 5, n))
    return classification_metrics(labels, predictions, ECG5000_CLASSES)


def _results() -> dict:
    files = {name: {"bytes": 1000 * (i + 1), "gzip_bytes": 500 * (i + 1)} for i, name in
             enumerate(("baseline.keras", "baseline_float.tflite", "baseline_pruned.keras",
                        "baseline_int8.tflite"))}
    evaluations = {name: _metrics(i) for i, name in enumerate(
        ("keras", "float_tflite", "pruned_keras", "int8_tflite",
         "int8_tflite_reference_kernels", "int8_tflm"))}
    evaluations["int8_tflm"].update(tflm_arena_bytes=98_000,
                                    class_agreement_with_int8_tflite=1.0,
                                    class_agreement_with_int8_tflite_reference_kernels=1.0)
    baseline = {"evaluations": evaluations, "files": files, "parameters": 804_741,
                "flops": 223_788_500,
                "training": {"epochs_run": 100, "best_epoch": 50, "seconds": 600.0,
                             "class_weights": {"0": 0.7, "1": 1.0, "2": 4.0, "3": 3.0, "4": 8.0}},
                "sparsity": {"target": 0.5, "reached": 0.5}}
    grid = [{"k": k, "alpha": 1.0, "accuracy_mean": 0.94, "accuracy_std": 0.01,
             "feature_r2_mean": 0.7, "int8_tflite_bytes": 20_000 * k, "within_budget": k < 4,
             "rank": k if k < 4 else None, "rank_unconstrained": k} for k in range(1, 6)]
    pla = {"test": {name: _metrics(10 + i) for i, name in enumerate(
        ("baseline", "pla_float", "pla_float_tflite", "pla_int8", "pla_int8_tflite",
         "pla_int8_tflm"))},
        "files": {"pla.npz": 200_000, "pla_float.tflite": 160_000, "pla_int8.tflite": 64_000},
        "parameters": {"total": 55_209}, "flops_per_beat": {"total": 38_096, "macs": 18_980},
        "chosen": {"k": 3, "alpha": 1.0, "cluster_sizes": [200, 200, 100]},
        "agreement": {"pla_float_vs_baseline": 0.95, "pla_int8_vs_pla_float": 0.99,
                      "int8_tflm_vs_reference_bit_exact": True,
                      "int8_tflite_vs_reference_max_lsb": 1},
        "feature_fit_test": {"r2": 0.75},
        "selection": {"max_int8_bytes": 65_536, "seconds": 10.0, "grid": grid},
        "targets": {"int8_tflite_at_most_64KB": {"met": True}}}
    swapped = {**_metrics(20), "pla_accuracy": 0.93, "class_agreement_with_pla": 1.0,
               "constant_bytes": {"total": 60_000}}
    swap = {"beats": 50,
            "operator": {"float_max_error_relative_to_row_max": 1e-7,
                         "float_max_abs_error": 1e-6, "int8_bit_exact": True},
            "swapped_float": {**swapped, "max_error_vs_pla_softmax": 1e-7},
            "swapped_int8": swapped,
            "lowered_int8_baseline": {"beats": 20, "constant_bytes": {"total": 810_000},
                                      "tflite_buffer_bytes": 800_000, "constant_ratio": 1.0125,
                                      "max_lsb_vs_tflite_reference": 0, "outputs_differing": 0,
                                      "class_agreement": 1.0}}
    row = {"host_max_abs_difference": 0.0, "model_flash_bytes": 60_000, "model_ram_bytes": 400,
           "stack_bytes": 600, "image_flash_bytes": 70_000, "image_ram_bytes": 34_000,
           "compile_seconds": 2.0, "qemu_seconds": 1.0}
    firmware = {"rows": [
        {"model": "PLA int8", "board": "mps2-an386", **_metrics(30), **row, "host_equal": True,
         "instructions_per_inference": 40_000.0}]}
    base_row = {"beats": 200, "model_flash_bytes": 820_000, "stack_bytes": 300,
                "max_abs_difference_tflm": 1, "host_equal": True, "accuracy": 0.94,
                "compile_seconds": 5.0, "qemu_seconds": 90.0}
    baseline_firmware = {
        "macs": 100_000_000, "beats": 200,
        "tflm_cmsis_nn": {"instructions_per_inference": 202_500_000, "arena_bytes": 96_068,
                          "reference_instructions_per_inference": 729_700_000},
        "rows": [
            {"build": "micro default (DSP micro-kernels)", "board": "mps2-an386", **base_row,
             "instructions_per_inference": 1.6e8, "model_ram_bytes": 64_000,
             "beats_equal_tflm": 200},
            {"build": "micro tuned (MetaSchedule)", "board": "mps2-an386", **base_row,
             "instructions_per_inference": 1e9, "model_ram_bytes": 70_000,
             "beats_equal_tflm": 199}],
        "pass_sizes": [{"positions": 2, "instructions_per_inference": 1.6e8,
                        "model_ram_bytes": 64_000}],
        "tuning": {"mps2-an386": {"trials": 128, "seconds": 300.0, "kernels": {
            "fused_conv2d_window": {"default_instructions": 10_000, "best_instructions": 9_000}}}},
    }
    tuning = {"board": "mps2-an386", "trials": 40, "trials_per_round": 8, "tuning_seconds": 400.0,
              "kernels": {"cluster_gated_linear_int8": {"trials": 24, "failed": 1,
                                                        "best_instructions": 30_000,
                                                        "default_instructions": 31_000}},
              "untuned_instructions": 40_000.0, "tuned_instructions": 27_000.0,
              "tuned_over_untuned": 0.675, "outputs_equal_untuned": True, **_metrics(40),
              "plain_instructions": 140_000.0, "tuned_over_plain": 27 / 140,
              "untuned_model_flash_bytes": 66_000, "untuned_model_ram_bytes": 400,
              "untuned_stack_bytes": 900,
              "model_flash_bytes": 60_000, "model_ram_bytes": 400, "stack_bytes": 900}
    small_row = {"layers": "Conv1D(16, 5), GAP, Dense(5)", "model_flash_bytes": 6_000,
                 "model_ram_bytes": 3_900, "stack_bytes": 300, "counting": "plugin", "inputs": 50}
    small_cnns = {"board": "mps2-an386", "seed": 0, "target_instructions_per_mac": 2.5, "rows": [
        {"model": "plain", **small_row, "macs": 100_000, "instructions_per_inference": 240_000.0,
         "instructions_per_mac": 2.4, "inputs_bit_exact_with_tflm": 50,
         "requantized_outputs": 4_000},
        {"model": "depthwise", **small_row, "macs": 80_000, "instructions_per_inference": 600_000.0,
         "instructions_per_mac": 7.5, "inputs_bit_exact_with_tflm": 49,
         "requantized_outputs": 8_000}]}
    return {"baseline": baseline, "pla": pla, "swap": swap, "firmware": firmware,
            "baseline_firmware": baseline_firmware, "tuning": tuning, "small_cnns": small_cnns,
            "plots": {"accuracy_vs_flash": "plots/accuracy_vs_flash.png"},
            "bench_seconds": 100.0, "stage_seconds": {"baseline": 50.0}}


def test_every_section_is_rendered():
    markdown = render_markdown(_results())
    for heading in ("## Baseline", "## PLA", "### Selection grid", "## TVM", "## Firmware",
                    "## Autotuning", "## Plots", "## Recall per class"):
        assert heading in markdown
    assert "*paper: baseline float*" in markdown and "| 804,169 |" in markdown
    assert "4,000× fewer instructions" in markdown  # against the fastest M4 baseline build
    assert "| 40,000 | 2.11 |" in markdown  # instructions per multiply-accumulate of PLA
    assert "| cluster_gated_linear_int8 | 24 | 1 | 31,000 | 30,000 |" in markdown
    # Target checks are computed from the measurements, met or not.
    assert "| untuned instructions per beat <= 60,000 | 40,000 | yes |" in markdown
    assert "| untuned model flash <= 64 KiB | 66,000 | NO |" in markdown
    assert "| tuned instructions per MAC <= 1.5 | 1.423 | yes |" in markdown
    assert "![Accuracy versus size](plots/accuracy_vs_flash.png)" in markdown


def test_baseline_builds_against_tflite_micro_and_their_targets():
    markdown = render_markdown(_results())
    assert "## The int8 baseline compiled by micro, against TFLite Micro" in markdown
    assert "| micro tuned (MetaSchedule) | mps2-an386 | 200 | 1,000,000,000 | 10.000 | " \
        "199 of 200 (max 1 LSB) |" in markdown
    # The fastest M4 build meets the instruction target; the RAM target reads the default build.
    assert "| instructions per beat (fastest M4 build) <= 150,000,000 | 160,000,000 | NO |" \
        in markdown
    assert "| model RAM (default M4 build) <= 65,536 B | 64,000 | yes |" in markdown
    assert "| outputs equal to TFLite Micro on every beat of every build | 399 of 400 | NO |" \
        in markdown
    assert "| 2 | 160,000,000 | 64,000 |" in markdown


def test_small_cnns_table_computes_the_target_and_bit_exactness():
    markdown = render_markdown(_results())
    assert "## Small CNNs on mps2-an386" in markdown
    assert "| instructions/MAC <= 2.5 |" in markdown
    assert ("| plain | Conv1D(16, 5), GAP, Dense(5) | 100,000 | 4,000 | 240,000 | 2.40 | 6,000 | "
            "3,900 | yes (50 of 50) | met | 62.5 |") in markdown
    assert "| 8,000 | 600,000 | 7.50 | 6,000 | 3,900 | no (49 of 50) | NOT met | 25.0 |" in markdown


def test_small_cnns_section_is_left_out_without_its_stage():
    results = _results()
    del results["small_cnns"]
    assert "Small CNNs" not in render_markdown(results)


def test_report_files_are_written(tmp_path):
    write_report(_results(), tmp_path)
    assert (tmp_path / "results.md").read_text().startswith("# Results")
    assert '"bench_seconds": 100.0' in (tmp_path / "results.json").read_text()
    assert not list(tmp_path.glob(".*part"))


def test_the_16_kib_pla_section_checks_its_targets():
    results = _results()
    small = json.loads(json.dumps(results["pla"]))  # the same shape, another model
    small["selection"]["max_int8_bytes"] = 16_384
    small["tflite_bytes"] = {"float32": 40_000, "int8": 15_560}
    small["files"] = {"pla.npz": 30_000, "pla_float.tflite": 40_000, "pla_int8.tflite": 15_560}
    small["chosen"]["estimator_params"] = {"target": "logits", "rank": 5}
    small["chosen"].update(deployed_rank=5, k_used=3)
    small["parameters"] = {"centroids": 420, "cluster_biases": 384, "cluster_weights": 53_760,
                           "head": 645, "total": 55_209}
    small["low_rank_parameters"] = {"total": 5_469}
    results["small_pla"] = small
    baseline_accuracy = results["baseline"]["evaluations"]["int8_tflite"]["accuracy"]
    points = 100 * (baseline_accuracy - small["test"]["pla_int8_tflm"]["accuracy"])
    markdown = render_markdown(results)
    assert "## PLA within 16 KiB" in markdown
    assert "`--target logits`, `--rank 5`" in markdown
    assert "| int8 .tflite <= 16,384 B | 15,560 | yes |" in markdown
    # The factored form's costs: 3 x 140 x 5 + 3 x 5 x 128 weights, not the full maps'.
    assert "| PLA 16 KiB int8 | TFLite Micro interpreter |" in markdown
    assert "| 5,469 | 4,936 |" in markdown
    assert (f"| int8 accuracy within 1 point of the int8 baseline's | {points:+.2f} points below "
            f"| {'yes' if points <= 1 else 'NO'} |") in markdown


def test_core_targets_read_the_pla_rows_of_each_board():
    from pla_tvm.bench.report import core_target_rows

    rows = [{"model": "PLA int8", "board": "microbit", "instructions_per_inference": 95_000},
            {"model": "PLA int8", "board": "mps3-an547", "instructions_per_inference": 5_700},
            {"model": "PLA int8, plain TVM lowering", "board": "microbit",
             "instructions_per_inference": 199_000}]
    targets = core_target_rows({"rows": rows})
    assert targets[0] == ("PLA int8, microbit (Cortex-M0) <= 90,000 instructions per beat",
                          "95,000 (TVM's plain lowering 199,000)", False)
    assert targets[1] == ("PLA int8, mps3-an547 (Cortex-M55) <= 8,000 instructions per beat",
                          "5,700", True)
    assert [met for *_, met in targets[2:]] == [None, None]  # the ResNet rows: not measured
    resnet = {"beats_equal_tflm": 40, "beats": 40}
    baseline = {"rows": [
        {"build": "micro default (MVE micro-kernels)", "board": "mps3-an547",
         "instructions_per_inference": 52_000_000, **resnet},
        {"build": "micro default (SCALAR micro-kernels)", "board": "mps2-an385",
         "instructions_per_inference": 260_000_000, **resnet, "beats_equal_tflm": 39}]}
    m55, m3 = core_target_rows({"rows": rows}, baseline)[2:]
    assert m55[1].startswith("52,000,000 (micro default (MVE micro-kernels); 40 of 40")
    assert m55[2] is False and m3[2] is False  # over 40 M; one beat unlike TFLite Micro
