"""LowerQDQToInteger: TVMScript before/after, and an int8 TFLite ResNet against the interpreter."""

import numpy as np
import pytest
import tvm
from tvm import relax, te
from tvm.script import ir as I
from tvm.script import relax as R
from tvm.script import tirx as T

from relay_passes import (
    FloatRegion,
    LowerQDQToInteger,
    float_regions,
    import_tflite,
    quantize_multiplier,
)
from relay_passes.fixed_point import REQUANTIZE_ATTR, te_requantize


@I.ir_module
class DenseQDQ:
    @R.function
    def main(x: R.Tensor((1, 4), "int8"), w: R.Tensor((4, 3), "int8"),
             b: R.Tensor((3,), "int32")) -> R.Tensor((1, 3), "int8"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            lv = R.dequantize(x, R.const(0.5, "float32"), R.const(3, "int32"))
            lv1 = R.dequantize(w, R.const(0.01, "float32"), R.const(0, "int32"))
            lv2 = R.matmul(lv, lv1)
            lv3 = R.dequantize(b, R.const(0.005, "float32"), R.const(0, "int32"))
            lv4 = R.add(lv2, lv3)
            lv5 = R.nn.relu(lv4)
            gv = R.quantize(lv5, R.const(0.1, "float32"), R.const(-10, "int32"))
            R.output(gv)
        return gv


# The requantize kernel is a stub until _with_requantize() puts in the real PrimFunc; `c` is the
# folded bias, bound like the weights.
@I.ir_module(check_well_formed=False)
class DenseInteger:
    @T.prim_func(private=True)
    def requantize(acc: T.Buffer((1, 3), "int32")):
        T.evaluate(0)

    @R.function
    def main(x: R.Tensor((1, 4), "int8"), w: R.Tensor((4, 3), "int8"),
             c: R.Tensor((3,), "int32")) -> R.Tensor((1, 3), "int8"):
        R.func_attr({"num_input": 1})
        cls = DenseInteger
        with R.dataflow():
            lv = R.matmul(x, w, out_dtype="int32")
            lv1 = R.add(lv, c)
            gv = R.call_tir(cls.requantize, (lv1,), out_ty=R.Tensor((1, 3), "int8"))
            R.output(gv)
        return gv


# The fallback when the folded bias would leave int32.
@I.ir_module(check_well_formed=False)
class DenseZeroPointFree:
    @T.prim_func(private=True)
    def requantize(acc: T.Buffer((1, 3), "int32")):
        T.evaluate(0)

    @R.function
    def main(x: R.Tensor((1, 4), "int8"), w: R.Tensor((4, 3), "int8"),
             b: R.Tensor((3,), "int32")) -> R.Tensor((1, 3), "int8"):
        R.func_attr({"num_input": 1})
        cls = DenseZeroPointFree
        with R.dataflow():
            lv = R.astype(x, "int16")
            lv1 = R.subtract(lv, R.const(3, "int16"))
            lv2 = R.matmul(lv1, w, out_dtype="int32")
            lv3 = R.add(lv2, b)
            gv = R.call_tir(cls.requantize, (lv3,), out_ty=R.Tensor((1, 3), "int8"))
            R.output(gv)
        return gv


@I.ir_module
class AsymmetricWeights:
    @R.function
    def main(x: R.Tensor((1, 4), "int8"), w: R.Tensor((4, 3), "int8")) -> R.Tensor((1, 3), "int8"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            lv = R.dequantize(x, R.const(0.5, "float32"), R.const(3, "int32"))
            lv1 = R.dequantize(w, R.const(0.01, "float32"), R.const(7, "int32"))
            lv2 = R.matmul(lv, lv1)
            gv = R.quantize(lv2, R.const(0.1, "float32"), R.const(-10, "int32"))
            R.output(gv)
        return gv


WEIGHTS = np.random.default_rng(0).integers(-127, 128, (4, 3), dtype=np.int8)
BIAS = np.random.default_rng(1).integers(-500, 500, 3).astype(np.int32)


def _with_requantize(mod: tvm.IRModule) -> tvm.IRModule:
    """``mod`` with the requantize stub replaced by the kernel the pass emits for DenseQDQ."""
    mult, shift = quantize_multiplier(np.float64(np.float32(0.5)) * np.float64(np.float32(0.01))
                                      / np.float64(np.float32(0.1)))
    shape = [tvm.tirx.IntImm("int64", 1), tvm.tirx.IntImm("int64", 3)]  # call_te uses int64
    acc = te.placeholder(shape, "int32", name="acc")
    kernel = te.create_prim_func([acc, te_requantize(
        acc, lambda *i: tvm.tirx.const(int(mult), "int32"),
        lambda *i: tvm.tirx.const(int(shift), "int32"), -10, qmin=-10, qmax=127)],
        index_dtype_override="int64")
    mod[mod.get_global_var("requantize")] = kernel.without_attr("global_symbol")
    return mod


def test_dense_region_becomes_int8_matmul_with_folded_bias():
    before = relax.transform.BindParams("main", {"w": WEIGHTS, "b": BIAS})(DenseQDQ)
    folded = BIAS - 3 * WEIGHTS.astype(np.int32).sum(axis=0)  # bias - z_x * sum_k W[k, o]
    expected = _with_requantize(relax.transform.BindParams("main", {
        "w": WEIGHTS, "c": folded.astype(np.int32)})(DenseInteger))
    tvm.ir.assert_structural_equal(LowerQDQToInteger()(before), expected)


def test_folded_bias_outside_int32_keeps_the_zero_point_free_form():
    bias = np.full(3, np.iinfo(np.int32).min + 100, np.int32)
    weights = np.full((4, 3), 127, np.int8)  # -z_x * sum(W) = -1524 would leave int32
    before = relax.transform.BindParams("main", {"w": weights, "b": bias})(DenseQDQ)
    expected = _with_requantize(relax.transform.BindParams("main", {
        "w": weights, "b": bias})(DenseZeroPointFree))
    tvm.ir.assert_structural_equal(LowerQDQToInteger()(before), expected)


def test_asymmetric_weights_are_left_unchanged_and_reported(caplog):
    before = relax.transform.BindParams("main", {
        "w": np.ones((4, 3), np.int8)})(AsymmetricWeights)
    with caplog.at_level("WARNING", logger="relay_passes.lower_qdq_to_integer"):
        after = LowerQDQToInteger()(before)
    tvm.ir.assert_structural_equal(after, before)
    assert float_regions(after) == [FloatRegion("main", "gv", ("relax.matmul",))]
    assert caplog.messages == [
        "relax.matmul left in float between dequantize and quantize (main: gv)"]


# --------------------------------------------------------------------------------------------


def _constants(func: relax.Function) -> list[np.ndarray]:
    found = {}

    def visit(expr):
        if isinstance(expr, tvm.ir.expr.Constant) and isinstance(expr.ty, relax.TensorType):
            value = expr.value  # a runtime Tensor, or a Python scalar for scalar constants
            found[id(expr)] = np.asarray(value.numpy() if hasattr(value, "numpy") else value)

    relax.analysis.post_order_visit(func, visit)
    return list(found.values())


def _tflite_constant_bytes(model_bytes: bytes) -> int:
    import tflite

    model = tflite.Model.GetRootAsModel(model_bytes, 0)
    return sum(model.Buffers(i).DataLength() for i in range(model.BuffersLength()))


@pytest.fixture(scope="module")
def lowered(tiny_resnet):
    mod = import_tflite(tiny_resnet.int8_tflite)
    with tvm.transform.PassContext(opt_level=3):
        return tvm.transform.Sequential([LowerQDQToInteger(), relax.transform.FoldConstant()])(mod)


def test_lowered_int8_resnet_is_integer(lowered, tiny_resnet):
    constants = _constants(lowered["main"])
    assert not [c.shape for c in constants if c.dtype.kind == "f" and c.size > 1]
    total = sum(c.nbytes for c in constants)
    tflite_bytes = _tflite_constant_bytes(tiny_resnet.int8_tflite)
    assert total <= 1.1 * tflite_bytes, (total, tflite_bytes)
    ops = {b.value.op.name for block in lowered["main"].body.blocks for b in block.bindings
           if isinstance(b.value, relax.Call) and isinstance(b.value.op, tvm.ir.Op)}
    # Nothing is left in float: the head's softmax is TFLite's fixed-point int8 softmax too.
    assert not ops & {"relax.dequantize", "relax.quantize", "relax.nn.softmax"}


def test_no_region_is_left_in_float_and_none_is_reported(tiny_resnet, caplog):
    mod = import_tflite(tiny_resnet.int8_tflite)
    regions = float_regions(mod)
    assert len(regions) > 10  # before lowering: every convolution, add, mean, ..., the softmax
    assert ("relax.nn.softmax",) in [region.ops for region in regions]
    with caplog.at_level("WARNING", logger="relay_passes.lower_qdq_to_integer"):
        lowered_mod = LowerQDQToInteger()(mod)
    assert float_regions(lowered_mod) == [] and not caplog.messages


def _calls(func: relax.Function, *names: str) -> list[relax.Call]:
    ops = [tvm.ir.Op.get(name) for name in names]
    return [b.value for block in func.body.blocks for b in block.bindings
            if getattr(b.value, "op", None) in ops]


def test_convolutions_and_dense_read_int8_data_and_int8_weight_constants(lowered):
    # The input zero points are folded into the bias: no int16 copy of the activations, and
    # FoldConstant leaves the weights int8 constants (the same bytes as in the TFLite model).
    products = _calls(lowered["main"], "relax.nn.conv2d", "relax.matmul")
    assert {op.op.name for op in products} == {"relax.nn.conv2d", "relax.matmul"}
    for op in products:
        data, weights = op.args
        assert str(data.ty.dtype) == "int8" and str(op.ty.dtype) == "int32"
        assert isinstance(weights, tvm.ir.expr.Constant) and str(weights.ty.dtype) == "int8"
    assert not [c for c in _calls(lowered["main"], "relax.astype") if c.ty.dtype == "int16"]
    # Padded convolutions pad with the input zero point (TFLite's real-valued 0) beforehand.
    assert all(not any(int(p) for p in op.attrs.padding) for op in products
               if op.op.name == "relax.nn.conv2d")


def test_lowered_dense_legalizes_to_an_int8_by_int8_product(lowered):
    # The block micro's SMLAD micro-kernel matches: C = C + int32(x_int8) * int32(W_int8).
    legalized = relax.transform.LegalizeOps()(lowered)
    (matmul,) = [func for gvar, func in legalized.functions_items()
                 if gvar.name_hint.startswith("matmul")]
    schedule = tvm.s_tir.Schedule(matmul)
    product = schedule.get(schedule.get_sblock("matmul")).body.value.b
    for operand in (product.a, product.b):
        assert isinstance(operand, tvm.tirx.Cast) and str(operand.ty) == "int32"
        assert str(operand.value.source.dtype) == "int8"


def test_residual_add_of_same_shape_tensors_is_elementwise_and_fuses_into_a_convolution(lowered):
    with tvm.transform.PassContext(opt_level=3):
        annotated = tvm.transform.Sequential([
            relax.transform.LegalizeOps(), relax.transform.AnnotateTIROpPattern()])(lowered)
    same_shape_adds = [
        call.args[0] for call in _calls(annotated["main"], "relax.call_tir")
        if call.args[0].name_hint.startswith("quantized_add")
        and len({tuple(int(d) for d in arg.ty.shape) for arg in call.args[1]}) == 1]
    assert len(same_shape_adds) == 2  # the two residual adds
    for gvar in same_shape_adds:
        assert int(annotated[gvar].attrs["op_pattern"]) == 0  # kElemWise, not kBroadcast (1)
    with tvm.transform.PassContext(opt_level=3):
        fused = tvm.transform.Sequential([
            relax.transform.FoldConstant(), relax.transform.FuseOps(),
            relax.transform.FuseTIR()])(annotated)
    # FuseOps puts the first block's add in its last convolution's kernel (conv, bias,
    # requantize, add); the second block's add joins the other operand's MUL/ADD BatchNorm chain.
    kernels = [gvar.name_hint for gvar, _ in fused.functions_items()]
    assert [name for name in kernels if "conv2d" in name and "quantized_add" in name]


def _litert(model: bytes, resolver: str):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model,
                              experimental_op_resolver_type=getattr(OpResolverType, resolver))
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]

    def run(x):
        interpreter.set_tensor(input_index, x)
        interpreter.invoke()
        return interpreter.get_tensor(output_index)

    return run


