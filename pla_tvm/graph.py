"""The TVM side of the pipeline: import a baseline TFLite model into Relax, swap its ResNet trunk
for the PLA operator, lower int8 QDQ graphs to integer arithmetic, and run modules on the host.

This is where ``pla_tvm`` meets the generic compiler packages: ``relay_passes`` knows nothing of
PLA files or ECG, so the bundle's arrays are handed over here as the passes' parameter
dataclasses. Which operator is inserted follows the model: a full-int8 baseline gets the int8
operator (bit-exact with the PLA integer reference) and is lowered to integer arithmetic; a float
baseline gets the float operator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tvm
from tvm import relax

from pla_tvm.errors import ModelError
from pla_tvm.pla.npz_io import PLABundle
from relay_passes import (
    ClusterGatedLinearParams,
    LowerQDQToInteger,
    QuantizedClusterGatedLinearParams,
    SwapTrunkForPLA,
    emit_cluster_gated_linear,
    import_tflite,
)

HOST_TARGET = "llvm"


def import_baseline(path: str | Path) -> tvm.IRModule:
    """Import a ``.tflite`` model into Relax.

    Raises
    ------
    ModelError
        If the file is missing or the TFLite frontend cannot import it.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    try:
        return import_tflite(path.read_bytes())
    except Exception as error:  # the flatbuffer reader and the frontend raise many types
        raise ModelError(f"{path}: cannot import into TVM Relax ({type(error).__name__}: "
                         f"{str(error)[:300]})") from None


def is_int8_module(mod: tvm.IRModule) -> bool:
    """True if ``main``'s (first) input is int8, i.e. the model is a full-int8 TFLite model."""
    return str(mod["main"].params[0].ty.dtype) == "int8"


def operator_params(bundle: PLABundle, int8: bool):
    """The PLA operator's parameters for the swap pass: float, or the int8 ones of the bundle."""
    if int8:
        return bundle.quantized.operator
    model = bundle.model
    return ClusterGatedLinearParams(centroids=model.centroids_.astype(np.float32),
                                    weights=model.coef_.astype(np.float32),
                                    biases=model.intercept_.astype(np.float32))


def lower_to_integer(mod: tvm.IRModule) -> tvm.IRModule:
    """Rewrite an int8 QDQ graph into integer arithmetic with int8 constants."""
    return tvm.transform.Sequential([LowerQDQToInteger(), relax.transform.FoldConstant()])(mod)


def swap_in_pla(mod: tvm.IRModule, bundle: PLABundle, boundary: str | None = None
                ) -> tvm.IRModule:
    """Replace the baseline's trunk by the PLA operator (int8 for an int8 model, then lowered).

    Raises
    ------
    relay_passes.PassError
        If the trunk boundary is not found or the PLA parameters do not fit it.
    """
    int8 = is_int8_module(mod)
    swapped = SwapTrunkForPLA(operator_params(bundle, int8), boundary=boundary)(mod)
    return lower_to_integer(swapped) if int8 else swapped


def prepare_module(tflite_path: str | Path, bundle: PLABundle | None = None,
                   boundary: str | None = None) -> tvm.IRModule:
    """The module ``compile`` builds: the baseline, PLA-swapped when a bundle is given, with int8
    graphs lowered to integer arithmetic."""
    mod = import_baseline(tflite_path)
    if bundle is not None:
        return swap_in_pla(mod, bundle, boundary)
    return lower_to_integer(mod) if is_int8_module(mod) else mod


def operator_module(params, batch: int) -> tvm.IRModule:
    """A module holding only the PLA operator on ``[batch, D]`` inputs (float32 or int8 params),
    for checking the operator against the numpy reference on a whole test set in one call."""
    dtype = "int8" if isinstance(params, QuantizedClusterGatedLinearParams) else "float32"
    builder = relax.BlockBuilder()
    data = relax.Var("beats", relax.TensorType((batch, params.input_size), dtype))
    with builder.function("main", [data]):
        with builder.dataflow():
            features = builder.emit_output(emit_cluster_gated_linear(builder, data, params))
        builder.emit_func_output(features)
    return builder.get()


def constant_bytes(mod: tvm.IRModule) -> dict[str, int]:
    """Bytes of the constants bound in the module's Relax functions, by dtype and in total."""
    sizes: dict[str, int] = {}

    def visit(expr) -> None:
        if isinstance(expr, tvm.ir.expr.Constant):
            value = expr.value  # a runtime tensor, or a Python scalar for scalar constants
            array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
            sizes[str(array.dtype)] = sizes.get(str(array.dtype), 0) + array.nbytes

    for function in mod.functions.values():
        if isinstance(function, relax.Function):
            relax.analysis.post_order_visit(function, visit)
    sizes["total"] = sum(sizes.values())
    return sizes


class HostRunner:
    """A Relax module built for the host CPU and run in the Relax VM, one input at a time."""

    def __init__(self, mod: tvm.IRModule):
        self.input_shape = tuple(int(d) for d in mod["main"].params[0].ty.shape)
        self.input_dtype = str(mod["main"].params[0].ty.dtype)
        self._vm = relax.VirtualMachine(tvm.compile(mod, target=HOST_TARGET), tvm.cpu())

    def run(self, x: np.ndarray) -> np.ndarray:
        """Outputs ``[n, ...]`` for inputs ``[n, ...]`` in the module's input dtype."""
        outputs = []
        for row in np.asarray(x, dtype=self.input_dtype):
            result = self._vm["main"](tvm.runtime.tensor(row.reshape(self.input_shape)))
            outputs.append(result.numpy())
        return np.concatenate(outputs).reshape(len(outputs), -1)
