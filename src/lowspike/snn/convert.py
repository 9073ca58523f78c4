"""DNN-to-SNN conversion with data-based normalization (Rueckauer et al. 2017, as snn_toolbox).

For each weight layer l (Linear or Conv2d), lambda_l is the ``percentile``-th percentile of
the non-zero activations of layer l over the calibration set (post-ReLU for hidden layers,
the positive part of the logits for the output layer, since an IF neuron cannot carry a
negative rate); lambda_0 = 1 for inputs in [0, 1]. Then::

    W_l <- W_l * lambda_{l-1} / lambda_l,      b_l <- b_l / lambda_l

Average pooling and flattening have no weights: they become fixed linear operations on the
spikes that feed the next weight layer. Every weight layer is followed by IF neurons.

A converted SNN is a list of plain dicts of tensors, so it loads without custom classes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoints import load_torch, save_torch


def _layer_spec(module: nn.Module) -> dict | None:
    if isinstance(module, nn.Linear):
        return {"kind": "linear", "weight": module.weight.detach().clone(), "bias": module.bias.detach().clone()}
    if isinstance(module, nn.Conv2d):
        return {"kind": "conv", "weight": module.weight.detach().clone(), "bias": module.bias.detach().clone(),
                "stride": list(module.stride), "padding": list(module.padding)}
    if isinstance(module, nn.AvgPool2d):
        kernel = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        return {"kind": "avgpool", "kernel": int(kernel)}
    if isinstance(module, nn.Flatten):
        return {"kind": "flatten"}
    if isinstance(module, nn.ReLU):
        return None
    raise TypeError(f"cannot convert layer {type(module).__name__}")


def layer_specs(model: nn.Module) -> list[dict]:
    """The weight, pooling and flattening layers of ``model.layers`` as plain dicts (ReLUs
    dropped), with copies of the weights: the layers of the SNN before normalization."""
    return [spec for spec in (_layer_spec(m) for m in model.layers) if spec is not None]


def nonzero_percentile(values: torch.Tensor, percentile: float) -> float:
    """The ``percentile``-th percentile of the non-zero entries (0 when all are zero)."""
    nonzero = values[values != 0].double().cpu().numpy()
    if nonzero.size == 0:
        return 0.0
    return float(np.percentile(nonzero, percentile))


@torch.inference_mode()
def layer_activations(model: nn.Module, inputs: torch.Tensor, batch_size: int = 1000) -> list[torch.Tensor]:
    """Activations of every weight layer over ``inputs``: post-ReLU for hidden layers,
    positive part of the raw output for the last one."""
    modules = list(model.layers)
    weight_index = [i for i, m in enumerate(modules) if isinstance(m, (nn.Linear, nn.Conv2d))]
    collected: list[list[torch.Tensor]] = [[] for _ in weight_index]
    for batch in inputs.split(batch_size):
        x = batch
        outputs = []
        for m in modules:
            x = m(x)
            outputs.append(x)
        for slot, i in enumerate(weight_index):
            after = i + 1 if i + 1 < len(modules) and isinstance(modules[i + 1], nn.ReLU) else i
            collected[slot].append(outputs[after].clamp_min(0).flatten())
    return [torch.cat(parts) for parts in collected]


def convert(model: nn.Module, calibration_inputs: torch.Tensor, percentile: float = 99.9,
            batch_size: int = 1000) -> dict:
    """Convert a DNN whose ``layers`` is a sequence of Linear/Conv2d/ReLU/AvgPool2d/Flatten."""
    model = model.eval()
    activations = layer_activations(model, calibration_inputs, batch_size)
    scales = [nonzero_percentile(a, percentile) for a in activations]
    layers, previous, slot = [], 1.0, 0
    for module in model.layers:
        spec = _layer_spec(module)
        if spec is None:
            continue
        if spec["kind"] in ("linear", "conv"):
            scale = scales[slot] if scales[slot] > 0 else 1.0
            spec["weight"] = spec["weight"] * (previous / scale)
            spec["bias"] = spec["bias"] / scale
            spec["lambda"] = scale
            previous, slot = scale, slot + 1
        layers.append(spec)
    return {"layers": layers, "input_shape": list(calibration_inputs.shape[1:]), "lambdas": scales,
            "percentile": percentile}


def save_converted(path: str | Path, snn: dict) -> None:
    save_torch(path, snn)


def load_converted(path: str | Path) -> dict:
    return load_torch(path)
