"""The benchmark's figures (matplotlib, PNG), drawn from the results of the same run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pla_tvm.bench.compiler import COMPARISON_BOARD
from pla_tvm.bench.report import fastest_m4_row
from pla_tvm.data.beats import ECG5000_CLASSES
from pla_tvm.pla.npz_io import PLABundle

PLOT_DIR = "plots"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _accuracy_points(results: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(label, flash or file bytes, accuracy) for every row of the study."""
    baseline, pla = results["baseline"], results["pla"]
    evaluations, files = baseline["evaluations"], baseline["files"]
    points = [
        ("baseline float TFLite", files["baseline_float.tflite"]["bytes"],
         evaluations["float_tflite"]["accuracy"]),
        ("baseline pruned int8 TFLite", files["baseline_int8.tflite"]["bytes"],
         evaluations["int8_tflite"]["accuracy"]),
        ("PLA float TFLite", pla["files"]["pla_float.tflite"], pla["test"]["pla_float_tflite"]
         ["accuracy"]),
        ("PLA int8 TFLite", pla["files"]["pla_int8.tflite"], pla["test"]["pla_int8_tflite"]
         ["accuracy"]),
    ]
    for row in results.get("firmware", {}).get("rows", []):
        if row["board"] == COMPARISON_BOARD:  # the model's flash is nearly the same on every core
            points.append((f"{row['model']} firmware, {row['board']}", row["model_flash_bytes"],
                           row["accuracy"]))
    if "baseline_firmware" in results:
        # Its firmware ran on a subset (10^8 instructions a beat) and equals TFLite Micro there;
        # plot the accuracy of the same int8 model on the whole split.
        row = fastest_m4_row(results["baseline_firmware"])
        points.append((f"baseline pruned + int8 firmware, {row['board']} (TFLite accuracy)",
                       row["model_flash_bytes"], evaluations["int8_tflite"]["accuracy"]))
    return points


def _accuracy_vs_flash(results: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 5))
    for label, size, accuracy in _accuracy_points(results):
        marker = "s" if "baseline" in label else "o"
        axes.scatter(size, accuracy, marker=marker)
        axes.annotate(label, (size, accuracy), fontsize=7, xytext=(4, 2),
                      textcoords="offset points")
    axes.set_xscale("log")
    axes.set_xlabel("model size: TFLite file or firmware flash of the model [bytes]")
    axes.set_ylabel("test accuracy (ECG5000, 4,499 beats)")
    axes.set_title("Accuracy versus size")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _instructions_per_core(results: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    rows = [(row["model"], row) for row in results["firmware"]["rows"]]
    rows += [(f"baseline int8, {row['build']}", row)
             for row in results.get("baseline_firmware", {}).get("rows", [])]
    labels = [f"{model.replace(', ', chr(10))}\n{row['board']}" for model, row in rows]
    values = [row["instructions_per_inference"] for _, row in rows]
    figure, axes = plt.subplots(figsize=(14, 5))
    bars = axes.bar(range(len(rows)), values,
                    color=["tab:red" if model.startswith("baseline") else "tab:blue"
                           for model, _ in rows])
    axes.bar_label(bars, labels=[f"{value:,.0f}" for value in values], fontsize=7)
    axes.set_yscale("log")
    axes.set_xticks(range(len(rows)), labels, fontsize=7, rotation=35, ha="right")
    axes.set_ylabel("instructions per beat (QEMU, exact count)")
    axes.set_title("Instructions per inference by core")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _confusion_matrices(results: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    matrices = [("baseline pruned + int8 (TFLite)",
                 results["baseline"]["evaluations"]["int8_tflite"]["confusion_matrix"]),
                ("PLA int8 (TFLite Micro)", results["pla"]["test"]["pla_int8_tflm"]
                 ["confusion_matrix"])]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    for ax, (title, matrix) in zip(axes, matrices):
        matrix = np.asarray(matrix)
        ax.imshow(np.log1p(matrix), cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(ECG5000_CLASSES)), ECG5000_CLASSES, rotation=30, fontsize=7)
        ax.set_yticks(range(len(ECG5000_CLASSES)), ECG5000_CLASSES, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _centroids(bundle: PLABundle, cluster_sizes: list[int], path: Path) -> None:
    plt = _pyplot()
    centroids = bundle.model.centroids_
    figure, axes = plt.subplots(figsize=(8, 4))
    for index, (centroid, size) in enumerate(zip(centroids, cluster_sizes)):
        axes.plot(centroid, label=f"cluster {index} ({size} training beats)")
    axes.set_xlabel("sample (140 per beat)")
    axes.set_ylabel("z-normalised amplitude")
    axes.set_title("PLA centroids: the beat shapes that gate the linear maps")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_plots(results: dict[str, Any], bundle: PLABundle, docs: Path) -> dict[str, str]:
    """Draw every figure into ``docs/plots``; returns their paths relative to ``docs``."""
    directory = Path(docs) / PLOT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    plots = {"accuracy_vs_flash": "accuracy_vs_flash.png",
             "instructions_per_core": "instructions_per_core.png",
             "confusion_matrices": "confusion_matrices.png",
             "pla_centroids": "pla_centroids.png"}
    _accuracy_vs_flash(results, directory / plots["accuracy_vs_flash"])
    _instructions_per_core(results, directory / plots["instructions_per_core"])
    _confusion_matrices(results, directory / plots["confusion_matrices"])
    sizes = results["pla"]["chosen"]["cluster_sizes"]
    _centroids(bundle, sizes, directory / plots["pla_centroids"])
    return {name: f"{PLOT_DIR}/{file_name}" for name, file_name in plots.items()}
