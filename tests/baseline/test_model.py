"""Architecture, parameter and FLOP counts of the baseline ResNet (no training)."""

import numpy as np
import pytest

from pla_tvm.baseline.config import ResNetConfig, get_config
from pla_tvm.baseline.costs import model_flops, model_parameters
from pla_tvm.baseline.model import FEATURES_LAYER, build_resnet, feature_extractor, head_parameters
from pla_tvm.baseline.train import class_weights

PAPER_PARAMETERS = 804_169
PAPER_FLOPS = 222_908_190


def test_paper_config_matches_the_paper_within_3_percent():
    model = build_resnet(get_config("paper"))
    assert model_parameters(model) == pytest.approx(PAPER_PARAMETERS, rel=0.03)
    assert model_flops(model) == pytest.approx(PAPER_FLOPS, rel=0.03)


def test_flops_of_a_one_conv_model_by_hand():
    model = build_resnet(ResNetConfig(filters=(2,), kernel_sizes=(3,), n_classes=5))
    length, filters = 140, 2
    conv = 2 * length * 3 * 1 * filters + length * filters      # conv + bias
    shortcut = 2 * length * 1 * 1 * filters + length * filters  # 1x1 conv (1 -> 2 channels)
    batch_norms = 2 * (2 * length * filters)
    add_relu = 2 * length * filters
    pooling = length * filters
    head = 2 * filters * 5 + 5 + 3 * 5
    assert model_flops(model) == conv + shortcut + batch_norms + add_relu + pooling + head


def test_penultimate_features_and_head_are_reachable_by_name():
    model = build_resnet(get_config("tiny"))
    features = feature_extractor(model).predict(np.zeros((2, 140, 1), np.float32), verbose=0)
    kernel, bias = head_parameters(model)
    assert features.shape == (2, get_config("tiny").feature_size)
    assert kernel.shape == (features.shape[1], 5) and bias.shape == (5,)
    assert model.get_layer(FEATURES_LAYER).output.shape[-1] == features.shape[1]


def test_sqrt_class_weights_average_one_per_sample():
    labels = np.array([0] * 90 + [1] * 9 + [2])
    weights = class_weights(labels, 4, "sqrt")
    assert weights[3] == 0.0
    assert weights[2] / weights[0] == pytest.approx(np.sqrt(90))
    assert np.mean([weights[label] for label in labels]) == pytest.approx(1.0)
    assert class_weights(labels, 4, "none") is None


def test_unknown_preset_is_named():
    with pytest.raises(ValueError, match="unknown model config 'huge'"):
        get_config("huge")
