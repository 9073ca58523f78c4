"""NeuroBench's metrics of the spiking students, computed by the ``neurobench`` package itself.

NeuroBench (Yik et al., "The neurobench framework for benchmarking neuromorphic computing
algorithms and systems", Nature Communications 16, 1545, 2025; package ``neurobench==2.3.0``)
wraps an snntorch network in ``SNNTorchModel``, which calls it once per timestep, and hooks its
snntorch neurons (``snntorch.SpikingNeuron``: their spikes) and its connection layers (Linear,
Conv1d, Conv2d: their inputs). A student runs layer by layer (time folded into the batch);
:class:`StepByStepStudent` runs a copy of it one timestep per call, through the student's own
modules and own ``run``, each spiking layer through the ``snntorch.Leaky`` of its
``SpikingNeurons`` (the reference path of the fused neurons) with the membranes carried from
call to call: the same spikes as the layer-by-layer run (tested), in NeuroBench's calling pattern.

:func:`run_neurobench` computes NeuroBench's static metrics (ParameterCount, Footprint,
ConnectionSparsity) and workload metrics (ActivationSparsity, SynapticOperations with
Effective_MACs, Effective_ACs and Dense, ClassificationAccuracy) with NeuroBench's classes, plus
two per-layer breakdowns built on NeuroBench's hooks and its own ``single_layer_MACs``.
:func:`neurobench_report` sets them beside our figures (:func:`lowspike.metrics.student_layer_activity`)
and names the gaps. Where NeuroBench's conventions differ from ours (docs/conventions.md):

- pooled spikes: NeuroBench sees the averaged map a layer reads; a timestep whose input holds a
  value other than 0 and +-1 is "not spiking", its operations are MACs, and a pooled cell counts
  once however many spikes it averages. We count every spike with the fan-out of its pooled
  cell, as accumulates. Unpooled spike inputs agree exactly.
- the analog input: NeuroBench presents the static input at every timestep (T x the first
  layer's MACs); the student computes that current once (``effective_macs``, counted once).
- residual shortcuts have no weight layer: NeuroBench does not count the spikes they add into
  membranes; we count one SynOp per arriving spike (a ``residual`` record).
- biases: in neither NeuroBench's operations nor our SynOps (EFLOPS counts them).
- ConnectionSparsity counts the raw weights, rounded to 4 decimals; ours folds the batch norm
  (a channel with gamma = 0 has no non-zero weights) and is exact.
- Footprint is parameter and buffer bytes: batch-norm statistics and snntorch's constants
  (beta, threshold, ...) included; measured on a freshly reset network, whose membrane
  buffers are empty.
- ``Benchmark.run`` turns an exception in a metric into a printed line and a 0.0 result;
  :func:`run_neurobench` calls the same classes in the same order, so that an error surfaces
  (tested equal to ``Benchmark.run``).
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from typing import Any

import snntorch
import torch
from torch import nn

from .metrics import NETWORK_INPUT, student_layer_activity
from .models.spiking import SpikingNeurons
from .snn.leaky import Current, Repeated, state_dtype

NEUROBENCH_VERSION = "2.3.0"


def _neurobench():
    """The neurobench modules used here (imported on use: a heavy import, only for this report)."""
    import neurobench
    from neurobench.metrics import static, workload
    from neurobench.metrics.abstract import AccumulatedMetric
    from neurobench.metrics.utils.layers import single_layer_MACs
    from neurobench.models import SNNTorchModel

    if neurobench.__version__ != NEUROBENCH_VERSION:
        raise RuntimeError(f"neurobench {NEUROBENCH_VERSION} expected, found {neurobench.__version__}")
    return static, workload, AccumulatedMetric, single_layer_MACs, SNNTorchModel


def reference_neuron(layer: SpikingNeurons) -> snntorch.SpikingNeuron:
    """The snntorch neuron module inside a ``SpikingNeurons`` layer (its reference path)."""
    found = [m for m in layer.modules() if isinstance(m, snntorch.SpikingNeuron)]
    if len(found) != 1:
        raise TypeError(f"expected one snntorch neuron in {type(layer).__name__}, found {len(found)}")
    return found[0]


class SteppedNeurons(nn.Module):
    """A spiking layer run one timestep per call: ``[1, B, ...]`` current (or a static current
    :class:`~lowspike.snn.leaky.Repeated` once) -> ``[1, B, ...]`` spikes, through its snntorch
    neuron, the membrane carried from call to call (U = 0 after :meth:`reset`). A bfloat16 current
    (convolutions under autocast) is integrated in float32, as the fused neurons do."""

    def __init__(self, neuron: snntorch.SpikingNeuron, layer_name: str):
        super().__init__()
        self.neuron = neuron
        self.layer_name = layer_name
        self.membrane: torch.Tensor | None = None

    def reset(self) -> None:
        self.membrane = None
        self.neuron.mem = torch.zeros(0, device=self.neuron.mem.device)

    def forward(self, current: Current) -> torch.Tensor:
        if isinstance(current, Repeated):
            current = current.expand()
        current = current.to(state_dtype(current))
        if current.shape[0] != 1:
            raise ValueError("a stepped layer takes one timestep per call")
        if self.membrane is None:
            self.membrane = torch.zeros_like(current[0])
        spikes, self.membrane = self.neuron(current[0], self.membrane)
        return spikes.unsqueeze(0)


class StepByStepStudent(nn.Module):
    """A copy of a spiking student (same weights) run one timestep per call, for NeuroBench.

    ``forward(x)`` with the static input ``x`` ``[B, ...]`` returns ``(readout [B, C], spikes)``
    for the next timestep (the pair that ``SNNTorchModel`` unpacks); :meth:`reset` starts a new
    inference. The student's own ``run`` executes with T = 1 and every ``SpikingNeurons`` swapped
    for a :class:`SteppedNeurons` around its snntorch neuron.
    """

    def __init__(self, student: nn.Module):
        super().__init__()
        self.timesteps = int(student.timesteps)
        self.student = copy.deepcopy(student)
        self.stepped: list[SteppedNeurons] = []
        for name, module in list(self.student.named_modules()):
            if isinstance(module, SpikingNeurons):
                stepped = SteppedNeurons(reference_neuron(module), name)
                parent, _, child = name.rpartition(".")
                setattr(self.student.get_submodule(parent), child, stepped)
                self.stepped.append(stepped)
        self.student.timesteps = 1
        self.reset()

    @property
    def neuron_layer_names(self) -> dict[int, str]:
        """``id`` of each snntorch neuron -> the student's name of its spiking layer."""
        return {id(s.neuron): s.layer_name for s in self.stepped}

    def reset(self) -> None:
        for stepped in self.stepped:
            stepped.reset()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = self.student(x)
        return out.readout[0], [s[0] for s in out.spikes]


