"""Parameter, multiply-accumulate and FLOP counts of a Keras model, computed from its layer shapes.

FLOPs count a multiply-accumulate as two operations and include the element-wise work the paper's
count evidently includes (bias adds, batch normalisation as a scale and a shift, ReLU, residual
adds, pooling, softmax), for one beat. Inference-time FLOPs: batch norm is not folded here, as in
the Keras graph the paper counted.
"""

from __future__ import annotations

import numpy as np


def _elements(shape) -> int:
    return int(np.prod([dim for dim in shape[1:] if dim is not None]))


def layer_macs(layer) -> int:
    """Multiply-accumulates of one layer for a single input (batch dimension ignored).

    Counts ``Conv1D``, ``DepthwiseConv1D``, ``SeparableConv1D`` (its depthwise and pointwise
    parts) and ``Dense``; every other layer does none. A depthwise convolution's output has
    ``channels * depth_multiplier`` values per position, each a ``width``-tap dot product.
    """
    kind = type(layer).__name__
    output = _elements(layer.output.shape)
    if kind == "Conv1D":
        width, channels, _ = layer.kernel.shape  # [width, in, out]
        return output * int(width) * int(channels)
    if kind == "DepthwiseConv1D":
        return output * int(layer.depthwise_kernel.shape[0])
    if kind == "SeparableConv1D":
        width, channels, multiplier = layer.depthwise_kernel.shape  # [width, in, multiplier]
        positions = int(layer.output.shape[1])
        depthwise = positions * int(channels) * int(multiplier) * int(width)
        return depthwise + output * int(channels) * int(multiplier)
    if kind == "Dense":
        return output * int(layer.kernel.shape[0])
    return 0


def model_macs(model) -> int:
    """Total multiply-accumulates for one beat."""
    return sum(layer_macs(layer) for layer in model.layers)


def layer_flops(layer) -> int:
    """FLOPs of one layer for a single input (batch dimension ignored)."""
    kind = type(layer).__name__
    output = _elements(layer.output.shape)
    if kind in ("Conv1D", "Dense"):
        flops = 2 * layer_macs(layer) + (output if layer.use_bias else 0)
        if kind == "Dense" and layer.activation.__name__ == "softmax":
            flops += 3 * output  # exp, sum, divide
        return flops
    if kind == "BatchNormalization":
        return 2 * output
    if kind in ("ReLU", "Add"):
        return output
    if kind == "GlobalAveragePooling1D":
        return _elements(layer.input.shape)
    return 0


def model_flops(model) -> int:
    """Total FLOPs for one beat."""
    return sum(layer_flops(layer) for layer in model.layers)


def model_parameters(model) -> int:
    """All parameters, trainable or not (batch-norm statistics included, as Keras counts)."""
    return int(model.count_params())
