"""The C front end (pla_tvm/stream/c) against its Python reference, bit for bit.

``ecg_stream.c`` is compiled with the host ``cc`` together with ``c_driver.c``, which pushes the
samples of a file and prints every ``ecg_stream_on_peak`` / ``ecg_stream_on_beat`` event and the
skip counts; they must equal :meth:`FrontEnd.run`'s ``r_peaks``, ``beat_peaks``, ``beats`` and
``skipped`` exactly: on MIT-BIH record 100 and on synthetic signals at 125 to 1000 Hz (flat, white
noise, a sine-based ECG with amplitude steps, noise bursts, pacing spikes, 28, 30 and 200 bpm,
a pulse at the stream's start, record 100 resampled to 250 Hz, full-scale int16 steps).
The Arm build is only compiled.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pla_tvm.errors import PlaTvmError
from pla_tvm.stream import FrontEnd, StreamConfig
from pla_tvm.stream.config import MAX_FS, MAX_LENGTH, MIN_FS
from pla_tvm.stream.csource import CONFIG_HEADER, config_header, source_files
from pla_tvm.stream.reference import SKIP_REASONS

DRIVER = Path(__file__).with_name("c_driver.c")
C_FLAGS = ("-O2", "-Wall", "-Wextra", "-Werror", "-std=c11")
RATES = (125, 250, 500, 1000)

requires_cc = pytest.mark.skipif(not os.environ.get("CI") and shutil.which("cc") is None,
                                 reason="needs a host C compiler (cc; make setup installs gcc)")
requires_arm_gcc = pytest.mark.skipif(
    not os.environ.get("CI") and shutil.which("arm-none-eabi-gcc") is None,
    reason="needs gcc-arm-none-eabi (make setup)",
)


def mitdb_config(fs: int = 360, **changes) -> StreamConfig:
    """The front end for the MIT-BIH model input (length 140), at any rate."""
    values = dict(fs=fs, length=140, input_scale=0.038, input_zero_point=20, adc_bits=11)
    return StreamConfig(**{**values, **changes})


def smallest_scale(length: int) -> float:
    """About the smallest input scale StreamConfig accepts for ``length`` (the largest
    scale_constant, so the largest quantizer product)."""
    scale = 1e-5
    while True:
        try:
            StreamConfig(fs=MIN_FS, length=length, input_scale=scale, input_zero_point=0)
            return scale
        except PlaTvmError:
            scale *= 1.002


def _run(args: list[str], what: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{what} failed ({done.returncode}): {' '.join(args)}\n"
                             f"{done.stdout}{done.stderr}")
    return done.stdout


class CFrontEnd:
    """``ecg_stream.c`` + ``c_driver.c`` built for one configuration with the host ``cc``."""

    def __init__(self, config: StreamConfig, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_HEADER).write_text(config_header(config), encoding="utf-8")
        c_file = next(p for p in source_files() if p.suffix == ".c")
        self.config, self.folder = config, folder
        self.binary = folder / "driver"
        _run(["cc", *C_FLAGS, f"-I{folder}", f"-I{c_file.parent}", str(c_file), str(DRIVER),
              "-o", str(self.binary)], "host build")

    def run(self, signal: np.ndarray, name: str) -> dict:
        """Push ``signal`` through the C and parse its events."""
        path = self.folder / f"{name}.bin"
        np.asarray(signal, dtype=np.int16).tofile(path)
        peaks, beat_peaks, beats, skipped, samples = [], [], [], {}, -1
        for line in _run([str(self.binary), str(path)], "driver").splitlines():
            kind, *fields = line.split()
            values = [int(v) for v in fields]
            if kind == "P":
                peaks.append(values[0])
            elif kind == "B":
                beat_peaks.append(values[0])
                beats.append(values[1:])
            elif kind == "S":
                skipped = {r: k for r, k in zip(SKIP_REASONS, values, strict=True) if k}
            elif kind == "N":
                samples = values[0]
        return dict(r_peaks=peaks, beat_peaks=beat_peaks,
                    beats=np.array(beats, np.int8).reshape(-1, self.config.length),
                    skipped=skipped, samples=samples)


@pytest.fixture(scope="module")
def c_front_end(tmp_path_factory):
    """A factory of :class:`CFrontEnd`, one build per configuration."""
    if shutil.which("cc") is None:
        pytest.skip("needs a host C compiler (cc)")
    root, built = tmp_path_factory.mktemp("c-front-end"), {}

    def build(config: StreamConfig) -> CFrontEnd:
        if config not in built:
            built[config] = CFrontEnd(config, root / f"build{len(built)}")
        return built[config]

    return build


def assert_bit_exact(c_front_end, config: StreamConfig, signal: np.ndarray, name: str) -> dict:
    """Run both and compare every event; returns the C's results."""
    signal = np.asarray(signal, dtype=np.int16)
    got = c_front_end(config).run(signal, name)
    want = FrontEnd(config).run(signal)
    assert got["samples"] == want.samples == len(signal)
    assert got["r_peaks"] == want.r_peaks.tolist(), name
    assert got["beat_peaks"] == want.beat_peaks.tolist(), name
    np.testing.assert_array_equal(got["beats"], want.beats, err_msg=name)
    assert got["skipped"] == want.skipped, name
    return got