def _per_layer_metrics(AccumulatedMetric, single_layer_MACs):
    """Two per-layer NeuroBench workload metrics, keyed by the student's layer names.

    NeuroBench's own ActivationSparsityByLayer keys layers by their attribute name, which is
    ``neuron`` for every spiking layer of a student, so it merges them all; these key by the
    qualified name, and count with NeuroBench's hooks and ``single_layer_MACs`` exactly as
    ``SynapticOperations`` and ``ActivationSparsity`` do.
    """

    class SynapticOperationsByLayer(AccumulatedMetric):
        """NeuroBench's SynapticOperations per connection layer, mean per sample."""

        def __init__(self):
            super().__init__(requires_hooks=True)
            self.reset()

        def reset(self):
            self.operations = defaultdict(lambda: {"Effective_MACs": 0, "Effective_ACs": 0, "Dense": 0})
            self.total_samples = 0

        def __call__(self, model, preds, data):
            names = {id(m): n for n, m in model.__net__().student.named_modules()}
            for hook in model.connection_hooks:
                entry = self.operations[names[id(hook.layer)]]
                for inputs in hook.inputs:
                    inputs = inputs[0] if len(inputs) == 1 else inputs
                    hook.hook.remove()  # NeuroBench's order: the layer copy must not carry the hook
                    operations, spiking = single_layer_MACs(inputs, hook.layer)
                    dense, _ = single_layer_MACs(inputs, hook.layer, total=True)
                    entry["Effective_ACs" if spiking else "Effective_MACs"] += operations
                    entry["Dense"] += dense
                    hook.register_hook()
            self.total_samples += data[0].size(0)
            return self.compute()

        def compute(self):
            samples = max(self.total_samples, 1)
            return {name: {k: v / samples for k, v in ops.items()} for name, ops in self.operations.items()}

    class SpikesByLayer(AccumulatedMetric):
        """Spikes per inference of each spiking layer, from NeuroBench's neuron hooks."""

        def __init__(self):
            super().__init__(requires_hooks=True)
            self.reset()

        def reset(self):
            self.spikes = defaultdict(int)
            self.total_samples = 0

        def __call__(self, model, preds, data):
            names = model.__net__().neuron_layer_names
            for hook in model.activation_hooks:
                for output in hook.activation_outputs:
                    self.spikes[names[id(hook.layer)]] += int(torch.count_nonzero(output))
            self.total_samples += data[0].size(0)
            return self.compute()

        def compute(self):
            samples = max(self.total_samples, 1)
            return {name: count / samples for name, count in self.spikes.items()}

    return SynapticOperationsByLayer, SpikesByLayer


