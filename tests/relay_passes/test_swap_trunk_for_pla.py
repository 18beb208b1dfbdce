"""SwapTrunkForPLA: TVMScript before/after, error cases, and a TF -> TFLite -> Relax round trip."""

import numpy as np
import pytest
import tvm
from tvm import relax
from tvm.script import ir as I
from tvm.script import relax as R
from tvm.script import tirx as T

from relay_passes import (
    BoundaryNotFoundError,
    ClusterGatedLinearParams,
    LowerQDQToInteger,
    ParameterMismatchError,
    PassError,
    QuantizedClusterGatedLinearParams,
    QuantizedFactoredClusterGatedLinearParams,
    SwapTrunkForPLA,
    import_tflite,
    make_cluster_gated_linear_int8_kernel,
    make_cluster_gated_linear_kernel,
    make_factored_cluster_gated_linear_int8_kernel,
    reference_forward,
    requantize,
)

# --------------------------------------------------------------------------------------------
# Hand-written graphs: input [1, 8, 1] -> trunk -> features [1, 4] -> dense [4, 3] -> softmax.


@I.ir_module
class FloatModel:
    @R.function
    def main(x: R.Tensor((1, 8, 1), "float32"),
             w: R.Tensor((4, 3), "float32")) -> R.Tensor((1, 3), "float32"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            lv = R.reshape(x, R.shape([1, 4, 2]))
            lv1 = R.nn.relu(lv)
            lv2 = R.mean(lv1, axis=[2])
            lv3 = R.matmul(lv2, w)
            gv = R.nn.softmax(lv3, axis=-1)
            R.output(gv)
        return gv


# The kernel is a stub (so the template is not well formed) until _expected() puts in the
# real PrimFunc; the constants are parameters until _expected() binds them.
@I.ir_module(check_well_formed=False)
class FloatExpected:
    @T.prim_func(private=True)
    def cluster_gated_linear(x: T.Buffer((1, 8), "float32")):
        T.evaluate(0)  # replaced by the real kernel in _expected()

    @R.function
    def main(x: R.Tensor((1, 8, 1), "float32"), w: R.Tensor((4, 3), "float32"),
             centroids: R.Tensor((2, 8), "float32"), centroid_norms: R.Tensor((2,), "float32"),
             weights: R.Tensor((2, 8, 4), "float32"),
             biases: R.Tensor((2, 4), "float32")) -> R.Tensor((1, 3), "float32"):
        R.func_attr({"num_input": 1})
        cls = FloatExpected
        with R.dataflow():
            lv = R.reshape(x, R.shape([1, 8]))
            lv1 = R.call_tir(cls.cluster_gated_linear,
                             (lv, centroids, centroid_norms, weights, biases),
                             out_ty=R.Tensor((1, 4), "float32"))
            lv3 = R.matmul(lv1, w)
            gv = R.nn.softmax(lv3, axis=-1)
            R.output(gv)
        return gv


@I.ir_module
class Int8Model:
    @R.function
    def main(x: R.Tensor((1, 8, 1), "int8"),
             w: R.Tensor((4, 3), "float32")) -> R.Tensor((1, 3), "float32"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            lv = R.reshape(x, R.shape([1, 4, 2]))
            lv1 = R.dequantize(lv, R.const(0.5, "float32"), R.const(2, "int32"))
            lv2 = R.mean(lv1, axis=[2])
            lv3 = R.quantize(lv2, R.const(0.25, "float32"), R.const(-3, "int32"))
            lv4 = R.dequantize(lv3, R.const(0.25, "float32"), R.const(-3, "int32"))
            lv5 = R.matmul(lv4, w)
            gv = R.nn.softmax(lv5, axis=-1)
            R.output(gv)
        return gv


@I.ir_module(check_well_formed=False)
class Int8Expected:
    @T.prim_func(private=True)
    def cluster_gated_linear_int8(x: T.Buffer((1, 8), "int8")):
        T.evaluate(0)  # replaced by the real kernel in _expected()

    @R.function
    def main(x: R.Tensor((1, 8, 1), "int8"), w: R.Tensor((4, 3), "float32"),
             centroids_q: R.Tensor((2, 8), "int8"), score_offsets: R.Tensor((2,), "int32"),
             weights_q: R.Tensor((2, 8, 4), "int8"), bias_offsets: R.Tensor((2, 4), "int32"),
             multiplier: R.Tensor((2, 4), "int32"),
             shift: R.Tensor((2, 4), "int8")) -> R.Tensor((1, 3), "float32"):
        R.func_attr({"num_input": 1})
        cls = Int8Expected
        with R.dataflow():
            lv = R.reshape(x, R.shape([1, 8]))
            lv3 = R.call_tir(cls.cluster_gated_linear_int8,
                             (lv, centroids_q, score_offsets, weights_q, bias_offsets, multiplier,
                              shift),
                             out_ty=R.Tensor((1, 4), "int8"))
            lv4 = R.dequantize(lv3, R.const(0.25, "float32"), R.const(-3, "int32"))
            lv5 = R.matmul(lv4, w)
            gv = R.nn.softmax(lv5, axis=-1)
            R.output(gv)
        return gv


@I.ir_module(check_well_formed=False)
class FactoredExpected:
    @T.prim_func(private=True)
    def cluster_gated_linear_factored_int8(x: T.Buffer((1, 8), "int8")):
        T.evaluate(0)  # replaced by the real kernel in _expected()

    @R.function
    def main(x: R.Tensor((1, 8, 1), "int8"), w: R.Tensor((4, 3), "float32"),
             centroids_q: R.Tensor((2, 8), "int8"), score_offsets: R.Tensor((2,), "int32"),
             left_q: R.Tensor((2, 8, 3), "int8"), left_bias_offsets: R.Tensor((2, 3), "int32"),
             left_multiplier: R.Tensor((2, 3), "int32"), left_shift: R.Tensor((2, 3), "int8"),
             right_q: R.Tensor((2, 3, 4), "int8"), bias_offsets: R.Tensor((2, 4), "int32"),
             multiplier: R.Tensor((2, 4), "int32"),
             shift: R.Tensor((2, 4), "int8")) -> R.Tensor((1, 3), "float32"):
        R.func_attr({"num_input": 1})
        cls = FactoredExpected
        with R.dataflow():
            lv = R.reshape(x, R.shape([1, 8]))
            lv3 = R.call_tir(cls.cluster_gated_linear_factored_int8,
                             (lv, centroids_q, score_offsets, left_q, left_bias_offsets,
                              left_multiplier, left_shift, right_q, bias_offsets, multiplier,
                              shift),
                             out_ty=R.Tensor((1, 4), "int8"))
            lv4 = R.dequantize(lv3, R.const(0.25, "float32"), R.const(-3, "int32"))
            lv5 = R.matmul(lv4, w)
            gv = R.nn.softmax(lv5, axis=-1)
            R.output(gv)
        return gv


@I.ir_module
class NoDenseHead:
    @R.function
    def main(x: R.Tensor((1, 8, 1), "float32")) -> R.Tensor((1, 4), "float32"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            lv = R.reshape(x, R.shape([1, 4, 2]))
            gv = R.nn.softmax(R.mean(lv, axis=[2]), axis=-1)
            R.output(gv)
        return gv


def _float_params(k=2, dim=8, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return ClusterGatedLinearParams(rng.standard_normal((k, dim)), rng.standard_normal((k, dim, d)),
                                    rng.standard_normal((k, d)))


def _int8_params(k=2, dim=8, d=4, seed=0, **overrides):
    rng = np.random.default_rng(seed)
    fields = dict(input_scale=0.5, input_zero_point=2,
                  centroids_q=rng.integers(-128, 128, (k, dim), dtype=np.int8),
                  weights_q=rng.integers(-127, 128, (k, dim, d), dtype=np.int8),
                  weight_scales=rng.uniform(0.01, 0.02, (k, d)).astype(np.float32),
                  bias_q=rng.integers(-100, 100, (k, d)).astype(np.int32),
                  output_scale=0.25, output_zero_point=-3)
    fields.update(overrides)
    return QuantizedClusterGatedLinearParams(**fields)


def _expected(template: tvm.IRModule, kernel_name: str, kernel, constants: dict) -> tvm.IRModule:
    mod = relax.transform.BindParams("main", constants)(template)
    mod[mod.get_global_var(kernel_name)] = kernel
    return mod


def test_float_swap_matches_expected():
    params = _float_params()
    expected = _expected(FloatExpected, "cluster_gated_linear",
                         make_cluster_gated_linear_kernel(1, 8, 2, 4),
                         {"centroids": params.centroids, "centroid_norms": params.centroid_norms,
                          "weights": params.weights, "biases": params.biases})
    tvm.ir.assert_structural_equal(SwapTrunkForPLA(params)(FloatModel), expected)


def test_int8_swap_matches_expected():
    params = _int8_params()
    mult, shift = params.multiplier_shift
    expected = _expected(Int8Expected, "cluster_gated_linear_int8",
                         make_cluster_gated_linear_int8_kernel(1, 8, 2, 4, -3,
                                                               bool(np.all(shift <= 0))),
                         {"centroids_q": params.centroids_q, "score_offsets": params.score_offsets,
                          "weights_q": params.weights_q, "bias_offsets": params.bias_offsets,
                          "multiplier": mult, "shift": shift.astype(np.int8)})
    tvm.ir.assert_structural_equal(SwapTrunkForPLA(params)(Int8Model), expected)


def _factored_params(k=2, dim=8, r=3, d=4, seed=0, **overrides):
    rng = np.random.default_rng(seed)
    fields = dict(input_scale=0.5, input_zero_point=2,
                  centroids_q=rng.integers(-128, 128, (k, dim), dtype=np.int8),
                  left_q=rng.integers(-127, 128, (k, dim, r), dtype=np.int8),
                  left_scales=rng.uniform(0.01, 0.02, (k, r)).astype(np.float32),
                  left_bias_q=rng.integers(-100, 100, (k, r)).astype(np.int32),
                  hidden_scale=2.0, hidden_zero_point=1,
                  right_q=rng.integers(-127, 128, (k, r, d), dtype=np.int8),
                  right_scales=rng.uniform(0.01, 0.02, (k, d)).astype(np.float32),
                  bias_q=rng.integers(-100, 100, (k, d)).astype(np.int32),
                  output_scale=0.25, output_zero_point=-3)
    fields.update(overrides)
    return QuantizedFactoredClusterGatedLinearParams(**fields)


def test_factored_int8_swap_matches_expected():
    params = _factored_params()
    left_mult, left_shift = params.left_multiplier_shift
    mult, shift = params.multiplier_shift
    kernel = make_factored_cluster_gated_linear_int8_kernel(
        1, 8, 2, 3, 4, 1, -3, bool(np.all(left_shift <= 0) and np.all(shift <= 0)))
    expected = _expected(FactoredExpected, "cluster_gated_linear_factored_int8", kernel, {
        "centroids_q": params.centroids_q, "score_offsets": params.score_offsets,
        "left_q": params.left_q, "left_bias_offsets": params.left_bias_offsets,
        "left_multiplier": left_mult, "left_shift": left_shift.astype(np.int8),
        "right_q": params.right_q, "bias_offsets": params.bias_offsets, "multiplier": mult,
        "shift": shift.astype(np.int8)})
    tvm.ir.assert_structural_equal(SwapTrunkForPLA(params)(Int8Model), expected)


def test_factored_swap_checks_the_quantization():
    with pytest.raises(ParameterMismatchError, match="output .*quantization differs"):
        SwapTrunkForPLA(_factored_params(output_scale=0.3))(Int8Model)
    with pytest.raises(ParameterMismatchError, match="needs a int8 input"):
        SwapTrunkForPLA(_factored_params())(FloatModel)


@pytest.mark.parametrize("model, name, params", [
    (FloatModel, "lv2", _float_params()),
    (Int8Model, "lv3", _int8_params()),
    (Int8Model, "lv4", _int8_params()),  # the dequantized tensor names the same boundary
])
def test_named_boundary_equals_structural_boundary(model, name, params):
    tvm.ir.assert_structural_equal(SwapTrunkForPLA(params, boundary=name)(model),
                                   SwapTrunkForPLA(params)(model))


def test_runs_in_sequential_under_pass_context():
    seq = tvm.transform.Sequential([SwapTrunkForPLA(_float_params()),
                                    relax.transform.LegalizeOps()])
    with tvm.transform.PassContext(opt_level=3):
        mod = seq(FloatModel)
    assert "cluster_gated_linear" in [gv.name_hint for gv in mod.get_global_vars()]


def test_operator_stays_one_kernel_through_lowering_and_builds_for_c():
    lowering = tvm.transform.Sequential([
        SwapTrunkForPLA(_int8_params()), LowerQDQToInteger(), relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(), relax.transform.FoldConstant(),
        relax.transform.FuseOps(), relax.transform.FuseTIR(),
        relax.transform.DeadCodeElimination()])
    with tvm.transform.PassContext(opt_level=3):
        mod = lowering(Int8Model)
    called = [b.value.args[0].name_hint for block in mod["main"].body.blocks
              for b in block.bindings if isinstance(b.value, relax.Call)
              and getattr(b.value.op, "name", "") == "relax.call_tir"]
    assert "cluster_gated_linear_int8" in called
    kernels = relax.transform.AttachGlobalSymbol()(tvm.IRModule(
        {gv: f for gv, f in mod.functions_items() if isinstance(f, tvm.tirx.PrimFunc)}))
    with tvm.transform.PassContext(config={"tirx.disable_assert": True}):
        source = tvm.tirx.build(kernels, target=tvm.target.Target({"kind": "c"})).inspect_source()
    assert "cluster_gated_linear_int8" in source


@pytest.mark.parametrize("model, params, boundary, error, match", [
    (NoDenseHead, _float_params(), None, BoundaryNotFoundError,
     r"no dense head in 'main': looked for R.matmul/R.linear .* found ops \['relax.mean', "
     r"'relax.nn.softmax', 'relax.reshape'\]"),
    (FloatModel, _float_params(), "penultimate", BoundaryNotFoundError,
     r"boundary 'penultimate' is not a variable bound in 'main'; bound names are \['lv', 'lv1', "
     r"'lv2', 'lv3', 'gv'\]"),
    (FloatModel, _float_params(d=5), None, ParameterMismatchError,
     r"feature size differs: boundary 'lv2' has d=4 \(shape \[1, 4\]\); the parameters have d=5"),
    (FloatModel, _float_params(dim=10), None, ParameterMismatchError,
     r"input size differs: input 'x' has shape \[1, 8, 1\] \(8 values per sample, batch 1\); "
     r"the parameters have D=10"),
    (FloatModel, _int8_params(), None, ParameterMismatchError,
     r"QuantizedClusterGatedLinearParams needs a int8 input, but 'x' is float32"),
    (Int8Model, _float_params(), None, ParameterMismatchError,
     r"ClusterGatedLinearParams needs a float32 input, but 'x' is int8"),
    (Int8Model, _int8_params(output_zero_point=0), None, ParameterMismatchError,
     r"output \(boundary 'lv3'\) quantization differs: the model has scale=0.25, zero_point=-3; "
     r"the parameters have scale=0.25, zero_point=0"),
    (Int8Model, _int8_params(input_scale=0.4), None, ParameterMismatchError,
     r"input quantization differs: the model has scale=0.5, zero_point=2"),
])
def test_errors_say_what_was_looked_for(model, params, boundary, error, match):
    with pytest.raises(error, match=match):
        SwapTrunkForPLA(params, boundary=boundary)(model)
    assert issubclass(error, PassError)


# --------------------------------------------------------------------------------------------
# Framework round trip: tf_keras -> TFLite -> Relax -> swap -> build -> run.


def _fit_pla(x: np.ndarray, features: np.ndarray, k: int = 3) -> ClusterGatedLinearParams:
    """PLA-like parameters: k input rows as centroids, a least-squares affine map per cluster."""
    centroids = x[:k]
    scores = (centroids**2).sum(1)[None] - 2 * x @ centroids.T
    cluster = np.argmin(scores, axis=1)
    weights, biases = [], []
    for c in range(k):
        rows = cluster == c
        design = np.hstack([x[rows], np.ones((rows.sum(), 1))])
        solution = np.linalg.lstsq(design, features[rows], rcond=None)[0]
        weights.append(solution[:-1])
        biases.append(solution[-1])
    return ClusterGatedLinearParams(centroids, np.stack(weights), np.stack(biases))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _run(mod: tvm.IRModule, x: np.ndarray) -> np.ndarray:
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    return np.stack([vm["main"](tvm.runtime.tensor(row[None])).numpy()[0] for row in x])


def _op_names(func: relax.Function) -> set[str]:
    return {b.value.op.name for block in func.body.blocks for b in block.bindings
            if isinstance(b.value, relax.Call) and isinstance(b.value.op, tvm.ir.Op)}


def test_float_tflite_resnet_swap(tiny_resnet):
    x_train = tiny_resnet.train_x.reshape(len(tiny_resnet.train_x), -1)
    params = _fit_pla(x_train, tiny_resnet.train_features)
    mod = import_tflite(tiny_resnet.float_tflite)
    assert "relax.nn.conv2d" in _op_names(mod["main"])
    with tvm.transform.PassContext(opt_level=3):
        swapped = tvm.transform.Sequential([SwapTrunkForPLA(params)])(mod)
    assert "relax.nn.conv2d" not in _op_names(swapped["main"])
    assert [p.ty.shape for p in swapped["main"].params] == [p.ty.shape for p in mod["main"].params]
    assert "params" in mod["main"].attrs and "params" not in swapped["main"].attrs

    x = np.random.default_rng(7).standard_normal((8, 140, 1)).astype(np.float32)
    got = _run(swapped, x)
    features = reference_forward(params, x.reshape(8, -1)).astype(np.float64)
    expected = _softmax(features @ tiny_resnet.dense_weight + tiny_resnet.dense_bias)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def _tensor_details(interpreter) -> dict:
    return {t["index"]: t for t in interpreter.get_tensor_details()}


def _quantize_pla(params: ClusterGatedLinearParams, input_q, output_q):
    """The lead's int8 scheme applied to float PLA parameters (what the PLA quantizer does)."""
    s_x, z_x = input_q
    s_w = np.maximum(np.abs(params.weights).max(axis=1), 1e-12) / 127.0
    return QuantizedClusterGatedLinearParams(
        input_scale=s_x, input_zero_point=z_x,
        centroids_q=np.clip(np.round(params.centroids / s_x), -128, 127).astype(np.int8),
        weights_q=np.clip(np.round(params.weights / s_w[:, None, :]), -127, 127).astype(np.int8),
        weight_scales=s_w.astype(np.float32),
        bias_q=np.round(params.biases / (np.float32(s_x) * s_w)).astype(np.int32),
        output_scale=output_q[0], output_zero_point=output_q[1])


def test_int8_tflite_resnet_swap(tiny_resnet):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=tiny_resnet.int8_tflite,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    tensors = _tensor_details(interpreter)
    fc = next(op for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED")
    boundary_q = tensors[fc["inputs"][0]]["quantization"]
    input_q = interpreter.get_input_details()[0]["quantization"]

    x_train = tiny_resnet.train_x.reshape(len(tiny_resnet.train_x), -1)
    params = _quantize_pla(_fit_pla(x_train, tiny_resnet.train_features), input_q, boundary_q)
    mod = import_tflite(tiny_resnet.int8_tflite)
    with tvm.transform.PassContext(opt_level=3):
        swapped = tvm.transform.Sequential([
            SwapTrunkForPLA(params), LowerQDQToInteger(), relax.transform.FoldConstant()])(mod)
    assert "relax.nn.conv2d" not in _op_names(swapped["main"])

    xq = np.random.default_rng(8).integers(-128, 128, (16, 140, 1), dtype=np.int8)
    got = _run(swapped, xq)

    # The head in numpy: int8 FULLY_CONNECTED (TFLite arithmetic), float softmax, int8 output.
    features_q = reference_forward(params, xq.reshape(16, -1)).astype(np.int64)
    weight = tensors[fc["inputs"][1]]
    w_q = interpreter.get_tensor(fc["inputs"][1]).astype(np.int64)  # [classes, d]
    bias = interpreter.get_tensor(fc["inputs"][2]) if fc["inputs"][2] >= 0 else 0
    logits_scale, logits_zp = tensors[fc["outputs"][0]]["quantization"]
    acc = (bias + (features_q - boundary_q[1]) @ w_q.T).astype(np.int32)
    real = (np.float64(boundary_q[0]) * weight["quantization_parameters"]["scales"]
            / np.float64(logits_scale))
    from relay_passes import quantize_multiplier
    mult, shift = quantize_multiplier(np.broadcast_to(real, acc.shape[1:]))
    logits_q = requantize(acc, mult, shift, logits_zp).astype(np.int64)
    probs = _softmax(logits_scale * (logits_q - logits_zp))
    out_scale, out_zp = interpreter.get_output_details()[0]["quantization"]
    expected = np.clip(np.round(probs / out_scale) + out_zp, -128, 127)
    assert np.abs(got.astype(np.int64) - expected).max() <= 1
    assert len(np.unique(features_q)) > 10
