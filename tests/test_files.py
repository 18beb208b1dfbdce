"""pla_tvm.files.output_folder under interrupts: nothing half-written, nothing lost."""

from __future__ import annotations

import os
import signal

import pytest

from pla_tvm import files


@pytest.fixture
def python_ctrl_c():
    """Python's own SIGINT handler (raises KeyboardInterrupt) for the test; the command line's
    (installed by tests that ran ``main`` before) is put back after."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_the_swap_is_delivered_after_both_renames(tmp_path, monkeypatch,
                                                                python_ctrl_c):
    out = tmp_path / "out"
    out.mkdir()
    (out / "marker.json").write_text("old\n")
    real_replace = os.replace
    calls = []

    def replace_then_interrupt(source, target):
        real_replace(source, target)
        calls.append(target)
        if len(calls) == 1:  # between moving the old folder away and the new one in
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(files.os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        with files.output_folder(out, option="--out", marker="marker.json") as work:
            (work / "marker.json").write_text("new\n")
    assert len(calls) == 2
    assert (out / "marker.json").read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_interrupt_right_after_the_folder_is_made_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_mkdir = files.Path.mkdir

    def mkdir_then_interrupt(self, *args, **kwargs):
        real_mkdir(self, *args, **kwargs)
        if ".partial-" in self.name:
            raise KeyboardInterrupt

    monkeypatch.setattr(files.Path, "mkdir", mkdir_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        with files.output_folder(out, option="--out", marker="marker.json"):
            pass
    files.discard_partial_folders()
    assert list(tmp_path.iterdir()) == []
