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

The directly trained students (SCNN, SRes-8, SVGG-11; :func:`student_to_nir`) are graphs:
batch norm folded into the convolutions, IF or LIF nodes named as the student's spiking layers,
residual shortcuts as extra edges (NIR sums a node's inputs; the loaders return a
:class:`GraphNetwork` for them) and the non-spiking readout as the output, one value per step.
Their IF neurons sum ``(U[t-1] - S[t-1]) + I[t]`` as the converted networks and sinabs do, their
LIF neurons ``(beta U[t-1] + I[t]) - S[t-1]`` as snntorch does (:mod:`lowspike.snn.leaky`): IF
students run in sinabs spike for spike, LIF students in snntorch; the other reader sums in
another order (docs/deploy.md, "Students").
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .studies import DEPLOY_LIBRARIES

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
    _order(graph, path)
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


def _the_node(graph, kind: str, path) -> str:
    names = [name for name, node in graph.nodes.items() if type(node).__name__ == kind]
    if len(names) != 1:
        raise ExportError(f"{path}: expected one {kind} node, found {len(names)}")
    return names[0]


def _sources(graph, path) -> dict[str, list[str]]:
    """Each node's incoming nodes, in the order of the file's edges (a node's input is their sum)."""
    sources: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for source, target in graph.edges:
        if source not in graph.nodes or target not in graph.nodes:
            raise ExportError(f"{path}: edge {source!r} -> {target!r} names a node the graph does not have")
        sources[target].append(source)
    return sources


def _order(graph, path) -> list[str]:
    """The nodes between the Input and the Output in topological order (Kahn's algorithm, ties by
    name), checking that there is one Input and one Output, that every other node has an input,
    and that there is no cycle."""
    first, last = _the_node(graph, "Input", path), _the_node(graph, "Output", path)
    sources = _sources(graph, path)
    missing = sorted(name for name, feeds in sources.items() if not feeds and name != first)
    if missing:
        raise ExportError(f"{path}: node {missing[0]!r} has no input")
    waiting = {name: len(feeds) for name, feeds in sources.items()}
    ready, order = [first], []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for source, target in graph.edges:
            if source == name:
                waiting[target] -= 1
                if waiting[target] == 0:
                    ready = sorted([*ready, target])
    if len(order) != len(graph.nodes):
        stuck = sorted(set(graph.nodes) - set(order))
        raise ExportError(f"{path}: the graph has a cycle through {stuck[0]!r}")
    return [name for name in order if name not in (first, last)]


def _neuron_metadata(node, name: str, path) -> dict:
    """The lowspike neuron an IF or LIF node runs (:func:`neuron_metadata`); an IF node has beta
    1, a LIF node 0 < beta < 1."""
    kind = type(node).__name__
    metadata = dict(getattr(node, "metadata", {}) or {})
    beta = float(metadata.get("beta", -1))
    if metadata.get("reset") != "subtract" or (beta != 1.0 if kind == "IF" else not 0.0 < beta < 1.0):
        expected = "beta 1" if kind == "IF" else "0 < beta < 1"
        raise ExportError(f"{path}: {kind} node {name!r} has no lowspike metadata (reset by subtraction, {expected})")
    if metadata.get("fires_on", ">") != ">":
        raise ExportError(f"{path}: {kind} node {name!r} fires on {metadata['fires_on']!r}; only '>' is loaded")
    threshold = np.asarray(node.v_threshold)
    if not np.all(threshold == 1.0) or float(metadata.get("threshold", 1.0)) != 1.0:
        raise ExportError(f"{path}: {kind} node {name!r}: only a threshold of 1 is loaded")
    return metadata


def _ints(value, count: int) -> tuple[int, ...]:
    flat = [int(v) for v in np.asarray(value).reshape(-1)]
    return tuple(flat * count if len(flat) == 1 else flat)


def _weight_module(node, name: str) -> nn.Module:
    kind = type(node).__name__
    weight = np.asarray(node.weight)
    if kind == "Affine":
        module = nn.Linear(weight.shape[1], weight.shape[0])
    elif kind in ("Conv1d", "Conv2d"):
        dims = 1 if kind == "Conv1d" else 2
        if isinstance(node.padding, str):
            raise ExportError(f"node {name!r} ({kind}): padding {node.padding!r} is not loaded; write it as numbers")
        groups = int(np.asarray(node.groups))
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        module = conv(weight.shape[1] * groups, weight.shape[0], weight.shape[2:], stride=_ints(node.stride, dims),
                      padding=_ints(node.padding, dims), dilation=_ints(node.dilation, dims), groups=groups)
    else:
        raise ExportError(f"node {name!r} ({kind}) is not a weight layer")
    with torch.no_grad():
        module.weight.copy_(torch.as_tensor(weight))
        module.bias.copy_(torch.as_tensor(np.asarray(node.bias)).expand_as(module.bias))
    return module


