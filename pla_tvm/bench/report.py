"""Write the benchmark's ``results.md`` (tables, paper figures beside ours) and
``results.json`` (everything measured) from the results the stages return."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pla_tvm.baseline.pipeline import (
    FLOAT_TFLITE_FILE,
    INT8_TFLITE_FILE,
    KERAS_FILE,
    PRUNED_KERAS_FILE,
)
from pla_tvm.bench.compiler import SMALL_PLA_MODEL
from pla_tvm.bench.seeds import format_spread
from pla_tvm.data.beats import ECG5000_CLASSES
from pla_tvm.files import write_atomically, write_json_atomically
from pla_tvm.paper import PAPER_ROWS
from pla_tvm.pla.costs import PLAShape, low_rank_flops_per_beat
from pla_tvm.pla.pipeline import FLOAT_TFLITE_FILE as PLA_FLOAT_TFLITE_FILE
from pla_tvm.pla.pipeline import INT8_TFLITE_FILE as PLA_INT8_TFLITE_FILE
from pla_tvm.pla.pipeline import NPZ_FILE as PLA_NPZ_FILE
from pla_tvm.references import LINEAR, LINEAR_LABEL

METRIC_COLUMNS = ("accuracy", "sensitivity", "precision", "f1", "macro_f1")


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and value < 10:
        return f"{value:.{digits}f}"
    return f"{int(round(value)):,}"


def _row(model: str, runtime: str, result: dict, *, parameters: int, flops: int,
         file_bytes: int | None, gzip_bytes: int | None = None,
         paper_key: str | None = None, spread: dict | None = None) -> dict[str, Any]:
    """A table row; ``spread``: the row's :func:`~pla_tvm.bench.seeds.aggregate` entry (mean ±
    std over seeds), shown instead of the first seed's scores when given."""
    return {"model": model, "runtime": runtime, "parameters": parameters, "flops": flops,
            **{column: result[column] for column in METRIC_COLUMNS}, "n": result["n"],
            "per_class_recall": result["per_class_recall"], "file_bytes": file_bytes,
            "gzip_bytes": gzip_bytes, "tflm_arena_bytes": result.get("tflm_arena_bytes"),
            "paper": PAPER_ROWS.get(paper_key), "spread": spread}


def _spreads(results: dict[str, Any] | None, group: str) -> dict[str, Any]:
    """The mean ± std over seeds of a group (``baseline``, ``pla``, ``references``), if any."""
    if not results or "seeds" not in results:
        return {}
    return results["seeds"]["aggregate"].get(group, {})


def baseline_rows(baseline: dict, spreads: dict | None = None) -> list[dict[str, Any]]:
    """One row per way the baseline was run, with the paper's figure for the same model
    (``spreads``: mean ± std over seeds per evaluation, see :func:`_spreads`)."""
    evaluations, files = baseline["evaluations"], baseline["files"]
    specs = [
        ("baseline float", "Keras", "keras", KERAS_FILE, "baseline float"),
        ("baseline float", "TFLite interpreter", "float_tflite", FLOAT_TFLITE_FILE, None),
        ("baseline pruned float", "Keras", "pruned_keras", PRUNED_KERAS_FILE, None),
        ("baseline pruned + int8", "TFLite interpreter", "int8_tflite", INT8_TFLITE_FILE,
         "baseline pruned + int8 TFLite"),
        ("baseline pruned + int8", "TFLite interpreter, reference kernels",
         "int8_tflite_reference_kernels", INT8_TFLITE_FILE, None),
        ("baseline pruned + int8", "TFLite Micro interpreter", "int8_tflm", INT8_TFLITE_FILE,
         None),
    ]
    return [_row(model, runtime, evaluations[key], parameters=baseline["parameters"],
                 flops=baseline["flops"], file_bytes=files[file_name]["bytes"],
                 gzip_bytes=files[file_name]["gzip_bytes"], paper_key=paper_key,
                 spread=(spreads or {}).get(key))
            for model, runtime, key, file_name, paper_key in specs if key in evaluations]


def pla_rows(pla: dict, spreads: dict | None = None, name: str = "PLA",
             paper: bool = True) -> list[dict[str, Any]]:
    """One row per PLA variant and runtime, with the paper's figures unless ``paper`` is False
    (``spreads`` as for :func:`baseline_rows`; ``name`` starts the model column)."""
    files = pla["files"]
    costs = deployed_costs(pla)
    common = {"parameters": costs["parameters"], "flops": costs["flops"]}
    specs = [
        ("PLA float", "numpy (scikit-learn estimator)", "pla_float", PLA_NPZ_FILE, "PLA float"),
        ("PLA float", "TFLite interpreter", "pla_float_tflite", PLA_FLOAT_TFLITE_FILE, None),
        ("PLA int8", "numpy integer reference", "pla_int8", None, None),
        ("PLA int8", "TFLite interpreter, reference kernels", "pla_int8_tflite",
         PLA_INT8_TFLITE_FILE, "PLA int8 TFLite"),
        ("PLA int8", "TFLite Micro interpreter", "pla_int8_tflm", PLA_INT8_TFLITE_FILE, None),
    ]
    return [_row(model.replace("PLA", name, 1), runtime, pla["test"][key], **common,
                 file_bytes=files.get(file_name) if file_name else None,
                 paper_key=paper_key if paper else None, spread=(spreads or {}).get(key))
            for model, runtime, key, file_name, paper_key in specs if key in pla["test"]]


