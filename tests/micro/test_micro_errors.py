"""Each failure raises its documented exception."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tvm
from tvm import relax

import micro
from micro.api import _build as build_with_test_hook

from .graphs import float_mlp, random_inputs, requires_toolchain


@requires_toolchain
@pytest.mark.parametrize("board,fault", [("mps2-an386", "BusFault"), ("microbit", "HardFault")])
def test_fault_raises_with_fault_type(float_model, tmp_path, board, fault):
    firmware = build_with_test_hook(float_model, board, tmp_path, test_hook="fault")
    with pytest.raises(micro.FirmwareFaultError, match=fault) as info:
        micro.run(firmware, random_inputs(float_model, 1))
    assert info.value.fault == fault


@requires_toolchain
def test_stack_overflow_faults_on_armv8m(float_model, tmp_path):
    firmware = micro.build(float_model, board="mps3-an547", out_dir=tmp_path, stack_bytes=128)
    with pytest.raises(micro.FirmwareFaultError, match="STKOF.*stack overflow") as info:
        micro.run(firmware, random_inputs(float_model, 1))
    assert info.value.fault == "UsageFault"


@requires_toolchain
def test_hang_raises_timeout(float_model, tmp_path):
    firmware = build_with_test_hook(float_model, "mps2-an385", tmp_path, test_hook="hang")
    with pytest.raises(micro.FirmwareTimeoutError, match="killed"):
        micro.run(firmware, random_inputs(float_model, 1), timeout=2)


def test_missing_toolchain_directory(float_model, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(micro.ToolchainNotFoundError, match="apt-get install gcc-arm-none-eabi"):
        micro.build(float_model, "mps2-an386", tmp_path / "out", toolchain_path=empty)


def test_missing_toolchain_on_path(float_model, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(micro.ToolchainNotFoundError, match="qemu-system-arm"):
        micro.build(float_model, "mps2-an386", tmp_path / "out")


@requires_toolchain
def test_constants_larger_than_flash(tmp_path):
    big = float_mlp(n_in=300, n_hidden=300)  # 360 KB of float32 weights
    with pytest.raises(micro.ModelTooLargeError, match="262144 bytes"):
        micro.build(big, board="microbit", out_dir=tmp_path)


@requires_toolchain
def test_image_larger_than_flash_is_caught_at_link(tmp_path):
    # 62,500 weights (244 KiB) pass the model-only check, the whole image does not.
    fits_alone = float_mlp(n_in=250, n_hidden=250)
    with pytest.raises(micro.ModelTooLargeError, match="FLASH' overflowed|FLASH by"):
        micro.build(fits_alone, board="microbit", out_dir=tmp_path)


@requires_toolchain
def test_buffers_larger_than_ram(tmp_path):
    wide = float_mlp(n_in=8, n_hidden=4096)  # 16 KB intermediate
    with pytest.raises(micro.ModelTooLargeError, match="RAM"):
        micro.build(wide, board="microbit", out_dir=tmp_path)


@requires_toolchain
def test_two_inputs_are_unsupported(tmp_path):
    bb = relax.BlockBuilder()
    a = relax.Var("a", relax.TensorType((4,), "float32"))
    b = relax.Var("b", relax.TensorType((4,), "float32"))
    with bb.function("main", [a, b]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.add(a, b))
        bb.emit_func_output(out)
    with pytest.raises(micro.UnsupportedModelError, match="exactly one tensor"):
        micro.build(bb.get(), "mps2-an386", tmp_path)


@requires_toolchain
def test_dynamic_shape_is_unsupported(tmp_path):
    n = tvm.tirx.Var("n", "int64")
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((n,), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.nn.relu(x))
        bb.emit_func_output(out)
    with pytest.raises(micro.UnsupportedModelError, match="static"):
        micro.build(bb.get(), "mps2-an386", tmp_path)


@requires_toolchain
def test_wrong_input_dtype_or_shape(float_model, tmp_path):
    firmware = micro.build(float_model, board="mps2-an385", out_dir=tmp_path)
    with pytest.raises(micro.InvalidInputError, match="dtype float64"):
        micro.run(firmware, np.zeros((2, 1, 16)))
    with pytest.raises(micro.InvalidInputError, match="shape"):
        micro.run(firmware, np.zeros((2, 16), dtype=np.float32))


def test_unknown_board():
    with pytest.raises(micro.UnknownBoardError, match="mps2-an386"):
        micro.get_board("esp32")


def test_errors_share_one_base():
    for name in micro.__all__:
        obj = getattr(micro, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, micro.MicroError)


def _metadata(**changes) -> dict:
    """A well-formed metadata.json (as micro.build writes it), with some fields changed."""
    metadata = {
        "version": 1, "board": "mps2-an386", "backend": "c", "entry_point": "model_run",
        "input": {"shape": [1, 16], "dtype": "float32", "bytes": 64},
        "output": {"shape": [1, 5], "dtype": "float32", "bytes": 20},
        "quantization": None, "elf": "build/firmware.elf",
        "footprint": {f.name: 0 for f in dataclasses.fields(micro.Footprint)},
    }  # fmt: skip
    metadata.update(changes)
    return {key: value for key, value in metadata.items() if value is not ...}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "metadata.json: not found; .* is not a folder written by micro.build"),
        ("{ not json", "metadata.json: unreadable"),
        (json.dumps(_metadata(version=2)), "format version 2, this micro reads version 1"),
        (json.dumps(["version", 1]), "format version None"),
        (json.dumps(_metadata(board=...)), "a field is missing or malformed .*'board'"),
        (json.dumps(_metadata(input={"shape": "x"})), "a field is missing or malformed"),
        (json.dumps(_metadata(board="esp32")), "metadata.json: unknown board 'esp32'"),
        (json.dumps(_metadata()), r"the image it names, .*firmware.elf, is missing"),
    ],
)  # fmt: skip
def test_loading_a_folder_without_valid_metadata_names_the_file(tmp_path, content, message):
    if content is not None:
        (tmp_path / "metadata.json").write_text(content, encoding="utf-8")
    with pytest.raises(micro.MetadataError, match=message) as info:
        micro.Firmware.load(tmp_path)
    assert str(tmp_path / "metadata.json") in str(info.value)
