"""micro.App: user C code around the model, one step per input record, in real QEMU.

The app (``apps/window_app.c``) sums int16 samples and, every 7th sample, runs a small int8
model on the last 8 samples; its output bytes are checked against a numpy re-implementation
with the host Relax VM's model outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import micro

from .graphs import host_reference, int8_dense, requires_toolchain

APP_SOURCE = Path(__file__).parent / "apps" / "window_app.c"
N_IN, N_OUT, EVERY, INIT_SUM = 8, 4, 7, 1000
FAILS_ON, OVERSIZE_ON = -32768, 32767
OUTPUT_MAX = N_OUT + 8


@pytest.fixture(scope="module")
def model():
    return int8_dense(n_in=N_IN, n_out=N_OUT)


def window_app(**changes) -> micro.App:
    fields = dict(
        sources=[APP_SOURCE], step="window_step", init="window_init", input_bytes=2,
        output_max_bytes=OUTPUT_MAX,
        defines={"WINDOW_EVERY": EVERY, "INIT_SUM": INIT_SUM, "INIT_STATUS": 0,
                 "STEP_FAILS_ON": f"({FAILS_ON})", "STEP_OVERSIZE_ON": OVERSIZE_ON},
    )  # fmt: skip
    return micro.App(**(fields | changes))


def samples(count: int, seed: int = 0) -> np.ndarray:
    """int16 samples that never hit the app's error triggers."""
    return np.random.default_rng(seed).integers(-20000, 20000, count, dtype=np.int16)


def reference_bytes(model, x: np.ndarray) -> bytes:
    """What window_app.c writes for the samples ``x``: numpy plus the host model."""
    scaled = np.clip(x.astype(np.int32) >> 6, -128, 127).astype(np.int8)
    indices = np.arange(EVERY - 1, len(x), EVERY)
    windows = np.stack([scaled[i - N_IN + 1 : i + 1] if i >= N_IN - 1 else
                        np.concatenate([np.zeros(N_IN - 1 - i, np.int8), scaled[: i + 1]])
                        for i in indices])  # fmt: skip
    outputs = host_reference(model, windows[:, np.newaxis, :])
    sums = (INIT_SUM + np.cumsum(x.astype(np.int64))).astype(np.int32)
    return b"".join(out.tobytes() + np.uint32(i).tobytes() + sums[i].astype("<i4").tobytes()
                    for out, i in zip(outputs, indices))


@requires_toolchain
@pytest.mark.parametrize("board", ["mps2-an386", "microbit"])
def test_app_output_is_byte_exact_and_every_step_is_counted(model, tmp_path, board):
    firmware = micro.build(model, board, tmp_path, app=window_app())
    x = samples(5000)  # several input blocks and output flushes on both boards
    result = micro.run(firmware, x)
    assert result.outputs.dtype == np.uint8 and result.outputs.ndim == 1
    assert result.outputs.tobytes() == reference_bytes(model, x)  # init ran once (sum, -2)
    counts = result.instruction_counts
    assert result.counting == "plugin" and counts.shape == (len(x),)
    runs_model = np.arange(len(x)) % EVERY == EVERY - 1
    assert counts[runs_model].min() > 3 * counts[~runs_model].max()
    assert result.instructions_per_inference == pytest.approx(counts.mean())
    assert (result.instructions_min, result.instructions_max) == (counts.min(), counts.max())
    assert result.ticks_total > 0
    # The stack figure covers every step: the first model call is the 7th step.
    few = micro.run(firmware, x[: EVERY - 1])
    assert few.outputs.size == 0 and few.stack_bytes < result.stack_bytes
    assert 0 < result.stack_bytes <= result.stack_total_bytes
    fp = firmware.footprint
    assert fp.app_flash_bytes > 0 and fp.app_ram_bytes >= 2 * N_IN  # ring + model input
    assert fp.model_flash_bytes + fp.app_flash_bytes < fp.image_flash_bytes


@requires_toolchain
def test_a_30_minute_recording_is_650k_counted_steps(model, tmp_path):
    """360 Hz for 30 minutes: one QEMU run, a count per step, in seconds (blocked I/O)."""
    app = micro.App(sources=[APP_SOURCE.with_name("sum_app.c")], step="sum_step",
                    input_bytes=2, output_max_bytes=4, defines={"EMIT_EVERY": 360})
    firmware = micro.build(model, "mps2-an386", tmp_path, app=app)
    x = samples(650_000)
    result = micro.run(firmware, x, timeout=60.0)
    sums = np.cumsum(x.astype(np.int64)).astype("<i4")[359::360]
    assert result.outputs.tobytes() == sums.tobytes()
    assert result.instruction_counts.shape == (650_000,)
    assert result.instructions_min > 0


