import pytest
import torch

from lowspike.models import build_dnn


def test_lenet5_mnist_parameter_count_and_hidden_maps():
    model = build_dnn("lenet5", (1, 28, 28), 10)
    # conv1 6*1*25+6 = 156; conv2 16*6*25+16 = 2,416; fc 16*5*5*120+120 = 48,120;
    # 120*84+84 = 10,164; 84*10+10 = 850  -> 61,706
    assert sum(p.numel() for p in model.parameters()) == 61_706
    logits, hidden = model.forward_with_activations(torch.rand(3, 1, 28, 28))
    assert logits.shape == (3, 10)
    assert [tuple(h.shape) for h in hidden] == [(3, 6, 28, 28), (3, 16, 10, 10), (3, 120), (3, 84)]


def test_lenet5_cifar_has_three_input_channels():
    model = build_dnn("lenet5", (3, 32, 32), 10)
    assert model.layers[0].in_channels == 3
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_too_small_inputs_and_unknown_names_are_refused():
    with pytest.raises(ValueError, match="12x12"):
        build_dnn("lenet5", (1, 8, 8), 10)
    with pytest.raises(KeyError, match="allowed"):
        build_dnn("resnet", (1, 28, 28), 10)
