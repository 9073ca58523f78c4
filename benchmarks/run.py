"""Performance benchmarks: ``make bench`` -> reports/bench.json and reports/bench.md.

Every figure is a ratio against a baseline measured in the same process, with its target and
pass/fail. ``--quick`` shrinks every size (the smoke test and a fast check).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import snntorch
import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, repeats: int = 3) -> float:
    """Best wall time of ``repeats`` calls (one warm-up call first)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def figure(name: str, value, target: str | None = None, passed: bool | None = None, unit: str = "",
           note: str = "") -> dict:
    return {"name": name, "value": value, "unit": unit, "target": target, "pass": passed, "note": note}


# ------------------------------------------------------------------ data and models

def load_data(quick: bool):
    from lowspike.config import DataConfig
    from lowspike.data.prepared import load_prepared
    from lowspike.data.loading import load_split

    folder = ROOT / "data" / "prepared" / "mnist5k"
    if folder.exists():
        prepared = load_prepared(folder)
        train = load_split(prepared, "train", DataConfig())
        test = load_split(prepared, "test", DataConfig())
        return train.inputs, train.labels, test.inputs, test.labels, "mnist5k"
    g = torch.Generator().manual_seed(0)
    n = 600 if quick else 3500
    inputs = torch.rand(n + 500, 1, 28, 28, generator=g)
    labels = torch.randint(0, 10, (n + 500,), generator=g)
    return inputs[:n], labels[:n], inputs[n:], labels[n:], "random (run stages/prepare.py mnist5k for real digits)"


def train_dnn(arch: str, x: torch.Tensor, y: torch.Tensor, epochs: int, regularizer: str | None = None,
              lam: float = 0.0, seed: int = 0) -> nn.Module:
    from lowspike.models import build_dnn
    from lowspike.regularizers import build_regularizer
    from lowspike.studies.conversion_train import make_loss

    torch.manual_seed(seed)
    model = build_dnn(arch, tuple(x.shape[1:]), 10)
    loss_fn = make_loss(build_regularizer(regularizer) if regularizer else None, lam)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=g)
        for index in order.split(128):
            out = loss_fn(model, x[index], y[index])
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
    return model.eval()


