"""The benchmark's figures (matplotlib, PNG), drawn from the results of the same run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pla_tvm.bench.compiler import COMPARISON_BOARD
from pla_tvm.bench.report import fastest_m4_row
from pla_tvm.data.beats import ECG5000_CLASSES
from pla_tvm.paper import PAPER_ROWS
from pla_tvm.pla.npz_io import PLABundle

PLOT_DIR = "plots"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: Colour of each model family in the accuracy-versus-size plot.
FAMILY_COLOURS = {"baseline float": "tab:red", "baseline pruned + int8": "tab:orange",
                  "PLA float": "tab:blue", "PLA int8": "tab:purple",
                  "PLA int8, 16 KiB": "tab:brown", "PLA int8, 4-bit maps": "tab:pink",
                  "linear reference": "tab:green"}
#: Marker of each kind of point: (marker, filled, size, drawing order).
KIND_MARKERS = {"TFLite": ("o", True, 60, 4), "firmware": ("s", False, 130, 5),
                "paper": ("*", False, 260, 6), "reference": ("^", True, 80, 4)}


@dataclass(frozen=True)
class AccuracyPoint:
    """One point of the accuracy-versus-size plot.

    Attributes
    ----------
    family : str
        The model (a key of :data:`FAMILY_COLOURS`): its colour.
    kind : str
        ``TFLite`` (the model file, host interpreter), ``firmware`` (model flash, QEMU),
        ``paper`` (the seed paper's published figure) or ``reference``: its marker.
    label : str
        The legend entry.
    size : float
        Bytes: TFLite file, model flash, the paper's size, or float32 parameters.
    accuracy : float
        Test accuracy (the mean over seeds when there are several).
    spread : float or None
        Standard deviation over seeds (an error bar), None for one measurement or a citation.
    """

    family: str
    kind: str
    label: str
    size: float
    accuracy: float
    spread: float | None = None


def _accuracy(results: dict[str, Any], group: str, key: str, measured: float
              ) -> tuple[float, float | None, str]:
    """Mean and std over seeds of an evaluation when aggregated, else the one measurement."""
    spread = results.get("seeds", {}).get("aggregate", {}).get(group, {}).get(key)
    if spread is None:
        return measured, None, ""
    count = len(spread["accuracy"]["values"])
    text = f", mean ± std of {count} seeds" if count > 1 else ""
    return spread["accuracy"]["mean"], spread["accuracy"]["std"], text


def accuracy_points(results: dict[str, Any]) -> list[AccuracyPoint]:
    """Every point of the study: host models (mean ± std over seeds), firmware (first seed),
    the paper's figures, and the linear reference."""
    baseline, pla = results["baseline"], results["pla"]
    evaluations, files = baseline["evaluations"], baseline["files"]
    points = []
    for family, group, key, size, runtime, measured in (
            ("baseline float", "baseline", "float_tflite", files["baseline_float.tflite"]["bytes"],
             "TFLite", evaluations["float_tflite"]["accuracy"]),
            ("baseline pruned + int8", "baseline", "int8_tflm",
             files["baseline_int8.tflite"]["bytes"], "TFLite Micro",
             evaluations.get("int8_tflm", evaluations["int8_tflite"])["accuracy"]),
            ("PLA float", "pla", "pla_float_tflite", pla["files"]["pla_float.tflite"], "TFLite",
             pla["test"]["pla_float_tflite"]["accuracy"]),
            ("PLA int8", "pla", "pla_int8_tflm", pla["files"]["pla_int8.tflite"], "TFLite Micro",
             pla["test"]["pla_int8_tflm"]["accuracy"])):
        accuracy, std, text = _accuracy(results, group, key, measured)
        points.append(AccuracyPoint(family, "TFLite", f"{family}: .tflite file, {runtime}{text}",
                                    size, accuracy, std))
    for name, group, family, what in (
            ("small_pla", "pla_16k", "PLA int8, 16 KiB", "PLA int8, 16 KiB (factored)"),
            ("pla_4bit", "pla_4bit", "PLA int8, 4-bit maps", "PLA int8, 4-bit maps")):
        if name not in results:
            continue
        variant = results[name]
        size = variant.get("tflite_bytes", {}).get("deployed", variant["files"]["pla_int8.tflite"])
        accuracy, std, text = _accuracy(results, group, "pla_int8_tflm",
                                        variant["test"]["pla_int8_tflm"]["accuracy"])
        runtime = ("INT4 .tflite size, TFLite Micro on its int8-tensor file"
                   if name == "pla_4bit" else ".tflite file, TFLite Micro")
        points.append(AccuracyPoint(family, "TFLite", f"{what}: {runtime}{text}", size,
                                    accuracy, std))
    for row in results.get("firmware", {}).get("rows", []):
        # the model's flash is nearly the same on every core; plain lowering and float on the
        # host only
        if row["board"] == COMPARISON_BOARD and row["model"] in ("PLA int8", "PLA float"):
            points.append(AccuracyPoint(row["model"], "firmware",
                                        f"{row['model']}: firmware model flash, {row['board']} "
                                        "(first seed)", row["model_flash_bytes"],
                                        row["accuracy"]))
    if "baseline_firmware" in results:
        # Its firmware ran on a subset (10^8 instructions a beat) and equals TFLite Micro there;
        # plot the accuracy of the same int8 model on the whole split.
        row = fastest_m4_row(results["baseline_firmware"])
        points.append(AccuracyPoint(
            "baseline pruned + int8", "firmware",
            f"baseline pruned + int8: firmware model flash, {row['board']}\n(first seed; "
            "accuracy: TFLite Micro, which it equals)", row["model_flash_bytes"],
            evaluations.get("int8_tflm", evaluations["int8_tflite"])["accuracy"]))
    for family, paper_key, size_key in (("baseline float", "baseline float", "tflite_bytes"),
                                        ("baseline pruned + int8",
                                         "baseline pruned + int8 TFLite", "size_bytes"),
                                        ("PLA float", "PLA float", "size_bytes"),
                                        ("PLA int8", "PLA int8 TFLite", "size_bytes")):
        paper = PAPER_ROWS[paper_key]
        points.append(AccuracyPoint(family, "paper", f"{family}: the paper's figure (4,500 beats)",
                                    paper[size_key], paper["accuracy"]))
    for name, reference in pla.get("references", {}).items():
        accuracy, std, text = _accuracy(results, "references", name,
                                        reference["test"]["accuracy"])
        points.append(AccuracyPoint("linear reference", "reference",
                                    f"linear reference: 4 B x {reference['parameters']:,} "
                                    f"float32 parameters, scikit-learn{text}",
                                    4 * reference["parameters"], accuracy, std))
    return points


def _accuracy_vs_flash(results: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(12, 5.5))
    points = sorted(accuracy_points(results),  # the legend by model, then by kind
                    key=lambda p: (list(FAMILY_COLOURS).index(p.family), list(KIND_MARKERS)
                                   .index(p.kind)))
    for point in points:
        colour = FAMILY_COLOURS[point.family]
        marker, filled, size, order = KIND_MARKERS[point.kind]
        axes.scatter(point.size, point.accuracy, marker=marker, s=size,
                     facecolors=colour if filled else "none",
                     edgecolors="white" if filled else colour,
                     linewidths=0.8 if filled else 1.6, label=point.label, zorder=order)
        if point.spread is not None:
            axes.errorbar(point.size, point.accuracy, yerr=point.spread, fmt="none",
                          ecolor=colour, elinewidth=1.2, capsize=4, zorder=2)
    axes.set_xscale("log")
    axes.set_xlabel("model size: TFLite file, firmware model flash, the paper's size, or "
                    "float32 parameters [bytes]")
    axes.set_ylabel("test accuracy (ECG5000)")
    seeds = results.get("seeds", {}).get("aggregate", {}).get("seeds", [])
    axes.set_title("Accuracy versus size" + (f" (error bars: ± std over {len(seeds)} seeds)"
                                             if len(seeds) > 1 else ""))
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7.5, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False,
                labelspacing=0.9, borderaxespad=0)
    figure.tight_layout()
    figure.savefig(path, dpi=120, bbox_inches="tight")
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