def run_neurobench(student: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                   batch_size: int = 64) -> dict[str, Any]:
    """NeuroBench's metrics of ``student`` on ``inputs`` (static, presented at each of the T
    steps) and ``labels``, as ``Benchmark.run`` computes them (static metrics first, then every
    workload metric per batch, the non-accumulated ones averaged with batch-size weights), with
    the predictions postprocessed as the student's: readout averaged over T, then argmax.

    Returns NeuroBench's result names, plus ``SynapticOperationsByLayer`` and ``SpikesByLayer``.
    """
    static, workload, AccumulatedMetric, single_layer_MACs, SNNTorchModel = _neurobench()
    SynapticOperationsByLayer, SpikesByLayer = _per_layer_metrics(AccumulatedMetric, single_layer_MACs)
    device = next(student.parameters()).device
    model = SNNTorchModel(StepByStepStudent(student))
    results: dict[str, Any] = {cls.__name__: cls()(model)
                               for cls in (static.ParameterCount, static.Footprint, static.ConnectionSparsity)}
    metrics = {cls.__name__: cls() for cls in (workload.ActivationSparsity, workload.SynapticOperations,
                                               workload.ClassificationAccuracy, SynapticOperationsByLayer,
                                               SpikesByLayer)}
    for metric in metrics.values():
        if isinstance(metric, AccumulatedMetric):
            metric.reset()
        else:
            results[type(metric).__name__] = 0.0
    samples = int(inputs.shape[0])
    model.register_hooks()
    try:
        with torch.no_grad():
            for x, y in zip(inputs.split(batch_size), labels.split(batch_size)):
                x, y = x.to(device), y.to(device)
                data = (x.unsqueeze(1).expand(x.shape[0], model.net.timesteps, *x.shape[1:]), y)
                predictions = model(data[0]).mean(dim=1).argmax(dim=1)
                for name, metric in metrics.items():
                    value = metric(model, predictions, data)
                    if isinstance(metric, AccumulatedMetric):
                        results[name] = value
                    else:
                        results[name] += value * x.shape[0] / samples
                model.reset_hooks()
    finally:
        model.cleanup_hooks()
    return results


def _input_kind(projection, in_shape: list[int], neurons: dict[str, int]) -> str:
    """"analog", "spikes", "pooled spikes" (cells averaging several neurons) or "residual"."""
    if projection.layer is None:
        return "residual"
    if projection.source is NETWORK_INPUT:
        return "analog"
    return "pooled spikes" if math.prod(in_shape) < neurons[projection.source] else "spikes"


def _layer_rows(records: list[dict[str, Any]], projections: dict, by_layer: dict, timesteps: int) -> list[dict]:
    """Per weight layer or shortcut: its input kind and our counts beside NeuroBench's."""
    empty = {"Effective_MACs": 0.0, "Effective_ACs": 0.0, "Dense": 0.0}
    neurons_by_layer = {projections[r["name"]].target: r["neurons"] for r in records
                        if r["kind"] != "residual" and projections[r["name"]].target is not None}
    layers = []
    for r in records:
        nb = by_layer.get(r["name"], empty)
        layers.append({
            "name": r["name"], "input": _input_kind(projections[r["name"]], r["in_shape"], neurons_by_layer),
            "lowspike_synops": r["synops"], "lowspike_effective_macs": r["effective_macs"],
            "lowspike_dense_macs_x_T": r["dense_macs"] * timesteps if r["kind"] != "residual" else 0.0,
            "neurobench_effective_acs": float(nb["Effective_ACs"]),
            "neurobench_effective_macs": float(nb["Effective_MACs"]),
            "neurobench_dense": float(nb["Dense"]),
        })
    return layers