def snntorch_loop(snn: dict, inputs: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Plain step-by-step reference: every layer recomputed each step, snntorch.Leaky(beta=1,
    subtract, threshold 1) neurons. Returns spikes per layer per step ``[T, L]``."""
    from lowspike.snn.simulation import apply_layer

    weight_layers = [s for s in snn["layers"] if s["kind"] in ("linear", "conv")]
    neurons = [snntorch.Leaky(beta=1.0, threshold=1.0, reset_mechanism="subtract") for _ in weight_layers]
    mems = [n.init_leaky() for n in neurons]
    record = torch.zeros(timesteps, len(weight_layers))
    with torch.inference_mode():
        for t in range(timesteps):
            x, slot = inputs, 0
            for spec in snn["layers"]:
                if spec["kind"] in ("linear", "conv"):
                    x, mems[slot] = neurons[slot](apply_layer(spec, x), mems[slot])
                    x = x.to(inputs.dtype)  # snntorch returns float32 spikes
                    record[t, slot] = x.sum()
                    slot += 1
                else:
                    x = apply_layer(spec, x)
    return record


# ------------------------------------------------------------------ 1. simulation

def to_double(snn: dict) -> dict:
    return {**snn, "layers": [{k: (v.double() if torch.is_tensor(v) else v) for k, v in s.items()}
                              for s in snn["layers"]]}


def bench_simulation(data, quick: bool) -> tuple[list[dict], dict]:
    from lowspike.snn.activity import spiking_fanouts
    from lowspike.snn.convert import convert
    from lowspike.snn.simulation import simulate_batch

    x_train, y_train, x_test, _, _ = data
    timesteps, batch = (20, 100) if quick else (100, 500)
    inputs = x_test[:batch]
    figures, models = [], {}
    for arch, epochs in (("mlp", 1 if quick else 3), ("lenet5", 1 if quick else 2)):
        model = train_dnn(arch, x_train, y_train, epochs)
        snn = convert(model, x_train[:1000])
        models[arch] = (model, snn)
        snn64 = to_double(snn)
        same = torch.equal(snntorch_loop(snn64, inputs.double(), timesteps),
                           simulate_batch(snn64, inputs.double(), timesteps, mode="dense").spikes_per_layer.float())
        reference = snntorch_loop(snn, inputs, timesteps)
        ours = simulate_batch(snn, inputs, timesteps, mode="dense").spikes_per_layer
        drift32 = float((ours.sum() - reference.sum()).abs() / reference.sum().clamp_min(1))
        t_ref = timed(lambda: snntorch_loop(snn, inputs, timesteps), 1 if not quick else 1)
        t_dense = timed(lambda: simulate_batch(snn, inputs, timesteps, mode="dense"))
        t_auto = timed(lambda: simulate_batch(snn, inputs, timesteps, mode="auto"))
        with torch.inference_mode():
            t_floor = timed(lambda: [model(inputs) for _ in range(timesteps)])
        fig_name = f"{arch} T={timesteps} B={batch}"
        figures.append(figure(f"sim {fig_name}: snntorch loop / ours (dense)", round(t_ref / t_dense, 2), ">= 2",
                              t_ref / t_dense >= 2, "x", f"same spikes as snntorch in float64: {same}; float32: total spikes differ by "
                              f"{100 * drift32:.4f}% (snntorch subtracts the reset one step later: another rounding)"))
        figures.append(figure(f"sim {fig_name}: ours (dense) / dense floor (T x DNN forward)",
                              round(t_dense / t_floor, 2), "<= 1.5", t_dense / t_floor <= 1.5, "x"))
        figures.append(figure(f"sim {fig_name}: throughput (auto)", round(batch * timesteps / t_auto),
                              None, None, "samples x steps / s",
                              f"dense {batch * timesteps / t_dense:.0f}, snntorch loop {batch * timesteps / t_ref:.0f}"))
        if not same:
            raise AssertionError(f"{arch}: simulator spikes differ from the snntorch loop in float64")

    # event-driven: a strongly L1-regularized MLP against the baseline MLP
    baseline_model, baseline_snn = models["mlp"]
    reg_model = train_dnn("mlp", x_train, y_train, 1 if quick else 3, "l1", 1e-3 if quick else 3e-3)
    reg_snn = convert(reg_model, x_train[:1000])
    ev_batch = batch
    ev_inputs = x_test[:ev_batch]
    synops = {}
    for name, snn in (("baseline", baseline_snn), ("regularized", reg_snn)):
        out = simulate_batch(snn, ev_inputs, timesteps, fanouts=spiking_fanouts(snn), mode="auto")
        synops[name] = float(out.synops_per_sample.mean())
    t_base = timed(lambda: simulate_batch(baseline_snn, ev_inputs, timesteps, mode="auto"))
    t_reg = timed(lambda: simulate_batch(reg_snn, ev_inputs, timesteps, mode="auto"))
    t_reg_dense = timed(lambda: simulate_batch(reg_snn, ev_inputs, timesteps, mode="dense"))
    reduction = 1 - synops["regularized"] / max(synops["baseline"], 1e-9)
    snn64 = to_double(reg_snn)
    d64 = simulate_batch(snn64, ev_inputs.double(), timesteps, mode="dense")
    e64 = simulate_batch(snn64, ev_inputs.double(), timesteps, mode="event")
    same64 = torch.equal(d64.spikes_per_layer, e64.spikes_per_layer) and torch.equal(d64.predictions, e64.predictions)
    d32 = simulate_batch(reg_snn, ev_inputs, timesteps, mode="dense")
    a32 = simulate_batch(reg_snn, ev_inputs, timesteps, mode="auto")
    agree32 = float((d32.predictions[-1] == a32.predictions[-1]).double().mean())
    figures.append(figure("event-driven: baseline MLP time / L1-regularized MLP time (auto)", round(t_base / t_reg, 2),
                          ">= 2", t_base / t_reg >= 2, "x",
                          f"SynOps {synops['baseline']:.0f} -> {synops['regularized']:.0f} ({100 * reduction:.0f}% fewer;"
                          f" target >= 80%); regularized dense/auto {t_reg_dense / t_reg:.2f}x; float64 event vs dense "
                          f"same spikes and predictions: {same64}; float32 final predictions agreeing {100 * agree32:.2f}%"))
    if not same64:
        raise AssertionError("event path spikes differ from dense in float64")
    return figures, {"synops": synops}


# ------------------------------------------------------------------ 2. spiking training step

class PlainSCNN(nn.Module):
    """The SCNN of lowspike.models.scnn written as a plain snntorch loop: every layer run per
    step, no spike recording, no channels-last, no regularizer."""

    def __init__(self, timesteps: int):
        super().__init__()
        from snntorch import surrogate

        self.timesteps = timesteps
        self.conv1 = nn.Conv2d(1, 16, 5, padding=1)
        self.conv2 = nn.Conv2d(16, 64, 5, padding=1)
        self.pool = nn.AvgPool2d(2)
        self.readout = nn.Linear(64 * 5 * 5, 10)
        self.lif1 = snntorch.Leaky(beta=1.0, spike_grad=surrogate.atan(alpha=2.0), reset_mechanism="subtract")
        self.lif2 = snntorch.Leaky(beta=1.0, spike_grad=surrogate.atan(alpha=2.0), reset_mechanism="subtract")

    def forward(self, x):
        m1, m2, total = self.lif1.init_leaky(), self.lif2.init_leaky(), 0
        for _ in range(self.timesteps):
            s1, m1 = self.lif1(self.conv1(x), m1)
            s2, m2 = self.lif2(self.conv2(self.pool(s1)), m2)
            total = total + self.readout(self.pool(s2).flatten(1))
        return total / self.timesteps


class _Expanding(nn.Module):
    """A neuron module of another library fed our static :class:`Repeated` current expanded over T."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, current):
        from lowspike.snn.leaky import Repeated

        return self.module(current.expand() if isinstance(current, Repeated) else current)


def _swap_neurons(model: nn.Module, make) -> nn.Module:
    """``model`` with every SpikingNeurons layer replaced by ``make(beta)``."""
    from lowspike.models.spiking import SpikingNeurons

    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, SpikingNeurons):
                setattr(module, child_name, _Expanding(make(child.beta)))
    return model


def spikingjelly_node(beta: float) -> nn.Module:
    """SpikingJelly 2.0's multi-step IF (beta = 1) or LIF node with our neuron's dynamics: reset by
    subtraction (``v_reset=None``), detached reset, atan surrogate (alpha 2), and for LIF
    ``tau = 1 / (1 - beta)`` with ``decay_input=False`` (``H = beta V + X``). SpikingJelly fires
    on ``V >= theta`` where we (and snntorch) fire on ``V > theta``: a tie at exactly 1.0."""
    from spikingjelly.activation_based import neuron, surrogate

    if beta == 1.0:
        return neuron.IFNode(v_threshold=1.0, v_reset=None, surrogate_function=surrogate.ATan(alpha=2.0),
                             detach_reset=True, step_mode="m")
    return neuron.LIFNode(tau=1.0 / (1.0 - beta), decay_input=False, v_threshold=1.0, v_reset=None,
                          surrogate_function=surrogate.ATan(alpha=2.0), detach_reset=True, step_mode="m")


