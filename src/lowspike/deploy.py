"""Export of converted SNNs to NIR (the Neuromorphic Intermediate Representation, nir 1.0.8) and
loaders that run a NIR file in sinabs and in snntorch with lowspike's neuron (docs/deploy.md).

A converted SNN (:func:`lowspike.snn.convert.convert`) is a chain of weight layers (Linear,
Conv2d), each followed by integrate-and-fire neurons, with average pooling and flattening on
the spikes between them. Its graph::

    input -> [Flatten] -> Affine | Conv2d -> IF -> [SumPool2d] -> [Flatten] -> ... -> IF -> output

- IF: NIR writes ``r dv/dt = ... ; v -> v_reset`` and cannot say "reset by subtraction"; the
  node's metadata holds what lowspike runs (``reset: subtract``, ``beta: 1``, ``threshold: 1``,
  ``fires_on: ">"``, ``dt: 1``) and the loaders below read it, so nothing depends on a reader's
  guess: ``v += I; s = 1[v > 1]; v -= s`` (docs/conventions.md).
- Average pooling: NIR's SumPool2d, with the ``1/k^2`` folded into the next weight layer
  (exact for k = 2, a power of two; other kernels are refused rather than rounded).
- The analog input is a constant current: the same image at every one of the T steps.

sinabs (:func:`load_sinabs`) fires on ``v >= threshold``; a threshold of ``nextafter(1, 2)``
with a subtraction of exactly 1 fires on ``v > 1`` and resets as lowspike, with its membrane
floor off (``min_v_mem=None``) and one spike per step (``SingleSpike``): the same arithmetic in
the same order, so the same spikes. snntorch (:func:`load_snntorch`) runs
``Leaky(beta=1, reset_mechanism="subtract")``, which computes ``(v + I) - 1`` where lowspike
computes ``(v - 1) + I``: the same spike totals up to float32 rounding, which can move a spike
by one step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

IF_METADATA = {"reset": "subtract", "beta": 1.0, "threshold": 1.0, "fires_on": ">", "dt": 1.0,
               "source": "lowspike"}
"""What the IF nodes of an exported converted SNN run (:mod:`lowspike.snn.simulation`)."""


class ExportError(ValueError):
    """A layer that NIR (or the chosen convention) cannot express; the message names it."""


def _graph_type(shape) -> np.ndarray:
    return np.asarray(shape, dtype=np.int64)


def to_nir(snn: dict):
    """The NIR graph of a converted SNN (``{"layers": [...], "input_shape": [...]}``)."""
    import nir

    input_shape = [int(s) for s in snn["input_shape"]]
    nodes: dict[str, Any] = {"input": nir.Input(_graph_type(input_shape))}
    edges: list[tuple[str, str]] = []
    previous, shape, scale = "input", list(input_shape), 1.0
    weight_layers = 0

    def add(name: str, node) -> None:
        nonlocal previous
        nodes[name] = node
        edges.append((previous, name))
        previous = name

    for index, spec in enumerate(snn["layers"]):
        kind = spec["kind"]
        if kind == "flatten":
            add(f"flatten{index}", nir.Flatten({"input": _graph_type(shape)}, start_dim=0, end_dim=-1))
            shape = [int(np.prod(shape))]
        elif kind == "avgpool":
            kernel = int(spec["kernel"])
            if kernel & (kernel - 1):
                raise ExportError(f"layer {index} (avgpool {kernel}x{kernel}): 1/{kernel * kernel} is not exact in "
                                  "float32; only power-of-two pooling kernels are exported")
            add(f"pool{index}", nir.SumPool2d(np.array([kernel, kernel]), np.array([kernel, kernel]),
                                              np.array([0, 0])))
            shape = [shape[0], shape[1] // kernel, shape[2] // kernel]
            scale *= 1.0 / (kernel * kernel)
        elif kind in ("linear", "conv"):
            weight = (spec["weight"].detach().double() * scale).float().numpy()
            bias = spec["bias"].detach().float().numpy()
            if kind == "linear":
                add(f"affine{index}", nir.Affine(weight, bias))
                shape = [weight.shape[0]]
            else:
                stride, padding = tuple(int(s) for s in spec["stride"]), tuple(int(p) for p in spec["padding"])
                add(f"conv{index}", nir.Conv2d(tuple(shape[1:]), weight, stride, padding, 1, 1, bias))
                height = (shape[1] + 2 * padding[0] - weight.shape[2]) // stride[0] + 1
                width = (shape[2] + 2 * padding[1] - weight.shape[3]) // stride[1] + 1
                shape = [weight.shape[0], height, width]
            ones = np.ones(shape, dtype=np.float32)
            add(f"if{weight_layers}", nir.IF(r=ones, v_threshold=ones, v_reset=np.zeros_like(ones),
                                             metadata=dict(IF_METADATA)))
            weight_layers, scale = weight_layers + 1, 1.0
        else:
            raise ExportError(f"layer {index} ({kind}): no NIR node for it")
    if scale != 1.0:
        raise ExportError("a pooling layer after the last weight layer has no weights to fold 1/k^2 into")
    add("output", nir.Output(_graph_type(shape)))
    return nir.NIRGraph(nodes, edges, metadata={"lowspike": "converted SNN", "input": "analog, constant over T"})


def write_nir(path: str | Path, snn: dict) -> None:
    """:func:`to_nir` written with ``nir.write`` (HDF5)."""
    import nir

    nir.write(str(path), to_nir(snn))


def read_nir(path: str | Path):
    """``nir.read`` with one-line errors for a file that is not a NIR graph of lowspike's nodes."""
    import nir

    try:
        graph = nir.read(str(path))
    except Exception as exc:  # h5py and nir raise many kinds for a damaged file
        raise ExportError(f"{path}: not a readable NIR file ({type(exc).__name__}: {exc})") from exc
    _chain(graph, path)
    return graph


