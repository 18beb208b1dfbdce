"""TFLite's int8 softmax in integer arithmetic (relay_passes.integer_softmax via LowerQDQToInteger),
bit-exact with TFLite Micro's reference kernel."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax
from tvm.script import ir as I
from tvm.script import relax as R

from relay_passes import LowerQDQToInteger, float_regions, import_tflite
from relay_passes._relax_utils import as_dequantize, op_name, var_bindings
from relay_passes.integer_softmax import softmax_int8, softmax_params

from .conftest import _convert


def _softmax_model(classes: int, spread: float, seed: int, dense: bool) -> bytes:
    """A full-int8 ``[Dense ->] Softmax`` on ``classes`` values, calibrated with random data of
    standard deviation ``spread`` (which sets the softmax's input scale)."""
    import tf_keras as keras  # noqa: PLC0415

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((classes,))
    logits = keras.layers.Dense(classes)(inputs) if dense else inputs
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    data = np.random.default_rng(seed).standard_normal((64, classes)) * spread
    return _convert(model, data.astype(np.float32))


def _inputs(classes: int, count: int, seed: int) -> np.ndarray:
    """Random int8 rows with extremes, ties, and wide and narrow ranges."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (count, classes), dtype=np.int8)
    x[0] = 127  # all tied at the top
    x[1] = -128  # all tied at the bottom
    x[2:12] = -128
    x[2:12, 0] = 127  # one maximum, the rest as far as possible
    x[12:30, :2] = x[12:30, :1]  # two-way ties at the maximum or not
    x[30:80] = rng.integers(-3, 4, (50, classes))  # narrow: differences of a few LSB
    x[80:120] = np.where(rng.random((40, classes)) < 0.5, -128, 127)  # wide: only extremes
    return x


def _vm(mod: tvm.IRModule) -> relax.VirtualMachine:
    return relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())


def _run(vm: relax.VirtualMachine, x: np.ndarray) -> np.ndarray:
    return np.stack([vm["main"](tvm.runtime.tensor(row[None])).numpy()[0] for row in x])


def _tflm(model: bytes, x: np.ndarray) -> np.ndarray:
    from pla_tvm.inference import TFLiteRunner  # noqa: PLC0415

    return TFLiteRunner(model, "softmax.tflite", "tflm").raw_outputs(x)


def _softmax_input_scale(mod: tvm.IRModule) -> float:
    (softmax,) = [b.value for b in var_bindings(mod["main"])
                  if op_name(b.value) == "relax.nn.softmax"]
    bindings = {b.var: b.value for b in var_bindings(mod["main"])}
    return float(as_dequantize(softmax.args[0], lambda e: bindings.get(e, e)).scale[0])


# Input scales from 0.003 (narrow logits: differences of hundreds of LSB still matter) to 1.07
# (wide: diff_min = -15, most differences are cut off).
SCALES = [(5, 0.1), (5, 1.0), (5, 10.0), (5, 40.0), (12, 0.1), (3, 3.0)]


@pytest.fixture(scope="module", params=SCALES, ids=lambda p: f"{p[0]}classes-spread{p[1]}")
def softmax_only(request) -> tuple[bytes, int]:
    classes, spread = request.param
    return _softmax_model(classes, spread, seed=0, dense=False), classes


def test_numpy_reference_matches_tflite_micro(softmax_only):
    model, classes = softmax_only
    x = _inputs(classes, 300, seed=1)
    params = softmax_params(_softmax_input_scale(import_tflite(model)))
    np.testing.assert_array_equal(softmax_int8(x, params), _tflm(model, x))


def test_lowered_softmax_is_bit_exact_with_tflite_micro(softmax_only):
    model, classes = softmax_only
    lowered = LowerQDQToInteger()(import_tflite(model))
    assert float_regions(lowered) == []
    x = _inputs(classes, 300, seed=2)
    expected = _tflm(model, x)
    np.testing.assert_array_equal(_run(_vm(lowered), x), expected)
    assert len(np.unique(expected)) > 10


@pytest.fixture(scope="module")
def dense_softmax() -> bytes:
    return _softmax_model(5, 1.0, seed=3, dense=True)


def test_dense_softmax_is_integer_and_bit_exact_with_tflite_micro(dense_softmax, caplog):
    mod = import_tflite(dense_softmax)
    with caplog.at_level("WARNING", logger="relay_passes.lower_qdq_to_integer"):
        with tvm.transform.PassContext(opt_level=3):
            lowered = tvm.transform.Sequential([LowerQDQToInteger(),
                                                relax.transform.FoldConstant()])(mod)
    assert float_regions(lowered) == [] and not caplog.messages
    ops = {op_name(b.value) for b in var_bindings(lowered["main"])}
    assert not ops & {"relax.nn.softmax", "relax.dequantize", "relax.quantize"}
    assert all(not str(b.var.ty.dtype).startswith("float")
               for b in var_bindings(lowered["main"]))
    # No float in the kernels either: no PrimFunc mentions a float type.
    legalized = relax.transform.LegalizeOps()(lowered)
    kernels = [func for _, func in legalized.functions_items()
               if isinstance(func, tvm.tirx.PrimFunc)]
    assert any(func.script().count("softmax_exp") for func in kernels)
    assert all("float" not in func.script() for func in kernels)
    x = _inputs(5, 500, seed=4)
    np.testing.assert_array_equal(_run(_vm(lowered), x), _tflm(dense_softmax, x))


@I.ir_module
class OtherOutputScale:
    @R.function
    def main(x: R.Tensor((1, 5), "int8")) -> R.Tensor((1, 5), "int8"):
        with R.dataflow():
            lv = R.dequantize(x, R.const(0.05, "float32"), R.const(3, "int32"), axis=0)
            lv1 = R.nn.softmax(lv, axis=-1)
            gv = R.quantize(lv1, R.const(1.0 / 128, "float32"), R.const(-128, "int32"),
                            out_dtype="int8", axis=0)
            R.output(gv)
        return gv


@I.ir_module
class FirstAxis:
    @R.function
    def main(x: R.Tensor((4, 5), "int8")) -> R.Tensor((4, 5), "int8"):
        with R.dataflow():
            lv = R.dequantize(x, R.const(0.05, "float32"), R.const(3, "int32"), axis=0)
            lv1 = R.nn.softmax(lv, axis=0)
            gv = R.quantize(lv1, R.const(1.0 / 256, "float32"), R.const(-128, "int32"),
                            out_dtype="int8", axis=0)
            R.output(gv)
        return gv


@pytest.mark.parametrize("mod", [OtherOutputScale, FirstAxis], ids=["scale-1/128", "axis-0"])
def test_other_softmax_regions_stay_in_float(mod):
    (region,) = float_regions(LowerQDQToInteger()(mod))
    assert region.ops == ("relax.nn.softmax",)


def test_softmax_params_follow_tflite_prepare():
    # PreprocessSoftmaxScaling(beta=1, s, 5): s * 2**26 = 1.8e6 is in [2**20, 2**21), so the
    # left shift is 21 and the multiplier round(s * 2**26 / 2**21 * 2**31);
    # -CalculateInputRadius(5, 21) = -floor(31 * 2**26 / 2**21) = -992.
    scale = np.float32(0.02681691013276577)
    params = softmax_params(scale)
    expected_multiplier = int(np.round(np.float64(scale) * 2.0**26 / 2.0**21 * 2.0**31))
    assert (params.input_multiplier, params.input_left_shift, params.diff_min) == (
        expected_multiplier, 21, -992)
