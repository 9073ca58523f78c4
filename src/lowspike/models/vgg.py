"""VGG networks of the distillation paper (Table I): the FNN teachers VGG-13 (MNIST) and VGG-16
(CIFAR-10), and the spiking student SVGG-11 (CIFAR-10, LIF, T = 4).

Feature extractor: 3x3 convolutions (padding 1) with batch norm, 2x2 pooling after each block
(skipped once the map is 1 pixel wide, so 28x28 MNIST works), global average pooling, then the
classifier. Teachers use ReLU and max pooling; the student uses LIF neurons and average pooling.
Classifier widths follow the paper's parameter counts (Table II): VGG-13 512-4096-4096-C gives
28.3M, VGG-16 512-512-C gives 15.0M (paper 15.3M), SVGG-11 512-1024-C gives 9.8M.
``width`` scales every layer for fast profiles.
"""

from __future__ import annotations

import torch
from torch import nn

from ..projections import NETWORK_INPUT, Projection
from .spiking import SpikingNetwork, SpikingNeurons, avg_pool2, fold_time, over_time, scaled, unfold_time

CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}
CLASSIFIERS: dict[str, tuple[int, ...]] = {"vgg11": (1024,), "vgg13": (4096, 4096), "vgg16": (512,)}


def _plan(config: str, input_shape: tuple[int, ...], width: float) -> list[tuple[str, int]]:
    """The layer sequence as ("conv", out_channels) and ("pool", 2) entries, pools dropped at 1 px."""
    size = min(input_shape[1:])
    plan = []
    for entry in CONFIGS[config]:
        if entry == "M":
            if size >= 2:
                plan.append(("pool", 2))
                size //= 2
        else:
            plan.append(("conv", scaled(entry, width)))
    return plan


