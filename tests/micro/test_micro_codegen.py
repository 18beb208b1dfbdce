"""Code generation hooks: C sources registered for extern calls, and kernel intermediates in the
workspace arena instead of on the stack."""

from __future__ import annotations

import numpy as np
import pytest
from tvm.script import ir as I
from tvm.script import relax as R
from tvm.script import tirx as T

import micro
from micro import codegen

from .graphs import float_mlp, host_reference, random_inputs, requires_toolchain

_ADD_ONE = "micro_test_add_one"
_ADD_ONE_SOURCE = f"""#include <stdint.h>
int32_t {_ADD_ONE}(int32_t v) {{ return v + 1; }}
"""


@I.ir_module
class _CallsAddOne:
    @T.prim_func(private=True)
    def add_one(x: T.Buffer((8,), "int32"), y: T.Buffer((8,), "int32")):
        for i in range(8):
            y[i] = T.call_extern("int32", "micro_test_add_one", x[i])

    @R.function
    def main(x: R.Tensor((8,), "int32")) -> R.Tensor((8,), "int32"):
        cls = _CallsAddOne
        with R.dataflow():
            y = R.call_tir(cls.add_one, (x,), out_ty=R.Tensor((8,), "int32"))
            R.output(y)
        return y


@I.ir_module
class _CallsUnknown:
    @T.prim_func(private=True)
    def unknown(x: T.Buffer((8,), "int32"), y: T.Buffer((8,), "int32")):
        for i in range(8):
            y[i] = T.call_extern("int32", "micro_test_nowhere_defined", x[i])

    @R.function
    def main(x: R.Tensor((8,), "int32")) -> R.Tensor((8,), "int32"):
        cls = _CallsUnknown
        with R.dataflow():
            y = R.call_tir(cls.unknown, (x,), out_ty=R.Tensor((8,), "int32"))
            R.output(y)
        return y


@I.ir_module
class _Intermediate768:
    @T.prim_func(private=True)
    def reverse_twice(x: T.Buffer((192,), "int32"), y: T.Buffer((192,), "int32")):
        tmp = T.alloc_buffer((192,), "int32")  # 768 bytes: stack in TVM, workspace here
        for i in range(192):
            tmp[i] = x[i] * 3
        for i in range(192):
            y[i] = tmp[191 - i] + x[i]

    @R.function
    def main(x: R.Tensor((192,), "int32")) -> R.Tensor((192,), "int32"):
        cls = _Intermediate768
        with R.dataflow():
            y = R.call_tir(cls.reverse_twice, (x,), out_ty=R.Tensor((192,), "int32"))
            R.output(y)
        return y


def test_a_file_name_given_as_text_is_refused():
    with pytest.raises(ValueError, match="pathlib.Path"):
        codegen.register_extern_source("f", "kernels/f.c")


@requires_toolchain
@pytest.mark.parametrize("backend", ["c", "llvm"])
def test_registered_source_is_built_in_only_when_a_kernel_calls_it(tmp_path, backend):
    codegen.register_extern_source(_ADD_ONE, _ADD_ONE_SOURCE)
    inputs = np.arange(-8, 8, dtype=np.int32).reshape(2, 8)
    firmware = micro.build(_CallsAddOne, "mps2-an386", tmp_path / "calls", backend=backend)
    np.testing.assert_array_equal(micro.run(firmware, inputs).outputs, inputs + 1)
    assert (firmware.out_dir / "src" / f"{_ADD_ONE}.c").is_file()
    assert (firmware.out_dir / "build" / f"{_ADD_ONE}.o").is_file()

    other = micro.build(float_mlp(), "mps2-an386", tmp_path / "other", backend=backend)
    assert not (other.out_dir / "src" / f"{_ADD_ONE}.c").exists()


@requires_toolchain
def test_unknown_extern_function_is_named_in_the_error(tmp_path):
    with pytest.raises(micro.BuildError, match="micro_test_nowhere_defined"):
        micro.build(_CallsUnknown, "mps2-an386", tmp_path)


@requires_toolchain
def test_kernel_intermediates_live_in_the_workspace_arena(tmp_path, monkeypatch):
    inputs = random_inputs(_Intermediate768, 3)
    arena = micro.build(_Intermediate768, "mps2-an386", tmp_path / "arena")
    with monkeypatch.context() as patch:
        patch.setattr(codegen, "STACK_ALLOCATION_LIMIT", 1 << 30)  # TVM's own choice: the stack
        stack = micro.build(_Intermediate768, "mps2-an386", tmp_path / "stack")
    in_arena, on_stack = micro.run(arena, inputs), micro.run(stack, inputs)
    np.testing.assert_array_equal(in_arena.outputs, host_reference(_Intermediate768, inputs))
    np.testing.assert_array_equal(in_arena.outputs, on_stack.outputs)
    assert in_arena.stack_bytes < 768 <= on_stack.stack_bytes
    assert arena.footprint.model_ram_bytes >= stack.footprint.model_ram_bytes + 768