def _tflite_micro(model: bytes):
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model)

    def run(x):
        interpreter.set_input(x, 0)
        interpreter.invoke()
        return interpreter.get_output(0)

    return run


# TFLite Micro's and TFLite's reference kernels do the arithmetic the pass emits, the int8
# softmax included (bit-exact on the inputs below); the optimized built-in kernels
# requantize some convolutions differently (final outputs: 2 of 300 inputs 1 LSB apart).
# XNNPACK requantizes in float and is not compared.
@pytest.mark.parametrize("runtime, max_lsb", [
    ("tflite_micro", 0),
    ("BUILTIN_REF", 0),
    ("BUILTIN_WITHOUT_DEFAULT_DELEGATES", 1),
])
def test_lowered_int8_resnet_matches_tflite(lowered, tiny_resnet, runtime, max_lsb):
    reference = (_tflite_micro(tiny_resnet.int8_tflite) if runtime == "tflite_micro"
                 else _litert(tiny_resnet.int8_tflite, runtime))
    vm = relax.VirtualMachine(tvm.compile(lowered, target="llvm"), tvm.cpu())
    rng = np.random.default_rng(9)
    inputs = rng.integers(-128, 128, (24, 1, 140, 1), dtype=np.int8)
    got = np.stack([vm["main"](tvm.runtime.tensor(x)).numpy() for x in inputs]).astype(np.int64)
    expected = np.stack([reference(x) for x in inputs]).astype(np.int64)
    assert np.abs(got - expected).max() <= max_lsb
    assert len(np.unique(expected)) > 10  # the outputs are not degenerate


