"""Per-layer records of a non-spiking teacher (teacher_layer_activity) on a hand-computed
residual network, and its energy: dense and effective MACs, batch norm folded, the shortcut's
additions."""

import pytest
import torch
from torch import nn

from lowspike.params import validate_params
from lowspike.energy import evaluate_dnn_energy, network_activity
from lowspike.metrics import teacher_layer_activity
from lowspike.models import build_teacher
from lowspike.models.resnet import ResidualBlock

torch.set_num_threads(1)
PJ = 1.0e-12


def identity_norm(norm: nn.BatchNorm1d, gamma: list[float], beta: list[float]) -> None:
    """Running mean 0, variance 1 and eps 0: the batch norm is gamma x + beta."""
    norm.weight.copy_(torch.tensor(gamma))
    norm.bias.copy_(torch.tensor(beta))
    norm.running_mean.zero_()
    norm.running_var.fill_(1.0)
    norm.eps = 0.0


class TinyTeacher(nn.Module):
    """x [1, 4] -> conv1d(1->2, k3, pad 1) -> BN -> ReLU -> a residual block of two such
    convolutions (2->2) -> mean over positions -> Linear(2->3)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(1, 2, 3, padding=1, bias=False), nn.BatchNorm1d(2), nn.ReLU())
        self.block = ResidualBlock(2)
        self.classifier = nn.Linear(2, 3)
        centre = [0.0, 1.0, 0.0]
        with torch.no_grad():
            self.stem[0].weight.copy_(torch.tensor([[centre], [[1.0, 0.0, 1.0]]]))
            identity_norm(self.stem[1], [1.0, 0.0], [0.0, 0.5])  # channel 1: gamma 0, a constant 0.5
            self.block.conv1.weight.copy_(torch.tensor([[centre, [0.0] * 3], [[0.0] * 3, centre]]))
            identity_norm(self.block.bn1, [1.0, 1.0], [0.0, 0.0])
            self.block.conv2.weight.copy_(torch.tensor([[centre, [0.0] * 3], [[0.0] * 3, [0.0] * 3]]))
            identity_norm(self.block.bn2, [1.0, 1.0], [0.0, -1.0])
            self.classifier.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0], [2.0, 3.0]]))
            self.classifier.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))

    def forward(self, x):
        return self.classifier(self.block(self.stem(x)).mean(dim=2))

    def shortcut_blocks(self) -> list[str]:
        return ["block"]


def test_records_of_a_hand_computed_teacher():
    # Sample 0, x = [1.5, 0, 0, .6]; sample 1, x = 0. Stem: ch0 = x, ch1 = 0.5 (gamma 0, beta .5).
    # Non-zero stem outputs: ch0 at positions 0 and 3 in sample 0 only, ch1 everywhere in both.
    # conv1 (identity, BN identity) -> h1 = stem output; conv2 keeps ch0, ch1 = -1 (beta);
    # the block adds its input: ch0 = 2 x0 [3, 0, 0, 1.2], ch1 = -1 + .5 -> ReLU 0.
    # classifier input (mean over positions): sample 0 [1.05, 0], sample 1 [0, 0].
    records = teacher_layer_activity(TinyTeacher(), torch.tensor([[[1.5, 0.0, 0.0, 0.6]], [[0.0] * 4]]),
                                     batch_size=1)
    common = {"input_binary": False, "synops": 0.0, "input_events": 0.0, "neurons": 0, "output_spikes": 0.0,
              "neuron_model": "none", "timesteps": 1}
    # In-bound taps of a 3-tap kernel over 4 positions with padding 1: 2 + 3 + 3 + 2 = 10 per
    # (input, output) channel pair. Stem, folded: ch1's weights vanish (gamma 0): 1 non-zero
    # weight, 1 non-zero bias (.5); effective: x0 and x3 of sample 0, one tap each -> 2 / 2.
    assert records[0] == {**common, "name": "stem.0", "kind": "conv1d", "in_shape": [1, 4], "out_shape": [2, 4],
                          "weights": 6, "nonzero_weights": 1, "biases": 1, "dense_macs": 20.0,
                          "effective_macs": 1.0}
    # conv1: 2 centre taps; every input read once: 2 (ch0, sample 0) + 8 (ch1, both) non-zero -> 10 / 2
    assert records[1] == {**common, "name": "block.conv1", "kind": "conv1d", "in_shape": [2, 4],
                          "out_shape": [2, 4], "weights": 12, "nonzero_weights": 2, "biases": 0,
                          "dense_macs": 40.0, "effective_macs": 5.0}
    # conv2: only ch0 -> out0 (ch1 inputs have no fan-out): 2 / 2; bias -1 on channel 1
    assert records[2] == {**common, "name": "block.conv2", "kind": "conv1d", "in_shape": [2, 4],
                          "out_shape": [2, 4], "weights": 12, "nonzero_weights": 1, "biases": 1,
                          "dense_macs": 40.0, "effective_macs": 1.0}
    # the shortcut: 8 additions per sample, of a non-zero input 10 / 2
    assert records[3] == {**common, "name": "block.shortcut", "kind": "residual", "in_shape": [2, 4],
                          "out_shape": [2, 4], "weights": 0, "nonzero_weights": 0, "biases": 0,
                          "dense_macs": 8.0, "effective_macs": 5.0}
    # classifier: feature 0 non-zero once, read by 2 non-zero weights -> 2 / 2
    assert records[4] == {**common, "name": "classifier", "kind": "linear", "in_shape": [2], "out_shape": [3],
                          "weights": 6, "nonzero_weights": 3, "biases": 1, "dense_macs": 6.0,
                          "effective_macs": 1.0}

    summary = evaluate_dnn_energy(network_activity(records), validate_params({}).energy)["summary"]
    # ops, dense: 4.6 * (20 + 40 + 40 + 6) MACs + 0.9 * 8 additions + 0.9 * (4 + 4 + 1) bias outputs
    assert summary["ops"]["dnn_dense_j"] == pytest.approx((4.6 * 106 + 0.9 * 8 + 0.9 * 9) * PJ)
    # zero-skipping: 4.6 * (1 + 5 + 1 + 1) MACs + 0.9 * 5 additions + the same biases
    assert summary["ops"]["dnn_effective_j"] == pytest.approx((4.6 * 8 + 0.9 * 5 + 0.9 * 9) * PJ)
    assert summary["ops"]["per_layer_j"]["dnn_effective"]["block.shortcut"] == pytest.approx(4.5 * PJ)


def test_batches_add_up_and_the_mode_is_restored():
    torch.manual_seed(0)
    model = build_teacher("vgg13", input_shape=(1, 12, 12), num_classes=4, width=0.0625).train()
    x = torch.rand(5, 1, 12, 12)
    x[:, :, :4] = 0.0
    in_batches, at_once = teacher_layer_activity(model, x, batch_size=2), teacher_layer_activity(model, x, 5)
    assert [r["effective_macs"] for r in in_batches] == pytest.approx([r["effective_macs"] for r in at_once])
    assert [{**r, "effective_macs": 0} for r in in_batches] == [{**r, "effective_macs": 0} for r in at_once]
    assert model.training
    names = [r["name"] for r in at_once]
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    assert names == convs + linears


def test_a_layer_called_twice_per_pass_is_refused():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(self.fc(x))

    with pytest.raises(ValueError, match=r"more than once per forward pass: \['fc'\]"):
        teacher_layer_activity(Twice(), torch.ones(1, 2))
