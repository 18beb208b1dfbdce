"""The versioned ``pla.npz`` file: everything needed to rebuild a float and int8 PLA model.

One flat ``.npz`` (no pickles: loadable with ``allow_pickle=False`` from any numpy, or from C via a
zip reader) so the TVM pass, the firmware generator and other tools can read it without this
package. Keys (``k`` clusters, input length ``D``, features ``d``, ``C`` classes):

===========================  =================  ==========================================
key                          dtype / shape      meaning
===========================  =================  ==========================================
format_version               int64 ()           :data:`FORMAT_VERSION`
centroids                    float32 [k, D]     k-means centres
weights                      float32 [k, D, d]  ``features = x @ weights[c] + biases[c]``
biases                       float32 [k, d]
head_weights                 float32 [d, C]     ``logits = features @ head_weights + head_bias``
head_bias                    float32 [C]
classes                      int64 [C]          label of each logit
n_clusters, alpha            int64, float64 ()  the chosen k and lambda
input_normalization          str ()             what the beats must look like before the model
baseline_path, baseline_sha256  str ()          the baseline imitated ('' when none)
baseline_int8_sha256         str ()             its int8 model's SHA-256 (optional: '' or absent)
q_input_scale/zero_point     float64/int64 ()   int8 input quantization
q_centroids                  int8 [k, D]        centroids at the input scale, zero point 0
q_weights                    int8 [k, D, d]     per cluster and output channel
q_weight_scales              float32 [k, d]
q_biases                     int32 [k, d]
q_feature_scale/zero_point   float64/int64 ()   int8 feature (operator output) quantization
q_head_weights               int8 [d, C]        int8 head (see below)
q_head_weight_scales         float32 [C]
q_head_bias                  int32 [C]
q_logit_scale/zero_point     float64/int64 ()   int8 logit quantization
===========================  =================  ==========================================

``q_weights`` and ``q_weight_scales`` are the full int8 maps. A low-rank model (``rank`` set,
``W_c = U_c V_c``; ``r`` the rank) also stores its float factors, and when quantized factored
(:class:`~relay_passes.params.QuantizedFactoredClusterGatedLinearParams`) its int8 maps replace
``q_weights`` / ``q_weight_scales`` (``q_biases`` is then the second layer's bias):

===========================  =================  ==========================================
weights_left                 float32 [k, D, r]  ``U_c`` (``weights = weights_left @ weights_right``)
weights_right                float32 [k, r, d]  ``V_c``
q_left_weights               int8 [k, D, r]     ``U_c`` per cluster and output channel
q_left_weight_scales         float32 [k, r]
q_left_biases                int32 [k, r]       first layer's bias at ``s_x * s_U``
q_hidden_scale/zero_point    float64/int64 ()   int8 intermediate ``h`` quantization
q_right_weights              int8 [k, r, d]     ``V_c`` per cluster and output channel
q_right_weight_scales        float32 [k, d]
===========================  =================  ==========================================

A model with 4-bit maps (version 4) stores ``q_weight_bits`` (int64 (), 4): its map weights
(``q_weights``, or ``q_left_weights`` and ``q_right_weights``) then hold values in ``[-7, 7]``, one
per int8 (the operator packs them; the file stays readable without knowing the packing). Without
the key the maps are 8-bit.

Version 2 files (full int8 maps only, no factor keys) and version 3 files (no ``q_weight_bits``)
are read as they are.

When the model imitates a baseline with an int8 TFLite model, every ``q_input_*``, ``q_feature_*``,
``q_head_*`` and ``q_logit_*`` value is that model's own (its last FULLY_CONNECTED op; a
per-tensor weight scale repeated per class), so the int8 PLA model computes exactly what the
baseline's int8 graph computes once its trunk is swapped for PLA. Version 1 files quantized the
head themselves even then; they are refused rather than silently disagreeing with the swapped
graph.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pla_tvm.errors import ModelError
from pla_tvm.pla.estimator import PLAClassifier
from pla_tvm.pla.quantize import QuantizedPLA, QuantParams
from relay_passes.errors import ParameterError
from relay_passes.params import (
    QuantizedClusterGatedLinearParams,
    QuantizedFactoredClusterGatedLinearParams,
)

#: Version of the key layout; bump when keys or their meaning change. Version 3 added the
#: low-rank factors and the factored int8 maps (optional key groups), version 4 the optional
#: ``q_weight_bits``.
FORMAT_VERSION = 4

#: Versions :func:`load_pla` reads (version 2 is version 3 without the factored keys, version 3
#: is version 4 with 8-bit maps).
READABLE_VERSIONS = (2, 3, 4)

#: How ECG beats are prepared before PLA sees them (see pla_tvm.data.beats).
INPUT_NORMALIZATION = "per-beat z-score of D samples (pla_tvm.data.znormalize)"

# key -> (dtype, shape with symbolic dims k, D, d, C); "str" is a unicode string scalar.
_SCHEMA: dict[str, tuple[str, tuple[str, ...]]] = {
    "format_version": ("int64", ()),
    "centroids": ("float32", ("k", "D")),
    "weights": ("float32", ("k", "D", "d")),
    "biases": ("float32", ("k", "d")),
    "head_weights": ("float32", ("d", "C")),
    "head_bias": ("float32", ("C",)),
    "classes": ("int64", ("C",)),
    "n_clusters": ("int64", ()),
    "alpha": ("float64", ()),
    "input_normalization": ("str", ()),
    "baseline_path": ("str", ()),
    "baseline_sha256": ("str", ()),
    "q_input_scale": ("float64", ()),
    "q_input_zero_point": ("int64", ()),
    "q_centroids": ("int8", ("k", "D")),
    "q_biases": ("int32", ("k", "d")),
    "q_feature_scale": ("float64", ()),
    "q_feature_zero_point": ("int64", ()),
    "q_head_weights": ("int8", ("d", "C")),
    "q_head_weight_scales": ("float32", ("C",)),
    "q_head_bias": ("int32", ("C",)),
    "q_logit_scale": ("float64", ()),
    "q_logit_zero_point": ("int64", ()),
}

#: The full int8 maps (every version 2 file; version 3 unless factored).
_FULL_INT8: dict[str, tuple[str, tuple[str, ...]]] = {
    "q_weights": ("int8", ("k", "D", "d")),
    "q_weight_scales": ("float32", ("k", "d")),
}

#: The float factors of a low-rank model (version 3, optional).
_FACTORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "weights_left": ("float32", ("k", "D", "r")),
    "weights_right": ("float32", ("k", "r", "d")),
}

#: The factored int8 maps (version 3, instead of :data:`_FULL_INT8`).
_FACTORED_INT8: dict[str, tuple[str, tuple[str, ...]]] = {
    "q_left_weights": ("int8", ("k", "D", "r")),
    "q_left_weight_scales": ("float32", ("k", "r")),
    "q_left_biases": ("int32", ("k", "r")),
    "q_hidden_scale": ("float64", ()),
    "q_hidden_zero_point": ("int64", ()),
    "q_right_weights": ("int8", ("k", "r", "d")),
    "q_right_weight_scales": ("float32", ("k", "d")),
}


@dataclass(frozen=True)
class BaselineRef:
    """The baseline a PLA model imitates: where it was read from and its content hash."""

    path: str = ""
    sha256: str = ""
    int8_sha256: str = ""


@dataclass(frozen=True, eq=False)
class PLABundle:
    """What a ``pla.npz`` holds: the float model, its int8 version and provenance."""

    model: PLAClassifier
    quantized: QuantizedPLA
    baseline: BaselineRef = field(default_factory=BaselineRef)


def save_pla(path: str | Path, bundle: PLABundle) -> Path:
    """Write a bundle as a versioned ``.npz``.

    Parameters
    ----------
    path : str or Path
        Output file (conventionally ``pla.npz``).
    bundle : PLABundle
        Fitted float model, int8 model and baseline reference.

    Returns
    -------
    Path
        The file written.
    """
    model, quantized, op = bundle.model, bundle.quantized, bundle.quantized.operator
    arrays = {
        "format_version": np.int64(FORMAT_VERSION),
        "centroids": model.centroids_.astype(np.float32),
        "weights": model.coef_.astype(np.float32),
        "biases": model.intercept_.astype(np.float32),
        "head_weights": model.head_weights_.astype(np.float32),
        "head_bias": model.head_bias_.astype(np.float32),
        "classes": np.asarray(model.classes_, dtype=np.int64),
        "n_clusters": np.int64(model.n_clusters_),
        "alpha": np.float64(model.alpha),
        "input_normalization": np.str_(INPUT_NORMALIZATION),
        "baseline_path": np.str_(bundle.baseline.path),
        "baseline_sha256": np.str_(bundle.baseline.sha256),
        "baseline_int8_sha256": np.str_(bundle.baseline.int8_sha256),
        "q_input_scale": np.float64(op.input_scale),
        "q_input_zero_point": np.int64(op.input_zero_point),
        "q_centroids": op.centroids_q,
        "q_biases": op.bias_q,
        "q_feature_scale": np.float64(op.output_scale),
        "q_feature_zero_point": np.int64(op.output_zero_point),
        "q_head_weights": quantized.head_weights_q,
        "q_head_weight_scales": quantized.head_weight_scales,
        "q_head_bias": quantized.head_bias_q,
        "q_logit_scale": np.float64(quantized.logits.scale),
        "q_logit_zero_point": np.int64(quantized.logits.zero_point),
    }
    if getattr(model, "coef_left_", None) is not None:
        arrays["weights_left"] = model.coef_left_.astype(np.float32)
        arrays["weights_right"] = model.coef_right_.astype(np.float32)
    if isinstance(op, QuantizedFactoredClusterGatedLinearParams):
        arrays.update({
            "q_left_weights": op.left_q, "q_left_weight_scales": op.left_scales,
            "q_left_biases": op.left_bias_q, "q_hidden_scale": np.float64(op.hidden_scale),
            "q_hidden_zero_point": np.int64(op.hidden_zero_point),
            "q_right_weights": op.right_q, "q_right_weight_scales": op.right_scales})
    else:
        arrays.update({"q_weights": op.weights_q, "q_weight_scales": op.weight_scales})
    if op.weight_bits != 8:
        arrays["q_weight_bits"] = np.int64(op.weight_bits)
    path = Path(path)
    with path.open("wb") as handle:  # a file handle stops numpy from appending '.npz'
        np.savez(handle, **arrays)
    return path


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise ModelError(f"{path}: no such PLA model file") from None
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ModelError(f"{path}: not a readable .npz file ({error})") from None


def _schema(arrays: dict[str, np.ndarray]) -> dict[str, tuple[str, tuple]]:
    """The keys this file must hold: the common ones, the full or the factored int8 maps, and
    the float factors when present (version 3)."""
    schema = dict(_SCHEMA)
    factored = any(key in arrays for key in _FACTORED_INT8)
    if int(arrays["format_version"]) == 2 or not factored:
        schema.update(_FULL_INT8)
    else:
        schema.update(_FACTORED_INT8)
    if int(arrays["format_version"]) >= 3 and (factored or any(key in arrays
                                                                for key in _FACTORS)):
        schema.update(_FACTORS)
    return schema


def _check_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Version first (a newer layout explains every other mismatch), then keys, kinds, shapes."""
    if "format_version" not in arrays:
        raise ModelError(f"{path}: missing key 'format_version'; not a PLA model file")
    version = arrays["format_version"]
    if (version.shape != () or version.dtype.kind not in "iu"
            or int(version) not in READABLE_VERSIONS):
        raise ModelError(f"{path}: format_version {version.tolist()!r} is not supported; this "
                         f"pla-tvm reads versions "
                         f"{', '.join(str(v) for v in READABLE_VERSIONS)}")
    schema = _schema(arrays)
    missing = [key for key in schema if key not in arrays]
    if missing:
        raise ModelError(f"{path}: missing key(s) {', '.join(missing)}")
    k, dim = arrays["centroids"].shape if arrays["centroids"].ndim == 2 else (None, None)
    head = arrays["head_weights"].shape
    left = arrays.get("weights_left", arrays.get("q_left_weights"))
    sizes = {"k": k, "D": dim, "d": head[0] if len(head) == 2 else None,
             "C": head[1] if len(head) == 2 else None,
             "r": left.shape[2] if left is not None and left.ndim == 3 else None}
    for key, (dtype, dims) in schema.items():
        array = arrays[key]
        expected = tuple(sizes[dim] for dim in dims)
        if (array.dtype.kind != "U") if dtype == "str" else (array.dtype != np.dtype(dtype)):
            raise ModelError(f"{path}: {key} has dtype {array.dtype}, expected {dtype}")
        if array.shape != expected:
            shape = "[" + ", ".join(f"{d}={s}" for d, s in zip(dims, expected)) + "]"
            raise ModelError(f"{path}: {key} has shape {list(array.shape)}, expected "
                             f"{shape if dims else 'a scalar'}")
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ModelError(f"{path}: {key} holds {int(np.sum(~np.isfinite(array)))} NaN or "
                             "infinite value(s); expected finite numbers (a corrupt file?)")
    bits = arrays.get("q_weight_bits")
    if bits is not None and (bits.shape != () or bits.dtype.kind not in "iu"
                             or int(bits) not in (4, 8)):
        raise ModelError(f"{path}: q_weight_bits is {bits.tolist()!r}, expected 4 or 8")
    if int(arrays["n_clusters"]) != k:
        raise ModelError(f"{path}: n_clusters={int(arrays['n_clusters'])} but centroids hold "
                         f"k={k} clusters")