def _mean_with_input_quantization(model: bytes) -> bytes:
    """The model with MEAN's output quantization set to its input's (edited in place)."""
    import tflite
    from tflite.BuiltinOperator import BuiltinOperator

    data = bytearray(model)
    parsed = tflite.Model.GetRootAsModel(data, 0)
    graph = parsed.Subgraphs(0)
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if parsed.OperatorCodes(op.OpcodeIndex()).BuiltinCode() == BuiltinOperator.MEAN:
            source = graph.Tensors(op.Inputs(0)).Quantization()
            target = graph.Tensors(op.Outputs(0)).Quantization()
            target.ScaleAsNumpy()[:] = source.ScaleAsNumpy()  # views into `data`
            target.ZeroPointAsNumpy()[:] = source.ZeroPointAsNumpy()
    return bytes(data)


def test_mean_with_equal_input_and_output_quantization(tiny_resnet):
    # TFLite takes a separate code path for MEAN when both quantizations are equal.
    model = _mean_with_input_quantization(tiny_resnet.int8_tflite)
    assert model != tiny_resnet.int8_tflite
    with tvm.transform.PassContext(opt_level=3):
        lowered = tvm.transform.Sequential([LowerQDQToInteger(), relax.transform.FoldConstant()])(
            import_tflite(model))
    vm = relax.VirtualMachine(tvm.compile(lowered, target="llvm"), tvm.cpu())
    reference = _tflite_micro(model)
    inputs = np.random.default_rng(3).integers(-128, 128, (24, 1, 140, 1), dtype=np.int8)
    for x in inputs:
        np.testing.assert_array_equal(vm["main"](tvm.runtime.tensor(x)).numpy(), reference(x))


