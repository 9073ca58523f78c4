"""LeNet-5 of the regularization paper (Sec. 3.3), with ReLU and average pooling.

conv6 5x5 pad 2 -> ReLU -> avg-pool 2 -> conv16 5x5 -> ReLU -> avg-pool 2 -> fc120 -> ReLU
-> fc84 -> ReLU -> fc10. The input needs at least 12x12 pixels (28x28 MNIST, 32x32 CIFAR-10).
"""

from __future__ import annotations

from torch import nn

from .relu import ReluSequence


class LeNet5(ReluSequence):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int):
        channels, height, width = input_shape
        flat_h = ((height // 2) - 4) // 2
        flat_w = ((width // 2) - 4) // 2
        super().__init__(
            nn.Conv2d(channels, 6, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * flat_h * flat_w, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )


def build_lenet5(input_shape: tuple[int, ...], num_classes: int) -> LeNet5:
    return LeNet5(tuple(input_shape), num_classes)