class _Flatten(nn.Module):
    """NIR's Flatten: its dims count from the first dim after the batch dim."""

    def __init__(self, start_dim: int = 0, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim + 1, (end_dim + 1 if end_dim >= 0 else end_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(self.start_dim, self.end_dim)


class _SumPool(nn.Module):
    """Sum pooling as ``avg_pool2d`` with ``divisor_override=1``: the window's sum, exact for spikes."""

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int] | None = None):
        super().__init__()
        self.kernel, self.stride = kernel, stride or kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(x, self.kernel, self.stride, divisor_override=1)


def _stateless(node, name: str, path, sum_pool) -> nn.Module:
    kind = type(node).__name__
    if kind == "Flatten":
        return _Flatten(int(node.start_dim), int(node.end_dim))
    if kind == "SumPool2d":
        if np.any(np.asarray(node.padding) != 0):
            raise ExportError(f"{path}: node {name!r} (SumPool2d): only unpadded pooling is loaded")
        return sum_pool(_ints(node.kernel_size, 2), _ints(node.stride, 2))
    if kind in ("Affine", "Conv1d", "Conv2d"):
        return _weight_module(node, name)
    raise ExportError(f"{path}: node {name!r} ({kind}) is not supported by lowspike's loaders")


class GraphNetwork(nn.Module):
    """A NIR graph that is not a chain (residual shortcuts), run in topological order: each node
    applies its module to the sum of its incoming nodes' outputs (NIR's meaning of several edges
    into one node), and the network returns what reaches the Output node."""

    def __init__(self, names: list[str], modules: dict[str, nn.Module], sources: dict[str, list[str]],
                 input_name: str, output_name: str):
        super().__init__()
        self.names = list(names)
        self.layers = nn.ModuleList([modules[name] for name in names])
        self.sources = [list(sources[name]) for name in names]
        self.input_name, self.output_sources = input_name, list(sources[output_name])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.input_name: x}
        for name, layer, sources in zip(self.names, self.layers, self.sources):
            values[name] = layer(_summed(values, sources))
        return _summed(values, self.output_sources)


def _summed(values: dict[str, torch.Tensor], sources: list[str]) -> torch.Tensor:
    total = values[sources[0]]
    for source in sources[1:]:
        total = total + values[source]
    return total


def _network(graph, path, neuron, sum_pool) -> nn.Module:
    """The graph's nodes as modules (``neuron(node, name)`` for IF and LIF nodes): an
    ``nn.Sequential`` for a chain, a :class:`GraphNetwork` otherwise. ``input_shape`` holds one
    sample's shape as the Input node gives it."""
    order = _order(graph, path)
    modules = {name: neuron(graph.nodes[name], name) if type(graph.nodes[name]).__name__ in ("IF", "LIF")
               else _stateless(graph.nodes[name], name, path, sum_pool) for name in order}
    try:
        _chain(graph, path)
        net: nn.Module = nn.Sequential(*(modules[name] for name in order))
    except ExportError:
        net = GraphNetwork(order, modules, _sources(graph, path), _the_node(graph, "Input", path),
                           _the_node(graph, "Output", path))
    net.input_shape = tuple(int(s) for s in np.asarray(graph.nodes[_the_node(graph, "Input", path)]
                                                       .input_type["input"]).reshape(-1))
    if (graph.metadata or {}).get("lowspike") == "student":
        _channels_last_convolutions(net)
    return net