def _total(layers: list[dict], key: str, kinds: tuple[str, ...]) -> float:
    return float(sum(row[key] or 0.0 for row in layers if row["input"] in kinds))


def _gaps(layers: list[dict], weight_records: list[dict], lowspike: dict, footprint: float,
          parameter_bytes: int) -> dict[str, float]:
    """Each convention difference of the module docstring, with its size per inference."""
    pooled_by_neurobench = (_total(layers, "neurobench_effective_acs", ("pooled spikes",))
                            + _total(layers, "neurobench_effective_macs", ("pooled spikes",)))
    return {
        "analog_input_macs_at_every_timestep": (_total(layers, "neurobench_effective_macs", ("analog",))
                                                - lowspike["AnalogInputMACs"]),
        "pooled_cells_counted_once_per_timestep": (_total(layers, "lowspike_synops", ("pooled spikes",))
                                                   - pooled_by_neurobench),
        "pooled_inputs_counted_as_macs": _total(layers, "neurobench_effective_macs", ("pooled spikes",)),
        "residual_synops_not_counted": _total(layers, "lowspike_synops", ("residual",)),
        "bias_additions_per_timestep_in_neither": float(sum(
            r["biases"] * (math.prod(r["out_shape"]) // r["out_shape"][0]) for r in weight_records)),
        "footprint_buffer_bytes": float(footprint - parameter_bytes),
    }


def neurobench_report(student: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int = 64,
                      records: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A JSON-able comparison of NeuroBench's metrics with ours for one student, per inference.

    ``records``: :func:`lowspike.metrics.student_layer_activity` of ``student`` on the same
    ``inputs`` (computed here when None). Keys: ``neurobench`` (NeuroBench's totals),
    ``lowspike`` (ours under the same names), ``layers`` (per weight layer or shortcut: input
    kind, our SynOps / analog MACs / dense MACs x T, NeuroBench's Effective_ACs / Effective_MACs /
    Dense), ``spiking_layers`` (spikes per layer, both), ``gaps`` (each convention difference
    of the module docstring with its size, per inference).
    """
    raw = run_neurobench(student, inputs, labels, batch_size)
    records = records if records is not None else student_layer_activity(student, inputs, batch_size)
    projections = {p.record_name: p for p in student.projections()}
    timesteps = int(student.timesteps)
    by_layer = raw.pop("SynapticOperationsByLayer")
    nb_spikes = raw.pop("SpikesByLayer")
    layers = _layer_rows(records, projections, by_layer, timesteps)
    weight_records = [r for r in records if r["kind"] != "residual"]
    spikes_by_target = {projections[r["name"]].target: r["output_spikes"] for r in weight_records
                        if projections[r["name"]].target is not None}
    neurons = sum(r["neurons"] for r in weight_records)
    spikes = float(sum(spikes_by_target.values()))
    parameter_bytes = sum(p.numel() * p.element_size() for p in student.parameters())
    weights = sum(r["weights"] for r in weight_records)
    lowspike = {
        "ParameterCount": sum(p.numel() for p in student.parameters()),
        "ParameterBytes": parameter_bytes,
        "ConnectionSparsity": 1.0 - sum(r["nonzero_weights"] for r in weight_records) / weights,
        "ActivationSparsity": 1.0 - spikes / (timesteps * neurons) if neurons else 1.0,
        "Spikes": spikes,
        "SynOps": float(sum(r["synops"] for r in records)),
        "AnalogInputMACs": _total(layers, "lowspike_effective_macs", ("analog",)),
        "DenseMACs": _total(layers, "lowspike_dense_macs_x_T", ("analog", "spikes", "pooled spikes")),
    }
    return {
        "neurobench_version": NEUROBENCH_VERSION,
        "samples": int(inputs.shape[0]),
        "timesteps": timesteps,
        "neurobench": _jsonable(raw),
        "lowspike": lowspike,
        "layers": layers,
        "spiking_layers": [{"name": name, "lowspike_spikes": spikes_by_target.get(name, 0.0),
                            "neurobench_spikes": float(nb_spikes.get(name, 0.0))}
                           for name in student.spiking_layer_names],
        "gaps": _gaps(layers, weight_records, lowspike, raw["Footprint"], parameter_bytes),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return value.item()
    return value
