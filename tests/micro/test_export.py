"""micro.export: built models as C libraries, linked into a firmware the test writes itself."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

import micro
from micro.library import EXPORT_FORMAT_VERSION
from micro.toolchain import find_toolchain
from tests.own_firmware import build_and_run

from .graphs import conv_block, int8_dense, random_inputs, requires_toolchain, tiny_cnn

pytestmark = requires_toolchain

BOARD = "mps2-an386"


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    """An int8 convolution (DSP micro-kernels) and a float CNN (libm, workspace), built."""
    root = tmp_path_factory.mktemp("export")
    models = {"conv": conv_block(24, 8, 8, 3, residual=True), "cnn": tiny_cnn(length=32)}
    builds = {}
    for name, mod in models.items():
        firmware = micro.build(mod, BOARD, root / f"fw-{name}",
                               quantization={"input": {"scale": 0.05, "zero_point": -3}}
                               if name == "conv" else None)
        inputs = random_inputs(mod, 3)
        builds[name] = (firmware, inputs, micro.run(firmware, inputs).outputs)
    return builds


def test_two_exported_models_run_in_our_own_firmware_as_in_micros(two_builds, tmp_path):
    libraries = {name: micro.export(firmware, tmp_path / name, prefix=name).out_dir
                 for name, (firmware, _, _) in two_builds.items()}
    outputs = build_and_run(libraries, {name: inputs for name, (_, inputs, _) in
                                        two_builds.items()}, tmp_path / "own")
    for name, (_, _, expected) in two_builds.items():
        np.testing.assert_array_equal(
            outputs[name], np.ascontiguousarray(expected).view(np.uint8).reshape(len(expected), -1))


def test_library_content_api_and_prefixed_symbols(two_builds, tmp_path):
    firmware = two_builds["conv"][0]
    library = micro.export(firmware, tmp_path / "lib", prefix="ecg1",
                           provenance={"model": "conv_block"})
    names = sorted(path.name for path in library.out_dir.rglob("*") if path.is_file())
    assert {"ecg1.h", "ecg1.mk", "CMakeLists.txt", "README.md", "metadata.json", "model.c",
            "kernels.c", "micro_backend.c"} <= set(names)
    assert not {"startup.c", "harness.c", "linker.ld", "micro_config.h"} & set(names)
    header = library.header.read_text()
    for define in (f"ECG1_INPUT_BYTES {firmware.input.nbytes}",
                   f"ECG1_OUTPUT_BYTES {firmware.output.nbytes}", "ECG1_INPUT_SCALE 0.05f",
                   "ECG1_INPUT_ZERO_POINT -3", "ECG1_OUTPUT_SCALE 1.0f", "ECG1_ARENA_BYTES",
                   "int ecg1_run(const void* input, void* output);"):
        assert define in header
    metadata = json.loads((library.out_dir / "metadata.json").read_text())
    assert metadata["format_version"] == EXPORT_FORMAT_VERSION
    assert metadata["board"] == BOARD and metadata["provenance"] == {"model": "conv_block"}
    # Independently of export's own check: compile the library, list its global symbols.
    toolchain = find_toolchain()
    board = micro.get_board(BOARD)
    defined = []
    for source in library.sources:
        obj = tmp_path / f"{source.stem}.o"
        subprocess.run([str(toolchain.gcc), *board.gcc_flags, "-O2", "-Wall", "-Wextra",
                        "-Werror", f"-I{library.out_dir / 'include'}",
                        f"-I{library.out_dir / 'src'}", "-c", str(source), "-o", str(obj)],
                       check=True)
        listing = subprocess.run([str(toolchain.nm), "-g", "--defined-only", str(obj)],
                                 check=True, capture_output=True, text=True).stdout
        defined += [line.split()[-1] for line in listing.splitlines() if line.strip()]
    assert "ecg1_run" in defined
    assert [symbol for symbol in defined if not symbol.startswith("ecg1_")] == []
    assert sorted(defined) == list(library.symbols)


@pytest.mark.parametrize("prefix", ["", "1abc", "a-b", "x" * 40, "_x"])
def test_unusable_prefix_is_refused(two_builds, tmp_path, prefix):
    with pytest.raises(micro.ExportError, match="is not usable"):
        micro.export(two_builds["conv"][0], tmp_path / "lib", prefix=prefix)
    assert not (tmp_path / "lib").exists()


def test_existing_folder_and_llvm_kernels_are_refused(two_builds, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine\n")
    with pytest.raises(micro.ExportError, match="not an empty folder"):
        micro.export(two_builds["conv"][0], tmp_path / "taken", prefix="a")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine\n"
    llvm = micro.build(int8_dense(), BOARD, tmp_path / "fw-llvm", backend="llvm")
    with pytest.raises(micro.ExportError, match="needs C kernels"):
        micro.export(llvm, tmp_path / "lib", prefix="a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fw-llvm", "taken"]
