"""Session fixtures for the micro tests (graphs are built once)."""

from __future__ import annotations

import pytest
import tvm

from .graphs import float_mlp, int8_dense


@pytest.fixture(scope="session")
def float_model() -> tvm.IRModule:
    return float_mlp()


@pytest.fixture(scope="session")
def int8_model() -> tvm.IRModule:
    return int8_dense()