def load_pla(path: str | Path) -> PLABundle:
    """Read a ``pla.npz`` written by :func:`save_pla`, checking it first.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    PLABundle
        A fitted :class:`PLAClassifier` (predicts without refitting), its :class:`QuantizedPLA`
        and the baseline reference.

    Raises
    ------
    ModelError
        If the file is missing or unreadable, its ``format_version`` is not one of
        :data:`READABLE_VERSIONS`, a key is missing, an array has the wrong dtype or shape, or a
        float array holds NaN or infinity; the message names the file and the key.
    """
    path = Path(path)
    arrays = _read_arrays(path)
    _check_arrays(path, arrays)
    model = PLAClassifier.from_arrays(
        arrays["centroids"], arrays["weights"], arrays["biases"], arrays["head_weights"],
        arrays["head_bias"], alpha=float(arrays["alpha"]), classes=arrays["classes"],
        coef_left=arrays.get("weights_left"), coef_right=arrays.get("weights_right"),
        weight_bits=int(arrays.get("q_weight_bits", 8)))
    common = {"input_scale": float(arrays["q_input_scale"]),
              "input_zero_point": int(arrays["q_input_zero_point"]),
              "centroids_q": arrays["q_centroids"], "bias_q": arrays["q_biases"],
              "output_scale": float(arrays["q_feature_scale"]),
              "output_zero_point": int(arrays["q_feature_zero_point"]),
              "weight_bits": int(arrays.get("q_weight_bits", 8))}
    try:
        if "q_left_weights" in arrays:
            operator = QuantizedFactoredClusterGatedLinearParams(
                left_q=arrays["q_left_weights"], left_scales=arrays["q_left_weight_scales"],
                left_bias_q=arrays["q_left_biases"],
                hidden_scale=float(arrays["q_hidden_scale"]),
                hidden_zero_point=int(arrays["q_hidden_zero_point"]),
                right_q=arrays["q_right_weights"],
                right_scales=arrays["q_right_weight_scales"], **common)
        else:
            operator = QuantizedClusterGatedLinearParams(
                weights_q=arrays["q_weights"], weight_scales=arrays["q_weight_scales"], **common)
    except ParameterError as error:
        raise ModelError(f"{path}: invalid int8 parameters: {error}") from None
    quantized = QuantizedPLA(
        operator=operator, head_weights_q=arrays["q_head_weights"],
        head_weight_scales=arrays["q_head_weight_scales"], head_bias_q=arrays["q_head_bias"],
        logits=QuantParams(float(arrays["q_logit_scale"]), int(arrays["q_logit_zero_point"])),
        classes=arrays["classes"])
    baseline = BaselineRef(str(arrays["baseline_path"]), str(arrays["baseline_sha256"]),
                           str(arrays.get("baseline_int8_sha256", "")))
    return PLABundle(model=model, quantized=quantized, baseline=baseline)