def spikingjelly_scnn(timesteps: int) -> nn.Module:
    """The SCNN as SpikingJelly's tutorials write a multi-step network: its layer wrappers, the
    input repeated over T, every layer on ``[T, B, ...]``."""
    from spikingjelly.activation_based import functional, layer

    net = nn.Sequential(layer.Conv2d(1, 16, 5, padding=1), spikingjelly_node(1.0), layer.AvgPool2d(2),
                        layer.Conv2d(16, 64, 5, padding=1), spikingjelly_node(1.0), layer.AvgPool2d(2),
                        layer.Flatten(), layer.Linear(64 * 5 * 5, 10))
    functional.set_step_mode(net, "m")

    class Repeated(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x.unsqueeze(0).repeat(timesteps, *([1] * x.dim()))).mean(0)

    return Repeated()


def _student(name: str, shape, options: dict, bfloat16: bool = False) -> nn.Module:
    from lowspike.models import build_student

    model = build_student(name, input_shape=shape, num_classes=10, **options)
    model.bfloat16 = bfloat16
    return model


def _relu(model: nn.Module) -> nn.Module:
    return _swap_neurons(model, lambda beta: nn.ReLU())


def _step_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, regularize: bool):
    from spikingjelly.activation_based import functional

    from lowspike.penalties import spike_activity_penalty

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        out = model(x)
        logits = getattr(out, "logits", out)
        loss = F.cross_entropy(logits, y)
        if regularize and hasattr(out, "spikes"):
            loss = loss + 1.0 * spike_activity_penalty(out.spikes, "l1")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        functional.reset_net(model)

    return step


