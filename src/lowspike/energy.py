"""Energy per inference of a spiking network and of its non-spiking counterpart (docs/energy.md).

Two models, one registry :data:`ENERGY_MODELS` (params ``energy.models``), both functions of
a network's per-layer activity (:class:`NetworkActivity`) and of :class:`~lowspike.config.EnergyConfig`:

- ``ops`` (:func:`ops_energy`): Horowitz (ISSCC 2014, 45 nm) arithmetic only,
  ``E = E_MAC * MACs + E_AC * ACs``.
- ``lemaire`` (:func:`lemaire_energy`): Lemaire et al., "An Analytical Estimation of Spiking
  Neural Networks Energy Efficiency", ICONIP 2022: arithmetic, event addressing and SRAM
  traffic (weights, biases, membrane potentials, inputs and outputs) priced by memory size.

Each returns the energy, in joules per inference (one sample, all T timesteps), of three
networks with the same layers: ``snn`` (the spiking network as recorded), ``dnn_dense`` (its
non-spiking counterpart with ReLU activations, every MAC paid) and, for ``ops`` when the
records carry ``effective_macs``, ``dnn_effective`` (the same network on zero-skipping
hardware: only the MACs whose weight and input are both non-zero, the EFLOPS of Eq. 1 of the
regularization paper). Every energy is a sum of named terms per layer
(:class:`NetworkEnergy`), so reports can show compute against memory.

Conventions (docs/conventions.md): SynOps count every spike times the number of
non-zero weights that read it, exact at borders, summed over T; a spike through k x k average
pooling counts the fan-out of its pooled cell, so a layer fed by pooled spikes has binary
input events. The spikerate is spikes per neuron per inference (Eq. 12 of the distillation
paper), in [0, T].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .config import EnergyConfig

PICOJOULE = 1.0e-12

OPS_PRESETS: dict[str, tuple[float, float]] = {
    "fp32": (4.6, 0.9),
    "fp16": (1.5, 0.4),
    "int8": (0.23, 0.03),
}
"""``(E_MAC, E_AC)`` in pJ at 45 nm (Horowitz, ISSCC 2014, Fig. 1.1.9): a MAC is a multiply
plus an add (fp32 3.7 + 0.9, fp16 1.1 + 0.4, int8 0.2 + 0.03), an AC one add."""

LEMAIRE_ARITHMETIC: dict[str, tuple[float, float]] = {
    "int32": (0.1, 3.1),
    "int8": (0.03, 0.2),
}
"""``(E_add, E_mul)`` in pJ of integer arithmetic at 45 nm (Horowitz 2014), as used by
Lemaire et al. 2022 (int32) and by its Qualia implementation (int8 for 8-bit memories)."""

SRAM_ACCESS_POINTS: tuple[tuple[float, float], ...] = (
    (8.0 * 1024, 10.0),
    (32.0 * 1024, 20.0),
    (1024.0 * 1024, 100.0),
)
"""Horowitz 2014 (Fig. 1.1.9): energy in pJ of one 64-bit access to an SRAM of 8 KiB, 32 KiB
and 1 MiB (memory size in bytes)."""

SRAM_LINEAR_FIT = (13.2, 1.09e-5)
"""``(intercept pJ, slope pJ per bit of memory)``: the straight line Lemaire et al. fitted to
the three Horowitz points (the constants of the authors' implementation, Qualia's
``EnergyEstimationMetric._e_ram``; an ordinary least-squares line through the points gives
13.26 pJ and 1.035e-5 pJ/bit)."""

LAYER_KINDS = ("linear", "conv1d", "conv2d", "residual")
NEURON_MODELS = ("if", "lif", "none")
ACTIVITY_KEYS = (
    "name", "kind", "in_shape", "out_shape", "weights", "nonzero_weights", "biases", "dense_macs",
    "effective_macs", "input_binary", "synops", "input_events", "neurons", "output_spikes", "neuron_model",
)
_RELATIVE_SLACK = 1.0e-9


# ------------------------------------------------------------------------ activity records


def _fail(where: str, key: str, value: Any, allowed: str) -> None:
    raise ValueError(f"{where}: {key}: got {value!r}: {allowed}")


def _count(where: str, key: str, value: Any, integer: bool = False) -> float:
    """A finite non-negative number (an int when ``integer``); bools are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(where, key, value, "must be a number")
    if not math.isfinite(value) or value < 0:
        _fail(where, key, value, "must be a finite number >= 0")
    if integer and value != int(value):
        _fail(where, key, value, "must be a whole number")
    return int(value) if integer else float(value)