def _chain(graph, path) -> list[str]:
    """The node names from input to output of a graph that is one chain (what the loaders run)."""
    following = {}
    for source, target in graph.edges:
        if source in following:
            raise ExportError(f"{path}: node {source!r} feeds two nodes; only chains are loaded")
        following[source] = target
    inputs = [name for name, node in graph.nodes.items() if type(node).__name__ == "Input"]
    if len(inputs) != 1:
        raise ExportError(f"{path}: expected one Input node, found {len(inputs)}")
    order, name = [], inputs[0]
    while name in following:
        name = following[name]
        order.append(name)
    if not order or type(graph.nodes[order[-1]]).__name__ != "Output":
        raise ExportError(f"{path}: the chain from the input does not end at an Output node")
    return order[:-1]


def _neuron_metadata(node, name: str, path) -> dict:
    metadata = dict(getattr(node, "metadata", {}) or {})
    if metadata.get("reset") != "subtract" or float(metadata.get("beta", -1)) != 1.0:
        raise ExportError(f"{path}: IF node {name!r} has no lowspike metadata (reset by subtraction, beta 1)")
    threshold = np.asarray(node.v_threshold)
    if not np.all(threshold == 1.0):
        raise ExportError(f"{path}: IF node {name!r}: only a threshold of 1 is loaded")
    return metadata


def _weight_module(node, name: str) -> nn.Module:
    kind = type(node).__name__
    if kind == "Affine":
        module = nn.Linear(node.weight.shape[1], node.weight.shape[0])
    elif kind == "Conv2d":
        weight = node.weight
        module = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:], stride=tuple(node.stride),
                           padding=tuple(node.padding))
    else:
        raise ExportError(f"node {name!r} ({kind}) is not a weight layer")
    with torch.no_grad():
        module.weight.copy_(torch.as_tensor(np.asarray(node.weight)))
        module.bias.copy_(torch.as_tensor(np.asarray(node.bias)))
    return module