class VGG(nn.Module):
    """FNN teacher: (conv3x3-BN-ReLU)+ blocks with max pooling, global average pool, MLP classifier."""

    def __init__(self, config: str, input_shape: tuple[int, ...], num_classes: int, width: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        channels = input_shape[0]
        for kind, value in _plan(config, input_shape, width):
            if kind == "pool":
                layers.append(nn.MaxPool2d(value))
            else:
                layers += [nn.Conv2d(channels, value, 3, padding=1, bias=False), nn.BatchNorm2d(value), nn.ReLU()]
                channels = value
        self.feature_taps = {relu: f"block{i + 1}" for i, relu in enumerate(_block_ends(config, layers))}
        """Index in ``features`` of each ReLU whose output :meth:`forward_with_features` names."""
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        head: list[nn.Module] = []
        self.classifier_taps: dict[int, str] = {}
        for j, hidden in enumerate(CLASSIFIERS[config]):
            hidden = scaled(hidden, width)
            head += [nn.Linear(channels, hidden), nn.ReLU(), nn.Dropout(0.5)]
            self.classifier_taps[len(head) - 2] = f"fc{j + 1}"
            channels = hidden
        head.append(nn.Linear(channels, num_classes))
        self.classifier = nn.Sequential(*head)

    @property
    def feature_names(self) -> list[str]:
        """What :meth:`forward_with_features` returns, in forward order."""
        return [*self.feature_taps.values(), *self.classifier_taps.values()]

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The logits and the named intermediate feature maps: ``block<i>`` the output ``[B, C, H, W]``
        of the last ReLU of the i-th convolution block (before its pooling), ``fc<j>`` the output
        ``[B, F]`` of the j-th hidden ReLU of the classifier (before its dropout)."""
        features: dict[str, torch.Tensor] = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self.feature_taps:
                features[self.feature_taps[index]] = x
        for index, module in enumerate(self.classifier):
            x = module(x)
            if index in self.classifier_taps:
                features[self.classifier_taps[index]] = x
        return x, features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def shortcut_blocks(self) -> list[str]:
        """No identity shortcut (for :func:`lowspike.metrics.teacher_layer_activity`)."""
        return []


def _block_ends(config: str, layers: list[nn.Module]) -> list[int]:
    """Index in ``layers`` of the ReLU that ends each convolution block of ``CONFIGS[config]`` (a
    block ends at an "M", whether or not its pooling was dropped at 1 pixel)."""
    relus = [i for i, module in enumerate(layers) if isinstance(module, nn.ReLU)]
    ends, convs = [], 0
    for entry in CONFIGS[config]:
        if entry == "M":
            ends.append(relus[convs - 1])
        else:
            convs += 1
    return ends


class SpikingVGG(SpikingNetwork):
    """SVGG-11: (conv3x3-BN-LIF)+ blocks with average pooling, global average pool, fc-LIF, readout."""

    def __init__(self, config: str, input_shape: tuple[int, ...], num_classes: int, *, neuron: str = "lif",
                 beta: float = 0.5, timesteps: int = 4, width: float = 1.0, surrogate: str = "atan"):
        super().__init__(timesteps)
        beta = 1.0 if neuron == "if" else beta
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.neurons = nn.ModuleList()
        self.pool_after: list[bool] = []
        channels = input_shape[0]
        for kind, value in _plan(config, input_shape, width):
            if kind == "pool":
                self.pool_after[-1] = True
                continue
            self.convs.append(nn.Conv2d(channels, value, 3, padding=1, bias=False))
            self.norms.append(nn.BatchNorm2d(value))
            self.neurons.append(SpikingNeurons(beta, surrogate))
            self.pool_after.append(False)
            channels = value
        self.fcs = nn.ModuleList()
        self.fc_neurons = nn.ModuleList()
        for hidden in CLASSIFIERS[config]:
            hidden = scaled(hidden, width)
            self.fcs.append(nn.Linear(channels, hidden))
            self.fc_neurons.append(SpikingNeurons(beta, surrogate))
            channels = hidden
        self.readout = nn.Linear(channels, num_classes)
        self.finish_init(tuple(input_shape))

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spikes = []
        h = None
        for i, (conv, norm, neuron) in enumerate(zip(self.convs, self.norms, self.neurons)):
            current = self.repeat(norm(conv(x))) if i == 0 else over_time(lambda z: norm(conv(z)), h)
            h = neuron(current)
            spikes.append(h)
            if self.pool_after[i]:
                h = over_time(avg_pool2, h)
        h = unfold_time(fold_time(h).mean(dim=(2, 3)), self.timesteps)
        for fc, neuron in zip(self.fcs, self.fc_neurons):
            h = neuron(over_time(fc, h))
            spikes.append(h)
        return over_time(self.readout, h), spikes

    def projections(self) -> list[Projection]:
        """What each weight layer reads and drives (for :mod:`lowspike.metrics`), as in :meth:`run`."""
        projections, source, pooling = [], NETWORK_INPUT, ()
        for i in range(len(self.convs)):
            projections.append(Projection(f"convs.{i}", source, f"neurons.{i}", pooling, norm=f"norms.{i}"))
            source, pooling = f"neurons.{i}", ((("avg", 2),) if self.pool_after[i] else ())
        pooling += (("global_avg",),)
        for j in range(len(self.fcs)):
            projections.append(Projection(f"fcs.{j}", source, f"fc_neurons.{j}", pooling))
            source, pooling = f"fc_neurons.{j}", ()
        return projections + [Projection("readout", source, None, pooling)]


def build_vgg13(input_shape, num_classes, width=1.0) -> VGG:
    return VGG("vgg13", tuple(input_shape), num_classes, width)


def build_vgg16(input_shape, num_classes, width=1.0) -> VGG:
    return VGG("vgg16", tuple(input_shape), num_classes, width)


def build_svgg11(input_shape, num_classes, **options) -> SpikingVGG:
    return SpikingVGG("vgg11", tuple(input_shape), num_classes, **options)
