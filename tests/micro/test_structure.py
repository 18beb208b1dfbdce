"""How micro is put together: what it may import, what importing it does."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import micro

MICRO_DIR = Path(micro.__file__).parent
#: Packages of the application that micro must not know (ARCHITECTURE: dependencies point one way).
FORBIDDEN = ("relay_passes", "pla_tvm")


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_no_module_of_micro_imports_the_application():
    sources = sorted(MICRO_DIR.rglob("*.py"))
    assert len(sources) > 10
    offending = {
        f"{path.relative_to(MICRO_DIR)}: {module}"
        for path in sources
        for module in _imported_modules(path)
        if module.split(".")[0] in FORBIDDEN
    }
    assert not offending


_IMPORT_REGISTERS_NOTHING = """
import tvm
import micro, micro.tuning
from micro import codegen
from micro.kernels import dsp
rule = dsp._META_SCHEDULE_RULE
symbols = (dsp.MICRO_KERNEL, dsp.MICRO_KERNEL_X4, dsp.REQUANTIZE_KERNEL)
assert tvm.get_global_func(rule, allow_missing=True) is None, "registered at import"
assert not set(symbols) & set(codegen._EXTERN_SOURCES), "registered at import"
dsp.register()
dsp.register()
assert tvm.get_global_func(rule, allow_missing=True) is not None
assert {codegen._EXTERN_SOURCES[s].name for s in symbols} == {"dot_product.c", "requantize.c"}
print("ok")
"""


def test_importing_micro_registers_nothing_and_register_is_idempotent():
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_REGISTERS_NOTHING],
        capture_output=True, text=True, cwd=MICRO_DIR.parent, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