def interleaved(contenders: dict, rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each contender, called in turn (A B C A B C ...) ``rounds`` times after
    one warm-up call each, so that a drift of the machine's speed hits all of them alike."""
    for fn in contenders.values():
        fn()
    times = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def paired_ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of ``time_a / time_b`` (pairs measured back to back)."""
    import statistics

    return statistics.median(ta / tb for ta, tb in zip(times[a], times[b]))


def bench_spiking_training(data, quick: bool) -> list[dict]:
    """A training step (forward, backward, Adam) of the students with the fused neurons
    against SpikingJelly's multi-step nodes on the same network, SpikingJelly's own multi-step
    SCNN, the plain snntorch loop, and the same network with ReLU (the convolution floor)."""
    import os
    import statistics

    x_train, y_train = data[0], data[1]
    batch = 32 if quick else 128
    rounds = 3 if quick else 12
    figures = []
    x, y = x_train[:batch], y_train[:batch]
    audio = torch.rand(batch, 1, 10, 49) * 2.0
    cases = {
        "SCNN (T=10, IF)": ("scnn", (1, 28, 28), {"neuron": "if", "timesteps": 10}, x),
        "SRes-8 (T=4, LIF 0.5)": ("sres8", (1, 10, 49), {"neuron": "lif", "beta": 0.5, "timesteps": 4}, audio),
    }
    for label, (name, shape, options, inputs) in cases.items():
        torch.manual_seed(0)
        models = {
            "ours": _student(name, shape, options),
            "ours bf16": _student(name, shape, options, bfloat16=True),
            "SpikingJelly nodes": _swap_neurons(_student(name, shape, options), spikingjelly_node),
            "ReLU": _relu(_student(name, shape, options)),
            "ReLU bf16": _relu(_student(name, shape, options, bfloat16=True)),
        }
        if name == "scnn":
            models["SpikingJelly SCNN"] = spikingjelly_scnn(10)
            models["snntorch loop"] = PlainSCNN(10)
        steps = {k: _step_fn(m, inputs, y, regularize=False) for k, m in models.items()}
        load = os.getloadavg()[0]
        times = interleaved(steps, rounds)
        ms = {k: round(1000 * statistics.median(v), 1) for k, v in times.items()}
        note = f"B={batch}, {rounds} interleaved rounds, load {load:.2f}; median ms per step: {ms}"
        for ours in ("ours", "ours bf16"):
            ratio = paired_ratio(times, ours, "SpikingJelly nodes")
            figures.append(figure(f"{label} train step: {ours} / SpikingJelly multi-step nodes (same network)",
                                  round(ratio, 2), "<= 0.5", ratio <= 0.5, "x", note))
            if "SpikingJelly SCNN" in times:
                ratio = paired_ratio(times, ours, "SpikingJelly SCNN")
                figures.append(figure(f"{label} train step: {ours} / SpikingJelly's own multi-step SCNN",
                                      round(ratio, 2), "<= 0.5", ratio <= 0.5, "x"))
            floor = "ReLU bf16" if ours.endswith("bf16") else "ReLU"
            ratio = paired_ratio(times, ours, floor)
            figures.append(figure(f"{label} train step: {ours} / same network with ReLU ({floor})",
                                  round(ratio, 2), "<= 2", ratio <= 2, "x"))
        for floor in ("ReLU", "ReLU bf16"):
            ratio = paired_ratio(times, floor, "SpikingJelly nodes")
            share = 1 - statistics.median(times[floor]) / statistics.median(times["SpikingJelly nodes"])
            figures.append(figure(f"{label} train step: {floor} / SpikingJelly multi-step nodes (the lowest ratio "
                                  f"any neuron can reach with {'bf16' if 'bf16' in floor else 'fp32'} convolutions)",
                                  round(ratio, 2), None, None, "x",
                                  f"SpikingJelly's neurons take {100 * share:.0f}% of its step; the rest is the "
                                  "network without neurons"))
        neurons = {name: statistics.median(times[name]) - statistics.median(times[floor])
                   for name, floor in (("ours", "ReLU"), ("SpikingJelly nodes", "ReLU"))}
        figures.append(figure(f"{label} neurons' share of a train step: ours / SpikingJelly multi-step nodes "
                              "(step minus the same network with ReLU)", round(neurons["ours"] / neurons[
                                  "SpikingJelly nodes"], 2), None, None, "x",
                              f"{1000 * neurons['ours']:.1f} ms vs {1000 * neurons['SpikingJelly nodes']:.1f} ms"))
        if "snntorch loop" in times:
            ratio = paired_ratio(times, "snntorch loop", "ours")
            figures.append(figure(f"{label} train step: plain snntorch loop / ours", round(ratio, 2), None, None,
                                  "x"))
    return figures



def _atan_step_loop(current: torch.Tensor, beta: float, threshold: float = 1.0, alpha: float = 2.0) -> torch.Tensor:
    """The loop of :func:`lowspike.snn.leaky.reference_neuron` (reset by subtraction, detached
    reset, the IF neuron's reset before its input) in plain torch ops, spikes with the atan
    surrogate as a straight-through estimator: the candidate for torch.compile."""
    import math

    membrane = torch.zeros_like(current[0])
    spike = torch.zeros_like(current[0])
    spikes = []
    for step in current.unbind(0):
        if beta == 1.0:
            membrane = (membrane - threshold * spike.detach()) + step
        else:
            membrane = beta * membrane + step - threshold * spike.detach()
        shifted = membrane - threshold
        soft = torch.atan(math.pi / 2 * alpha * shifted) / math.pi
        spike = (shifted > 0).to(shifted.dtype) + (soft - soft.detach())  # exactly 0/1, atan's gradient
        spikes.append(spike)
    return torch.stack(spikes)


def bench_compile(quick: bool) -> list[dict]:
    """The neuron layer alone (forward and backward over T steps, the SCNN's first
    layer: [10, 128, 16, 26, 26]) as our fused autograd node against the plain step loop
    compiled by torch.compile (inductor, C++ on CPU), and that loop's compile time; the loop's
    spikes and gradients are checked against ours first."""
    import statistics

    from lowspike.snn.leaky import multistep_leaky

    shape = (10, 32 if quick else 128, 16, 26, 26)
    g = torch.Generator().manual_seed(0)
    current = (torch.rand(shape, generator=g) * 0.6).requires_grad_()
    upstream = torch.randn(shape, generator=g)

    def run(fn):
        def step():
            current.grad = None
            fn(current).backward(upstream)
        return step

    compiled = torch.compile(lambda x: _atan_step_loop(x, 1.0))
    start = time.perf_counter()
    try:
        run(compiled)()
    except Exception as exc:  # noqa: BLE001 - no compiler on this machine: say so
        return [figure("torch.compile of the step loop", "not measured", None, None, "",
                       f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")]
    compile_seconds = time.perf_counter() - start
    current.grad = None
    ours_spikes = multistep_leaky(current, 1.0)
    ours_spikes.backward(upstream)
    ours_grad = current.grad.clone()
    checks = {}
    for name, fn in (("eager", lambda x: _atan_step_loop(x, 1.0)), ("compiled", compiled)):
        current.grad = None
        loop_spikes = fn(current)
        loop_spikes.backward(upstream)
        checks[name] = (torch.equal(ours_spikes.detach(), loop_spikes.detach()),
                        float((current.grad - ours_grad).abs().max()))
    times = interleaved({"ours": run(lambda x: multistep_leaky(x, 1.0)), "compiled": run(compiled),
                         "eager loop": run(lambda x: _atan_step_loop(x, 1.0))}, 3 if quick else 10)
    ms = {k: round(1000 * statistics.median(v), 1) for k, v in times.items()}
    note = (f"{list(shape)}, forward + backward; median ms: {ms}; against ours: "
            + "; ".join(f"{name} same spikes {same}, largest gradient difference {diff:.2e}"
                        for name, (same, diff) in checks.items()))
    return [figure("IF layer fwd+bwd: torch.compile'd step loop / ours (fused autograd node)",
                   round(paired_ratio(times, "compiled", "ours"), 2), None, None, "x", note),
            figure("IF layer fwd+bwd: eager step loop / ours", round(paired_ratio(times, "eager loop", "ours"), 2),
                   None, None, "x"),
            figure("torch.compile time of the step loop (first call, paid once per stage process)",
                   round(compile_seconds, 1), None, None, "s")]

# ------------------------------------------------------------------ 3. DNN regularizer overhead

def bench_dnn_regularizer(data, quick: bool) -> list[dict]:
    from lowspike.models import build_dnn
    from lowspike.regularizers import build_regularizer
    from lowspike.studies.conversion_train import make_loss

    x_train, y_train = data[0], data[1]
    figures = []
    n = min(512 if quick else 2048, x_train.shape[0])
    for arch in ("mlp", "lenet5"):
        results = {}
        for label, loss_fn in (("none", make_loss(None, 0.0)), ("l1", make_loss(build_regularizer("l1"), 1e-3)),
                               ("hoyer", make_loss(build_regularizer("hoyer"), 1e-3))):
            torch.manual_seed(0)
            model = build_dnn(arch, (1, 28, 28), 10)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)

            def epoch():
                for index in torch.arange(n).split(128):
                    out = loss_fn(model, x_train[index], y_train[index])
                    opt.zero_grad(set_to_none=True)
                    out.loss.backward()
                    opt.step()

            results[label] = timed(epoch)
        for reg in ("l1", "hoyer"):
            overhead = results[reg] / results["none"] - 1
            figures.append(figure(f"DNN {arch} training, {reg} activity regularizer / none - 1",
                                  round(100 * overhead, 1), "<= 10", overhead <= 0.10, "%",
                                  f"{n} samples, batch 128: {results['none']:.3f} s vs {results[reg]:.3f} s"))
    return figures


# ------------------------------------------------------------------ 4. pipeline

def bench_pipeline(quick: bool) -> list[dict]:
    import os

    figures = []
    record = ROOT / "reports" / "pipeline_run.json"
    if record.exists():
        run = json.loads(record.read_text())
        figures.append(figure("make repro wall time", round(run["wall_s"], 1), "< 1200", run["wall_s"] < 1200, "s",
                              f"from {record.name}: {run.get('command')}"))
        figures.append(figure("make repro peak RSS", round(run["peak_rss_mib"]), "< 4096",
                              run["peak_rss_mib"] < 4096, "MiB"))
    else:
        figures.append(figure("make repro wall time / peak RSS", "not measured", "< 1200 s, < 4096 MiB", None, "",
                              "no reports/pipeline_run.json: run make repro first"))
    if not (ROOT / "dvc.lock").exists() or quick:
        figures.append(figure("no-op dvc repro", "not measured", "< 5", None, "s",
                              "run make repro first" if not quick else "skipped in --quick"))
        return figures
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    dvc = str(Path(sys.executable).with_name("dvc"))
    status = subprocess.run([dvc, "status", "--json"], cwd=ROOT, env=env, capture_output=True, text=True)
    if status.returncode != 0 or status.stdout.strip() not in ("{}", ""):
        return figures + [figure("no-op dvc repro", "not measured", "< 5", None, "s",
                                 "pipeline not up to date (dvc status lists changes): run make repro first")]
    start = time.perf_counter()
    proc = subprocess.run([dvc, "repro"], cwd=ROOT, env=env, capture_output=True, text=True)
    noop = time.perf_counter() - start
    ran_nothing = proc.returncode == 0 and "Running stage" not in proc.stdout
    figures.append(figure("no-op dvc repro", round(noop, 2), "< 5", noop < 5 and ran_nothing, "s",
                          f"exit {proc.returncode}; stages re-run: {not ran_nothing}"))
    params = ROOT / "params.yaml"
    original = params.read_bytes()
    try:
        text = original.decode()
        edited = re.sub(r"(?m)^(report:\n(?:[ #].*\n)*?  dpi: )(\d+)", lambda m: m.group(1) + str(int(m.group(2)) + 1),
                        text, count=1)
        if edited == text:
            return figures + [figure("report param edit", "not measured", "only report", None, "",
                                     "no report.dpi in params.yaml")]
        params.write_text(edited)
        proc = subprocess.run([dvc, "status", "--json"], cwd=ROOT, env=env, capture_output=True, text=True)
    finally:
        params.write_bytes(original)
    try:
        changed = sorted(json.loads(proc.stdout or "{}"))
    except json.JSONDecodeError:
        changed = [proc.stdout.strip()[:200]]
    only_report = bool(changed) and all(name.startswith("report") for name in changed)
    figures.append(figure("report param edit: stages dvc status marks changed", ", ".join(changed) or "none",
                          "only report", only_report, ""))
    return figures


# ------------------------------------------------------------------ 5. the fixed cost of a stage

STAGE_IMPORTS = "import lowspike.runtime, lowspike.studies.conversion_train, lowspike.tracking"


def _stage_workspace(root: Path, tracking: bool) -> Path:
    """A folder holding what ``stages/train_dnn.py --dataset mnist5k --arch mlp --point baseline``
    reads: the default params.yaml with one epoch (tracking on or off) and the prepared mnist5k."""
    import yaml

    from lowspike.config import _ParamsLoader
    from lowspike.data import load_raw
    from lowspike.data.prepared import write_prepared
    from lowspike.params import validate_params

    root.mkdir(parents=True, exist_ok=True)
    raw = yaml.load((ROOT / "params.yaml").read_text(), Loader=_ParamsLoader)
    raw["regularization"]["train"]["max_epochs"] = 1
    raw["tracking"]["enabled"] = tracking
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    prepared = ROOT / "data" / "prepared" / "mnist5k"
    target = root / "data" / "prepared" / "mnist5k"
    target.parent.mkdir(parents=True, exist_ok=True)
    if prepared.exists():
        target.symlink_to(prepared)
    else:
        write_prepared(load_raw("mnist5k", validate_params(raw).data), target)
    return root


WARM_RUNNER = """
import shutil, sys, time
from pathlib import Path
from lowspike.sweep.worker import run_in_process
cwd, log, env = Path(sys.argv[1]), Path(sys.argv[2]), dict(__import__("os").environ)
argv = ["stages/train_dnn.py", "--dataset", "mnist5k", "--arch", "mlp", "--point", "baseline"]
times = []
for _ in range(int(sys.argv[3])):
    shutil.rmtree(cwd / ".cache" / "checkpoints", ignore_errors=True)
    start = time.perf_counter()
    code = run_in_process([str(Path(sys.argv[4]) / argv[0]), *argv[1:]], cwd, env, log)
    times.append(time.perf_counter() - start)
    assert code == 0, log.read_text()[-2000:]
print(" ".join(f"{t:.4f}" for t in times))
"""


def bench_stage_cost(quick: bool) -> list[dict]:
    """The fixed cost of a stage, split into its parts, each a fresh process timed from
    the outside (median of interleaved rounds): the interpreter, ``import torch``, the imports of a
    DNN training stage, ``import mlflow``; a one-epoch MLP training stage with MLflow off and on;
    the same stage run again in a warm process (the sweep runner's warm workers: what a stage costs
    once the imports are paid); and DVC's own cost of checking one stage (``dvc status``)."""
    import os
    import shutil
    import statistics
    import tempfile

    python = sys.executable
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "LOWSPIKE_THREADS": "1"}
    rounds = 1 if quick else 5
    scratch = Path(tempfile.mkdtemp(prefix="lowspike-stagecost-"))
    try:
        quiet = _stage_workspace(scratch / "off", tracking=False)
        logged = _stage_workspace(scratch / "on", tracking=True)
        logged_env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{logged / 'mlflow.db'}"}
        stage = [python, str(ROOT / "stages" / "train_dnn.py"), "--dataset", "mnist5k", "--arch", "mlp",
                 "--point", "baseline"]
        commands = {
            "interpreter (python -c pass)": ([python, "-c", "pass"], ROOT, env),
            "import torch": ([python, "-c", "import torch"], ROOT, env),
            "import mlflow": ([python, "-c", "import mlflow"], ROOT, env),
            "imports of a DNN training stage": ([python, "-c", STAGE_IMPORTS + "; import mlflow"], ROOT, env),
            "training stage, MLflow off": (stage, quiet, env),
            "training stage, MLflow on": (stage, logged, logged_env),
        }
        dvc = Path(python).with_name("dvc")
        if (ROOT / "dvc.lock").exists() and not quick:  # DVC reads the whole pipeline: 12 s here
            commands["dvc status of one stage"] = ([str(dvc), "status", "train_dnn_baseline@mnist5k-mlp"], ROOT, env)
        subprocess.run(stage, cwd=logged, env=logged_env, capture_output=True, check=True)  # creates mlflow.db
        load = os.getloadavg()[0]
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, (command, cwd, command_env) in commands.items():
                shutil.rmtree(cwd / ".cache" / "checkpoints", ignore_errors=True)  # train, do not resume
                start = time.perf_counter()
                proc = subprocess.run(command, cwd=cwd, env=command_env, capture_output=True, text=True)
                times[name].append(time.perf_counter() - start)
                if proc.returncode != 0:
                    raise RuntimeError(f"{name}: exit {proc.returncode}: {proc.stderr[-1000:]}")
        warm = subprocess.run([python, "-c", WARM_RUNNER, str(logged), str(scratch / "warm.log"),
                               str(rounds + 1), str(ROOT)], env=logged_env, capture_output=True, text=True)
        if warm.returncode != 0:
            raise RuntimeError(f"warm worker: {warm.stderr[-2000:]}")
        warm_times = [float(t) for t in warm.stdout.split()]
        times["training stage, MLflow on, warm process (2nd run on)"] = warm_times[1:]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    fresh = median["training stage, MLflow on"]
    figures = [figure(f"{name}", round(value, 2), None, None, "s") for name, value in median.items()]
    figures[-1]["note"] = f"first run in that process (imports included): {warm_times[0]:.2f} s"
    overhead = median["training stage, MLflow on"] - median["training stage, MLflow off"]
    figures.append(figure("MLflow's share of a stage (on - off)", round(overhead, 2), None, None, "s"))
    warm_value = median["training stage, MLflow on, warm process (2nd run on)"]
    figures.append(figure("warm-process stage / fresh-interpreter stage", round(warm_value / fresh, 3), None, None,
                          "x"))
    floor = median["imports of a DNN training stage"]
    figures.append(figure("fixed cost of a stage in a warm worker (warm stage, 1-epoch training included)",
                          round(warm_value, 2), "<= 2", warm_value <= 2, "s",
                          f"fresh interpreter: {fresh:.2f} s, of which the imports alone {floor:.2f} s; "
                          f"{rounds} interleaved rounds, load {load:.2f}"))
    return figures

BEFORE_LAYOUT = "b074d6d"
"""The last commit before the registries and the torch-free layout: its params validation and
report stage loaded torch (config imported the datasets and models)."""


def _checkout(commit: str, target: Path) -> Path:
    """The files of ``commit`` (git archive) under ``target``."""
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def bench_start_time(quick: bool) -> list[dict]:
    """How long the two torch-free entry points take from a fresh interpreter, this code against
    the code before the layout (:data:`BEFORE_LAYOUT`), interleaved: ``python -m lowspike.config
    params.yaml`` (what ``make repro`` runs first) and the report stage on the committed results
    (in a scratch copy; both write the same reports)."""
    import os
    import shutil
    import statistics
    import tempfile

    rounds = 2 if quick else 7
    scratch = Path(tempfile.mkdtemp(prefix="lowspike-start-"))
    try:
        before = _checkout(BEFORE_LAYOUT, scratch / "before")
        trees = {"this code": ROOT, f"before the layout ({BEFORE_LAYOUT})": before}
        runs = {}
        for label, tree in trees.items():
            work = scratch / f"report-{len(runs)}"
            work.mkdir()
            for item in ("params.yaml", "profiles", "results"):
                source = tree / item if (tree / item).exists() else ROOT / item
                (shutil.copytree if source.is_dir() else shutil.copy)(source, work / item)
            env = {**os.environ, "PYTHONPATH": str(tree / "src"), "LOWSPIKE_THREADS": "1"}
            runs[f"params validation, {label}"] = ([sys.executable, "-m", "lowspike.config", "params.yaml"], tree, env)
            runs[f"report stage, {label}"] = ([sys.executable, str(tree / "stages" / "report.py")], work, env)
        times: dict[str, list[float]] = {name: [] for name in runs}
        load = os.getloadavg()[0]
        for _ in range(rounds):
            for name, (command, cwd, env) in runs.items():
                start = time.perf_counter()
                proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
                times[name].append(time.perf_counter() - start)
                if proc.returncode != 0:
                    raise RuntimeError(f"{name}: exit {proc.returncode}: {proc.stderr[-1000:]}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    figures = [figure(name, round(value, 2), None, None, "s", f"{rounds} interleaved rounds, load {load:.2f}")
               for name, value in median.items()]
    for entry in ("params validation", "report stage"):
        now, old = (median[f"{entry}, {label}"] for label in trees)
        figures.append(figure(f"{entry}: this code / before the layout", round(now / old, 3), "< 1", now < old, "x"))
    return figures


# ------------------------------------------------------------------ students: old against new

STUDENT_KINDS = {
    "SCNN baseline (mnist5k)": ["--dataset", "mnist5k", "--method", "baseline", "--seed", "0"],
    "SCNN KD, heterogeneous 1/8 (mnist5k)": ["--dataset", "mnist5k", "--method", "heterogeneous", "--tau-s", "1.0",
                                             "--tau-t", "8.0", "--seed", "0"],
    "SRes-8 baseline (spoken-commands)": ["--dataset", "spoken-commands", "--method", "baseline", "--seed", "0"],
}
"""The three student kinds of the distillation study, as their ``train_student`` stage arguments
(the same in both versions of the code)."""


def _student_workspace(tree: Path, work: Path, quick: bool) -> Path:
    """``work`` holding ``tree``'s params.yaml (tracking off; with ``quick``, one epoch for every
    training) and that version's prepared datasets and mnist5k teacher."""
    from ruamel.yaml import YAML  # YAML 1.2 as DVC reads params: the keyword "yes" stays a word

    yaml = YAML()
    work.mkdir(parents=True)
    params = yaml.load((tree / "params.yaml").read_text())
    params["tracking"]["enabled"] = False
    setups = params["distillation"]["setups"]
    for dataset in ("mnist5k", "spoken-commands"):
        for train in ("student_train", "teacher_train"):
            if quick:
                setups[dataset][train].update(max_epochs=1, patience=1)
                setups[dataset][train].pop("t_max", None)
                setups[dataset][train].pop("scheduler", None)
    with open(work / "params.yaml", "w") as handle:
        yaml.dump(params, handle)
    if (tree / "profiles").exists():
        import shutil

        shutil.copytree(tree / "profiles", work / "profiles")
    env = _student_env(tree)
    for command in (["prepare.py", "--dataset", "mnist5k"], ["prepare.py", "--dataset", "spoken-commands"],
                    ["train_teacher.py", "--dataset", "mnist5k"]):
        proc = subprocess.run([sys.executable, str(tree / "stages" / command[0]), *command[1:]], cwd=work, env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{tree.name}: {' '.join(command)}: exit {proc.returncode}: {proc.stderr[-1500:]}")
    return work


def _student_env(tree: Path, **extra: str) -> dict:
    import os

    return {**os.environ, "PYTHONPATH": str(tree / "src"), "LOWSPIKE_THREADS": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
            **extra}


def bench_students(quick: bool) -> list[dict]:
    """Each student kind's ``train_student`` stage from a fresh process (one thread, as a worker of
    the pipeline runs it, MLflow off), this code against the code before the speed-ups
    (:data:`BEFORE_LAYOUT`), interleaved, with the epochs, T, batch size, width and precision of
    params.yaml (``quick``: one epoch). Levers, each this code with one of them taken away: the
    compiled neuron and augmentation kernels (``LOWSPIKE_NATIVE=0``) and the teacher's cached
    logits (``runs/teacher/mnist5k/logits.pt`` absent: the teacher runs forward at every step)."""
    import os
    import shutil
    import statistics
    import tempfile

    rounds = 1 if quick else 2
    scratch = Path(tempfile.mkdtemp(prefix="lowspike-students-"))
    try:
        before = _checkout(BEFORE_LAYOUT, scratch / "before")
        old = _student_workspace(before, scratch / "ws-before", quick)
        new = _student_workspace(ROOT, scratch / "ws-now", quick)
        uncached = scratch / "ws-now-no-logits"
        shutil.copytree(new, uncached, symlinks=True)
        (uncached / "runs" / "teacher" / "mnist5k" / "logits.pt").unlink()
        contenders = {}
        for kind, arguments in STUDENT_KINDS.items():
            contenders[(kind, "before")] = (before, old, _student_env(before), arguments)
            contenders[(kind, "now")] = (ROOT, new, _student_env(ROOT), arguments)
            contenders[(kind, "now without compiled kernels")] = (ROOT, new, _student_env(ROOT, LOWSPIKE_NATIVE="0"),
                                                                   arguments)
            if "KD" in kind:
                contenders[(kind, "now without cached teacher logits")] = (ROOT, uncached, _student_env(ROOT), arguments)
        times: dict[tuple[str, str], list[float]] = {key: [] for key in contenders}
        load = os.getloadavg()[0]
        for _ in range(rounds):
            for key, (tree, work, env, arguments) in contenders.items():
                start = time.perf_counter()
                proc = subprocess.run([sys.executable, str(tree / "stages" / "train_student.py"), *arguments], cwd=work,
                                      env=env, capture_output=True, text=True)
                times[key].append(time.perf_counter() - start)
                if proc.returncode != 0:
                    raise RuntimeError(f"{key}: exit {proc.returncode}: {proc.stderr[-1500:]}")
        load = max(load, os.getloadavg()[0])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    median = {key: statistics.median(values) for key, values in times.items()}
    note = f"{rounds} interleaved round(s), fresh process, 1 thread, load up to {load:.2f}"
    figures = [figure(f"{kind}: train_student stage, {version}", round(value, 1), None, None, "s", note)
               for (kind, version), value in median.items()]
    for kind in STUDENT_KINDS:
        ratio = median[(kind, "now")] / median[(kind, "before")]
        figures.append(figure(f"{kind}: this code / before ({BEFORE_LAYOUT})", round(ratio, 2), "<= 0.7",
                              ratio <= 0.7, "x", note))
        for lever in ("compiled kernels", "cached teacher logits"):
            key = (kind, f"now without {lever}")
            if key in median:
                effect = median[(kind, "now")] / median[key]
                figures.append(figure(f"{kind}: lever '{lever}': with / without", round(effect, 2), None, None, "x",
                                      note))
    return figures


# ------------------------------------------------------------------ 6. cost growth

def bench_growth(data, quick: bool) -> list[dict]:
    from lowspike.snn.convert import convert
    from lowspike.snn.simulation import simulate_batch

    x_train, y_train, x_test = data[0], data[1], data[2]
    model = train_dnn("mlp", x_train, y_train, 1)
    snn = convert(model, x_train[:1000])
    figures = []
    steps = (20, 60, 200) if quick else (100, 300, 1000)
    per_unit = []
    for t in steps:
        seconds = timed(lambda: simulate_batch(snn, x_test[:200], t), 1)
        per_unit.append(seconds / t)
    figures.append(growth_figure("sim time vs T (MLP, batch 200)", steps, per_unit, "ms per step"))
    batches = (100, 200, 400) if quick else (125, 250, 500, 1000)
    per_unit = []
    x_big = x_test.repeat(2, 1, 1, 1)
    for b in batches:
        seconds = timed(lambda: simulate_batch(snn, x_big[:b], 50), 1)
        per_unit.append(seconds / b)
    figures.append(growth_figure("sim time vs batch (MLP, T=50)", batches, per_unit, "ms per sample"))
    sizes = (256, 512, 1024) if quick else (875, 1750, 3500)
    per_unit = []
    for n in sizes:
        start = time.perf_counter()
        train_dnn("mlp", x_train[:n], y_train[:n], 1)
        per_unit.append((time.perf_counter() - start) / n)
    figures.append(growth_figure("DNN training time vs dataset size (MLP, 1 epoch)", sizes, per_unit, "ms per sample"))
    return figures


def growth_figure(name: str, sizes, per_unit: list[float], unit: str) -> dict:
    """Linear when the time per unit stays within 1.5x of the smallest size's (ratio largest/smallest)."""
    ratio = per_unit[-1] / per_unit[0]
    table = {str(s): round(1000 * u, 4) for s, u in zip(sizes, per_unit)}
    return figure(name + ": time per unit, largest / smallest size", round(ratio, 2), "<= 1.5 (linear)",
                  ratio <= 1.5, "x", f"{unit}: {table}")


# ------------------------------------------------------------------ report

def device_info() -> dict:
    return {"device": "cuda" if torch.cuda.is_available() else "cpu", "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
            "python": platform.python_version()}


def write_reports(out_dir: Path, sections: dict[str, list[dict]], meta: dict) -> None:
    from lowspike.artifacts import write_json, write_text

    write_json(out_dir / "bench.json", {"meta": meta, "sections": sections})
    lines = ["# Benchmarks", "",
             f"Device: {meta['device']['device']} ({meta['device']['cpu']}, {meta['device']['threads']} threads), "
             f"torch {meta['device']['torch']}; data: {meta['data']}; total {meta['seconds']:.0f} s"
             f"{' (--quick sizes)' if meta['quick'] else ''}.", *([meta["note"] + ".", ""] if meta.get("note") else [""])]
    for section, figures in sections.items():
        lines += [f"## {section}", "", "| figure | value | target | pass | note |", "|---|---|---|---|---|"]
        for f in figures:
            status = "n/a" if f["pass"] is None else ("PASS" if f["pass"] else "FAIL")
            lines.append(f"| {f['name']} | {f['value']} {f['unit']} | {f['target'] or ''} | {status} | {f['note']} |")
        lines.append("")
    write_text(out_dir / "bench.md", "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--out", default=str(ROOT / "reports"), help="folder for bench.json and bench.md")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--only", nargs="*", default=None, help="sections: simulation spiking compile dnn pipeline stagecost start students growth")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    data = load_data(args.quick)
    runs = {
        "simulation": lambda: bench_simulation(data, args.quick)[0],
        "spiking": lambda: bench_spiking_training(data, args.quick),
        "compile": lambda: bench_compile(args.quick),
        "dnn": lambda: bench_dnn_regularizer(data, args.quick),
        "pipeline": lambda: bench_pipeline(args.quick),
        "stagecost": lambda: bench_stage_cost(args.quick),
        "start": lambda: bench_start_time(args.quick),
        "students": lambda: bench_students(args.quick),
        "growth": lambda: bench_growth(data, args.quick),
    }
    sections = {}
    for name, run in runs.items():
        if args.only is None or name in args.only:
            t0 = time.perf_counter()
            sections[name] = run()
            print(f"{name}: {time.perf_counter() - t0:.1f} s", flush=True)
    meta = {"device": device_info(), "data": data[4], "quick": args.quick, "seconds": time.perf_counter() - started}
    previous = Path(args.out) / "bench.json"
    if args.only is not None and previous.is_file():  # sections not rerun keep their last figures
        import json

        before = json.loads(previous.read_text())
        kept = before["sections"]
        if not {"simulation", "spiking", "dnn", "growth"} & set(args.only):  # the sections that read the data
            meta["data"] = before["meta"]["data"]
        meta["note"] = (f"sections {', '.join(args.only)} measured on {time.strftime('%Y-%m-%d')} in their own run "
                        "(--only), the others kept from the previous run")
        sections = {name: sections.get(name, kept.get(name)) for name in [*runs] if name in sections or name in kept}
    write_reports(Path(args.out), sections, meta)
    failed = [f["name"] for figs in sections.values() for f in figs if f["pass"] is False]
    print(f"wrote {args.out}/bench.json and bench.md; {len(failed)} targets missed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
