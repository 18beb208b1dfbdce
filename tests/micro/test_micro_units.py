"""Unit tests of the pieces that need no toolchain: boards, graph extraction, memory planning,
the generated C."""

from __future__ import annotations

import re

import numpy as np
import pytest

import micro
from micro import contract
from micro.aot import render_header, render_source
from micro.codegen import Kernels
from micro.graph import Graph, Step, TensorInfo, extract_graph
from micro.lowering import lower_to_kernel_calls
from micro.memplan import align_up, plan_memory
from micro.qemu import _raise_for_exit, parse_report

from .graphs import float_mlp


def test_all_required_boards_are_described():
    names = micro.list_boards()
    for name in ("mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547", "microbit"):
        assert name in names
    m55 = micro.get_board("mps3-an547")
    assert m55.mve and m55.is_armv8m and m55.has_fpu
    assert m55.tvm_target("llvm")["mtriple"] == "thumbv8.1m.main-none-eabi"
    m0 = micro.get_board("microbit")
    assert (m0.flash.length, m0.ram.length) == (256 * 1024, 16 * 1024)
    assert m0.is_armv6m and not m0.has_fpu
    assert micro.get_board("mps2-an385").instructions_per_tick == 40.0


def test_boards_are_frozen():
    board = micro.get_board("mps2-an386")
    with pytest.raises(AttributeError):
        board.clock_hz = 1


def test_extract_graph_names_input_output_and_constants():
    graph = extract_graph(lower_to_kernel_calls(float_mlp()))
    assert graph.input == TensorInfo("input", (1, 16), "float32")
    assert graph.output == TensorInfo("output", (1, 5), "float32")
    assert sorted(v.shape for v in graph.constants.values()) == [(16, 24), (24,), (24, 5)]
    assert graph.steps[0].inputs[0] == "input"
    assert graph.steps[-1].outputs == ("output",)


def _chain(sizes: list[int]) -> Graph:
    """input -> t0 -> t1 -> ... -> output, each tensor read only by the next step."""
    names = [f"t{i}" for i in range(len(sizes))]
    graph = Graph(TensorInfo("input", (4,), "int8"), TensorInfo("output", (4,), "int8"))
    graph.intermediates = {n: TensorInfo(n, (s,), "int8") for n, s in zip(names, sizes)}
    chain = ["input", *names, "output"]
    graph.steps = [Step(f"k{i}", (a,), (b,)) for i, (a, b) in enumerate(zip(chain, chain[1:]))]
    return graph


def test_memory_plan_reuses_dead_buffers():
    plan = plan_memory(_chain([100, 100, 100, 100]))
    # Only two tensors are alive at a time: t0/t2 and t1/t3 can share.
    assert plan.arena_bytes == 2 * align_up(100)
    assert plan.offsets["t0"] != plan.offsets["t1"]
    assert plan.offsets["t1"] != plan.offsets["t2"]


def test_memory_plan_keeps_live_buffers_apart():
    graph = _chain([64, 32])
    graph.steps.append(Step("reuse", ("t0", "t1"), ("output",)))  # t0 lives to the end
    plan = plan_memory(graph)
    assert plan.arena_bytes == 64 + 32
    assert {plan.offsets["t0"], plan.offsets["t1"]} == {0, 64}


def test_constants_are_serialised_bit_exactly():
    special = np.array([0.1, -0.0, np.inf, np.nan, 1e-45, -3.4e38], dtype=np.float32)
    graph = Graph(TensorInfo("input", (6,), "float32"), TensorInfo("output", (6,), "float32"))
    graph.constants = {"w": special}
    graph.steps = [Step("k", ("input", "w"), ("output",))]
    kernels = Kernels("c", None, {"k": "model_run_k"}, 0)
    source = render_source(graph, plan_memory(graph), kernels, "model_run")
    body = re.search(r"c_w\[\d+\][^{]*\{([^}]*)\}", source).group(1)
    raw = bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})", body))
    assert raw == special.tobytes()
    assert "static const uint8_t c_w[24]" in source
    assert "model_run_k((void*)input, (void*)c_w, output)" in source


def test_header_describes_io_and_quantization():
    graph = Graph(TensorInfo("input", (1, 140), "int8"), TensorInfo("output", (1, 5), "int8"))
    header = render_header(
        graph, "ecg_run", {"input": {"scale": 0.25, "zero_point": 3}, "output": None}
    )
    assert "#define MODEL_INPUT_SHAPE {1, 140}" in header
    assert '#define MODEL_OUTPUT_DTYPE "int8"' in header
    assert "#define MODEL_INPUT_BYTES 140" in header
    assert "#define MODEL_INPUT_SCALE 0x1.0000000000000p-2f" in header
    assert "MODEL_OUTPUT_SCALE" not in header
    assert "int ecg_run(const void* input, void* output);" in header


def test_exit_codes_map_to_documented_errors():
    with pytest.raises(micro.FirmwareError, match="SHORT_INPUT.*truncated input record 3"):
        _raise_for_exit(4, "MICRO:ERROR truncated input record 3\n", "")
    stderr = "MICRO:FAULT type=BusFault cfsr=0x00008200 hfsr=0x00000000 mmfar=0x0 bfar=0xfffffff0\n"
    with pytest.raises(micro.FirmwareFaultError, match=r"BusFault.*\[PRECISERR\]") as info:
        _raise_for_exit(13, "", stderr)
    assert info.value.fault == "BusFault"


def test_report_parsing():
    stdout = (
        "MICRO:BEGIN board=mps2-an385 input_bytes=64 output_bytes=20\n"
        "MICRO:RESULT inferences=3 ticks_total=12345678901 ticks_min=7 ticks_max=9\n"
        "MICRO:STACK model_bytes=96 total_bytes=488 reserved_bytes=16384\n"
        "MICRO:END\n"
    )
    report = parse_report(stdout)
    assert (report.inferences, report.ticks_total, report.ticks_min) == (3, 12345678901, 7)
    assert (report.stack_model_bytes, report.stack_total_bytes) == (96, 488)
    with pytest.raises(micro.FirmwareError, match="incomplete"):
        parse_report(stdout.replace("MICRO:END\n", ""))


def test_config_header_carries_the_contract():
    defines = contract.config_defines()
    assert defines["MICRO_EXIT_USAGEFAULT"] == str(contract.FAULT_EXITS["UsageFault"])
    assert defines["MICRO_EXIT_UNEXPECTED_IRQ"] == str(contract.FAULT_EXITS["UnexpectedInterrupt"])
    assert defines["MICRO_INPUT_FILE"] == f'"{contract.INPUT_FILE}"'


def test_build_accepts_a_relative_output_directory(tmp_path, monkeypatch):
    """The compiler and linker run inside the build folder, so paths must not stay relative."""
    monkeypatch.chdir(tmp_path)
    firmware = micro.build(float_mlp(), "mps2-an386", "relative-out")
    assert firmware.elf.is_file() and firmware.elf.is_absolute()


def test_output_that_is_not_utf8_is_read_with_replacement_characters():
    from micro.proc import run_command

    result = run_command(["printf", "MICRO:BEGIN \\377\\376 end\\n"])
    assert result.returncode == 0
    assert result.stdout == "MICRO:BEGIN \ufffd\ufffd end\n"