@requires_toolchain
def test_loaded_app_firmware_runs_the_same(model, tmp_path):
    app = window_app()
    firmware = micro.build(model, "mps2-an386", tmp_path, app=app)
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    assert metadata["app"] == {
        "step": "window_step", "init": "window_init", "input_bytes": 2,
        "output_max_bytes": OUTPUT_MAX, "sources": ["window_app.c"], "include_dirs": [],
        "defines": {k: str(v) for k, v in app.defines.items()},
    }  # fmt: skip
    loaded = micro.Firmware.load(tmp_path)
    assert loaded.app.sources == (tmp_path.resolve() / "src" / "window_app.c",)
    assert (loaded.app.step, loaded.app.init, loaded.app.input_bytes) == ("window_step",
                                                                          "window_init", 2)
    assert loaded.footprint == firmware.footprint
    x = samples(100, seed=1)
    first, again = micro.run(firmware, x), micro.run(loaded, x)
    np.testing.assert_array_equal(first.outputs, again.outputs)
    np.testing.assert_array_equal(first.instruction_counts, again.instruction_counts)
    # Records given as bytes: the same run.
    as_bytes = micro.run(loaded, x.view(np.uint8).reshape(-1, 2))
    np.testing.assert_array_equal(as_bytes.outputs, first.outputs)
    (tmp_path / "src" / "window_app.c").unlink()
    with pytest.raises(micro.MetadataError, match=r"metadata\.json: App\.sources: .* not exist"):
        micro.Firmware.load(tmp_path)


@requires_toolchain
def test_step_errors_stop_the_run_with_the_model_error_exit(model, tmp_path):
    firmware = micro.build(model, "mps2-an386", tmp_path, app=window_app())
    x = samples(3000)
    x[2500] = FAILS_ON  # in the second input block
    with pytest.raises(micro.FirmwareError, match=r"code 5 .*app step returned -1 on record 2500$"):
        micro.run(firmware, x)
    x[2500] = OVERSIZE_ON
    with pytest.raises(micro.FirmwareError, match=r"app step returned 13 on record 2500 \(more"):
        micro.run(firmware, x)


@requires_toolchain
def test_failing_init_stops_the_run(model, tmp_path):
    app = window_app(defines={**window_app().defines, "INIT_STATUS": 3})
    firmware = micro.build(model, "mps2-an386", tmp_path, app=app)
    with pytest.raises(micro.FirmwareError, match=r"code 5 .*app init returned 3$"):
        micro.run(firmware, samples(10))


@requires_toolchain
def test_wrong_records_are_refused_before_qemu(model, tmp_path):
    firmware = micro.build(model, "mps2-an386", tmp_path, app=window_app())
    for wrong in (samples(10).astype(np.int32), np.zeros((10, 3), np.uint8),
                  np.zeros(0, np.int16), np.int16(5), np.array(["ab", "cd"])):  # fmt: skip
        with pytest.raises(micro.InvalidInputError, match="input_bytes=2|dtype"):
            micro.run(firmware, wrong)
    assert not list(tmp_path.glob("run-*"))


@requires_toolchain
def test_export_leaves_the_app_out(model, tmp_path):
    firmware = micro.build(model, "mps2-an386", tmp_path / "fw", app=window_app())
    library = micro.export(firmware, tmp_path / "lib", "win")
    assert "window_app.c" not in {path.name for path in library.sources}


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"sources": []}, r"App\.sources must name at least one"),
        ({"sources": [APP_SOURCE.with_suffix(".h")]}, r"App\.sources: .* is not a \.c file"),
        ({"sources": [APP_SOURCE.with_name("missing.c")]}, r"App\.sources: .* does not exist"),
        ({"sources": [APP_SOURCE, APP_SOURCE]}, r"App\.sources: two files are named"),
        ({"sources": 3}, r"App\.sources must be a path"),
        ({"step": "2step"}, r"App\.step must be a C identifier"),
        ({"init": "window_step"}, r"App\.init and App\.step are both"),
        ({"input_bytes": 0}, r"App\.input_bytes must be an int >= 1"),
        ({"output_max_bytes": True}, r"App\.output_max_bytes must be an int >= 1"),
        ({"defines": {"MICRO_BOARD": 1}}, r"App\.defines: 'MICRO_BOARD' uses a prefix"),
        ({"defines": {"X": "1\n#define Y"}}, r"App\.defines\['X'\] must be a one-line"),
        ({"defines": {"X": 1.5}}, r"App\.defines\['X'\] must be a str or an int"),
        ({"defines": ["X"]}, r"App\.defines must be a mapping"),
    ],
)
def test_invalid_app_fields_are_named(changes, message):
    with pytest.raises(micro.InvalidAppError, match=message):
        window_app(**changes)


def test_app_source_may_not_replace_a_project_file(tmp_path):
    harness = tmp_path / "harness.c"
    harness.write_text("int x;\n")
    with pytest.raises(micro.InvalidAppError, match=r"App\.sources: harness\.c is the name of"):
        window_app(sources=[harness])


def test_missing_include_folder_and_non_app_are_refused_by_build(model, tmp_path):
    app = window_app(include_dirs=[tmp_path / "nowhere"])
    with pytest.raises(micro.InvalidAppError, match=r"App\.include_dirs: .*nowhere is not a"):
        micro.build(model, "mps2-an386", tmp_path, app=app)
    with pytest.raises(micro.InvalidAppError, match="app must be a micro.App, got dict"):
        micro.build(model, "mps2-an386", tmp_path, app={"step": "window_step"})
