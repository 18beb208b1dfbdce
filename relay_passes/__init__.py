"""TVM graph-level (Relax) passes for PLA: trunk swap, cluster-gated operator, int8 lowering.

The package keeps the user's name ``relay_passes`` although Relay was removed from TVM (v0.20);
these are Relax passes. It does not import ``pla_tvm``: PLA parameters come in as numpy arrays in
small dataclasses, and the passes work on any Relax module.
"""

from .cluster_gated_linear import (
    emit_cluster_gated_linear,
    make_cluster_gated_linear_int8_kernel,
    make_cluster_gated_linear_kernel,
    make_factored_cluster_gated_linear_int8_kernel,
)
from .errors import (
    BoundaryNotFoundError,
    ParameterError,
    ParameterMismatchError,
    PassError,
    UnsupportedPatternError,
)
from .fixed_point import multiply_by_quantized_multiplier, quantize_multiplier, requantize
from .lower_qdq_to_integer import FloatRegion, LowerQDQToInteger, float_regions
from .params import (
    ClusterGatedLinearParams,
    QuantizedClusterGatedLinearParams,
    QuantizedFactoredClusterGatedLinearParams,
    pack_int4,
    reference_forward,
    unpack_int4,
)
from .swap_trunk_for_pla import SwapTrunkForPLA
from .tflite_frontend import Conv1DOperatorConverter, import_tflite

__all__ = [
    "BoundaryNotFoundError",
    "ClusterGatedLinearParams",
    "Conv1DOperatorConverter",
    "FloatRegion",
    "LowerQDQToInteger",
    "ParameterError",
    "ParameterMismatchError",
    "PassError",
    "QuantizedClusterGatedLinearParams",
    "QuantizedFactoredClusterGatedLinearParams",
    "SwapTrunkForPLA",
    "UnsupportedPatternError",
    "emit_cluster_gated_linear",
    "float_regions",
    "import_tflite",
    "make_cluster_gated_linear_int8_kernel",
    "make_cluster_gated_linear_kernel",
    "make_factored_cluster_gated_linear_int8_kernel",
    "multiply_by_quantized_multiplier",
    "pack_int4",
    "quantize_multiplier",
    "reference_forward",
    "requantize",
    "unpack_int4",
]