class _Flatten(nn.Module):
    """Flattens everything after the leading (batch) dimension."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def _stateless(node, name: str, path) -> nn.Module:
    kind = type(node).__name__
    if kind == "Flatten":
        return _Flatten()
    if kind == "SumPool2d":
        kernel = [int(k) for k in np.asarray(node.kernel_size).reshape(-1)]
        return _SumPool(kernel[0])
    if kind in ("Affine", "Conv2d"):
        return _weight_module(node, name)
    raise ExportError(f"{path}: node {name!r} ({kind}) is not supported by lowspike's loaders")


class _SumPool(nn.Module):
    def __init__(self, kernel: int):
        super().__init__()
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(x, self.kernel) * (self.kernel * self.kernel)


def load_sinabs(path: str | Path, timesteps: int) -> nn.Sequential:
    """The NIR file as a sinabs network taking ``[B * T, ...]`` (batch-major: sample b's steps are
    rows ``b T .. b T + T - 1``): ``IAFSqueeze`` with ``SingleSpike``, a threshold of
    ``nextafter(1, 2)``, subtraction of 1 and no membrane floor, ``SumPool2d`` from sinabs."""
    import sinabs.layers as sl
    from sinabs.activation import MembraneSubtract, SingleSpike

    graph = read_nir(path)
    threshold = float(np.nextafter(np.float32(1.0), np.float32(2.0)))
    modules = []
    for name in _chain(graph, path):
        node = graph.nodes[name]
        kind = type(node).__name__
        if kind == "IF":
            _neuron_metadata(node, name, path)
            modules.append(sl.IAFSqueeze(num_timesteps=timesteps, spike_threshold=threshold, spike_fn=SingleSpike,
                                         reset_fn=MembraneSubtract(subtract_value=1.0), min_v_mem=None))
        elif kind == "SumPool2d":
            kernel = int(np.asarray(node.kernel_size).reshape(-1)[0])
            modules.append(sl.SumPool2d(kernel))
        else:
            modules.append(_stateless(node, name, path))
    return nn.Sequential(*modules)


def load_snntorch(path: str | Path) -> nn.Sequential:
    """The NIR file as an snntorch network run one step at a time (``net(x_t)``, reset with
    ``snntorch.utils.reset(net)`` between batches): ``Leaky(beta=1, threshold=1,
    reset_mechanism="subtract", init_hidden=True)``, which fires on ``mem > threshold``."""
    import snntorch

    graph = read_nir(path)
    modules = []
    for name in _chain(graph, path):
        node = graph.nodes[name]
        if type(node).__name__ == "IF":
            metadata = _neuron_metadata(node, name, path)
            modules.append(snntorch.Leaky(beta=float(metadata["beta"]), threshold=1.0, reset_mechanism="subtract",
                                          init_hidden=True))
        else:
            modules.append(_stateless(node, name, path))
    return nn.Sequential(*modules)


def _neuron_layers(net: nn.Module, kinds: tuple[type, ...]) -> list[nn.Module]:
    return [m for m in net if isinstance(m, kinds)]


@torch.inference_mode()
def run_sinabs(net: nn.Sequential, inputs: torch.Tensor, timesteps: int) -> list[torch.Tensor]:
    """Each IF layer's spikes ``[T, B, ...]`` for the analog ``inputs`` ``[B, ...]`` held over T."""
    import sinabs
    import sinabs.layers as sl

    sinabs.reset_states(net)
    batch = inputs.shape[0]
    recorded: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: recorded.append(out))
             for m in _neuron_layers(net, (sl.IAFSqueeze,))]
    try:
        net(inputs.repeat_interleave(timesteps, dim=0))
    finally:
        for hook in hooks:
            hook.remove()
    return [r.reshape(batch, timesteps, *r.shape[1:]).transpose(0, 1) for r in recorded]