def read_record_100(data_root: Path) -> np.ndarray:
    wfdb = pytest.importorskip("wfdb")
    path = data_root / "mitdb" / "100"
    if not path.with_suffix(".dat").is_file():
        pytest.skip(f"MIT-BIH record 100 not found at {path}")
    return wfdb.rdrecord(str(path), physical=False).d_signal[:, 0].astype(np.int16)


# -- synthetic signals -----------------------------------------------------------------------------

def _beat_times(fs: int, seconds: float, bpm: float, jitter: float, rng) -> np.ndarray:
    rr = 60.0 / bpm
    times, t = [], 0.5
    while t < seconds - 0.5:
        times.append(t)
        t += rr * (1 + jitter * rng.uniform(-1, 1))
    return np.round(np.array(times) * fs).astype(int)


def synthetic_ecg(fs: int, seconds: float = 30, bpm: float = 72, jitter: float = 0.05,
                  amplitude: float = 400, steps: bool = True, seed: int = 0) -> np.ndarray:
    """Sine lobes for P, QRS and T at each beat, baseline wander, mild noise; with ``steps`` the
    amplitude jumps to 3x after a third and to 0.3x after two thirds of the signal."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    x = 40 * np.sin(2 * np.pi * 0.3 * t) + rng.normal(0, 4, n)
    gain = np.ones(n)
    if steps:
        gain[n // 3:] = 3.0
        gain[2 * n // 3:] = 0.3

    def lobe(centre: int, width_s: float, height: float) -> None:
        half = max(1, int(width_s * fs / 2))
        idx = np.arange(centre - half, centre + half + 1)
        keep = (idx >= 0) & (idx < n)
        x[idx[keep]] += height * gain[idx[keep]] * np.sin(
            np.pi * (idx[keep] - centre + half) / (2 * half))

    for r in _beat_times(fs, seconds, bpm, jitter, rng):
        lobe(r - int(0.16 * fs), 0.08, 0.12 * amplitude)        # P
        lobe(r - int(0.03 * fs), 0.02, -0.15 * amplitude)       # Q
        lobe(r, 0.04, amplitude)                                 # R
        lobe(r + int(0.03 * fs), 0.025, -0.25 * amplitude)      # S
        lobe(r + int(0.28 * fs), 0.16, 0.3 * amplitude)         # T
    return np.clip(np.round(x), -1024, 1023).astype(np.int16)


def noise_bursts(fs: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = synthetic_ecg(fs, steps=False, seed=seed).astype(np.int64)
    for start_s in (5, 12, 13.5, 22):
        start, stop = int(start_s * fs), int((start_s + rng.uniform(0.3, 2.0)) * fs)
        x[start:stop] += rng.normal(0, 600, stop - start).astype(np.int64)
    return np.clip(x, -1024, 1023).astype(np.int16)


def paced(fs: int, seed: int = 2) -> np.ndarray:
    """A wide-QRS rhythm at 70 bpm, each beat led by a 1-2 sample pacing spike."""
    rng = np.random.default_rng(seed)
    x = synthetic_ecg(fs, bpm=70, jitter=0.0, amplitude=300, steps=False, seed=seed)
    x = x.astype(np.int64)
    for r in _beat_times(fs, 30, 70, 0.0, rng):
        spike = r - int(0.06 * fs)
        x[spike:spike + max(1, fs // 500)] += 900
    return np.clip(x, -1024, 1023).astype(np.int16)


def full_scale(fs: int, seconds: float = 20, seed: int = 3) -> np.ndarray:
    """Levels among -32768, -32767, 0 and 32767 held 1 sample to 1.2 s: every filter, slope and
    beat at its int16 extremes."""
    rng = np.random.default_rng(seed)
    levels = np.array([-32768, -32767, 0, 32767])
    parts, n = [], int(seconds * fs)
    while sum(len(p) for p in parts) < n:
        hold = 1 if rng.random() < 0.2 else int(rng.uniform(0.05, 1.2) * fs)
        parts.append(np.full(hold, rng.choice(levels)))
    return np.concatenate(parts)[:n].astype(np.int16)


def square_steps(fs: int, seconds: float = 20) -> np.ndarray:
    """A +-32767 square wave, a step every 0.4 s."""
    n = int(seconds * fs)
    return np.where((np.arange(n) // int(0.4 * fs)) % 2 == 0, 32767, -32767).astype(np.int16)


def start_pulse(fs: int) -> np.ndarray:
    """A 40 ms pulse two samples into the stream (the filters' start and the learning phase's
    first peak)."""
    x = synthetic_ecg(fs, seconds=6, steps=False, seed=9).astype(np.int64)
    x[2:2 + int(0.04 * fs)] += 1500
    return np.clip(x, -2048, 2047).astype(np.int16)


SIGNALS = {
    "flat": lambda fs: np.full(10 * fs, 123, np.int16),
    "white-noise": lambda fs: np.clip(np.random.default_rng(4).normal(0, 200, 20 * fs),
                                      -1024, 1023).astype(np.int16),
    "ecg-amplitude-steps": synthetic_ecg,
    "noise-bursts": noise_bursts,
    "paced": paced,
    "30-bpm": lambda fs: synthetic_ecg(fs, seconds=40, bpm=30, steps=False, seed=5),
    "28-bpm": lambda fs: synthetic_ecg(fs, seconds=30, bpm=28, jitter=0.0, steps=False, seed=6),
    "200-bpm": lambda fs: synthetic_ecg(fs, seconds=20, bpm=200, jitter=0.02, amplitude=600,
                                        steps=False, seed=7),
    "start-pulse": start_pulse,
}


@requires_cc
@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("name", list(SIGNALS))
def test_synthetic_signals(c_front_end, fs, name):
    got = assert_bit_exact(c_front_end, mitdb_config(fs), SIGNALS[name](fs), name)
    if name in ("ecg-amplitude-steps", "paced", "30-bpm", "200-bpm"):
        assert len(got["beats"]) > 0, f"{name} at {fs} Hz: no beat (the test exercises nothing)"


@requires_cc
@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("signal", [full_scale, square_steps], ids=["full-scale", "square"])
@pytest.mark.parametrize("length, adc_bits", [(140, 11), (MAX_LENGTH, 16), (8, 16)])
def test_full_scale_extremes(c_front_end, fs, signal, length, adc_bits):
    """int16 extremes, also with the largest length and scale_constant the config allows."""
    scale = 0.038 if length == 140 else smallest_scale(length) * 1.0001
    config = mitdb_config(fs, length=length, input_scale=scale, adc_bits=adc_bits)
    got = assert_bit_exact(c_front_end, config, signal(fs), signal.__name__)
    if signal is square_steps:
        assert len(got["beats"]) > 0 and np.abs(got["beats"].astype(int)).max() >= 127


@requires_cc
def test_record_100_first_minute(c_front_end, data_root):
    signal = read_record_100(data_root)[:60 * 360]
    got = assert_bit_exact(c_front_end, mitdb_config(), signal, "record-100-60s")
    assert len(got["beats"]) > 60


@requires_cc
@pytest.mark.slow
def test_record_100(c_front_end, data_root):
    """The whole record (30 min, about 10 s of Python)."""
    got = assert_bit_exact(c_front_end, mitdb_config(), read_record_100(data_root), "record-100")
    assert len(got["r_peaks"]) > 2200


@requires_cc
def test_record_100_at_250_hz(c_front_end, data_root):
    from scipy.signal import resample_poly

    stretch = read_record_100(data_root)[:90 * 360].astype(np.float64)
    signal = np.round(resample_poly(stretch, 25, 36)).astype(np.int16)
    got = assert_bit_exact(c_front_end, mitdb_config(250), signal, "record-100-250Hz")
    assert len(got["beats"]) > 90


# -- ranges, RAM and the Arm build -----------------------------------------------------------------

def _check_ranges(fs: int) -> None:
    c = mitdb_config(fs)
    lw, hw, w = c.lowpass_width, c.highpass_width, c.window
    assert lw * 32768 < 2 ** 20
    assert hw * lw * 32768 < 2 ** 28
    band = (hw - 1) * lw * 65535
    assert band < 2 ** 29 and 2 * (2 * band) < 2 ** 31  # 2 * slope in decide()
    assert 2 ** c.energy_shift >= w and 2 * 32767 ** 2 < 2 ** 31  # integral < 2^30, 2 * value
    assert c.learning * 2 ** 30 <= 2 ** 41
    assert c.max_rr < c.raw_ring and c.max_rr <= 0xFFFF
    assert 2 * w + c.derivative_span <= c.band_ring  # slope_at reads back at most this far


def test_c_ranges():
    """The bounds ecg_stream.c's file comment states hold at every rate (int16 input)."""
    for fs in range(MIN_FS, MAX_FS + 1):
        _check_ranges(fs)


