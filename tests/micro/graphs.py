"""Small Relax graphs for the micro tests, their host reference, and a skip marker for machines
without the Arm toolchain or QEMU (never skipped under CI, where ``make setup`` installs them: a
missing tool there must fail the run, not hide the firmware tests)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import tvm
from tvm import relax

requires_toolchain = pytest.mark.skipif(
    not os.environ.get("CI")
    and not all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm")),
    reason="needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm (make setup)",
)


def float_mlp(n_in: int = 16, n_hidden: int = 24, n_out: int = 5, seed: int = 0) -> tvm.IRModule:
    """matmul + add + relu + matmul + softmax-free argmax-ish head, float32."""
    rng = np.random.default_rng(seed)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, n_in), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            w1 = relax.const(rng.standard_normal((n_in, n_hidden)).astype("float32"))
            b1 = relax.const(rng.standard_normal(n_hidden).astype("float32"))
            w2 = relax.const(rng.standard_normal((n_hidden, n_out)).astype("float32"))
            h = bb.emit(relax.op.nn.relu(relax.op.add(relax.op.matmul(x, w1), b1)))
            logits = bb.emit(relax.op.matmul(h, w2))
            top = bb.emit(relax.op.max(logits, axis=1, keepdims=True))
            out = bb.emit_output(relax.op.subtract(logits, top))  # 0 at the arg-max class
        bb.emit_func_output(out)
    return bb.get()


def int8_dense(n_in: int = 32, n_out: int = 12, seed: int = 1) -> tvm.IRModule:
    """int8 matmul with int32 accumulation, bias, right shift, clip, cast back to int8."""
    rng = np.random.default_rng(seed)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, n_in), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            w = relax.const(rng.integers(-128, 128, (n_in, n_out), dtype=np.int8))
            b = relax.const(rng.integers(-2000, 2000, n_out, dtype=np.int32))
            acc = bb.emit(relax.op.matmul(relax.op.astype(x, "int32"), relax.op.astype(w, "int32")))
            acc = bb.emit(relax.op.add(acc, b))
            shifted = bb.emit(relax.op.right_shift(acc, relax.const(7, "int32")))
            clipped = bb.emit(relax.op.clip(shifted, -128, 127))
            out = bb.emit_output(relax.op.astype(clipped, "int8"))
        bb.emit_func_output(out)
    return bb.get()


def host_reference(mod: tvm.IRModule, inputs: np.ndarray) -> np.ndarray:
    """Outputs of the Relax VM on the host (llvm target), one input at a time."""
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    return np.stack([vm["main"](tvm.runtime.tensor(x)).numpy() for x in inputs])


def random_inputs(mod: tvm.IRModule, count: int, seed: int = 2) -> np.ndarray:
    """A batch of inputs matching ``main``'s single parameter."""
    ty = mod["main"].params[0].ty
    shape = tuple(int(d.value) for d in ty.shape.values)
    rng = np.random.default_rng(seed)
    if str(ty.dtype) == "int8":
        return rng.integers(-128, 128, (count, *shape), dtype=np.int8)
    return rng.standard_normal((count, *shape)).astype(str(ty.dtype))


def tiny_cnn(
    length: int = 140, channels: int = 16, classes: int = 5, seed: int = 3
) -> tvm.IRModule:
    """conv1d + relu, conv1d + relu + residual add, mean, dense, softmax, argmax (int64 out).

    Exercises workspace requests (padding, fused intermediates), arena reuse and libm (exp).
    """
    rng = np.random.default_rng(seed)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 1, length), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            w1 = relax.const((0.3 * rng.standard_normal((channels, 1, 8))).astype("float32"))
            w2 = relax.const((0.2 * rng.standard_normal((channels, channels, 5))).astype("float32"))
            wd = relax.const(rng.standard_normal((channels, classes)).astype("float32"))
            h = bb.emit(relax.op.nn.relu(relax.op.nn.conv1d(x, w1, padding=3)))
            h2 = bb.emit(relax.op.nn.relu(relax.op.nn.conv1d(h, w2, padding=2)))
            pooled = bb.emit(relax.op.mean(relax.op.add(h2, h), axis=[2]))
            probs = bb.emit(relax.op.nn.softmax(relax.op.matmul(pooled, wd), axis=-1))
            out = bb.emit_output(relax.op.argmax(probs, axis=-1))
        bb.emit_func_output(out)
    return bb.get()


