"""Run a saved classifier on beats: Keras models, and TFLite models on the TFLite interpreter
(``ai-edge-litert``) or on TFLite Micro's reference kernels (the ``tflite-micro`` interpreter).

Every runner takes ``float32 [n, L]`` beats (``L`` its model's input length, 140 for ECG5000)
and returns the model's raw outputs ``[n, C]`` (int8 for an int8 model) and class predictions;
an int8 model's input is quantized with the model's own input scale and zero point, exactly as
firmware would. Model files are checked on load so a wrong shape or a corrupt file is one clear
:class:`~pla_tvm.errors.ModelError`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pla_tvm.errors import ModelError

#: ``litert``: the TFLite interpreter with its optimised kernels (XNNPACK); ``litert-ref``: its
#: reference kernels (integer arithmetic like TFLite Micro's, though ai-edge-litert 2.3 rounds
#: per-channel FULLY_CONNECTED once where TFLite Micro rounds twice: up to 1 LSB apart);
#: ``tflm``: TFLite Micro.
INTERPRETERS = ("litert", "litert-ref", "tflm")

#: Tensor arena offered to TFLite Micro; the bytes it really needs are measured after allocation.
TFLM_ARENA_BYTES = 16 * 1024 * 1024


def beat_input_length(shape, path: Path | str) -> int:
    """The beat length ``L`` of a model input shape ``(batch, L, 1)`` or ``(batch, L)``.

    Raises
    ------
    ModelError
        For any other shape (several channels, an image, an unknown length).
    """
    shape = tuple(None if d is None or int(d) < 0 else int(d) for d in shape)
    if len(shape) not in (2, 3) or shape[1] is None or shape[1] < 2 or shape[2:] not in ((), (1,)):
        raise ModelError(f"{path}: input shape {shape} does not take a single-lead beat; "
                         f"expected (batch, L, 1) or (batch, L) with a fixed length L")
    return shape[1]


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float → int8 as TFLite's QUANTIZE does (round half away from zero, then clamp)."""
    scaled = np.asarray(x, dtype=np.float32) / np.float32(scale)
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return np.clip(rounded + zero_point, -128, 127).astype(np.int8)


class KerasRunner:
    """A ``.keras`` / ``.h5`` model."""

    def __init__(self, path: Path):
        from pla_tvm.baseline.model import keras

        try:
            self.model = keras.models.load_model(path, compile=False)
        except Exception as error:
            raise ModelError(f"{path}: cannot load Keras model ({type(error).__name__}: "
                             f"{error})") from None
        self.input_length = beat_input_length(self.model.input_shape, path)
        self.input_rank = len(self.model.input_shape)
        self.description = f"Keras {path.name}"

    def outputs(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        return self.model.predict(x[..., None] if self.input_rank == 3 else x, verbose=0,
                                  batch_size=256)


class TFLiteRunner:
    """A TFLite flatbuffer on the TFLite interpreter or on TFLite Micro, one beat at a time.

    Parameters
    ----------
    data : bytes
        The ``.tflite`` flatbuffer.
    name : str
        What to call the model in messages (its file name).
    interpreter : str
        One of :data:`INTERPRETERS`.
    """

    def __init__(self, data: bytes, name: str, interpreter: str = "litert"):
        if interpreter not in INTERPRETERS:
            raise ValueError(f"interpreter must be one of {INTERPRETERS}, got {interpreter!r}")
        self.interpreter_name = interpreter
        self.arena_bytes: int | None = None
        try:
            self._open(data, interpreter)
        except Exception as error:
            raise ModelError(f"{name}: not a valid TFLite model for the {interpreter} "
                             f"interpreter ({type(error).__name__}: {str(error)[:200]})") from None
        self.input_length = beat_input_length(self.input_detail["shape"], name)
        self.input_shape = tuple(int(d) for d in self.input_detail["shape"])
        self.description = f"TFLite {Path(name).name} on {interpreter}"

    def _open(self, data: bytes, interpreter: str) -> None:
        if interpreter.startswith("litert"):
            from ai_edge_litert.interpreter import Interpreter, OpResolverType

            resolver = OpResolverType.BUILTIN_REF if interpreter == "litert-ref" \
                else OpResolverType.AUTO
            self._interpreter = Interpreter(model_content=data,
                                            experimental_op_resolver_type=resolver)
            self._interpreter.allocate_tensors()
            self.input_detail = self._interpreter.get_input_details()[0]
            self.output_detail = self._interpreter.get_output_details()[0]
        else:
            from tflite_micro.python.tflite_micro import runtime

            self._interpreter = runtime.Interpreter.from_bytes(data, arena_size=TFLM_ARENA_BYTES)
            self.input_detail = self._interpreter.get_input_details(0)
            self.output_detail = self._interpreter.get_output_details(0)
            self.arena_bytes = _tflm_arena_bytes(self._interpreter)

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float beats in the model's input dtype (quantized with its scale for int8 models)."""
        dtype = np.dtype(self.input_detail["dtype"])
        if dtype == np.int8:
            parameters = self.input_detail["quantization_parameters"]
            return quantize(x, parameters["scales"][0], parameters["zero_points"][0])
        return np.asarray(x, dtype=dtype)

    def raw_outputs(self, x: np.ndarray) -> np.ndarray:
        """Outputs ``[n, C]`` for inputs ``[n, L]`` already in the model's input dtype."""
        results = []
        for row in tqdm(x, desc=self.description, unit="beat", leave=False, disable=None):
            row = row.reshape(self.input_shape)
            if self.interpreter_name != "tflm":
                self._interpreter.set_tensor(self.input_detail["index"], row)
                self._interpreter.invoke()
                results.append(self._interpreter.get_tensor(self.output_detail["index"]).copy())
            else:
                self._interpreter.set_input(row, 0)
                self._interpreter.invoke()
                results.append(self._interpreter.get_output(0).copy())
        return np.concatenate(results).reshape(len(results), -1)

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """Outputs ``[n, C]`` for float beats ``[n, L]``."""
        return self.raw_outputs(self.quantize_input(np.asarray(x, np.float32)))


@contextlib.contextmanager
def _captured_c_stderr():
    """Capture what C++ code prints to file descriptor 2 (TFLM reports allocations there)."""
    with tempfile.TemporaryFile(mode="w+b") as capture:
        saved = os.dup(2)
        try:
            os.dup2(capture.fileno(), 2)
            buffer: list[str] = []
            yield buffer
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            buffer.append(capture.read().decode(errors="replace"))


def _tflm_arena_bytes(interpreter) -> int | None:
    """Tensor-arena bytes TFLite Micro used, from its allocation report."""
    with _captured_c_stderr() as printed:
        interpreter.print_allocations()
    for line in printed[0].splitlines():
        if "Arena allocation total" in line:
            return int(line.split("total")[1].split()[0])
    return None


def load_runner(path: str | Path, interpreter: str = "litert"):
    """A runner for a ``.keras``/``.h5`` or ``.tflite`` model file.

    Raises
    ------
    ModelError
        If the file is missing, has an unknown extension, is corrupt, or does not take a beat.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    if path.suffix == ".tflite":
        return TFLiteRunner(path.read_bytes(), str(path), interpreter)
    if path.suffix in (".keras", ".h5"):
        return KerasRunner(path)
    raise ModelError(f"{path}: unknown model type {path.suffix!r}; expected .keras, .h5 or .tflite")


def predict_classes(outputs: np.ndarray) -> np.ndarray:
    """Class index of each row (lowest index on ties, like TFLite's ARG_MAX)."""
    return np.argmax(np.asarray(outputs), axis=1).astype(np.int64)
