"""Session fixtures of the integration tests: the three small int8 CNNs of
:mod:`pla_tvm.bench.small_cnns` (the benchmark's own builders), each built and converted once."""

from __future__ import annotations

import pytest

from pla_tvm.bench.small_cnns import SmallCNN, make_small_cnn


@pytest.fixture(scope="session")
def plain_cnn() -> SmallCNN:
    """Conv1D(16, 5) + ReLU, MaxPool1D(2), Conv1D(32, 3) + ReLU, GAP, Dense(5)."""
    return make_small_cnn("plain")


@pytest.fixture(scope="session")
def depthwise_cnn() -> SmallCNN:
    """Conv1D(16, 5) + ReLU, DepthwiseConv1D(3) + ReLU, Conv1D(32, 1) + ReLU, GAP, Dense(5)."""
    return make_small_cnn("depthwise")


@pytest.fixture(scope="session")
def separable_cnn() -> SmallCNN:
    """Conv1D(16, 5) + ReLU, SeparableConv1D(32, 3) + ReLU, GAP, Dense(5)."""
    return make_small_cnn("separable")
