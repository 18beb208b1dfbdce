"""Import TFLite models whose Keras source used Conv1D, working around three frontend gaps.

tf_keras ``Conv1D`` converts to ``EXPAND_DIMS -> CONV_2D -> RESHAPE`` in TFLite (``SeparableConv1D``
and ``DepthwiseConv1D`` to ``EXPAND_DIMS -> DEPTHWISE_CONV_2D [-> CONV_2D] -> RESHAPE``). The Relax
TFLite frontend of apache-tvm 0.27.0.post1 cannot import all of that:

* its ``EXPAND_DIMS`` converter calls ``relax.op.expand_dims(x, axis, 1)``, a Relay-era signature
  (TypeError: expand_dims() takes 2 positional arguments but 3 were given), so float models fail;
* ``EXPAND_DIMS`` is missing from its set of supported quantized operators, so full-int8 models are
  rejected before conversion (OpNotImplemented);
* its ``DEPTHWISE_CONV_2D`` converter requires a per-tensor weight quantization to say
  ``QuantizedDimension() == 0``, but the TFLite converter writes 3 (the channel axis) for every
  depthwise weight, also when the layer has one channel and so one scale: a full-int8
  ``SeparableConv1D`` on a one-channel input (weight ``[1, 1, K, 1]``) fails with
  "Per-tensor DepthwiseConv2D weight QuantizedDimension() must be 0, got 3".

``from_tflite`` accepts an ``op_converter`` class; :class:`Conv1DOperatorConverter` is that
frontend's converter with ``EXPAND_DIMS`` fixed and with the quantized dimension of every
single-scale (per-tensor) quantization read as 0, since one scale applies along no axis. For int8
tensors EXPAND_DIMS only inserts a unit axis, so, like the frontend's RESHAPE, it keeps the integer
tensor (TFLite requires equal input and output quantization). Drop this module when the frontend
is fixed upstream.
"""

from __future__ import annotations

from tvm import relax
from tvm.ir.module import IRModule
from tvm.relax.frontend.tflite import from_tflite
from tvm.relax.frontend.tflite.tflite_frontend import OperatorConverter

from .errors import UnsupportedPatternError


class Conv1DOperatorConverter(OperatorConverter):
    """The Relax TFLite ``OperatorConverter`` with a working (float and int8) ``EXPAND_DIMS`` and
    per-tensor quantizations accepted whatever quantized dimension they state."""

    _SUPPORTED_QUANTIZED_OPS = OperatorConverter._SUPPORTED_QUANTIZED_OPS | {"EXPAND_DIMS"}

    def get_tensors(self, tensors_idx_list):
        """The frontend's tensor wrappers, with ``axis`` 0 for single-scale quantizations.

        A per-tensor quantization has one scale, which applies along no axis; its
        ``QuantizedDimension()`` carries no meaning, but the frontend's depthwise converter
        rejects any value but 0 there.
        """
        wrappers = super().get_tensors(tensors_idx_list)
        for wrapper in wrappers:
            if wrapper.qnn_params is not None and (
                    wrapper.tensor.Quantization().ScaleLength() == 1):
                wrapper.qnn_params["axis"] = 0
        return wrappers

    def convert_expand_dims(self, op):
        """Convert TFLite EXPAND_DIMS to ``R.expand_dims`` (same quantization in and out)."""
        input_tensor, axis_tensor = self.get_input_tensors(op)
        output_tensor = self.get_output_tensors(op)[0]
        if input_tensor.qnn_params and not self.has_same_qnn_params(input_tensor, output_tensor):
            raise UnsupportedPatternError(
                "TFLite EXPAND_DIMS with different input and output quantization is not supported")
        axis = int(self.get_tensor_value(axis_tensor).reshape(-1)[0])
        return relax.op.expand_dims(self.get_tensor_expr(input_tensor), axis)


def import_tflite(model_bytes: bytes) -> IRModule:
    """Import a TFLite flatbuffer into Relax with :class:`Conv1DOperatorConverter`.

    Parameters
    ----------
    model_bytes : bytes
        Contents of a ``.tflite`` file (float or full-int8).

    Returns
    -------
    tvm.IRModule
        The module ``relax.frontend.tflite.from_tflite`` returns; ``main`` takes the model input
        with its TFLite shape and dtype.
    """
    import tflite  # noqa: PLC0415  (the flatbuffer schema, needed only here)

    model = tflite.Model.GetRootAsModel(model_bytes, 0)
    return from_tflite(model, op_converter=Conv1DOperatorConverter)