@torch.inference_mode()
def run_snntorch(net: nn.Sequential, inputs: torch.Tensor, timesteps: int) -> list[torch.Tensor]:
    """Each Leaky layer's spikes ``[T, B, ...]`` for the analog ``inputs`` held over T."""
    import snntorch
    from snntorch import utils

    utils.reset(net)
    neurons = _neuron_layers(net, (snntorch.Leaky,))
    recorded: list[list[torch.Tensor]] = [[] for _ in neurons]
    hooks = [m.register_forward_hook(lambda _m, _i, out, slot=slot: recorded[slot].append(out.clone()))
             for slot, m in enumerate(neurons)]
    try:
        for _ in range(timesteps):
            net(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return [torch.stack(steps) for steps in recorded]


def spike_agreement(reference: list[torch.Tensor], other: list[torch.Tensor]) -> dict[str, Any]:
    """How far ``other``'s spikes ``[T, B, ...]`` per layer are from ``reference``'s: spikes per
    layer, events that differ (``|s_ref - s_other|`` summed over steps and neurons, so a spike
    moved by one step counts 2), per-(sample, neuron) totals that differ, and the predictions
    (most output spikes over T) that differ."""
    layers = []
    for ref, oth in zip(reference, other, strict=True):
        totals_ref, totals_oth = ref.sum(0), oth.sum(0)
        layers.append({"spikes": int(ref.sum()), "other_spikes": int(oth.sum()),
                       "events_differing": int((ref != oth).sum()),
                       "totals_differing": int((totals_ref != totals_oth).sum())})
    predictions = reference[-1].sum(0).flatten(1).argmax(1) == other[-1].sum(0).flatten(1).argmax(1)
    spikes = sum(layer["spikes"] for layer in layers)
    return {"layers": layers, "spikes": spikes, "events_differing": sum(l["events_differing"] for l in layers),
            "totals_differing": sum(l["totals_differing"] for l in layers),
            "same_prediction": float(predictions.float().mean()),
            "events_differing_fraction": sum(l["events_differing"] for l in layers) / max(spikes, 1) / 2}


@torch.inference_mode()
def lowspike_spikes(snn: dict, inputs: torch.Tensor, timesteps: int) -> list[torch.Tensor]:
    """The reference: each IF layer's spikes ``[T, B, ...]`` of the converted SNN as
    :mod:`lowspike.snn.simulation` computes them (``v += I; s = 1[v > 1]; v -= s``, average
    pooling as ``1/k^2`` times the sum), step by step."""
    from .snn.simulation import apply_layer

    layers = snn["layers"]
    membranes: dict[int, torch.Tensor] = {}
    recorded: dict[int, list[torch.Tensor]] = {}
    for _ in range(timesteps):
        x = inputs
        for index, spec in enumerate(layers):
            x = apply_layer(spec, x)
            if spec["kind"] in ("linear", "conv"):
                membrane = membranes.setdefault(index, torch.zeros_like(x))
                membrane.add_(x)
                spikes = (membrane > 1.0).to(x.dtype)
                membrane.sub_(spikes)
                recorded.setdefault(index, []).append(spikes)
                x = spikes
    return [torch.stack(recorded[index]) for index in sorted(recorded)]


def agreement_summary(snn: dict, path: str | Path, inputs: torch.Tensor, timesteps: int) -> dict[str, Any]:
    """The file at ``path`` run in sinabs and in snntorch against lowspike's own spikes."""
    reference = lowspike_spikes(snn, inputs, timesteps)
    return {"sinabs": spike_agreement(reference, run_sinabs(load_sinabs(path, timesteps), inputs, timesteps)),
            "snntorch": spike_agreement(reference, run_snntorch(load_snntorch(path), inputs, timesteps)),
            "samples": int(inputs.shape[0]), "timesteps": timesteps}