def deployed_costs(pla: dict) -> dict[str, int]:
    """Parameters, FLOPs and MACs per beat of a PLA as deployed: the factored form's when its
    ``metrics.json`` says it was deployed factored (``chosen.deployed_rank``), else the full
    maps'."""
    rank = pla["chosen"].get("deployed_rank")
    if not rank:
        return {"parameters": pla["parameters"]["total"],
                "flops": pla["flops_per_beat"]["total"], "macs": pla["flops_per_beat"]["macs"]}
    counts = pla["parameters"]
    k = pla["chosen"]["k_used"]
    d = counts["cluster_biases"] // k
    shape = PLAShape(k, counts["centroids"] // k, d, counts["head"] // (d + 1))
    flops = low_rank_flops_per_beat(shape, rank)
    return {"parameters": pla["low_rank_parameters"]["total"], "flops": flops["total"],
            "macs": flops["macs"]}


def _deployed_bytes(pla: dict) -> int:
    """The size a PLA deploys at: its INT4 file for 4-bit maps, else its int8 .tflite."""
    return pla.get("tflite_bytes", {}).get("deployed", pla["files"]["pla_int8.tflite"])


def _variant_spread_mean(spreads: dict | None, key: str, score: str = "accuracy",
                         fallback: float | None = None) -> float | None:
    """The mean over seeds of a score when ``spreads`` has it, else ``fallback``."""
    value = _mean(spreads or {}, key, score)
    return fallback if value is None else value


def small_pla_target_rows(small: dict, baseline_int8_accuracy: float,
                          spreads: dict | None = None, sizes: list[int] | None = None
                          ) -> list[tuple[str, str, bool]]:
    """Issue 15's targets of the 16 KiB PLA: its int8 .tflite size (every seed's, given
    ``sizes``), and its int8 accuracy (TFLite Micro; mean over seeds with ``spreads``) against
    the int8 baseline's on the same split (``baseline_int8_accuracy``, a mean with seeds)."""
    budget = small["selection"]["max_int8_bytes"]
    sizes = sizes or [_deployed_bytes(small)]
    accuracy = _variant_spread_mean(spreads, "pla_int8_tflm",
                                    fallback=small["test"]["pla_int8_tflm"]["accuracy"])
    points = 100 * (baseline_int8_accuracy - accuracy)
    measured = ", ".join(f"{size:,}" for size in sizes)
    return [
        (f"int8 .tflite <= {budget:,} B" + (" (every seed)" if len(sizes) > 1 else ""),
         measured, max(sizes) <= budget),
        ("int8 accuracy within 1 point of the int8 baseline's"
         + (" (means over seeds)" if spreads else ""), f"{points:+.2f} points below",
         points <= 1.0),
    ]


def _variant_section(title: str, name: str, pla: dict, text: str,
                     spreads: dict | None = None,
                     targets: list[tuple[str, str, bool]] | None = None) -> list[str]:
    """A PLA variant's section: its rows (mean ± std over seeds with ``spreads``), a text, and
    its targets."""
    lines = [f"## {title}", "", *_main_table(pla_rows(pla, spreads, name=name, paper=False)), "",
             text, ""]
    if targets:
        lines += ["| target | measured | met |", "|---|---|---|",
                  *(f"| {label} | {value} | {'yes' if met else 'NO'} |"
                    for label, value, met in targets), ""]
    return lines


def _small_pla_section(small: dict, baseline_int8_accuracy: float, spreads: dict | None = None,
                       sizes: list[int] | None = None) -> list[str]:
    chosen = small["chosen"]
    params = chosen.get("estimator_params") or {}
    text = (f"{_first_seed_note(spreads)}`compress --max-int8-bytes "
            f"{small['selection']['max_int8_bytes']}` with "
            + ", ".join(f"`--{key.replace('_', '-')} {value}`" for key, value in params.items())
            + f" ({_variant_text(params)}, each cluster's map stored factored at rank "
            f"{chosen.get('deployed_rank', params.get('rank'))}): {_choice_text(small)} on the "
            "training beats; the firmware rows are in the firmware table below.")
    return _variant_section(
        f"PLA within {small['selection']['max_int8_bytes'] // 1024} KiB", "PLA 16 KiB", small,
        text, spreads, small_pla_target_rows(small, baseline_int8_accuracy, spreads, sizes))


def _pla4_section(pla4: dict, spreads: dict | None = None) -> list[str]:
    chosen = pla4["chosen"]
    lsb = pla4["agreement"].get("int4_tflite_vs_reference_max_lsb")
    text = (f"{_first_seed_note(spreads)}`compress --weight-bits 4` (every other option the "
            f"default, {pla4['selection']['max_int8_bytes']:,}-byte budget): the cluster maps' "
            f"weights are 4-bit, symmetric per cluster and channel in [-7, 7], packed two a byte "
            f"by the operator; {_variant_text(chosen.get('estimator_params') or {})}. "
            f"{_choice_text(pla4)}. "
            f"Its file with TFLite INT4 maps (`pla_int4.tflite`, what the budget counts) is "
            f"{_deployed_bytes(pla4):,} B (LiteRT's default kernels within "
            f"{'–' if lsb is None else lsb} LSB of the reference); the file bytes in the table "
            f"are `pla_int8.tflite`, the same integers in int8 tensors, which TFLite Micro runs "
            f"(it refuses 4-bit FULLY_CONNECTED weights). Firmware rows: below.")
    return _variant_section("PLA with 4-bit maps", "PLA 4-bit", pla4, text, spreads)


def issue15_target_rows(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Issue 15's accuracy targets on the means over seeds: PLA int8 (TFLite Micro) accuracy
    at least the linear reference's (0.9389 as the issue measured it), macro F1 and PVC /
    SVPB recall at least the int8 baseline's (TFLite Micro), for the default PLA and the 4-bit
    one; the default int8 .tflite within 64 KiB."""
    base = _spreads(results, "baseline") or {}
    rows = []
    base_f1 = _variant_spread_mean(base, "int8_tflm", "macro_f1")
    base_recall = {name: (base.get("int8_tflm", {}).get("per_class_recall", {})
                          .get(name, {}).get("mean"))
                   for name in ("PVC", "SVPB/ectopic")}
    for label, group, metrics in (("default PLA", "pla", results.get("pla")),
                                  ("4-bit PLA", "pla_4bit", results.get("pla_4bit"))):
        spreads = _spreads(results, group)
        if metrics is None or not spreads:
            continue
        accuracy = _variant_spread_mean(spreads, "pla_int8_tflm")
        f1 = _variant_spread_mean(spreads, "pla_int8_tflm", "macro_f1")
        rows.append((f"{label} int8 accuracy >= 0.9389 (the issue's linear reference)",
                     f"{accuracy:.4f}", accuracy >= 0.9389))
        if base_f1 is not None:
            rows.append((f"{label} int8 macro F1 >= the int8 baseline's ({base_f1:.4f})",
                         f"{f1:.4f}", f1 >= base_f1))
        recall = spreads["pla_int8_tflm"]["per_class_recall"]
        for name, target in base_recall.items():
            if target is not None and name in recall:
                value = recall[name]["mean"]
                rows.append((f"{label} int8 recall {name} >= the int8 baseline's ({target:.4f})",
                             f"{value:.4f}", value >= target))
        size = _deployed_bytes(metrics)
        rows.append((f"{label} int8 .tflite <= 65,536 B (first seed)", f"{size:,}",
                     size <= 65_536))
    return rows


def _issue15_section(results: dict[str, Any]) -> list[str]:
    rows = issue15_target_rows(results)
    if not rows:
        return []
    seeds = len(results["seeds"]["runs"])
    return ["## PLA targets (issue 15, means over the seeds)", "",
            f"Means over {seeds} seed(s); TFLite Micro runs the int8 models (for the 4-bit PLA "
            "its int8-tensor file, the same integers).", "",
            "| target | measured | met |", "|---|---|---|",
            *(f"| {label} | {value} | {'yes' if met else 'NO'} |" for label, value, met in rows),
            ""]


def reference_rows(pla: dict, spreads: dict | None = None) -> list[dict[str, Any]]:
    """The reference models PLA's run fitted (:mod:`pla_tvm.references`), one row each."""
    rows = []
    for name, reference in pla.get("references", {}).items():
        label = LINEAR_LABEL if name == LINEAR else name
        rows.append(_row(label, "scikit-learn", reference["test"],
                         parameters=reference["parameters"], flops=reference["flops"],
                         file_bytes=None, spread=(spreads or {}).get(name)))
    return rows


def _selection_table(selection: dict) -> list[str]:
    """Every candidate with its cross-validated accuracy and macro F1 (what the criterion
    ranks), best first by that criterion among the pairs within budget."""
    lines = ["| k | λ | CV accuracy | CV macro F1 | feature R² | int8 .tflite bytes | "
             "within budget | eligible | rank |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in sorted(selection["grid"], key=lambda r: (r["rank"] is None, r["rank"] or 0,
                                                        r["rank_unconstrained"])):
        r2 = row["feature_r2_mean"]
        f1 = (f"{row['macro_f1_mean']:.4f} ± {row['macro_f1_std']:.4f}"
              if row.get("macro_f1_mean") is not None else "–")
        eligible = {True: "yes", False: "no"}.get(row.get("eligible"), "–")
        lines.append(f"| {row['k']} | {row['alpha']:g} | {row['accuracy_mean']:.4f} ± "
                     f"{row['accuracy_std']:.4f} | {f1} | {'–' if r2 is None else f'{r2:.4f}'} | "
                     f"{row['int8_tflite_bytes']:,} | {'yes' if row['within_budget'] else 'no'} "
                     f"| {eligible} | {row['rank'] or '–'} |")
    return lines


def _criterion_text(selection: dict) -> str:
    if selection.get("criterion", "accuracy") == "accuracy":
        return "cross-validated accuracy"
    tolerance = 100 * selection.get("accuracy_tolerance", 0.005)
    return (f"cross-validated macro F1 among the pairs within {tolerance:g} point of the best "
            "accuracy (eligible), within budget")


def _variant_text(params: dict) -> str:
    """What a PLA's maps were fitted to, from its ``estimator_params``."""
    target = params.get("target", "features")
    if target == "probabilities":
        text = ("maps distilled from the baseline: softmax regressions onto its class "
                f"probabilities at temperature {params.get('temperature', 1.0):g}")
        if params.get("label_weight"):
            text += f", mixed with the labels at weight {params['label_weight']:g}"
        return text
    if target == "logits":
        return "ridge maps fitted to the baseline's logits"
    return "ridge maps imitating the baseline's penultimate layer"


def _choice_text(run: dict) -> str:
    """How k and lambda were chosen: the cross-validation and which of them it searched."""
    selection, chosen = run["selection"], run["chosen"]
    folds = f"{selection.get('cv_folds', 5)}-fold" + (
        f" × {selection['cv_repeats']}" if selection.get("cv_repeats", 1) > 1 else "")
    alphas = {row["alpha"] for row in selection["grid"]}
    if len(alphas) == 1:
        return (f"k = {chosen['k']} by {folds} cross-validation, λ = {chosen['alpha']:g} "
                "(the distilled maps' default, not searched)")
    return f"k = {chosen['k']}, λ = {chosen['alpha']:g} by {folds} cross-validation"


def _pla_section(pla: dict, spreads: dict | None = None) -> list[str]:
    chosen, agreement = pla["chosen"], pla["agreement"]
    targets = pla.get("targets", {})
    return [
        f"## PLA: k-means + per-cluster {_variant_text(chosen.get('estimator_params') or {})}",
        "",
        *_main_table(pla_rows(pla, spreads)),
        "",
        f"{_first_seed_note(spreads)}{_choice_text(pla)} on the training beats under a "
        f"{pla['selection']['max_int8_bytes']:,}-byte int8 budget "
        f"(cluster sizes {chosen['cluster_sizes']}); grid search "
        f"{pla['selection']['seconds']:.1f} s. PLA float agrees with the baseline on "
        f"{100 * agreement['pla_float_vs_baseline']:.2f} % of the test beats, int8 with float on "
        f"{100 * agreement['pla_int8_vs_pla_float']:.2f} %; TFLite Micro bit-exact with the numpy "
        f"int8 reference: {agreement['int8_tflm_vs_reference_bit_exact']}; TFLite reference "
        f"kernels within {agreement['int8_tflite_vs_reference_max_lsb']} LSB. Test feature fit "
        f"R² = {pla['feature_fit_test']['r2']:.4f}.",
        "",
        "Targets (first seed): " + "; ".join(f"{name.replace('_', ' ')}: "
                                f"{'met' if value.get('met') else 'NOT met'}"
                                for name, value in targets.items()) + ".",
        "",
        f"### Selection grid (all {len(pla['selection']['grid'])} pairs, in the order of the "
        f"criterion: {_criterion_text(pla['selection'])})",
        "",
        *_selection_table(pla["selection"]),
        "",
    ]


def _seed_sizes(results: dict[str, Any], group: str) -> list[int] | None:
    """Every seed's deployed file size of a variant group, when each run has it."""
    runs = results.get("seeds", {}).get("runs", [])
    chosen = [run.get(f"{group}_chosen") for run in runs]
    if not runs or any(c is None for c in chosen):
        return None
    return [c["deployed_bytes"] for c in chosen]


def _first_seed_note(spreads: dict | None) -> str:
    return "First seed's run: " if spreads else ""


def _references_section(pla: dict, spreads: dict | None = None) -> list[str]:
    rows = reference_rows(pla, spreads)
    if not rows:
        return []
    lines = ["## Reference: a linear model on the raw beats", "",
             *_main_table(rows), ""]
    for name, reference in pla["references"].items():
        chosen = ", ".join(f"C = {row['C']:g}: {row['mean']:.4f} ± {row['std']:.4f}"
                           for row in reference["cv_accuracy"])
        lines += [f"{reference['model']}: {reference['parameters']:,} parameters, "
                  f"{reference['macs']:,} MACs per beat; C chosen by {reference['cv_folds']}-fold "
                  f"cross-validation on the training beats (accuracy {chosen}). Fitted by "
                  "`pla-tvm compress` beside PLA, on the same beats.", ""]
    return lines


def _mean(spreads: dict, key: str, score: str = "accuracy") -> float | None:
    return spreads.get(key, {}).get(score, {}).get("mean")


def _tflm_source(run: dict) -> str:
    seconds = run.get("tflm_seconds")
    cost = "" if seconds is None else f", {seconds:,.0f} s"
    if run["tflm_by_reference_kernels"]:
        return f"reference kernels (TFLite Micro check{cost})"
    return f"all beats{cost}"


def _seeds_section(seeds: dict) -> list[str]:
    runs, aggregate = seeds["runs"], seeds["aggregate"]
    base, pla, refs = aggregate["baseline"], aggregate["pla"], aggregate["references"]
    columns = [("baseline", "keras", "baseline float Keras"),
               ("baseline", "int8_tflm", "baseline pruned + int8 TFLite Micro"),
               ("pla", "pla_float", "PLA float"), ("pla", "pla_int8_tflm", "PLA int8 TFLite Micro"),
               ("references", LINEAR, "linear reference")]
    columns = [c for c in columns if all(c[1] in run[c[0]] for run in runs)]
    lines = [
        f"## Seeds: {len(runs)} trainings of the baseline, each compressed with PLA",
        "",
        f"Seeds {', '.join(str(s) for s in aggregate['seeds'])}: every accuracy, F1 and recall "
        "in the tables above is the mean ± sample standard deviation over them (one seed: the "
        "value alone); sizes, parameters and FLOPs are the first seed's. Firmware, QEMU and "
        f"tuning use the models of seed {seeds['firmware_seed']} only. The extra seeds' TFLite "
        f"Micro figures come from the TFLite interpreter's reference kernels over all the test "
        f"beats, after TFLite Micro gave bit-identical int8 outputs on "
        f"{seeds['tflm_check_beats']:,} evenly spaced beats (otherwise TFLite Micro runs on "
        "every beat); the TFLite Micro column gives what it cost each seed.",
        "",
        "| seed | " + " | ".join(f"{label} accuracy / macro F1" for _, _, label in columns)
        + " | PLA k, λ, int8 bytes | TFLite Micro | training s | baseline stage s |",
        "|---|" + "---|" * (len(columns) + 4),
    ]
    for run in runs:
        chosen = run["pla_chosen"]
        lines.append(
            f"| {run['seed']} | " + " | ".join(
                f"{run[group][key]['accuracy']:.4f} / {run[group][key]['macro_f1']:.4f}"
                for group, key, _ in columns)
            + f" | {chosen['k']}, {chosen['alpha']:g}, {chosen['int8_tflite_bytes']:,} | "
            f"{_tflm_source(run)} | {_number(run['training']['seconds'])} | "
            f"{_number(run.get('baseline_seconds'))} |")
    lines.append("| mean ± std | " + " | ".join(
        f"{format_spread(aggregate[group][key]['accuracy'])} / "
        f"{format_spread(aggregate[group][key]['macro_f1'])}"
        for group, key, _ in columns) + " | | | | |")
    comparisons = []
    for label, (a_group, a_key), (b_group, b_key) in (
            ("PLA float against the baseline float (Keras)", (pla, "pla_float"), (base, "keras")),
            ("PLA int8 against the baseline pruned + int8 (both TFLite Micro)",
             (pla, "pla_int8_tflm"), (base, "int8_tflm")),
            ("the linear reference against the baseline pruned + int8 (TFLite Micro)",
             (refs, LINEAR), (base, "int8_tflm")),
            ("PLA int8 against the linear reference (TFLite Micro; scikit-learn)",
             (pla, "pla_int8_tflm"), (refs, LINEAR))):
        a, b = _mean(a_group, a_key), _mean(b_group, b_key)
        if a is not None and b is not None:
            comparisons.append(f"{label}: {100 * (a - b):+.2f} points of accuracy "
                               f"({a:.4f} against {b:.4f})")
    if comparisons:
        lines += ["", "Means over the seeds: " + "; ".join(comparisons) + "."]
    return lines + [""]


def _swap_section(swap: dict) -> list[str]:
    operator, lowered = swap["operator"], swap["lowered_int8_baseline"]
    lines = [
        "## TVM: the swap pass and integer lowering, on the host (llvm, Relax VM)",
        "",
        f"PLA operator alone on all {swap['beats']:,} test beats: float max error "
        f"{operator['float_max_error_relative_to_row_max']:.2e} relative to each beat's largest "
        f"feature (max absolute {operator['float_max_abs_error']:.2e}); int8 bit-exact with the "
        f"numpy reference: {operator['int8_bit_exact']}. Swapped float graph against PLA's "
        f"softmax: max absolute difference "
        f"{swap['swapped_float']['max_error_vs_pla_softmax']:.2e}.",
        "",
        "| graph | accuracy | PLA accuracy | class agreement with PLA | constant bytes |",
        "|---|---|---|---|---|",
    ]
    for variant in ("float", "int8"):
        row = swap[f"swapped_{variant}"]
        lines.append(f"| baseline {variant} TFLite → Relax, trunk swapped for PLA | "
                     f"{row['accuracy']:.4f} | {row['pla_accuracy']:.4f} | "
                     f"{100 * row['class_agreement_with_pla']:.2f} % | "
                     f"{row['constant_bytes']['total']:,} |")
    lines += [
        "",
        "The swapped graphs keep the baseline's imported head (dense + softmax); the PLA "
        "accuracy column is PLA's own: the float estimator, and the numpy int8 reference, whose "
        "head is the int8 baseline's (classes: argmax of the int8 logits).",
        "",
        f"Integer-lowered int8 baseline: {lowered['constant_bytes']['total']:,} constant bytes "
        f"for {lowered['tflite_buffer_bytes']:,} bytes of TFLite buffers "
        f"({lowered['constant_ratio']:.3f}×); against the TFLite reference kernels on "
        f"{lowered['beats']} beats: max {lowered['max_lsb_vs_tflite_reference']} LSB, "
        f"{lowered['outputs_differing']} outputs differing, class agreement "
        f"{100 * lowered['class_agreement']:.1f} %.",
        "",
    ]
    return lines


def _firmware_section(firmware: dict, baseline_int8_accuracy: float, pla_macs: int,
                      baseline_firmware: dict | None = None,
                      small_pla_macs: int | None = None) -> list[str]:
    rows = firmware["rows"]
    lines = [
        "## Firmware in QEMU (bare metal, exact instruction counts)",
        "",
        "| model | board | beats | accuracy | F1 | equal to host | instructions/beat | "
        "instructions/MAC | model flash | model RAM | stack | image flash | image RAM | "
        "compile s | QEMU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    def per_mac(row: dict) -> str:
        if not row["model"].startswith("PLA"):
            return "–"
        macs = row.get("macs") or (small_pla_macs if row["model"] == SMALL_PLA_MODEL
                                   else pla_macs)
        return f"{row['instructions_per_inference'] / macs:.2f}" if macs else "–"

    for row in rows:
        equal = ("bit-exact" if row["host_equal"] else "differs") if row["host_equal"] is not None \
            else f"max diff {row['host_max_abs_difference']:.1e}"
        lines.append(
            f"| {row['model']} | {row['board']} | {row['n']:,} | {row['accuracy']:.4f} | "
            f"{row['f1']:.4f} | {equal} | {row['instructions_per_inference']:,.0f} | "
            f"{per_mac(row)} | {row['model_flash_bytes']:,} | {row['model_ram_bytes']:,} | "
            f"{row['stack_bytes']:,} | {row['image_flash_bytes']:,} | "
            f"{row['image_ram_bytes']:,} | {row['compile_seconds']:.1f} | "
            f"{row['qemu_seconds']:.1f} |")
    pla = next((r for r in rows if r["model"] == "PLA int8" and r["board"] == "mps2-an386"), None)
    if pla and baseline_firmware:
        base = fastest_m4_row(baseline_firmware)
        lines += [
            "",
            f"On {pla['board']}: the PLA int8 firmware executes "
            f"{base['instructions_per_inference'] / pla['instructions_per_inference']:,.0f}× "
            f"fewer instructions per beat than the fastest int8 baseline firmware "
            f"({base['build']}, below) and needs "
            f"{base['model_flash_bytes'] / pla['model_flash_bytes']:,.1f}× less model flash, "
            f"at {100 * (pla['accuracy'] - baseline_int8_accuracy):+.2f} points of accuracy "
            f"(first seed's models; PLA firmware on {pla['n']:,} beats against the int8 "
            f"baseline's TFLite accuracy on "
            f"the whole split: its firmware, run on {base['beats']:,} evenly spaced beats, "
            f"equals TFLite Micro there, see below).",
        ]
    return lines + [""]


#: The board of the baseline's targets and of the PLA-versus-baseline ratios.
M4 = "mps2-an386"
#: The issue's targets for the Cortex-M4: (label, key, limit).
TARGETS = (
    ("instructions per beat (fastest M4 build) <= 150,000,000", "instructions", 150_000_000),
    ("model RAM (default M4 build) <= 65,536 B", "model_ram_bytes", 65_536),
    ("model flash (default M4 build) <= 850,000 B", "model_flash_bytes", 850_000),
)


def fastest_m4_row(stage: dict[str, Any]) -> dict[str, Any]:
    """The Cortex-M4 build with the fewest instructions per beat (the baseline of the ratios)."""
    m4 = [row for row in stage["rows"] if row["board"] == M4]
    return min(m4, key=lambda row: row["instructions_per_inference"])


def target_rows(stage: dict[str, Any]) -> list[tuple[str, float, bool]]:
    """The Cortex-M4 targets: (label, measured value, met)."""
    default = next(row for row in stage["rows"]
                   if row["board"] == M4 and row["build"].startswith("micro default"))
    values = {"instructions": fastest_m4_row(stage)["instructions_per_inference"],
              "model_ram_bytes": default["model_ram_bytes"],
              "model_flash_bytes": default["model_flash_bytes"]}
    return [(label, values[key], values[key] <= limit) for label, key, limit in TARGETS]


def _baseline_firmware_section(stage: dict) -> list[str]:
    macs = stage["macs"]
    reference = stage["tflm_cmsis_nn"]
    lines = [
        "## The int8 baseline compiled by micro, against TFLite Micro",
        "",
        f"The paper-size pruned-int8 ResNet ({macs:,} MACs per beat) built by micro for the DSP "
        f"cores, the Cortex-M55 and the Cortex-M3, run in QEMU on {stage['beats']:,} evenly "
        "spaced test beats (TVM's plain lowering on fewer) and compared beat by beat "
        "with TFLite Micro's interpreter (reference kernels) on the same int8 inputs. "
        "Instructions are exact counts of the model call.",
        "",
        "| build | board | beats | instructions/beat | instructions/MAC | equal to TFLite Micro | "
        "model flash | model RAM | stack | compile s | QEMU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in stage["rows"]:
        equal = f"{row['beats_equal_tflm']:,} of {row['beats']:,}"
        if row["beats_equal_tflm"] != row["beats"]:
            equal += f" (max {row['max_abs_difference_tflm']} LSB)"
        lines.append(
            f"| {row['build']} | {row['board']} | {row['beats']:,} | "
            f"{row['instructions_per_inference']:,.0f} | "
            f"{row['instructions_per_inference'] / macs:.3f} | {equal} | "
            f"{row['model_flash_bytes']:,} | {row['model_ram_bytes']:,} | "
            f"{row['stack_bytes']:,} | {row['compile_seconds']:.1f} | {row['qemu_seconds']:.1f} |")
    lines += [
        f"| *TFLite Micro + CMSIS-NN (cited, see below)* | mps2-an386 | | "
        f"*{reference['instructions_per_inference']:,}* | "
        f"*{reference['instructions_per_inference'] / macs:.3f}* | | | "
        f"*arena {reference['arena_bytes']:,}* | | | |",
        "",
        "The TFLite Micro + CMSIS-NN row is cited from shared/design/TOOLCHAIN_NOTES.md "
        "(measured 2026-12-06 on the same board and QEMU, counted the same way, on this "
        "architecture; TFLite Micro's C++ sources cannot be installed here, so it is not rerun). "
        f"Its reference kernels took {reference['reference_instructions_per_inference']:,}.",
        "",
        "| target (Cortex-M4) | measured | met |",
        "|---|---|---|",
    ]
    for label, value, met in target_rows(stage):
        lines.append(f"| {label} | {value:,.0f} | {'yes' if met else 'NO'} |")
    exact = all(row["beats_equal_tflm"] == row["beats"] for row in stage["rows"])
    lines += [
        f"| outputs equal to TFLite Micro on every beat of every build | "
        f"{sum(r['beats_equal_tflm'] for r in stage['rows']):,} of "
        f"{sum(r['beats'] for r in stage['rows']):,} | {'yes' if exact else 'NO'} |",
        "",
        "Output positions per convolution pass (default build, Cortex-M4, "
        "how the default was chosen: more positions fill fewer overlapping window rows but hold "
        "more int32 accumulators):",
        "",
        "| positions per pass | instructions/beat | model RAM |",
        "|---|---|---|",
        *(f"| {p['positions']} | {p['instructions_per_inference']:,.0f} | "
          f"{p['model_ram_bytes']:,} |" for p in stage["pass_sizes"]),
        "",
    ]
    for board, tuning in stage["tuning"].items():
        lines.append(f"Tuning on {board}: {tuning['trials']} trials, {tuning['seconds']:.0f} s; "
                     "per kernel, default schedule / best searched (instructions, kernel alone): "
                     + "; ".join(f"{name} {k.get('default_instructions') or 0:,.0f} / "
                                 f"{k.get('best_instructions') or 0:,.0f}"
                                 for name, k in sorted(tuning["kernels"].items())) + ".")
        lines.append("")
    return lines


#: The issues' benchmark targets for the Cortex-M4 builds: (label, value key, limit).
M4_TARGETS = (
    ("untuned instructions per beat <= 60,000", "untuned_instructions", 60_000),
    ("untuned model flash <= 64 KiB", "untuned_model_flash_bytes", 64 * 1024),
    ("untuned model static RAM <= 4 KiB", "untuned_model_ram_bytes", 4 * 1024),
    ("untuned stack <= 1 KiB", "untuned_stack_bytes", 1024),
    ("tuned instructions per MAC <= 1.5", "tuned_instructions_per_mac", 1.5),
    ("tuned / untuned <= 0.7", "tuned_over_untuned", 0.7),
    ("tuned / plain TVM lowering <= 0.7", "tuned_over_plain", 0.7),
    ("tuning seconds <= 600", "tuning_seconds", 600),
)


def _target_lines(tuning: dict, pla_macs: int) -> list[str]:
    values = {**tuning, "tuned_instructions_per_mac": tuning["tuned_instructions"] / pla_macs}
    lines = ["| target | measured | met |", "|---|---|---|"]
    for label, key, limit in M4_TARGETS:
        if key in values:
            value = values[key]
            shown = f"{value:.3f}" if isinstance(value, float) and value < 10 else f"{value:,.0f}"
            lines.append(f"| {label} | {shown} | {'yes' if value <= limit else 'NO'} |")
    return lines


def _tuning_section(tuning: dict, pla_macs: int) -> list[str]:
    lines = [
        "## Autotuning (MetaSchedule, every candidate measured in QEMU)",
        "",
        f"PLA int8 graph on {tuning['board']}: {tuning['trials']} trials "
        f"({tuning['trials_per_round']} per round), {tuning['tuning_seconds']:.0f} s of search "
        "(each kernel's default schedule is measured first and competes as a candidate). "
        f"Instructions per beat: TVM's plain lowering (`--no-dsp`) "
        f"{tuning.get('plain_instructions', float('nan')):,.0f}; untuned default build (the "
        f"DSP micro-kernel schedules) {tuning['untuned_instructions']:,.0f}; tuned "
        f"{tuning['tuned_instructions']:,.0f} ({tuning['tuned_over_untuned']:.2f}× the untuned "
        f"build, {tuning.get('tuned_over_plain', float('nan')):.2f}× the plain lowering, "
        f"{tuning['tuned_instructions'] / pla_macs:.3f} per multiply-accumulate of the operator "
        f"and head, {pla_macs:,} MACs). Tuned outputs equal to the untuned build's on all "
        f"{tuning['n']:,} beats: {tuning['outputs_equal_untuned']}; accuracy "
        f"{tuning['accuracy']:.4f}; model flash {tuning['model_flash_bytes']:,} B, RAM "
        f"{tuning['model_ram_bytes']:,} B, stack {tuning['stack_bytes']:,} B.",
        "",
        *_target_lines(tuning, pla_macs),
        "",
        "| kernel | trials | failed | default schedule (kernel alone) | best searched |",
        "|---|---|---|---|---|",
    ]
    for name, kernel in tuning["kernels"].items():
        best, default = kernel.get("best_instructions"), kernel.get("default_instructions")
        lines.append(f"| {name} | {kernel.get('trials', '–')} | {kernel.get('failed', '–')} | "
                     f"{'–' if default is None else f'{default:,.0f}'} | "
                     f"{'–' if best is None else f'{best:,.0f}'} |")
    return lines + [""]


#: Issue 17's per-core limits of the PLA int8 graph (instructions per beat), by board.
CORE_TARGETS = (("microbit", "Cortex-M0", 90_000), ("mps2-an385", "Cortex-M3", 55_000),
                ("mps3-an547", "Cortex-M55", 8_000))


#: Issue 17's limits of the int8 ResNet (instructions per beat), by board.
RESNET_CORE_TARGETS = (("mps3-an547", "Cortex-M55", 40_000_000),
                       ("mps2-an385", "Cortex-M3", 350_000_000))


def core_target_rows(firmware: dict, baseline: dict | None = None
                     ) -> list[tuple[str, str, bool | None]]:
    """Issue 17's targets: the PLA int8 firmware per core (default build, the board's kernel
    library), and the int8 ResNet's default build on the M55 and M3 (None: not measured)."""
    rows = []
    for board, core, limit in CORE_TARGETS:
        row = next((r for r in firmware["rows"] if r["model"] == "PLA int8"
                    and r["board"] == board), None)
        plain = next((r for r in firmware["rows"] if r["model"] == "PLA int8, plain TVM lowering"
                      and r["board"] == board), None)
        if row is None:
            continue
        value = f"{row['instructions_per_inference']:,.0f}" + (
            f" (TVM's plain lowering {plain['instructions_per_inference']:,.0f})" if plain
            else "")
        rows.append((f"PLA int8, {board} ({core}) <= {limit:,} instructions per beat", value,
                     row["instructions_per_inference"] <= limit))
    for board, core, limit in RESNET_CORE_TARGETS:
        row = next((r for r in (baseline or {}).get("rows", ())
                    if r["board"] == board and r["build"].startswith("micro default")), None)
        label = f"int8 ResNet, {board} ({core}) <= {limit:,} instructions per beat"
        if row is None:
            rows.append((label, "not measured", None))
            continue
        exact = row["beats_equal_tflm"] == row["beats"]
        value = (f"{row['instructions_per_inference']:,.0f} ({row['build']}; "
                 f"{row['beats_equal_tflm']} of {row['beats']} beats equal to TFLite Micro)")
        rows.append((label, value, row["instructions_per_inference"] <= limit and exact))
    return rows


def _core_targets_section(firmware: dict, baseline: dict | None = None) -> list[str]:
    rows = core_target_rows(firmware, baseline)
    return ["## Kernels for every core (issue 17)", "",
            "The PLA int8 firmware of the firmware table above and the int8 ResNet of the "
            "baseline table, default builds: each board's kernel library chosen by its "
            "instruction set (docs/isa-armv6m.md, isa-armv7m.md, dsp.md, isa-mve.md).", "",
            "| target | measured | met |", "|---|---|---|",
            *(f"| {label} | {value} | "
              f"{'–' if met is None else ('yes' if met else 'NO')} |"
              for label, value, met in rows), ""]


def _streaming_section(stage: dict) -> list[str]:
    from pla_tvm.bench.streaming import stream_target_rows

    lines = [
        "## Streaming: raw ECG samples to classes on the core (MIT-BIH record 100)",
        "",
        "The first seed's PLA-swapped int8 baseline compiled with `--stream` (docs/stream.md): "
        "the whole MLII lead streamed sample by sample through the firmware in one QEMU run, "
        "every R peak, beat and raw output compared with the host reference (the integer front "
        "end in numpy and the same compiled model on the host); R peaks scored against the "
        "record's beat annotations (150 ms window, ANSI/AAMI EC57); classes compared with the "
        "annotations (ECG5000 classes of the beat symbols) and with the host's beat pipeline "
        "(annotated beats, float preprocessing, the model on the host). The 250 Hz row streams "
        "a copy of the record resampled to 250 Hz. Duty cycle: instructions per second over the "
        "clock, one instruction a cycle assumed.",
        "",
        "| board | fs | seconds | R peaks | sensitivity | positive predictivity | beats "
        "classified | class accuracy vs annotations | same class as host pipeline | bit-exact "
        "with host | instructions per s of ECG | most on one sample | most on one beat | "
        "stream RAM (front end + model) | stack | duty cycle at the board's clock | at 48 MHz |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in stage["rows"]:
        detection, cost = row["detection"] or {}, row["cost"]
        accuracy = row["accuracy_vs_annotations"]["accuracy"]
        agreement = (row["class_agreement_with_host_pipeline"] or {}).get("agreement")
        exact = all(row["bit_exact_with_host_reference"].values())
        duty = cost["duty_cycle"]
        lines.append(
            f"| {row['board']} | {row['fs']} | {row['seconds_of_signal']:,.0f} | "
            f"{row['beats_found']:,} | {100 * detection.get('sensitivity', 0):.2f} % | "
            f"{100 * detection.get('positive_predictivity', 0):.2f} % | "
            f"{row['beats_classified']:,} | {'–' if accuracy is None else f'{accuracy:.4f}'} | "
            f"{'–' if agreement is None else f'{100 * agreement:.2f} %'} | "
            f"{'yes' if exact else 'NO'} | {cost['instructions_per_second_of_signal']:,.0f} | "
            f"{cost['most_instructions_on_one_sample']:,} | "
            f"{cost['most_instructions_on_one_beat']:,} | {cost['stream_ram_bytes']:,} B "
            f"({cost['app_ram_bytes']:,} + {cost['model_ram_bytes']:,}) | "
            f"{cost['stack_bytes']:,} B | {100 * duty['at_board_clock']:.2f} % of "
            f"{duty['board_clock_hz'] / 1e6:g} MHz | {100 * duty['at_48_mhz']:.2f} % |")
    second = stage["second_rate"]
    lines += ["", f"At {second['fs']} Hz the host's QRS detector (`wfdb.processing.xqrs_detect`) "
              f"finds {second['host_detector_beats']:,} R peaks on the same copy, the stream "
              f"{second['beats_found']:,}.", "",
              "| target | measured | met |", "|---|---|---|",
              *(f"| {label} | {value} | {'yes' if met else 'NO'} |"
                for label, value, met in stream_target_rows(stage)), ""]
    if stage.get("plot"):
        lines += [f"![A stretch of record 100 streamed]({stage['plot']})", ""]
    return lines


def _small_cnns_section(small: dict) -> list[str]:
    target = small["target_instructions_per_mac"]
    lines = [
        f"## Small CNNs on {small['board']} (untrained int8 models, default build)",
        "",
        "Three small untrained CNNs (tf_keras, random weights and biases, full int8 with random "
        "calibration beats; outputs are the dense layer's int8 logits) compiled from TFLite "
        "through Relax with micro's default build (DSP micro-kernels) and run in QEMU on random "
        "int8 beats, each output compared with TFLite Micro's interpreter on the same inputs. "
        "MACs are counted from the Keras layers (convolutions, depthwise, dense); requantized "
        "outputs are the int8 values those layers produce, each needing a bias add, TFLite's "
        "fixed-point requantization, a clamp and a store, whatever the kernel. The last column "
        f"is what {target:g} instructions per MAC leaves for each requantized output, "
        "multiply-accumulates included; micro's requantization micro-kernel alone takes 9 "
        "instructions per output plus its per-channel set-up (docs/dsp.md), so models with few "
        "MACs per output (depthwise, 1x1) leave little for everything else.",
        "",
        "| model | layers | MACs | requantized outputs | instructions/inference | "
        "instructions/MAC | model flash | model RAM | bit-exact with TFLite Micro | "
        f"instructions/MAC <= {target:g} | budget per requantized output at {target:g}/MAC |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in small["rows"]:
        exact = row["inputs_bit_exact_with_tflm"] == row["inputs"]
        lines.append(
            f"| {row['model']} | {row['layers']} | {row['macs']:,} | "
            f"{_number(row.get('requantized_outputs'))} | "
            f"{row['instructions_per_inference']:,.0f} | {row['instructions_per_mac']:.2f} | "
            f"{row['model_flash_bytes']:,} | {row['model_ram_bytes']:,} | "
            f"{'yes' if exact else 'no'} ({row['inputs_bit_exact_with_tflm']} of "
            f"{row['inputs']}) | {'met' if row['instructions_per_mac'] <= target else 'NOT met'} | "
            + (f"{target * row['macs'] / row['requantized_outputs']:.1f} |"
               if row.get("requantized_outputs") else "– |"))
    return lines + [""]


def _plots_section(plots: dict) -> list[str]:
    titles = {"accuracy_vs_flash": "Accuracy versus size",
              "instructions_per_core": "Instructions per beat by core",
              "confusion_matrices": "Confusion matrices",
              "pla_centroids": "PLA centroids"}
    lines = ["## Plots", ""]
    for name, path in plots.items():
        lines += [f"![{titles.get(name, name)}]({path})", ""]
    return lines


def _percent(result: dict, key: str) -> str:
    return f"{100 * result[key]:.2f} %" if key in result else "–"


def _class_weights(weights: dict | None) -> str:
    if not weights:
        return "none"
    return ", ".join(f"{ECG5000_CLASSES[int(index)]} {value:.2f}"
                     for index, value in sorted(weights.items(), key=lambda item: int(item[0])))


def _main_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| model | runtime | beats | accuracy | sensitivity | precision | F1 | macro F1 | "
             "parameters | FLOPs/beat | file bytes | gzip bytes | TFLM arena bytes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        spread = row.get("spread")
        lines.append("| " + " | ".join([
            row["model"], row["runtime"], _number(row["n"]),
            *(format_spread(spread[column]) if spread else _number(row[column])
              for column in METRIC_COLUMNS),
            _number(row["parameters"]), _number(row["flops"]), _number(row["file_bytes"]),
            _number(row["gzip_bytes"]), _number(row["tflm_arena_bytes"])]) + " |")
        paper = row["paper"]
        if paper:
            lines.append("| " + " | ".join([
                f"*paper: {row['model']}*", "", "4,500", _number(paper.get("accuracy"), 3),
                "", "", _number(paper.get("f1"), 3), "", _number(paper.get("parameters")),
                _number(paper.get("flops")), _number(paper.get("size_bytes")), "", ""]) + " |")
    return lines


def _recall_table(rows: list[dict[str, Any]]) -> list[str]:
    present = rows[0]["per_class_recall"]
    names = [name for name in ECG5000_CLASSES if name in present] or sorted(present)
    lines = ["| model | runtime | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    for row in rows:
        spread = (row.get("spread") or {}).get("per_class_recall")
        lines.append(f"| {row['model']} | {row['runtime']} | " + " | ".join(
            format_spread(spread[name], 3) if spread else _number(row["per_class_recall"][name], 3)
            for name in names) + " |")
    return lines


def render_markdown(results: dict[str, Any]) -> str:
    """The results page."""
    baseline = results["baseline"]
    rows = baseline_rows(baseline, _spreads(results, "baseline"))
    pla_spreads = _spreads(results, "pla")
    training = baseline["training"]
    tflm = baseline["evaluations"]["int8_tflm"]
    lines = [
        "# Results",
        "",
        "Generated by `make bench` (`python -m pla_tvm.bench`); do not edit by hand. Every figure",
        "comes from this run or from a cached stage with identical settings; rows in *italics* are",
        "the seed paper's published numbers (IJCNN 2021), over the official 4,500 test beats.",
        "",
        "Test split: ECG5000, 4,499 beats (the shared copy lacks one class-1 beat). "
        "Sensitivity, precision and F1 are weighted by class support; macro F1 is unweighted.",
        "",
        *([f"Scores are mean ± standard deviation over {len(results['seeds']['runs'])} training "
           "seeds (see Seeds below); firmware, QEMU and tuning use the first seed's models.", ""]
          if "seeds" in results else []),
        "## Baseline: 1-D ResNet, pruned + int8 TFLite",
        "",
        *_main_table(rows),
        "",
        f"{_first_seed_note(rows[0]['spread'])}Training: {training['epochs_run']} epochs "
        f"(best {training['best_epoch']}), "
        f"{training['seconds']:.0f} s; class weights "
        f"{_class_weights(training['class_weights'])}; "
        f"pruning to {baseline['sparsity']['target']:.2f} reached "
        f"{baseline['sparsity']['reached']:.3f} sparsity. TFLite Micro agreed with the "
        "TFLite interpreter on "
        f"{_percent(tflm, 'class_agreement_with_int8_tflite')} of the predicted classes "
        "(optimised kernels) and on "
        f"{_percent(tflm, 'class_agreement_with_int8_tflite_reference_kernels')} "
        "(reference kernels).",
        "",
        *(_pla_section(results["pla"], pla_spreads) if "pla" in results else []),
        *(_references_section(results["pla"], _spreads(results, "references"))
          if "pla" in results else []),
        *(_small_pla_section(results["small_pla"], _variant_spread_mean(
            _spreads(results, "baseline"), "int8_tflite",
            fallback=baseline["evaluations"]["int8_tflite"]["accuracy"]),
            _spreads(results, "pla_16k"), _seed_sizes(results, "pla_16k"))
          if "small_pla" in results else []),
        *(_pla4_section(results["pla_4bit"], _spreads(results, "pla_4bit"))
          if "pla_4bit" in results else []),
        *(_issue15_section(results) if "seeds" in results else []),
        *(_seeds_section(results["seeds"]) if "seeds" in results else []),
        *(_swap_section(results["swap"]) if "swap" in results else []),
        *(_firmware_section(results["firmware"],
                            baseline["evaluations"]["int8_tflite"]["accuracy"],
                            results["pla"]["flops_per_beat"]["macs"],
                            results.get("baseline_firmware"),
                            deployed_costs(results["small_pla"])["macs"]
                            if "small_pla" in results else None)
          if "firmware" in results else []),
        *(_core_targets_section(results["firmware"], results.get("baseline_firmware"))
          if "firmware" in results else []),
        *(_baseline_firmware_section(results["baseline_firmware"])
          if "baseline_firmware" in results else []),
        *(_tuning_section(results["tuning"], results["pla"]["flops_per_beat"]["macs"])
          if "tuning" in results else []),
        *(_small_cnns_section(results["small_cnns"]) if "small_cnns" in results else []),
        *(_streaming_section(results["streaming"]) if "streaming" in results else []),
        *(_plots_section(results["plots"]) if "plots" in results else []),
        "## Recall per class",
        "",
        *_recall_table(rows + (pla_rows(results["pla"], pla_spreads)
                               + reference_rows(results["pla"], _spreads(results, "references"))
                               if "pla" in results else [])),
        "",
        f"Benchmark wall time: {results['bench_seconds']:.0f} s (stages: "
        + ", ".join(f"{name} {seconds:.0f} s"
                    for name, seconds in results.get("stage_seconds", {}).items()) + ").",
        "",
    ]
    return "\n".join(lines)


def write_report(results: dict[str, Any], docs: Path) -> None:
    """Write ``results.md`` and ``results.json`` into ``docs``."""
    docs = Path(docs)
    docs.mkdir(parents=True, exist_ok=True)
    write_json_atomically(docs / "results.json", results)
    write_atomically(docs / "results.md", render_markdown(results).encode())
