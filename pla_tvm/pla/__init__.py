"""PLA: piecewise linear approximation of a network's trunk (k-means + per-cluster linear maps).

* :class:`PLAClassifier` -- the scikit-learn estimator (float); :class:`SoftmaxRegression` --
  its per-cluster map when distilling (``target="probabilities"``);
* :func:`select_pla` -- cross-validated choice of k and lambda under an int8 size budget;
* :func:`quantize_pla` / :class:`QuantizedPLA` -- int8 post-training quantization, with the
  integer reference in :mod:`pla_tvm.pla.reference`;
* :func:`save_pla` / :func:`load_pla` -- the versioned ``pla.npz``;
* :func:`float_tflite` / :func:`int8_tflite` -- TFLite models for TFLite and TFLite Micro;
* :mod:`pla_tvm.pla.costs` -- parameters, FLOPs, sizes; :mod:`pla_tvm.pla.pipeline` -- the
  ``compress`` command's work.
* :mod:`pla_tvm.pla.variants` -- :func:`~pla_tvm.pla.variants.compare_variants`, the estimator's
  variants (distillation, class weights, class partition, logits target, low rank) scored float
  and int8.
"""

from pla_tvm.pla.estimator import PLAClassifier, SmallClusterWarning, nearest_centroid
from pla_tvm.pla.npz_io import FORMAT_VERSION, BaselineRef, PLABundle, load_pla, save_pla
from pla_tvm.pla.quantize import QuantizedPLA, QuantParams, quantize_pla
from pla_tvm.pla.reference import int8_features, int8_logits, int8_predict
from pla_tvm.pla.selection import SelectionResult, select_pla
from pla_tvm.pla.softmax_regression import SoftmaxRegression
from pla_tvm.pla.tflite_export import float_tflite, int8_tflite

__all__ = [
    "FORMAT_VERSION", "BaselineRef", "PLABundle", "PLAClassifier", "QuantParams", "QuantizedPLA",
    "SelectionResult", "SmallClusterWarning", "SoftmaxRegression", "float_tflite",
    "int8_features", "int8_logits", "int8_predict", "int8_tflite", "load_pla", "nearest_centroid",
    "quantize_pla", "save_pla", "select_pla",
]