def split_argmax(width: int = 8) -> tvm.IRModule:
    """split → a kernel with two outputs (a tuple), then argmax of each half, summed (int64)."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, width), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            parts = bb.emit(relax.op.split(x, 2, axis=1))
            left = bb.emit(relax.op.argmax(relax.TupleGetItem(parts, 0), axis=1))
            right = bb.emit(relax.op.argmax(relax.TupleGetItem(parts, 1), axis=1))
            out = bb.emit_output(relax.op.add(left, right))
        bb.emit_func_output(out)
    return bb.get()


RESHAPE_PLACES = ("input", "middle", "output", "input_to_output")


def with_reshape(place: str, n_in: int = 12, seed: int = 4) -> tvm.IRModule:
    """A float32 graph with reshapes (1, ``n_in``) → … at ``place`` (one of RESHAPE_PLACES).

    ``"middle"`` reads a reshaped matmul output only after a second matmul output exists, so
    the first one's storage must outlive its own last direct reader; ``"input_to_output"`` is a
    model that only reshapes its input.
    """
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> tvm.ir.expr.GenericConst:
        return relax.const(rng.standard_normal(shape).astype("float32"))

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, n_in), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            if place == "input":
                view = bb.emit(relax.op.reshape(x, (3, n_in // 3)))
                out = bb.emit_output(relax.op.nn.softmax(view, axis=-1))
            elif place == "middle":
                first = bb.emit(relax.op.matmul(x, weight(n_in, 24)))
                view = bb.emit(relax.op.reshape(first, (4, 6)))
                second = bb.emit(relax.op.matmul(x, weight(n_in, 20)))
                product = bb.emit(relax.op.matmul(view, weight(6, 5)))
                out = bb.emit_output(relax.op.add(product, relax.op.reshape(second, (4, 5))))
            elif place == "output":
                hidden = bb.emit(relax.op.matmul(x, weight(n_in, 24)))
                out = bb.emit_output(relax.op.reshape(hidden, (2, 3, 4)))
            else:
                out = bb.emit_output(relax.op.reshape(x, (3, n_in // 3)))
        bb.emit_func_output(out)
    return bb.get()


def conv_block(
    length: int, channels: int, filters: int, kernel: int, *, stride: int = 1,
    padding: str = "same", residual: bool = False, height: int = 1, depthwise: bool = False,
    seed: int = 0,
) -> tvm.IRModule:
    """An integer-lowered TFLite convolution: int8 NHWC input → constant pad with a zero point →
    int8 conv2d (int32) + per-channel bias → shift, clamp, int8.

    ``depthwise``: groups = channels, HWOI weights ``[KH, KW, C, 1]`` (``filters`` must equal
    ``channels``), as for ``DepthwiseConv1D``. ``residual``: + a rescaled input, in a stage of its
    own as TFLite's ADD (needs ``filters == channels`` and stride 1). ``height`` > 1: a square
    2-D kernel.
    """
    rng = np.random.default_rng(seed)
    kh = kernel if height > 1 else 1
    zero_point = -7
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, height, length, channels), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            data = x
            if padding == "same":
                left, top = (kernel - 1) // 2, (kh - 1) // 2
                widths = [0, 0, top, kh - 1 - top, left, kernel - 1 - left, 0, 0]
                data = bb.emit(relax.op.nn.pad(x, widths, pad_value=float(zero_point)))
            shape = (kh, kernel, channels, 1 if depthwise else filters)
            w = rng.integers(-128, 128, shape, dtype=np.int8)
            acc = bb.emit(relax.op.nn.conv2d(
                data, relax.const(w), strides=(1, stride), groups=channels if depthwise else 1,
                data_layout="NHWC", kernel_layout="HWOI" if depthwise else "HWIO",
                out_dtype="int32"))
            bias = relax.const(rng.integers(-3000, 3000, filters, dtype=np.int32))
            acc = bb.emit(relax.op.add(acc, bias))
            if residual:
                shortcut = bb.emit(relax.op.multiply(relax.op.astype(x, "int32"),
                                                     relax.const(3, "int32")))
                acc = bb.emit(relax.op.add(acc, shortcut))
            shifted = relax.op.right_shift(acc, relax.const(9, "int32"))
            out = bb.emit_output(relax.op.astype(relax.op.clip(shifted, -128, 127), "int8"))
        bb.emit_func_output(out)
    return bb.get()


def build_and_compare(mod: tvm.IRModule, board: str, out_dir,
                      reference: tvm.IRModule | None = None):
    """Build ``mod`` for ``board``, run it on random inputs, assert the outputs equal the host
    build of ``reference`` (``mod`` itself by default: a module already lowered for micro's
    micro-kernels cannot run on the host); return the run."""
    import micro  # noqa: PLC0415

    reference = mod if reference is None else reference
    firmware = micro.build(mod, board, out_dir)
    inputs = random_inputs(reference, 4)
    result = micro.run(firmware, inputs)
    np.testing.assert_array_equal(result.outputs, host_reference(reference, inputs))
    return result

