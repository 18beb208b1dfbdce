"""Architecture presets of the baseline 1-D ResNet.

``paper`` is sized to the seed paper's baseline (804,169 parameters, 222,908,190 FLOPs): three
residual blocks of 144/144/128 filters with kernels 8/5/3 (Wang et al.'s time-series ResNet,
widened), which lands within 0.4 % of both. The last block has 128 filters because the paper's
PLA figures imply a 128-wide penultimate layer: 3 clusters × (140·128 + 128) + 3·140 centroid
values + the 128×5 head = 55,209 parameters (paper: 55,710), and 2·(3·140 + 140·128 + 128·5)
≈ 38,000 FLOPs a beat (paper: 38,554); a 144-wide layer would need ≥ 42,000. ``tiny`` keeps the
same structure with a few filters so tests train it in seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pla_tvm.data.beats import BEAT_LENGTH, ECG5000_CLASSES


@dataclass(frozen=True)
class ResNetConfig:
    """Shape of the 1-D ResNet: one residual block per entry of ``filters``.

    Each block applies one convolution per entry of ``kernel_sizes`` (each followed by batch
    normalisation, ReLU after all but the last), adds the shortcut (batch norm, after a 1×1
    convolution where the channel count changes, as in Wang et al.'s ResNet), then ReLU.
    Global average pooling gives the penultimate ``features`` (``filters[-1]`` wide) that PLA
    imitates; a dense softmax ``head`` classifies.
    """

    filters: tuple[int, ...] = (144, 144, 128)
    kernel_sizes: tuple[int, ...] = (8, 5, 3)
    input_length: int = BEAT_LENGTH
    n_classes: int = len(ECG5000_CLASSES)

    def __post_init__(self) -> None:
        if not self.filters or not self.kernel_sizes:
            raise ValueError("a ResNet needs at least one block and one convolution per block")
        if min(self.filters) < 1 or min(self.kernel_sizes) < 1:
            raise ValueError(f"filters and kernel sizes must be positive, got {self}")

    @property
    def feature_size(self) -> int:
        """Width of the penultimate layer (d)."""
        return self.filters[-1]

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, ResNetConfig] = {
    "paper": ResNetConfig(),
    "tiny": ResNetConfig(filters=(8, 12), kernel_sizes=(5, 3)),
}


def get_config(name: str) -> ResNetConfig:
    """The preset called ``name`` (``paper`` or ``tiny``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model config {name!r}; choose one of {', '.join(PRESETS)}") \
            from None


CLASS_WEIGHTINGS = ("sqrt", "balanced", "none")


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings; the defaults are the paper-size recipe."""

    epochs: int = 300
    batch_size: int = 32
    learning_rate: float = 1e-3
    patience: int = 50
    validation_fraction: float = 0.2
    class_weight: str = "sqrt"
    seed: int = 0
    verbose: int = 2

    def __post_init__(self) -> None:
        if self.class_weight not in CLASS_WEIGHTINGS:
            raise ValueError(f"class_weight must be one of {CLASS_WEIGHTINGS}, "
                             f"got {self.class_weight!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PruningSettings:
    """Target sparsity of the conv/dense kernels and the fine-tuning epochs that reach it."""

    target_sparsity: float = 0.5
    finetune_epochs: int = 30