def _channels_last_convolutions(net: nn.Module) -> None:
    """2-D convolution weights laid out channels-last, as a student holds them
    (:meth:`lowspike.models.spiking.SpikingNetwork.finish_init`): oneDNN then sums each output in
    the student's order, so the currents are the student's bit for bit (with NCHW weights they
    differ in the last bit)."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            module.to(memory_format=torch.channels_last)


def _sinabs_neuron(node, name: str, path, timesteps: int) -> nn.Module:
    """IF: ``IAFSqueeze``. LIF: ``LIFSqueeze`` with ``alpha_mem = beta`` set directly (float32, no
    ``exp(-1/tau)`` rounding), no input normalization and a subtraction of ``1 / beta``. sinabs
    runs ``v = alpha (v - S/beta) + I = beta v - S + I``, lowspike ``(beta v + I) - S``: the same
    sum, rounded in another order (docs/deploy.md)."""
    import sinabs.layers as sl
    from sinabs.activation import MembraneSubtract, SingleSpike

    beta = float(_neuron_metadata(node, name, path)["beta"])
    threshold = float(np.nextafter(np.float32(1.0), np.float32(2.0)))
    common = {"num_timesteps": timesteps, "spike_threshold": threshold, "spike_fn": SingleSpike, "min_v_mem": None}
    if beta == 1.0:
        return sl.IAFSqueeze(reset_fn=MembraneSubtract(subtract_value=1.0), **common)
    layer = sl.LIFSqueeze(tau_mem=-1.0 / np.log(beta), train_alphas=True, norm_input=False,
                          reset_fn=MembraneSubtract(subtract_value=1.0 / beta), **common)
    with torch.no_grad():
        layer.alpha_mem.fill_(beta)
    return layer


def load_sinabs(path: str | Path, timesteps: int) -> nn.Module:
    """The NIR file as a sinabs network taking ``[B * T, ...]`` (batch-major: sample b's steps are
    rows ``b T .. b T + T - 1``): ``IAFSqueeze`` (IF) or ``LIFSqueeze`` (LIF, :func:`_sinabs_neuron`)
    with ``SingleSpike``, a threshold of ``nextafter(1, 2)``, reset by subtraction and no membrane
    floor, ``SumPool2d`` from sinabs; an ``nn.Sequential`` for a chain, a :class:`GraphNetwork`
    for a graph with shortcuts."""
    import sinabs.layers as sl

    graph = read_nir(path)
    return _network(graph, path, lambda node, name: _sinabs_neuron(node, name, path, timesteps),
                    lambda kernel, stride: sl.SumPool2d(kernel, stride))


def load_snntorch(path: str | Path) -> nn.Module:
    """The NIR file as an snntorch network run one step at a time (``net(x_t)``; :func:`run_snntorch`
    zeroes the membranes first): ``Leaky(beta, threshold=1, reset_mechanism="subtract",
    init_hidden=True)`` with beta from the node's metadata, which fires on ``mem > threshold``;
    an ``nn.Sequential`` for a chain, a :class:`GraphNetwork` for a graph with shortcuts."""
    import snntorch

    def neuron(node, name: str) -> nn.Module:
        beta = float(_neuron_metadata(node, name, path)["beta"])
        return snntorch.Leaky(beta=beta, threshold=1.0, reset_mechanism="subtract", init_hidden=True)

    return _network(read_nir(path), path, neuron, _SumPool)


def _neuron_layers(net: nn.Module, kinds: tuple[type, ...]) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, kinds)]


def _as_samples(net: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """``inputs`` ``[B, ...]`` in the shape of the network's Input node (``[B, 1, F, L]`` -> ``[B, F, L]``)."""
    shape = getattr(net, "input_shape", None)
    return inputs if shape is None else inputs.reshape(inputs.shape[0], *shape)


@torch.inference_mode()
def _sinabs_pass(net: nn.Module, inputs: torch.Tensor, timesteps: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    import sinabs
    import sinabs.layers as sl

    sinabs.reset_states(net)
    inputs = _as_samples(net, inputs)
    batch = inputs.shape[0]
    recorded: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: recorded.append(out))
             for m in _neuron_layers(net, (sl.IAFSqueeze, sl.LIFSqueeze))]
    try:
        output = net(inputs.repeat_interleave(timesteps, dim=0))
    finally:
        for hook in hooks:
            hook.remove()
    steps = [r.reshape(batch, timesteps, *r.shape[1:]).transpose(0, 1) for r in [*recorded, output]]
    return steps[:-1], steps[-1]


