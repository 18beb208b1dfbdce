"""How micro is put together: what it may import, what importing it does."""

from __future__ import annotations

import ast
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
