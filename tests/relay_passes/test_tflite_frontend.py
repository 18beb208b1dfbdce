"""import_tflite: TFLite models of tf_keras Conv1D-family layers the stock frontend rejects."""

import tvm
from tvm import relax

from relay_passes import import_tflite
from relay_passes._relax_utils import as_dequantize, op_name, var_bindings


def _conv2d_weights(mod: tvm.IRModule) -> list:
    """The dequantized weight operand of every ``R.nn.conv2d`` in ``main``."""
    func = mod["main"]
    values = {b.var: b.value for b in var_bindings(func)}

    def resolve(expr):
        return values.get(expr, expr)

    return [as_dequantize(b.value.args[1], resolve) for b in var_bindings(func)
            if op_name(b.value) == "relax.nn.conv2d"]


def test_per_tensor_depthwise_weight_with_quantized_dimension_3_imports(
        separable_on_input_int8):
    # The converter stores the one-scale depthwise weight [1, 1, 5, 1] with quantized dimension 3;
    # TVM 0.27's own converter raises "Per-tensor DepthwiseConv2D weight QuantizedDimension() must
    # be 0, got 3".
    mod = import_tflite(separable_on_input_int8)
    depthwise, pointwise = _conv2d_weights(mod)
    assert depthwise.per_tensor and depthwise.axis == 0
    assert [int(d) for d in depthwise.data.ty.shape] == [1, 5, 1, 1]  # HWIO, one channel
    assert pointwise.scale.size == 8 and pointwise.axis == 3  # per-channel stays per-channel
    assert relax.analysis.check_well_formed(mod)
    assert str(mod["main"].params[0].ty.dtype) == "int8"