@torch.inference_mode()
def _snntorch_pass(net: nn.Module, inputs: torch.Tensor, timesteps: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    import snntorch

    neurons = _neuron_layers(net, (snntorch.Leaky,))
    for neuron in neurons:
        neuron.reset_mem()
    inputs = _as_samples(net, inputs)
    recorded: list[list[torch.Tensor]] = [[] for _ in neurons]
    hooks = [m.register_forward_hook(lambda _m, _i, out, slot=slot: recorded[slot].append(out.clone()))
             for slot, m in enumerate(neurons)]
    try:
        outputs = [net(inputs) for _ in range(timesteps)]
    finally:
        for hook in hooks:
            hook.remove()
    return [torch.stack(steps) for steps in recorded], torch.stack(outputs)


def run_sinabs(net: nn.Module, inputs: torch.Tensor, timesteps: int) -> list[torch.Tensor]:
    """Each neuron layer's spikes ``[T, B, ...]`` for the analog ``inputs`` ``[B, ...]`` held over T."""
    return _sinabs_pass(net, inputs, timesteps)[0]


def run_snntorch(net: nn.Module, inputs: torch.Tensor, timesteps: int) -> list[torch.Tensor]:
    """Each Leaky layer's spikes ``[T, B, ...]`` for the analog ``inputs`` held over T."""
    return _snntorch_pass(net, inputs, timesteps)[0]


def run_student_sinabs(net: nn.Module, inputs: torch.Tensor, timesteps: int
                       ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """:func:`run_sinabs` and the non-spiking readout at every step ``[T, B, C]`` (what reaches the
    Output node); the logits are its mean over T."""
    return _sinabs_pass(net, inputs, timesteps)


def run_student_snntorch(net: nn.Module, inputs: torch.Tensor, timesteps: int
                         ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """:func:`run_snntorch` and the non-spiking readout at every step ``[T, B, C]``."""
    return _snntorch_pass(net, inputs, timesteps)


def spike_agreement(reference: list[torch.Tensor], other: list[torch.Tensor],
                    readouts: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, Any]:
    """How far ``other``'s spikes ``[T, B, ...]`` per layer are from ``reference``'s: spikes per
    layer, events that differ (``|s_ref - s_other|`` summed over steps and neurons, so a spike
    moved by one step counts 2), per-(sample, neuron) totals that differ, and the predictions
    that differ: the most output spikes over T, or with ``readouts`` (reference's and other's
    non-spiking readout ``[T, B, C]``) the argmax of the readout summed over T, with
    ``readout_max_difference`` the largest ``|readout_ref - readout_other|``."""
    return _agreement(_agreement_counts(reference, other, readouts))


def _agreement_counts(reference: list[torch.Tensor], other: list[torch.Tensor],
                      readouts: tuple[torch.Tensor, torch.Tensor] | None) -> dict[str, Any]:
    """The additive counts of :func:`spike_agreement` (per layer; samples and same predictions),
    so that batches of samples can be measured one after another and summed (:func:`_add_counts`)."""
    layers = []
    for ref, oth in zip(reference, other, strict=True):
        layers.append({"spikes": int(ref.sum()), "other_spikes": int(oth.sum()),
                       "events_differing": int((ref != oth).sum()),
                       "totals_differing": int((ref.sum(0) != oth.sum(0)).sum())})
    if readouts is None:
        predictions = reference[-1].sum(0).flatten(1).argmax(1) == other[-1].sum(0).flatten(1).argmax(1)
    else:
        predictions = readouts[0].sum(0).argmax(1) == readouts[1].sum(0).argmax(1)
    counts = {"layers": layers, "samples": int(predictions.numel()), "same_predictions": int(predictions.sum())}
    if readouts is not None:
        counts["readout_max_difference"] = float((readouts[0] - readouts[1]).abs().max())
    return counts


def _add_counts(total: dict[str, Any] | None, counts: dict[str, Any]) -> dict[str, Any]:
    if total is None:
        return counts
    layers = [{key: a[key] + b[key] for key in a} for a, b in zip(total["layers"], counts["layers"], strict=True)]
    added = {"layers": layers, "samples": total["samples"] + counts["samples"],
             "same_predictions": total["same_predictions"] + counts["same_predictions"]}
    if "readout_max_difference" in counts:
        added["readout_max_difference"] = max(total["readout_max_difference"], counts["readout_max_difference"])
    return added


def _agreement(counts: dict[str, Any]) -> dict[str, Any]:
    layers = counts["layers"]
    spikes = sum(layer["spikes"] for layer in layers)
    events = sum(layer["events_differing"] for layer in layers)
    result = {"layers": layers, "spikes": spikes, "events_differing": events,
              "totals_differing": sum(layer["totals_differing"] for layer in layers),
              "same_prediction": counts["same_predictions"] / counts["samples"],
              "events_differing_fraction": events / max(spikes, 1) / 2}
    if "readout_max_difference" in counts:
        result["readout_max_difference"] = counts["readout_max_difference"]
    return result


AGREEMENT_BATCH = 50
"""Samples run at once by :func:`agreement_summary` and :func:`student_agreement`: lowspike,
sinabs and snntorch each hold every layer's spikes ``[T, B, ...]`` of a batch (and sinabs its
``[B*T, ...]`` activations), 1.1 GB for 200 LeNet-5 samples at T = 100 in each; counts are
summed over batches, so the figures do not depend on it."""


def _batches(inputs: torch.Tensor):
    return inputs.split(AGREEMENT_BATCH)


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


Run = Callable[[torch.Tensor], tuple[list[torch.Tensor], torch.Tensor | None]]
"""One batch of inputs -> each spiking layer's spikes ``[T, B, ...]`` and the readout ``[T, B, C]``
(None for a converted SNN, whose prediction counts output spikes)."""


def _agreement_by_batch(inputs: torch.Tensor, timesteps: int, reference: Run, runs: tuple[Run, ...]
                        ) -> dict[str, Any]:
    """Each reader of :data:`~lowspike.studies.DEPLOY_LIBRARIES` (``runs`` in that order) against
    ``reference``, batch by batch (:data:`AGREEMENT_BATCH`), the counts summed over the batches."""
    readers = dict(zip(DEPLOY_LIBRARIES, runs, strict=True))
    counts: dict[str, dict[str, Any] | None] = dict.fromkeys(readers)
    for batch in _batches(inputs):
        spikes, readout = reference(batch)
        for library, run in readers.items():
            other, other_readout = run(batch)
            readouts = None if readout is None else (readout, other_readout)
            counts[library] = _add_counts(counts[library], _agreement_counts(spikes, other, readouts))
    return {**{library: _agreement(total) for library, total in counts.items()},
            "samples": int(inputs.shape[0]), "timesteps": timesteps}


def agreement_summary(snn: dict, path: str | Path, inputs: torch.Tensor, timesteps: int) -> dict[str, Any]:
    """The file at ``path`` run in sinabs and in snntorch against lowspike's own spikes, batch by
    batch (:data:`AGREEMENT_BATCH`)."""
    sinabs_net, snntorch_net = load_sinabs(path, timesteps), load_snntorch(path)
    runs = (lambda batch: (run_sinabs(sinabs_net, batch, timesteps), None),
            lambda batch: (run_snntorch(snntorch_net, batch, timesteps), None))
    return _agreement_by_batch(inputs, timesteps, lambda batch: (lowspike_spikes(snn, batch, timesteps), None), runs)


# ------------------------------------------------------------------ directly trained students


def neuron_metadata(beta: float) -> dict:
    """What a neuron node of an exported student runs (docs/conventions.md, Neurons):
    ``U[t] = beta U[t-1] + I[t] - S[t-1]``, ``S[t] = 1[U[t] > 1]``, one step of ``dt = 1``
    (the float32 order of the sum is :mod:`lowspike.snn.leaky`'s)."""
    return {**IF_METADATA, "beta": float(beta)}


class _Graph:
    """NIR nodes and edges in the order an exporter adds them, with each node's output shape."""

    def __init__(self, input_shape: tuple[int, ...]):
        import nir

        self.nodes: dict[str, Any] = {"input": nir.Input(_graph_type(input_shape))}
        self.edges: list[tuple[str, str]] = []
        self.shapes: dict[str, tuple[int, ...]] = {"input": tuple(input_shape)}

    def add(self, name: str, node, shape, *sources: str) -> str:
        self.nodes[name] = node
        self.edges += [(source, name) for source in sources]
        self.shapes[name] = tuple(int(s) for s in shape)
        return name

    def finish(self, source: str, metadata: dict):
        import nir

        self.add("output", nir.Output(_graph_type(self.shapes[source])), self.shapes[source], source)
        return nir.NIRGraph(self.nodes, self.edges, metadata=metadata)


def _folded(conv: nn.Module, norm: nn.Module | None, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The weight and bias of ``norm(conv(scale x))`` as one convolution, in float64 then rounded
    once to float32: with ``g = gamma / sqrt(running_var + eps)`` (eval-mode batch norm),
    ``W' = scale g W`` and ``b' = g (b - running_mean) + beta``."""
    weight = conv.weight.detach().double() * scale
    bias = conv.bias.detach().double() if conv.bias is not None else torch.zeros(weight.shape[0], dtype=torch.float64)
    if norm is not None:
        gain = (norm.running_var.detach().double() + norm.eps).rsqrt()
        if norm.weight is not None:
            gain = gain * norm.weight.detach().double()
        shift = norm.bias.detach().double() if norm.bias is not None else 0.0
        weight = weight * gain.reshape(-1, *[1] * (weight.dim() - 1))
        bias = (bias - norm.running_mean.detach().double()) * gain + shift
    return weight.float().numpy(), bias.float().numpy()


def _conv(graph: _Graph, name: str, conv: nn.Module, norm: nn.Module | None, source: str,
          scale: float = 1.0) -> str:
    """A Conv1d/Conv2d node for ``conv`` with ``norm`` (batch norm or None) folded in (:func:`_folded`)."""
    import nir

    dims = 1 if isinstance(conv, nn.Conv1d) else 2
    shape = graph.shapes[source]
    if not isinstance(conv, (nn.Conv1d, nn.Conv2d)) or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ExportError(f"layer {name}: only Conv1d/Conv2d with numeric zero padding are exported")
    if norm is not None and (not isinstance(norm, (nn.BatchNorm1d, nn.BatchNorm2d)) or norm.running_var is None):
        raise ExportError(f"layer {name}: its batch norm has no running statistics to fold into the weights")
    if len(shape) != dims + 1 or shape[0] != conv.in_channels:
        raise ExportError(f"layer {name}: expects {conv.in_channels} channels in {dims} dims, gets {shape}")
    weight, bias = _folded(conv, norm, scale)
    spatial = [(size + 2 * p - d * (k - 1) - 1) // s + 1 for size, p, d, k, s in
               zip(shape[1:], conv.padding, conv.dilation, conv.kernel_size, conv.stride)]
    if dims == 1:
        node = nir.Conv1d(shape[1], weight, conv.stride[0], conv.padding[0], conv.dilation[0], conv.groups, bias)
    else:
        node = nir.Conv2d(tuple(shape[1:]), weight, tuple(conv.stride), tuple(conv.padding), tuple(conv.dilation),
                          conv.groups, bias)
    return graph.add(name, node, (conv.out_channels, *spatial), source)


def _neurons(graph: _Graph, name: str, neurons: nn.Module, *sources: str) -> str:
    """An IF node (beta = 1) or a LIF node (beta < 1) fed by the sum of ``sources``. The LIF node
    is the Euler step ``dt = 1`` of NIR's ``tau dv/dt = (v_leak - v) + R I``: ``tau = 1 / (1 - beta)``
    and ``R = tau`` give ``v[t] = beta v[t-1] + I[t]`` (snntorch's reading of tau); the reset by
    subtraction, which NIR cannot say, is in the metadata (:func:`neuron_metadata`)."""
    import nir

    beta, threshold = float(getattr(neurons, "beta", -1)), float(getattr(neurons, "threshold", 1.0))
    if threshold != 1.0:
        raise ExportError(f"layer {name}: threshold {threshold:g}; the loaders run lowspike's threshold of 1")
    if not 0.0 < beta <= 1.0:
        raise ExportError(f"layer {name}: beta {beta:g} is not a leak factor in (0, 1]")
    shapes = {graph.shapes[source] for source in sources}
    if len(shapes) != 1:
        raise ExportError(f"layer {name}: its inputs have different shapes {sorted(shapes)}; NIR sums them")
    shape = shapes.pop()
    ones, zeros = np.ones(shape, dtype=np.float32), np.zeros(shape, dtype=np.float32)
    if beta == 1.0:
        node = nir.IF(r=ones, v_threshold=ones, v_reset=zeros, metadata=neuron_metadata(beta))
    else:
        tau = np.full(shape, 1.0 / (1.0 - beta), dtype=np.float32)
        node = nir.LIF(tau=tau, r=tau.copy(), v_leak=zeros, v_threshold=ones, v_reset=zeros.copy(),
                       metadata=neuron_metadata(beta))
    return graph.add(name, node, shape, *sources)


def _sum_pool(graph: _Graph, name: str, source: str, kernel: tuple[int, int]) -> str:
    """SumPool2d; the ``1 / (kh kw)`` of average pooling is folded into the next weight layer."""
    import nir

    channels, height, width = graph.shapes[source]
    node = nir.SumPool2d(np.array(kernel), np.array(kernel), np.array([0, 0]))
    return graph.add(name, node, (channels, height // kernel[0], width // kernel[1]), source)


def _half_pool1d(graph: _Graph, name: str, source: str) -> str:
    """Average pooling by 2 along the sequence as a Conv1d of kernel 2, stride 2 whose taps are 1/2
    from a channel to itself and 0 across channels: ``(s[2i] + s[2i+1]) / 2`` exactly for spikes
    (NIR 1.0.8 types a grouped Conv1d's input by ``C_in / groups`` channels, so the depthwise form
    would not pass ``nir.read``'s type check)."""
    import nir

    channels, length = graph.shapes[source]
    weight = np.zeros((channels, channels, 2), dtype=np.float32)
    weight[np.arange(channels), np.arange(channels)] = 0.5
    node = nir.Conv1d(length, weight, 2, 0, 1, 1, np.zeros(channels, dtype=np.float32))
    return graph.add(name, node, (channels, length // 2), source)


def _flatten(graph: _Graph, name: str, source: str) -> str:
    import nir

    shape = graph.shapes[source]
    node = nir.Flatten({"input": _graph_type(shape)}, start_dim=0, end_dim=-1)
    return graph.add(name, node, (int(np.prod(shape)),), source)


def _affine(graph: _Graph, name: str, linear: nn.Module, source: str, scale: float = 1.0) -> str:
    import nir

    if not isinstance(linear, nn.Linear) or graph.shapes[source] != (linear.in_features,):
        raise ExportError(f"layer {name}: expects a Linear layer on {graph.shapes[source]} values")
    weight = (linear.weight.detach().double() * scale).float().numpy()
    return graph.add(name, nir.Affine(weight, _bias(linear)), (linear.out_features,), source)


def _bias(linear: nn.Linear) -> np.ndarray:
    if linear.bias is None:
        return np.zeros(linear.out_features, dtype=np.float32)
    return linear.bias.detach().float().numpy()


def _mean_affine(graph: _Graph, name: str, linear: nn.Module, source: str) -> str:
    """``linear`` applied to the mean over the sequence of the ``[C, L]`` map ``source``, as Flatten
    and one Affine node on the ``C L`` values: ``W'[o, c L + l] = W[o, c] / L``. lowspike sums the L spikes of a
    channel exactly and divides by L; here each spike adds ``W / L`` rounded to float32, so the
    readout agrees within float32 rounding, not bit for bit (exactly when L is a power of two
    and the sums stay exact)."""
    import nir

    channels, length = graph.shapes[source]
    if not isinstance(linear, nn.Linear) or linear.in_features != channels:
        raise ExportError(f"layer {name}: expects a Linear layer on {channels} channel means")
    weight = (linear.weight.detach().double() / length).repeat_interleave(length, dim=1).float().numpy()
    flat = _flatten(graph, "flatten", source)
    return graph.add(name, nir.Affine(weight, _bias(linear)), (linear.out_features,), flat)


def _scnn_graph(model, input_shape) -> tuple[_Graph, str]:
    """conv1 -> IF -> SumPool2d 2 -> conv2 (x 1/4) -> IF -> SumPool2d 2 -> Flatten -> readout (x 1/4)."""
    graph = _Graph(input_shape)
    x = _neurons(graph, "spike1", model.spike1, _conv(graph, "conv1", model.conv1, None, "input"))
    x = _neurons(graph, "spike2", model.spike2, _conv(graph, "conv2", model.conv2, None,
                                                      _sum_pool(graph, "pool1", x, (2, 2)), 0.25))
    x = _flatten(graph, "flatten", _sum_pool(graph, "pool2", x, (2, 2)))
    return graph, _affine(graph, "readout", model.readout, x, 0.25)


def _sres_graph(model, input_shape) -> tuple[_Graph, str]:
    """stem conv+BN -> LIF -> pool by 2 (:func:`_half_pool1d`) -> blocks -> Flatten -> readout
    with the mean over the sequence folded in (:func:`_mean_affine`); a block is ``s1 = LIF(conv1 s)``,
    ``s2 = LIF(conv2 s1 + s)``, its shortcut an edge from ``s`` into ``s2``."""
    graph = _Graph(input_shape)
    stem = list(model.stem)
    if len(stem) != 2:
        raise ExportError(f"layer stem: expected conv and batch norm, found {[type(m).__name__ for m in stem]}")
    s = _neurons(graph, "stem_spike", model.stem_spike, _conv(graph, "stem.0", stem[0], stem[1], "input"))
    s = _half_pool1d(graph, "pool", s)
    for index, block in enumerate(model.blocks):
        prefix = f"blocks.{index}"
        s1 = _neurons(graph, f"{prefix}.spike1", block.spike1,
                      _conv(graph, f"{prefix}.conv1", block.conv1, block.bn1, s))
        s = _neurons(graph, f"{prefix}.spike2", block.spike2,
                     _conv(graph, f"{prefix}.conv2", block.conv2, block.bn2, s1), s)
    return graph, _mean_affine(graph, "readout", model.readout, s)


def _svgg_graph(model, input_shape) -> tuple[_Graph, str]:
    """(conv+BN -> LIF [-> SumPool2d 2])+ -> [SumPool2d over the map] -> Flatten -> (fc -> LIF)+
    -> readout; each pooling's ``1 / k^2`` folded into the next weight layer."""
    graph = _Graph(input_shape)
    x, scale = "input", 1.0
    for index, (conv, norm, neurons) in enumerate(zip(model.convs, model.norms, model.neurons)):
        x = _neurons(graph, f"neurons.{index}", neurons, _conv(graph, f"convs.{index}", conv, norm, x, scale))
        scale = 1.0
        if model.pool_after[index]:
            x, scale = _sum_pool(graph, f"pools.{index}", x, (2, 2)), 0.25
    _, height, width = graph.shapes[x]
    if height * width > 1:
        x, scale = _sum_pool(graph, "global_pool", x, (height, width)), scale / (height * width)
    x = _flatten(graph, "flatten", x)
    for index, (fc, neurons) in enumerate(zip(model.fcs, model.fc_neurons)):
        x = _neurons(graph, f"fc_neurons.{index}", neurons, _affine(graph, f"fcs.{index}", fc, x, scale))
        scale = 1.0
    return graph, _affine(graph, "readout", model.readout, x, scale)


def _student_builders() -> dict[type, Any]:
    from .models.resnet import SpikingResNet1d
    from .models.scnn import SCNN
    from .models.vgg import SpikingVGG

    return {SCNN: _scnn_graph, SpikingResNet1d: _sres_graph, SpikingVGG: _svgg_graph}


def _inferred_input_shape(model) -> tuple[int, ...]:
    """One sample's shape from the first spiking layer's neuron count: ``(features, frames)`` for
    SRes-8, a square image for SCNN (5x5 convolutions, padding 1) and SVGG-11 (3x3, padding 1)."""
    first = model.neuron_counts()[0]
    if hasattr(model, "stem"):
        conv = model.stem[0]
        return conv.in_channels, first // conv.out_channels
    conv = model.conv1 if hasattr(model, "conv1") else model.convs[0]
    shrink = conv.kernel_size[0] - 1 - 2 * conv.padding[0]
    side = int(round(np.sqrt(first / conv.out_channels))) + shrink
    return conv.in_channels, side, side


def student_to_nir(model, input_shape: tuple[int, ...] | None = None):
    """The NIR graph of a directly trained student (SCNN, SRes-8, SVGG-11; docs/deploy.md),
    in float32 from its eval-mode parameters: batch norm folded into the preceding convolution,
    IF/LIF nodes named as ``model.spiking_layer_names`` with lowspike's neuron in their metadata,
    residual shortcuts as extra edges (NIR sums a node's inputs), and the non-spiking readout
    (an Affine node) as the output, one value per step. ``input_shape`` is one sample's
    (``(features, frames)`` for SRes-8); without it, it is inferred from the model, square for
    images. ExportError names a layer NIR cannot express."""
    builder = _student_builders().get(type(model))
    if builder is None:
        raise ExportError(f"model {type(model).__name__}: no NIR export (students: SCNN, SpikingResNet1d, SpikingVGG)")
    shape = tuple(int(s) for s in (input_shape or _inferred_input_shape(model)))
    if hasattr(model, "stem") and len(shape) == 3:
        shape = shape[1:]
    hint = "" if input_shape else " (inferred; pass the input_shape the model was built for)"
    try:
        graph, readout = builder(model, shape)
    except ExportError as exc:
        raise ExportError(f"{exc}{hint}") from None
    counts = [int(np.prod(graph.shapes[name])) for name in model.spiking_layer_names]
    if counts != model.neuron_counts():
        raise ExportError(f"input shape {shape}{hint}: gives {counts} neurons per spiking layer where the model "
                          f"has {model.neuron_counts()}")
    return graph.finish(readout, {"lowspike": "student", "model": type(model).__name__,
                                  "timesteps": int(model.timesteps), "input": "analog, constant over T",
                                  "output": "non-spiking readout per step; logits = its mean over T"})


def write_student_nir(path: str | Path, model, input_shape: tuple[int, ...] | None = None) -> None:
    """:func:`student_to_nir` written with ``nir.write`` (HDF5)."""
    import nir

    nir.write(str(path), student_to_nir(model, input_shape))


def _float32_copy(model):
    """A float32, eval-mode CPU copy of a student (no bfloat16 autocast)."""
    reference = copy.deepcopy(model).cpu().float().eval()
    reference.bfloat16 = False
    return reference


@torch.inference_mode()
def _own_spikes(reference, inputs: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    out = reference(inputs.cpu().float())
    return [s.float() for s in out.spikes], out.readout


def student_spikes(model, inputs: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The reference: the student's own spikes ``[T, B, ...]`` per spiking layer (in
    ``spiking_layer_names`` order) and readout ``[T, B, C]``, from a float32, eval-mode copy of
    ``model`` (fused neurons, :func:`lowspike.snn.leaky.multistep_leaky`)."""
    return _own_spikes(_float32_copy(model), inputs)


def student_agreement(model, path: str | Path, inputs: torch.Tensor) -> dict[str, Any]:
    """The student's NIR file at ``path`` run in sinabs and in snntorch against the student's own
    spikes (:func:`student_spikes`), T = ``model.timesteps``, batch by batch
    (:data:`AGREEMENT_BATCH`); predictions compare the argmax of the readout summed over T."""
    timesteps = int(model.timesteps)
    reference = _float32_copy(model)
    sinabs_net, snntorch_net = load_sinabs(path, timesteps), load_snntorch(path)
    runs = (lambda batch: run_student_sinabs(sinabs_net, batch, timesteps),
            lambda batch: run_student_snntorch(snntorch_net, batch, timesteps))
    return _agreement_by_batch(inputs, timesteps, lambda batch: _own_spikes(reference, batch), runs)