@pytest.mark.parametrize("length", [8, 9, 140, MAX_LENGTH])
def test_quantizer_product_bound(length):
    """At the smallest scale, the bound ``C 2^32 sqrt((L-1)(k+2)/k)`` stays below 2^63 - 2^47,
    and is within 1 % of it (the check is not needlessly strict)."""
    scale = smallest_scale(length)
    c = StreamConfig(fs=360, length=length, input_scale=scale, input_zero_point=0)
    k = math.isqrt(length - 1)
    bound = c.scale_constant * 2 ** 32 * math.sqrt((length - 1) * (k + 2) / k)
    assert 0.99 * 2 ** 63 < bound < 2 ** 63 - 2 ** 47
    with pytest.raises(PlaTvmError, match="input scale .* needs a scale >="):
        StreamConfig(fs=360, length=length, input_scale=scale / 1.01, input_zero_point=0)


def test_length_limit():
    with pytest.raises(PlaTvmError, match="8 to 256 samples"):
        mitdb_config(length=MAX_LENGTH + 1)


@requires_arm_gcc
@pytest.mark.parametrize("cpu", ["cortex-m0", "cortex-m4", "cortex-m55"])
def test_arm_build(tmp_path, cpu):
    """ecg_stream.c builds for bare metal; its RAM is StreamConfig.ram_bytes() exactly, and it
    needs nothing but memset/memmove/memcpy and libgcc's integer helpers."""
    config = mitdb_config()
    (tmp_path / CONFIG_HEADER).write_text(config_header(config), encoding="utf-8")
    c_file = next(p for p in source_files() if p.suffix == ".c")
    obj = tmp_path / "ecg_stream.o"
    _run(["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", "-ffreestanding", *C_FLAGS,
          f"-I{tmp_path}", "-c", str(c_file), "-o", str(obj)], f"{cpu} build")
    text, data, bss = (int(v) for v in
                       _run(["arm-none-eabi-size", str(obj)], "size").splitlines()[1].split()[:3])
    assert data == 0 and bss == config.ram_bytes()
    undefined = set(_run(["arm-none-eabi-nm", "-u", str(obj)], "nm").split()) - {"U"}
    allowed = {"memset", "memmove", "memcpy", "ecg_stream_on_peak", "ecg_stream_on_beat"}
    allowed |= {f"__aeabi_{name}" for name in ("idiv", "idivmod", "uidiv", "uidivmod", "ldivmod",
                                               "uldivmod", "lmul", "llsl", "llsr", "lasr",
                                               "lcmp", "ulcmp")}
    assert undefined <= allowed, f"{cpu}: unexpected symbols {sorted(undefined - allowed)}"