@I.ir_module
class DenseRelu6QDQ:
    @R.function
    def main(x: R.Tensor((16, 8), "int8"),
             w: R.Tensor((8, 4), "int8")) -> R.Tensor((16, 4), "int8"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            lv = R.dequantize(x, R.const(0.1, "float32"), R.const(-2, "int32"))
            lv1 = R.dequantize(w, R.const(0.02, "float32"), R.const(0, "int32"))
            lv2 = R.clip(R.matmul(lv, lv1), 0.0, 6.0)
            gv = R.quantize(lv2, R.const(0.05, "float32"), R.const(-128, "int32"))
            R.output(gv)
        return gv


def test_relu6_clip_becomes_the_integer_clamp_range():
    weights = np.random.default_rng(5).integers(-127, 128, (8, 4), dtype=np.int8)
    before = relax.transform.BindParams("main", {"w": weights})(DenseRelu6QDQ)
    after = LowerQDQToInteger()(before)
    assert "relax.clip" not in str(after["main"])
    x = np.random.default_rng(6).integers(-128, 128, (16, 8), dtype=np.int8)
    outputs = []
    for mod in (before, after):
        vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
        outputs.append(vm["main"](tvm.runtime.tensor(x)).numpy().astype(np.int64))
    float_qdq, integer = outputs
    assert integer.min() == -128 and integer.max() == -128 + 120  # relu6: [z, z + round(6 / s)]
    assert np.abs(integer - float_qdq).max() <= 1


# --------------------------------------------------------------------------------------------
# Depthwise convolutions (DepthwiseConv1D, SeparableConv1D): the frontend imports them as a
# grouped conv2d (groups = channels, HWOI) on reshape(dequantize(W)).


def _lower(model: bytes) -> tvm.IRModule:
    with tvm.transform.PassContext(opt_level=3):
        return tvm.transform.Sequential([LowerQDQToInteger(), relax.transform.FoldConstant()])(
            import_tflite(model))


def _assert_bit_exact_with_tflite_micro(lowered_mod: tvm.IRModule, model: bytes, count: int):
    vm = relax.VirtualMachine(tvm.compile(lowered_mod, target="llvm"), tvm.cpu())
    reference = _tflite_micro(model)
    inputs = np.random.default_rng(11).integers(-128, 128, (count, 1, 140, 1), dtype=np.int8)
    got = np.stack([vm["main"](tvm.runtime.tensor(x)).numpy() for x in inputs])
    expected = np.stack([reference(x) for x in inputs])
    np.testing.assert_array_equal(got, expected)
    assert len(np.unique(expected)) > 10  # the outputs are not degenerate


def _depthwise_convolutions(func: relax.Function) -> list[relax.Call]:
    return [c for c in _calls(func, "relax.nn.conv2d") if int(c.attrs.groups) > 1]


@pytest.fixture(scope="module")
def depthwise_lowered(depthwise_int8):
    return _lower(depthwise_int8)


def test_depthwise_convolution_becomes_int8_grouped_conv2d(depthwise_lowered):
    func = depthwise_lowered["main"]
    assert not _calls(func, "relax.dequantize", "relax.quantize")
    (depthwise,) = _depthwise_convolutions(func)
    data, weights = depthwise.args
    assert int(depthwise.attrs.groups) == 8 and depthwise.attrs.kernel_layout == "HWOI"
    assert str(data.ty.dtype) == "int8" and str(depthwise.ty.dtype) == "int32"
    assert not any(int(p) for p in depthwise.attrs.padding)  # padded with z_x beforehand
    # The frontend's reshape of the [1, 1, 3, 8] TFLite weight is folded into an int8 constant.
    assert isinstance(weights, tvm.ir.expr.Constant) and str(weights.ty.dtype) == "int8"
    assert [int(d) for d in weights.ty.shape] == [1, 3, 8, 1]


def test_depthwise_model_is_bit_exact_with_tflite_micro(depthwise_lowered, depthwise_int8):
    # Left in float (dequantize -> conv2d -> quantize), this model's outputs differ from TFLite
    # Micro's by 1 LSB on about one input in nine (measured: 35 of 300).
    _assert_bit_exact_with_tflite_micro(depthwise_lowered, depthwise_int8, count=300)


def test_separable_model_with_depth_multiplier_2_is_bit_exact_with_tflite_micro(separable_int8):
    lowered_mod = _lower(separable_int8)
    assert not _calls(lowered_mod["main"], "relax.dequantize", "relax.quantize")
    (depthwise,) = _depthwise_convolutions(lowered_mod["main"])
    assert int(depthwise.attrs.groups) == 8 and int(depthwise.ty.shape[-1]) == 16
    _assert_bit_exact_with_tflite_micro(lowered_mod, separable_int8, count=300)


def test_separable_on_one_channel_input_is_bit_exact_with_tflite_micro(separable_on_input_int8):
    # One input channel: the depthwise weight is per-tensor and the frontend makes it an
    # ordinary (groups=1) HWIO convolution.
    _assert_bit_exact_with_tflite_micro(_lower(separable_on_input_int8), separable_on_input_int8,
                                        count=100)


def test_per_channel_requantization_without_left_shifts_when_every_shift_is_nonpositive(lowered):
    """Convolutions whose per-channel multipliers are all below 1 (shifts <= 0, the usual case)
    get the requantization without the variable 64-bit left shift and its max(shift, 0)."""
    scripts = [func.script() for func in lowered.functions.values()
               if isinstance(func, tvm.tirx.PrimFunc) and REQUANTIZE_ATTR in func.script()]
    assert scripts and any('"shifts_nonpositive": True' in text for text in scripts)
    assert not any('"shifts_nonpositive": True' in text and "T.LShift" in text
                   for text in scripts)
