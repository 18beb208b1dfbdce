"""The README's Python snippets run as written (on a tiny baseline and PLA in their places)."""

from __future__ import annotations

import os
import re
import shutil

from tests.conftest import REPO_ROOT
from tests.micro.graphs import requires_toolchain


def python_snippets() -> list[str]:
    """The README's ```python blocks, in order."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_readme_has_snippets():
    assert len(python_snippets()) >= 2


@requires_toolchain
def test_readme_python_snippets_run_as_written(tiny_baseline, tiny_pla, tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copytree(tiny_baseline, runs / "paper")  # what 'pla-tvm train --out runs/paper' wrote
    shutil.copytree(tiny_pla, runs / "pla")  # what 'pla-tvm compress --out runs/pla' wrote
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict = {}
        for snippet in python_snippets():
            exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102
    finally:
        os.chdir(cwd)
    assert float(capsys.readouterr().out.strip().splitlines()[-1]) > 0
    assert (runs / "lib-ecg" / "include" / "ecg.h").is_file()