def _shape(where: str, key: str, value: Any, ranks: tuple[int, ...]) -> tuple[int, ...]:
    if (not isinstance(value, (list, tuple)) or len(value) not in ranks
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        counts = " or ".join(str(rank) for rank in ranks)
        _fail(where, key, value, f"must be a list of {counts} positive integers (one sample, one timestep)")
    return tuple(value)


def _exceeds(value: float, bound: float) -> bool:
    return value > bound * (1.0 + _RELATIVE_SLACK) + _RELATIVE_SLACK


def _check_shortcut(where: str, kind: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                    counts: dict[str, int]) -> None:
    """An identity shortcut: equal shapes, no weight or bias, one addition per output element."""
    if in_shape != out_shape:
        _fail(where, "out_shape", list(out_shape), f"must equal in_shape {list(in_shape)} for a shortcut")
    for key in ("weights", "nonzero_weights", "biases"):
        if counts[key]:
            _fail(where, key, counts[key], "must be 0 for a shortcut")
    if counts["dense_macs"] != math.prod(out_shape):
        _fail(where, "dense_macs", counts["dense_macs"],
              f"must be {math.prod(out_shape)} (one addition per output element) for a shortcut")


def _check_weight_layer(where: str, kind: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                        counts: dict[str, int]) -> None:
    """A linear layer or a convolution: its weights, biases and dense MACs fit its shapes."""
    weights, dense_macs = counts["weights"], counts["dense_macs"]
    if weights == 0:
        _fail(where, "weights", weights, "must be at least 1")
    if counts["nonzero_weights"] > weights:
        _fail(where, "nonzero_weights", counts["nonzero_weights"], f"must be at most weights ({weights})")
    if counts["biases"] > out_shape[0]:
        _fail(where, "biases", counts["biases"], f"must be at most the output channels ({out_shape[0]})")
    if kind == "linear" and dense_macs != weights:
        _fail(where, "dense_macs", dense_macs, f"must be {weights} (the weights of a linear layer)")
    if kind != "linear":
        if weights % (in_shape[0] * out_shape[0]):
            _fail(where, "weights", weights, "must be in_channels x out_channels x kernel size (groups=1)")
        bound = weights * math.prod(out_shape[1:])
        if not 0 < dense_macs <= bound:
            _fail(where, "dense_macs", dense_macs,
                  f"must be in [1, {bound}] (weights x output positions, less the taps on padding)")


def _check_events(where: str, kind: str, record: dict, weights: int) -> tuple[bool, float, float]:
    """``input_binary``, ``synops`` and ``input_events``: SynOps only from binary input, at most
    one membrane per arriving spike for a shortcut, at most every weight for a layer."""
    binary = record["input_binary"]
    if not isinstance(binary, bool):
        _fail(where, "input_binary", binary, "must be true or false")
    synops = _count(where, "synops", record["synops"])
    events = _count(where, "input_events", record["input_events"])
    if not binary and synops != 0:
        _fail(where, "synops", synops, "must be 0 for an analog (non-binary) input")
    if _exceeds(synops, events * (1 if kind == "residual" else weights)):
        _fail(where, "synops", synops, "must be at most input_events (one membrane per spike)" if kind == "residual"
              else "must be at most input_events x weights")
    return binary, synops, events


def _check_neurons(where: str, kind: str, record: dict, out_shape: tuple[int, ...]) -> tuple[int, float, str]:
    """``neurons``, ``output_spikes`` and ``neuron_model``: none for a readout or a shortcut."""
    neurons = _count(where, "neurons", record["neurons"], integer=True)
    output_spikes = _count(where, "output_spikes", record["output_spikes"])
    model = record["neuron_model"]
    if model not in NEURON_MODELS:
        _fail(where, "neuron_model", model, f"must be one of {NEURON_MODELS}")
    if neurons > math.prod(out_shape):
        _fail(where, "neurons", neurons, f"must be at most the outputs ({math.prod(out_shape)})")
    if (model == "none") != (neurons == 0):
        _fail(where, "neurons", neurons, f"must be 0 exactly when neuron_model is 'none' (got {model!r})")
    if kind == "residual" and neurons:
        _fail(where, "neurons", neurons, "must be 0 for a shortcut (its targets belong to the layer driving them)")
    if model == "none" and output_spikes != 0:
        _fail(where, "output_spikes", output_spikes, "must be 0 for a non-spiking layer")
    return neurons, output_spikes, model


@dataclass(frozen=True)
class LayerActivity:
    """What one weight layer (conv1d, conv2d or linear), or one identity shortcut (residual),
    did in one inference (mean per sample).

    The JSON form (:meth:`to_dict`, stored in ``evaluate.json``) has exactly these keys:

    - ``name``: unique within the network; ``kind``: ``linear`` | ``conv1d`` | ``conv2d`` |
      ``residual`` (an identity shortcut adding its source into the membranes, or the
      pre-activations, of the layer it joins: no weight, one addition per element).
    - ``in_shape``, ``out_shape``: one sample, one timestep, without the batch (``[C, H, W]``,
      ``[C, L]`` or ``[N]``); for a layer fed through pooling, ``in_shape`` is the pooled shape;
      a shortcut's two shapes are equal.
    - ``weights``: weight count; ``nonzero_weights``; ``biases``: non-zero bias parameters
      (all three 0 for a shortcut).
    - ``dense_macs``: MACs of one sample at one timestep, every weight at every output position
      less the taps that read zero padding (docs/conventions.md): ``weights`` for linear; for a
      convolution at most ``weights x output positions``; for a shortcut its additions, one per
      output element.
    - ``effective_macs``: the non-spiking counterpart's MACs whose weight and input are both
      non-zero, per sample (EFLOPS of Eq. 1 minus its bias term; for a shortcut, its additions
      of a non-zero input); None when unknown.
    - ``input_binary``: the inputs are spike events (possibly through average pooling), not an
      analog signal.
    - ``synops``: accumulates caused by input spikes, summed over T (our SynOps; 0 when the
      input is analog; a shortcut adds each arriving spike into one membrane).
    - ``input_events``: non-zero inputs (spikes) arriving, summed over T.
    - ``neurons``: spiking neurons this layer drives (0 for a non-spiking readout and for a
      shortcut, whose target neurons belong to the layer that drives them);
      ``output_spikes``: their spikes, summed over T; ``neuron_model``: ``if`` | ``lif`` | ``none``.
    """

    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weights: int
    nonzero_weights: int
    biases: int
    dense_macs: int
    effective_macs: float | None
    input_binary: bool
    synops: float
    input_events: float
    neurons: int
    output_spikes: float
    neuron_model: str

    @classmethod
    def from_dict(cls, record: dict, where: str = "activity layer") -> "LayerActivity":
        """Validate a JSON record (every key of :data:`ACTIVITY_KEYS`, no other); raises ValueError
        naming the layer, the key and the bad value."""
        if not isinstance(record, dict):
            _fail(where, "<record>", record, "must be a mapping")
        missing = [k for k in ACTIVITY_KEYS if k not in record]
        unknown = [k for k in record if k not in ACTIVITY_KEYS]
        if missing or unknown:
            _fail(where, "keys", sorted(record), f"missing {missing}, unknown {unknown}")
        name = record["name"]
        if not isinstance(name, str) or not name:
            _fail(where, "name", name, "must be a non-empty string")
        where = f"{where} {name!r}"
        kind = record["kind"]
        if kind not in LAYER_KINDS:
            _fail(where, "kind", kind, f"must be one of {LAYER_KINDS}")
        ranks = {"linear": (1,), "conv1d": (2,), "conv2d": (3,), "residual": (1, 2, 3)}[kind]
        in_shape = _shape(where, "in_shape", record["in_shape"], ranks)
        out_shape = _shape(where, "out_shape", record["out_shape"], ranks)
        counts = {key: _count(where, key, record[key], integer=True)
                  for key in ("weights", "nonzero_weights", "biases", "dense_macs")}
        (_check_shortcut if kind == "residual" else _check_weight_layer)(where, kind, in_shape, out_shape, counts)
        effective = record["effective_macs"]
        if effective is not None:
            effective = _count(where, "effective_macs", effective)
            if _exceeds(effective, counts["dense_macs"]):
                _fail(where, "effective_macs", effective, f"must be at most dense_macs ({counts['dense_macs']})")
        binary, synops, events = _check_events(where, kind, record, counts["weights"])
        neurons, output_spikes, model = _check_neurons(where, kind, record, out_shape)
        return cls(name, kind, in_shape, out_shape, counts["weights"], counts["nonzero_weights"], counts["biases"],
                   counts["dense_macs"], effective, binary, synops, events, neurons, output_spikes, model)

    def to_dict(self) -> dict[str, Any]:
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        record["in_shape"], record["out_shape"] = list(self.in_shape), list(self.out_shape)
        return record

    @property
    def in_size(self) -> int:
        return math.prod(self.in_shape)

    @property
    def out_size(self) -> int:
        return math.prod(self.out_shape)

    @property
    def bias_outputs(self) -> int:
        """Outputs with a non-zero bias in one sample at one timestep: ``biases x output
        positions`` (the bias term of EFLOPS, Eq. 1 of the regularization paper)."""
        return self.biases * (self.out_size // self.out_shape[0])

    @property
    def kernel_addresses(self) -> int:
        """``C_out x kernel size`` of a convolution (``weights / C_in``); 0 for linear and shortcuts."""
        return self.weights // self.in_shape[0] if self.kind in ("conv1d", "conv2d") else 0

    @property
    def parameter_words(self) -> int:
        """Words of the memory holding the weights and the (non-zero) biases."""
        return self.weights + self.biases


@dataclass(frozen=True)
class NetworkActivity:
    """The per-layer activity of one network in one inference, and its number of timesteps.

    JSON form: ``{"timesteps": T, "layers": [LayerActivity.to_dict(), ...]}`` in forward order.
    """

    timesteps: int
    layers: tuple[LayerActivity, ...]

    @classmethod
    def from_dict(cls, record: dict) -> "NetworkActivity":
        """Validate; raises ValueError naming the layer, the key and the bad value."""
        if not isinstance(record, dict) or set(record) != {"timesteps", "layers"}:
            _fail("activity", "keys", sorted(record) if isinstance(record, dict) else record,
                  "must be exactly timesteps and layers")
        timesteps = _count("activity", "timesteps", record["timesteps"], integer=True)
        if timesteps < 1:
            _fail("activity", "timesteps", timesteps, "must be at least 1")
        if not isinstance(record["layers"], list) or not record["layers"]:
            _fail("activity", "layers", record["layers"], "must be a non-empty list")
        layers = tuple(LayerActivity.from_dict(r, f"activity layer {i}") for i, r in enumerate(record["layers"]))
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            _fail("activity", "layers", names, "layer names must be unique")
        for index, layer in enumerate(layers):
            if _exceeds(layer.output_spikes, layer.neurons * timesteps):
                _fail(f"activity layer {index} {layer.name!r}", "output_spikes", layer.output_spikes,
                      f"must be at most neurons x timesteps ({layer.neurons * timesteps})")
        return cls(timesteps, layers)

    def to_dict(self) -> dict[str, Any]:
        return {"timesteps": self.timesteps, "layers": [layer.to_dict() for layer in self.layers]}

    @property
    def neurons(self) -> int:
        return sum(layer.neurons for layer in self.layers)

    @property
    def spikerate(self) -> float:
        """Eq. 12 of the distillation paper: output spikes of every spiking layer per inference
        / number of spiking neurons, in [0, T] (0 without neurons)."""
        return sum(layer.output_spikes for layer in self.layers) / self.neurons if self.neurons else 0.0

    def with_activity_scaled(self, factor: float) -> "NetworkActivity":
        """The same network with every event count multiplied by ``factor``: input events of
        binary-input layers, SynOps and output spikes (analog inputs unchanged)."""
        return replace(self, layers=tuple(
            replace(layer, synops=layer.synops * factor, output_spikes=layer.output_spikes * factor,
                    input_events=layer.input_events * factor if layer.input_binary else layer.input_events)
            for layer in self.layers))


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class NetworkEnergy:
    """Joules per inference of one network: ``per_layer[layer][term]``."""

    per_layer: dict[str, dict[str, float]]

    @property
    def total(self) -> float:
        return sum(self.layer_totals().values())

    def layer_totals(self) -> dict[str, float]:
        return {name: sum(terms.values()) for name, terms in self.per_layer.items()}

    def term_totals(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for terms in self.per_layer.values():
            for term, joules in terms.items():
                totals[term] = totals.get(term, 0.0) + joules
        return totals


EnergyModel = Callable[[NetworkActivity, "EnergyConfig"], dict[str, NetworkEnergy]]


def analog_repeats(cfg: "EnergyConfig", timesteps: int) -> int:
    """How many times the dense MACs of a layer with analog (non-binary) input are paid.

    ``once`` (default): the analog input is constant over the T steps, so its current
    ``I = W x + b`` is the same at every step; our simulator computes it once and adds it to the
    membrane at every step (:func:`lowspike.snn.simulation.simulate_batch`), and hardware can
    do the same. ``every_timestep``: T times, as a per-step simulator does (SpikingJelly's
    counters, snntorch loops).
    """
    return 1 if cfg.analog_input == "once" else timesteps


# -------------------------------------------------------------------------------- ops


def ops_energy(network: NetworkActivity, cfg: "EnergyConfig") -> dict[str, NetworkEnergy]:
    """Horowitz's arithmetic model: ``E = E_MAC * MACs + E_AC * ACs`` (ISSCC 2014, 45 nm).

    ``(E_MAC, E_AC)`` from :data:`OPS_PRESETS` by ``energy.ops.precision``. Terms per layer
    (``B_l`` = outputs with a non-zero bias, :attr:`LayerActivity.bias_outputs`):

    - ``snn``, binary input: ``ac = E_AC * SynOps_l`` (every SynOp one accumulate) and
      ``bias = E_AC * B_l * T`` (the bias enters the membrane at every step);
      analog input (the first layer with analog coding, whose dense MACs appear in no SynOps
      figure): ``mac = E_MAC * dense_MACs_l * R`` and ``bias = E_AC * B_l * R`` with ``R`` from
      :func:`analog_repeats` (1 by default, else T).
    - ``dnn_dense``: ``mac = E_MAC * dense_MACs_l``, ``bias = E_AC * B_l``.
    - ``dnn_effective`` (zero-skipping; only when every layer has ``effective_macs``):
      ``mac = E_MAC * effective_MACs_l``, ``bias = E_AC * B_l``; the two counts are the EFLOPS
      of Eq. 1 of the regularization paper.

    An identity shortcut (``residual``) has no multiply: ``snn``, ``ac = E_AC * SynOps_l`` (each
    arriving spike added into one membrane), or ``E_AC * N_l * R`` additions for an analog
    input; ``dnn_dense``: ``ac = E_AC * N_l`` (one addition per output element, ``N_l`` =
    ``dense_macs``); ``dnn_effective``: ``ac = E_AC * effective_l`` (the additions of a
    non-zero input).

    Neuron updates (membrane leak, reset, threshold) and memory traffic are not in this model:
    see :func:`lemaire_energy`.
    """
    e_mac, e_ac = (value * PICOJOULE for value in OPS_PRESETS[cfg.ops.precision])
    timesteps = network.timesteps
    snn: dict[str, dict[str, float]] = {}
    dense: dict[str, dict[str, float]] = {}
    effective: dict[str, dict[str, float]] = {}
    def dense_operations(layer: LayerActivity, count: float) -> dict[str, float]:
        """``count`` dense operations of ``layer`` and its biases: MACs, or additions for a shortcut."""
        if layer.kind == "residual":
            return {"mac": 0.0, "ac": e_ac * count, "bias": 0.0}
        return {"mac": e_mac * count, "ac": 0.0, "bias": e_ac * layer.bias_outputs}

    for layer in network.layers:
        if layer.input_binary:
            snn[layer.name] = {"mac": 0.0, "ac": e_ac * layer.synops, "bias": e_ac * layer.bias_outputs * timesteps}
        else:
            repeats = analog_repeats(cfg, timesteps)
            snn[layer.name] = {k: v * repeats for k, v in dense_operations(layer, layer.dense_macs).items()}
        dense[layer.name] = dense_operations(layer, layer.dense_macs)
        if layer.effective_macs is not None:
            effective[layer.name] = dense_operations(layer, layer.effective_macs)
    energies = {"snn": NetworkEnergy(snn), "dnn_dense": NetworkEnergy(dense)}
    if len(effective) == len(network.layers):
        energies["dnn_effective"] = NetworkEnergy(effective)
    return energies


# ---------------------------------------------------------------------------- lemaire


def sram_access_energy(words: float, cfg: "EnergyConfig") -> float:
    """Joules of one read or write of one word in an SRAM holding ``words`` words.

    With ``S = words * w / 8`` bytes (``w`` = ``energy.lemaire.word_bits``), the energy of one
    64-bit access ``E_64(S)`` in pJ is, by ``energy.lemaire.sram_interpolation``:

    - ``piecewise`` (default, SpikingJelly 2.0's ``LemaireEnergyCostConfig``): linear between
      (0 B, 0 pJ), (8 KiB, 10 pJ), (32 KiB, 20 pJ) and (1 MiB, 100 pJ) (Horowitz 2014,
      :data:`SRAM_ACCESS_POINTS`), 100 pJ above 1 MiB;
    - ``linear_fit`` (Lemaire et al. 2022): ``E_64(S) = 13.2 + 1.09e-5 * 8 S``
      (:data:`SRAM_LINEAR_FIT`), which extrapolates past 1 MiB.

    By ``energy.lemaire.sram_access``, one word costs ``E_64(S)`` (``word``: every word is one
    access, as Lemaire et al. and SpikingJelly with 32-bit words) or ``E_64(S) * w / 64``
    (``packed``: 64/w words share one 64-bit access, T. Louis' variant in Qualia).
    """
    lemaire = cfg.lemaire
    size_bytes = words * lemaire.word_bits / 8.0
    if lemaire.sram_interpolation == "linear_fit":
        intercept, slope = SRAM_LINEAR_FIT
        per_access = intercept + slope * 8.0 * size_bytes
    else:
        per_access = SRAM_ACCESS_POINTS[-1][1]
        previous = (0.0, 0.0)
        for point in SRAM_ACCESS_POINTS:
            if size_bytes <= point[0]:
                (x0, y0), (x1, y1) = previous, point
                per_access = y0 + (y1 - y0) * (size_bytes - x0) / (x1 - x0)
                break
            previous = point
    if lemaire.sram_access == "packed":
        per_access *= lemaire.word_bits / 64.0
    return per_access * PICOJOULE


LEMAIRE_TERMS = ("mac", "accumulate", "bias", "leak", "reset", "current", "addressing", "memory_input",
                 "memory_params", "memory_potential", "memory_current", "memory_output")


def dense_addressing(layer: LayerActivity, cfg: "EnergyConfig") -> int:
    """Address additions of a dense (non-event) pass of a layer (Lemaire et al. 2022).

    Convolution: ``C_in H_in W_in + C_out H_out W_out + C_out K`` (one per input, output and
    kernel address; Lemaire's implementations agree). Linear, by
    ``energy.lemaire.dense_fc_addressing``: ``N_in + N_out`` (``inputs_plus_outputs``, the
    convolution's rule without a kernel, as SpikingJelly) or ``N_in x N_out``
    (``inputs_times_outputs``, one per weight, as Qualia).
    """
    if layer.kind != "linear":
        return layer.in_size + layer.out_size + layer.kernel_addresses
    if cfg.lemaire.dense_fc_addressing == "inputs_times_outputs":
        return layer.in_size * layer.out_size
    return layer.in_size + layer.out_size


def dense_input_reads(layer: LayerActivity) -> int:
    """Input reads of a dense pass (Lemaire et al. 2022, Eqs. 3-4): every MAC reads its input
    in a convolution (``C_in C_out H_out W_out K``), each input is read once in a linear layer
    (``N_in``)."""
    return layer.in_size if layer.kind == "linear" else layer.dense_macs


def _lemaire_dense_pass(layer: LayerActivity, cfg: "EnergyConfig", e_add: float, e_mac: float,
                        repeats: int) -> dict[str, float]:
    """MACs, biases, addressing, input and parameter reads of ``repeats`` dense passes."""
    return {
        "mac": e_mac * layer.dense_macs * repeats,
        "bias": e_add * layer.bias_outputs * repeats,
        "addressing": e_add * dense_addressing(layer, cfg) * repeats,
        "memory_input": dense_input_reads(layer) * repeats * sram_access_energy(layer.in_size, cfg),
        "memory_params": (layer.dense_macs + layer.bias_outputs) * repeats
        * sram_access_energy(layer.parameter_words, cfg),
    }


def _lemaire_shortcut(layer: LayerActivity, cfg: "EnergyConfig", e_add: float, e_fifo: float,
                      timesteps: int) -> tuple[dict[str, float], dict[str, float]]:
    """The ``snn`` and ``dnn_dense`` terms of an identity shortcut (see :func:`lemaire_energy`)."""
    e_input, e_output = sram_access_energy(layer.in_size, cfg), sram_access_energy(layer.out_size, cfg)
    additions = layer.dense_macs
    dense = dict.fromkeys(LEMAIRE_TERMS, 0.0)
    dense.update({
        "accumulate": e_add * additions,
        "addressing": e_add * (layer.in_size + layer.out_size),
        "memory_input": additions * e_input,
        "memory_output": 2 * additions * e_output,
    })
    snn = dict.fromkeys(LEMAIRE_TERMS, 0.0)
    if layer.input_binary:
        snn.update({
            "accumulate": e_add * layer.synops,
            "addressing": e_add * layer.synops,
            "memory_input": layer.input_events * e_fifo,
            "memory_potential": 2 * layer.synops * e_output,
        })
    else:
        repeats = analog_repeats(cfg, timesteps)
        snn.update({key: dense[key] * repeats for key in ("accumulate", "addressing", "memory_input")})
        snn["memory_potential"] = 2 * additions * repeats * e_output
    return snn, dense


def lemaire_energy(network: NetworkActivity, cfg: "EnergyConfig") -> dict[str, NetworkEnergy]:
    """Lemaire et al. (ICONIP 2022) analytical model of an SNN and of its non-spiking counterpart.

    Arithmetic ``E_add``, ``E_mul`` from :data:`LEMAIRE_ARITHMETIC` (a MAC costs
    ``E_add + E_mul``); ``e(n)`` = :func:`sram_access_energy` of a memory of ``n`` words;
    ``e_fifo = e(energy.lemaire.fifo_words)`` (each layer's spike FIFO). Per layer, with
    ``theta_in`` = input events, ``theta_out`` = output spikes, ``S`` = SynOps (all summed over
    T), ``B`` = outputs with a non-zero bias, ``N`` = spiking neurons, ``P = weights + biases``:

    ``snn``, binary input (the event-driven layer, Eqs. 1.3-1.4, 2.3-2.4, 5, 7-10, 13-17):

    - ``accumulate = E_add S``; ``bias = E_add B T``;
    - ``addressing = E_add S + (E_add + E_mul) 2 theta_in`` (one address per synapse
      reached, Eqs. 16.3/17.2; two multiplies locate a spike's first output in a
      convolution, Eq. 16.2, 0 in a linear layer);
    - ``memory_input = theta_in e_fifo``; ``memory_params = (S + B T) e(P)``;
    - ``memory_potential = 2 (S + N T) e(N_out)``: each synaptic event reads and writes a
      potential, and each neuron is read and written once per step (Eqs. 9-10, 14-15).

    ``snn``, analog input (the first layer with analog coding): the dense pass of the
    ``dnn_dense`` terms below (no output write) ``R`` times (:func:`analog_repeats`); with
    ``once``, the stored current is read and added at every step: ``current = E_add N_out T``,
    ``memory_current = N_out T e(N_out)``; and ``memory_potential = 2 N T e(N_out)``.

    Every spiking layer also pays ``leak = (E_add + E_mul) N T`` for LIF neurons,
    ``reset = E_add theta_out`` (reset by subtraction, ``energy.lemaire.count_resets``) and
    ``memory_output = theta_out e_fifo`` (Eq. 13).

    ``dnn_dense`` (Eqs. 1.1-1.2, 2.1-2.2, 3-4, 6, 11-12): ``mac = (E_add + E_mul) dense_MACs``,
    ``bias = E_add B``, ``addressing = E_add`` :func:`dense_addressing`, ``memory_input =``
    :func:`dense_input_reads` ``e(N_in)``, ``memory_params = (dense_MACs + B) e(P)``,
    ``memory_output = N_out e(N_out)``; ReLU costs nothing.

    An identity shortcut (``residual``, no weights; not in the paper, whose networks have none:
    priced with the same unit costs as a synaptic event without a weight). ``snn``: each
    arriving spike (``S`` of them, one per membrane reached) is read from the FIFO and added
    into a potential: ``accumulate = E_add S``, ``addressing = E_add S``, ``memory_input =
    theta_in e_fifo``, ``memory_potential = 2 S e(N_out)``; the target neurons' per-step
    update, leak and reset are paid by the layer that drives them. ``dnn_dense`` (``N`` =
    ``dense_macs`` additions): ``accumulate = E_add N``, ``addressing = E_add (N_in + N_out)``,
    ``memory_input = N e(N_in)`` (the shortcut operand), ``memory_output = 2 N e(N_out)`` (the
    joined layer's output read, the sum written back). An analog shortcut's ``snn`` terms are
    the dense ones ``R`` times, its sum read and written as a potential.

    Equation numbers as the authors' implementation cites them (Qualia's
    ``EnergyEstimationMetric`` docstrings; the paper itself was not at hand offline).
    Choices where the paper and its implementations disagree:

    - Eq. 2 multiplies the accumulates of a linear layer by ``N_in`` once more
      (``theta_in N_in N_out``); a spike reaches ``N_out`` synapses, so ``theta_in N_out``
      (Qualia and SpikingJelly agree), here the exact ``S``.
    - The paper's linear Eq. 2.4 has no reset term, its convolution Eq. 1.4 has one
      (``theta_out``); both implementations count it: ``count_resets`` (default true).
    - Both implementations use nominal fan-outs (``C_out K`` per spike, SpikingJelly's
      accumulates ``C_out ceil(k/s)^2``, no border correction, zero weights included); here
      every per-synapse count is the exact SynOps ``S``.
    - Only non-zero biases are added and read (SpikingJelly: every output when the layer has a
      bias); the parameter memory holds weights and biases (SpikingJelly; Qualia prices the
      bias memory separately).
    - Event addressing follows the equations (``theta_in C_out K``, ``theta_in N_out``), as
      SpikingJelly; Qualia's code drops ``C_out`` for convolutions and multiplies ``N_out`` by
      the spikerate instead of ``theta_in`` for linear layers.
    - The dense linear layer's addressing: :func:`dense_addressing`.
    """
    e_add, e_mul = (value * PICOJOULE for value in LEMAIRE_ARITHMETIC[cfg.lemaire.arithmetic])
    e_mac = e_add + e_mul
    e_fifo = sram_access_energy(cfg.lemaire.fifo_words, cfg)
    timesteps = network.timesteps
    snn: dict[str, dict[str, float]] = {}
    dense: dict[str, dict[str, float]] = {}
    for layer in network.layers:
        if layer.kind == "residual":
            snn[layer.name], dense[layer.name] = _lemaire_shortcut(layer, cfg, e_add, e_fifo, timesteps)
            continue
        e_potential = sram_access_energy(layer.out_size, cfg)
        terms = dict.fromkeys(LEMAIRE_TERMS, 0.0)
        if layer.input_binary:
            address_multiplies = 2 * layer.input_events if layer.kind != "linear" else 0.0
            terms.update({
                "accumulate": e_add * layer.synops,
                "bias": e_add * layer.bias_outputs * timesteps,
                "addressing": e_add * layer.synops + e_mac * address_multiplies,
                "memory_input": layer.input_events * e_fifo,
                "memory_params": (layer.synops + layer.bias_outputs * timesteps)
                * sram_access_energy(layer.parameter_words, cfg),
                "memory_potential": 2 * (layer.synops + layer.neurons * timesteps) * e_potential,
            })
        else:
            terms.update(_lemaire_dense_pass(layer, cfg, e_add, e_mac, analog_repeats(cfg, timesteps)))
            if cfg.analog_input == "once":
                terms["current"] = e_add * layer.out_size * timesteps
                terms["memory_current"] = layer.out_size * timesteps * e_potential
            terms["memory_potential"] = 2 * layer.neurons * timesteps * e_potential
        if layer.neuron_model == "lif":
            terms["leak"] = e_mac * layer.neurons * timesteps
        if layer.neuron_model != "none":
            terms["reset"] = e_add * layer.output_spikes if cfg.lemaire.count_resets else 0.0
            terms["memory_output"] = layer.output_spikes * e_fifo
        snn[layer.name] = terms

        dense_terms = dict.fromkeys(LEMAIRE_TERMS, 0.0)
        dense_terms.update(_lemaire_dense_pass(layer, cfg, e_add, e_mac, 1))
        dense_terms["memory_output"] = layer.out_size * e_potential
        dense[layer.name] = dense_terms
    return {"snn": NetworkEnergy(snn), "dnn_dense": NetworkEnergy(dense)}


ENERGY_MODELS: dict[str, EnergyModel] = {"ops": ops_energy, "lemaire": lemaire_energy}
DNN_REFERENCES = ("dnn_dense", "dnn_effective")


# --------------------------------------------------------------------------- break-even


def break_even_spikerate(network: NetworkActivity, model: str, cfg: "EnergyConfig",
                         reference: str = "dnn_dense") -> float | None:
    """The spikerate at which the SNN costs as much as its non-spiking counterpart ``reference``.

    Assumption: at fixed architecture every event count (input events of binary-input layers,
    SynOps, output spikes) scales in proportion to the spikerate ``r`` (Eq. 12 of the
    distillation paper, spikes per neuron per inference, in [0, T]) with the measured per-layer
    distribution, so the SNN's energy, affine in those counts in both models, is affine in
    ``r``: ``E(r) = E_0 + (E(r_m) - E_0) r / r_m`` with ``E_0`` the same network silent and
    ``r_m`` the measured spikerate. Then ::

        r* = r_m (E_ref - E_0) / (E(r_m) - E_0)

    None when it is undefined: a silent measurement (``r_m = 0``, no slope), a reference the
    model does not give, or ``E_0 > E_ref`` (the silent SNN already costs more: no rate breaks
    even). ``r* > T`` means the SNN is cheaper at every reachable rate.
    """
    estimate = ENERGY_MODELS[model]
    measured = estimate(network, cfg)
    if reference not in measured:
        return None
    silent = estimate(network.with_activity_scaled(0.0), cfg)["snn"].total
    return break_even_from_energies(network.spikerate, measured["snn"].total, silent, measured[reference].total)


def break_even_from_energies(spikerate: float, snn_j: float, silent_j: float, reference_j: float | None
                             ) -> float | None:
    """``r* = r_m (E_ref - E_0) / (E(r_m) - E_0)`` (:func:`break_even_spikerate`) from the
    measured spikerate ``r_m``, the SNN's energy ``E(r_m)``, the same SNN silent ``E_0`` and any
    reference energy ``E_ref`` (its own DNN, or another network such as a teacher); None when
    undefined (``r_m = 0``, no slope, no reference, or ``E_0 > E_ref``)."""
    slope = snn_j - silent_j
    if reference_j is None or spikerate <= 0 or slope <= 0 or reference_j < silent_j:
        return None
    return spikerate * (reference_j - silent_j) / slope


# ------------------------------------------------------------------------------ summary


def _ratio(numerator: float, denominator: float | None) -> float | None:
    return numerator / denominator if denominator else None


def evaluate_energy(network: NetworkActivity, cfg: "EnergyConfig") -> dict[str, Any]:
    """Every model of ``energy.models`` on ``network``, as JSON-able dicts.

    Returns ``{"summary": ..., "breakdown": ...}``. ``summary``: ``spikerate`` and, per model,
    ``<net>_j`` (total joules), ``snn_silent_j`` (the same SNN without any spike, the ``E_0``
    of :func:`break_even_from_energies`), ``per_layer_j`` (``{net: {layer: J}}``),
    ``snn_over_<ref>`` (the SNN/DNN energy ratio) and ``break_even_spikerate_<dense|effective>``
    (:func:`break_even_spikerate`), with ``net`` in snn, dnn_dense, dnn_effective (None where a
    model has no such network). ``breakdown``: per model and network, ``terms_j`` (the total of
    each term) and ``layers`` (``{layer: {term: J}}``).
    """
    summary: dict[str, Any] = {"spikerate": network.spikerate}
    breakdown: dict[str, Any] = {}
    silent_network = network.with_activity_scaled(0.0)
    for model in cfg.models:
        energies = ENERGY_MODELS[model](network, cfg)
        silent = ENERGY_MODELS[model](silent_network, cfg)["snn"].total
        figures: dict[str, Any] = {}
        for net in ("snn", *DNN_REFERENCES):
            figures[f"{net}_j"] = energies[net].total if net in energies else None
        figures["snn_silent_j"] = silent
        for reference in DNN_REFERENCES:
            suffix = reference.removeprefix("dnn_")
            figures[f"snn_over_{reference}"] = _ratio(energies["snn"].total, figures[f"{reference}_j"])
            figures[f"break_even_spikerate_{suffix}"] = break_even_from_energies(
                network.spikerate, energies["snn"].total, silent, figures[f"{reference}_j"])
        figures["per_layer_j"] = {net: energy.layer_totals() for net, energy in energies.items()}
        summary[model] = figures
        breakdown[model] = {net: {"terms_j": energy.term_totals(), "layers": energy.per_layer}
                            for net, energy in energies.items()}
    return {"summary": summary, "breakdown": breakdown}


def evaluate_dnn_energy(network: NetworkActivity, cfg: "EnergyConfig") -> dict[str, Any]:
    """The non-spiking networks only (a DNN such as an FNN teacher, whose records have analog
    inputs and no neurons): :func:`evaluate_energy`'s ``summary`` and ``breakdown`` restricted
    to ``dnn_dense`` and ``dnn_effective``, per model ``<net>_j`` and ``per_layer_j``."""
    summary: dict[str, Any] = {}
    breakdown: dict[str, Any] = {}
    for model in cfg.models:
        energies = {net: energy for net, energy in ENERGY_MODELS[model](network, cfg).items() if net != "snn"}
        figures: dict[str, Any] = {f"{net}_j": energies[net].total if net in energies else None
                                   for net in DNN_REFERENCES}
        figures["per_layer_j"] = {net: energy.layer_totals() for net, energy in energies.items()}
        summary[model] = figures
        breakdown[model] = {net: {"terms_j": energy.term_totals(), "layers": energy.per_layer}
                            for net, energy in energies.items()}
    return {"summary": summary, "breakdown": breakdown}


# ----------------------------------------------------------- records of lowspike.metrics


def network_activity(records: list[dict[str, Any]]) -> NetworkActivity:
    """The :class:`NetworkActivity` of per-layer records of :mod:`lowspike.metrics`
    (:class:`~lowspike.metrics.StudentActivityMeter`, :func:`~lowspike.metrics.teacher_layer_activity`),
    which carry the network's ``timesteps`` in every record (the same in all) and their
    ``dense_macs`` as whole floats; validated by :meth:`NetworkActivity.from_dict`."""
    if not records:
        raise ValueError("activity: no layer records")
    steps = {record.get("timesteps") for record in records}
    if len(steps) != 1:
        raise ValueError(f"activity: the records disagree on timesteps: {sorted(steps, key=str)}")
    layers = [{k: v for k, v in record.items() if k != "timesteps"} for record in records]
    return NetworkActivity.from_dict({"timesteps": steps.pop(), "layers": layers})
