import torch

from lowspike.models import build_dnn


def test_mlp_shapes_parameter_count_and_hidden_maps():
    model = build_dnn("mlp", (1, 28, 28), 10)
    # 784*300 + 300 + 300*100 + 100 + 100*10 + 10
    assert sum(p.numel() for p in model.parameters()) == 266_610
    logits, hidden = model.forward_with_activations(torch.rand(5, 1, 28, 28))
    assert logits.shape == (5, 10)
    assert [h.shape for h in hidden] == [(5, 300), (5, 100)]
    assert all((h >= 0).all() for h in hidden)
