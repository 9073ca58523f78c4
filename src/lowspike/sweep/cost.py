"""``python -m lowspike.sweep plan``: what a params profile costs, priced without its data.

1. DVC expands the profile's stages: ``dvc.yaml`` and the profile (as ``params.yaml``) in a
   scratch DVC repository; ``repo.index`` gives every stage and the graph.
2. Each stage's work is read from its command (``--dataset``, ``--arch``, ``--method``) and the
   profile (epochs, batch sizes, grids, split sizes of the real datasets).
3. The unit costs are measured here on synthetic inputs of the real shapes (28x28, 3x32x32,
   10 MFCC x 49 frames): one training step (forward, backward, optimizer step) and one
   evaluation forward of every model at the profile's batch size, one converted-SNN
   simulation step, and the conversion's calibration (time and peak memory, in a fresh
   process) on the whole training split (55,000 MNIST-shaped inputs for ``mnist``).
4. A stage's estimate is its step count times the unit cost; the wall time on N workers is
   a list schedule of the estimates over DVC's graph in DVC's order (what Ray does with one
   stage per worker).

Training estimates use ``max_epochs`` (early stopping makes them upper bounds). An export stage
is priced for its baseline and one model per regularizer (Table 1) or Table III family (the
most its tables can select), each run back in lowspike, sinabs and snntorch on
``deploy.samples`` inputs (:func:`agreement_probe`). ``prepare``, the aggregations and the
report are not priced: they read and write files for seconds to minutes. Timings use one torch
thread (one core per task, the runner's default).
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from dvc.repo import Repo
from dvc.repo.reproduce import get_active_graph, plan_repro

from .. import deploy
from ..data import sample_shape
from ..distillation import METHODS, StudentRun, student_runs
from ..dvcyaml import render as render_dvc_yaml
from ..hints import HintedStudent, build_hint_projections
from ..models import build_dnn, build_teacher
from ..params import read_params
from ..regularizers import build_regularizer
from ..snn.convert import convert
from ..snn.simulation import simulate_batch
from ..studies.conversion_points import grid
from ..studies.conversion_train import make_loss
from ..studies.distillation_train import make_student, make_student_loss
from ..training import StepOutput, make_optimizer
from .pipeline import critical_path_order

GSC_SPLITS = (84843, 9981, 11005)
"""Speech Commands v0.02, 35 words: training, validation_list.txt and testing_list.txt clips."""
IMAGE_TEST_SIZE = {"mnist": 10000, "cifar10": 10000}
IMAGE_TRAIN_SIZE = {"mnist": 60000, "cifar10": 50000}
SIMULATION_PROBE_STEPS = 5
EXPORT_PROBE_STEPS = 5


@dataclass(frozen=True)
class StageWork:
    """One stage of the profile: its DVC name, family and what its command names."""

    name: str
    family: str
    dataset: str | None
    arch: str | None
    method: str | None
    upstream: tuple[str, ...]


@dataclass
class Estimate:
    stages: list[dict[str, Any]] = field(default_factory=list)
    families: dict[str, dict[str, Any]] = field(default_factory=dict)
    measurements: dict[str, Any] = field(default_factory=dict)
    cpu_core_hours: float = 0.0
    gpu_hours: float | None = None
    wall_hours: dict[int, float] = field(default_factory=dict)
    wall_hours_gpu: dict[int, float] = field(default_factory=dict)
    not_priced: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ the profile's stages


def _option(words: list[str], flag: str) -> str | None:
    return words[words.index(flag) + 1] if flag in words[:-1] else None


def expand_stages(root: Path, params_file: Path) -> list[StageWork]:
    """Every stage of the pipeline under the profile (``dvc.yaml`` generated for its datasets and
    grids, :mod:`lowspike.dvcyaml`), in DVC's reproduction order."""
    with tempfile.TemporaryDirectory(prefix="lowspike-plan-") as scratch:
        (Path(scratch) / "dvc.yaml").write_text(render_dvc_yaml(root / "src", params_file))  # the profile's families
        shutil.copy2(params_file, Path(scratch) / "params.yaml")
        dvc_logger = logging.getLogger("dvc")
        level = dvc_logger.level
        dvc_logger.setLevel(logging.WARNING)
        try:
            Repo.init(scratch, no_scm=True).close()
        finally:
            dvc_logger.setLevel(level)
        repo = Repo(scratch)
        try:
            graph = get_active_graph(repo.index.graph)
            work = []
            for stage in plan_repro(graph):
                words = shlex.split(stage.cmd if isinstance(stage.cmd, str) else " ".join(stage.cmd))
                work.append(StageWork(
                    name=stage.addressing.split(":")[-1], family=stage.addressing.split(":")[-1].split("@")[0],
                    dataset=_option(words, "--dataset"), arch=_option(words, "--arch"),
                    method=_option(words, "--method"),
                    upstream=tuple(up.addressing.split(":")[-1] for up in graph.successors(stage))))
            return work
        finally:
            repo.close()


# ------------------------------------------------------------------ the real datasets


def split_sizes(params, dataset: str) -> tuple[int, int, int]:
    """Training, validation and test samples of ``dataset`` under ``params`` (no data read)."""
    data = params.data
    if dataset in IMAGE_TRAIN_SIZE:
        val = getattr(data, dataset).val_size
        return IMAGE_TRAIN_SIZE[dataset] - val, val, IMAGE_TEST_SIZE[dataset]
    if dataset == "mnist5k":
        return data.mnist5k.train, data.mnist5k.val, data.mnist5k.test
    if dataset == "digits":
        total = 1797
        test, val = round(total * data.digits.test_fraction), round(total * data.digits.val_fraction)
        return total - test - val, val, test
    if dataset == "gsc":
        share = len(data.gsc.words) / 35 if data.gsc.words else 1.0
        return tuple(round(n * share) for n in GSC_SPLITS)  # type: ignore[return-value]
    cfg = data.spoken_commands
    words, clips = len(cfg.words), cfg.clips_per_word
    val = round(cfg.val_fraction * clips)
    return words * (clips - val), words * val, words * cfg.test_clips_per_word


def num_classes(params, dataset: str) -> int:
    if dataset == "gsc":
        return len(params.data.gsc.words) or 35
    if dataset == "spoken-commands":
        return len(params.data.spoken_commands.words)
    return 10


def input_shape(params, dataset: str) -> tuple[int, ...]:
    """The model input of one sample: the image, or ``(1, n_mfcc, frames)`` of 1 s of audio."""
    return sample_shape(dataset, params.data)


# ------------------------------------------------------------------ unit costs


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_training(model, loss_fn: Callable, train_cfg, shape: tuple[int, ...], classes: int, device: str,
                  repeats: int) -> tuple[float, float]:
    """Seconds of one training step (forward, loss, backward, optimizer step) and of one
    evaluation forward, at ``train_cfg.batch_size`` on random inputs; one warm-up step first."""
    model = model.to(device)
    optimizer = make_optimizer(model.parameters(), train_cfg)
    x = torch.rand(train_cfg.batch_size, *shape, device=device)
    y = torch.randint(0, classes, (train_cfg.batch_size,), device=device)
    steps = []
    for _ in range(repeats + 1):
        _synchronize(device)
        start = time.perf_counter()
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model, x, y).loss.backward()
        optimizer.step()
        _synchronize(device)
        steps.append(time.perf_counter() - start)
    forwards = []
    model.eval()
    with torch.inference_mode():
        for _ in range(repeats + 1):
            _synchronize(device)
            start = time.perf_counter()
            loss_fn(model, x, y)
            _synchronize(device)
            forwards.append(time.perf_counter() - start)
    return min(steps[1:]), min(forwards[1:])


def calibration_probe(arch: str, dataset: str, samples: int, shape: list[int], classes: int,
                      percentile: float) -> dict[str, float]:
    """In this (fresh) process: convert a DNN of ``arch`` with ``samples`` random calibration
    inputs; the peak resident memory the conversion added, its seconds, and one SNN
    simulation step at batch 500 (seconds)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_dnn(arch, tuple(shape), classes)
    inputs = torch.rand(samples, *shape)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    snn = convert(model, inputs, percentile=percentile)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    batch = inputs[:500]
    simulate_batch(snn, batch, 1)
    start = time.perf_counter()
    simulate_batch(snn, batch, SIMULATION_PROBE_STEPS)
    step = (time.perf_counter() - start) / SIMULATION_PROBE_STEPS
    return {"calibration_bytes": max(0, peak - before), "calibration_seconds": seconds, "simulation_step_s": step,
            "samples": samples}


def agreement_probe(network, inputs: torch.Tensor, timesteps: int | None, repeats: int) -> float:
    """Seconds of one :data:`~lowspike.deploy.AGREEMENT_BATCH` of ``inputs`` written to NIR and
    run in lowspike, sinabs and snntorch (:func:`lowspike.deploy.agreement_summary` for a
    converted SNN ``dict`` over ``timesteps``, :func:`lowspike.deploy.student_agreement` for a
    student at its own T); the fastest of ``repeats`` after a warm-up."""
    batch = inputs[:deploy.AGREEMENT_BATCH]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "probe.nir"
        if isinstance(network, dict):
            deploy.write_nir(path, network)
            run = partial(deploy.agreement_summary, network, path, batch, timesteps)
        else:
            deploy.write_student_nir(path, network)
            run = partial(deploy.student_agreement, network, path, batch)
        run()
        times = []
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    return min(times)


def run_calibration_probe(arch: str, dataset: str, samples: int, shape: tuple[int, ...], classes: int,
                          percentile: float) -> dict[str, float]:
    code = ("import json, sys; from lowspike.sweep.cost import calibration_probe; "
            "print(json.dumps(calibration_probe(*json.loads(sys.argv[1]))))")
    arguments = json.dumps([arch, dataset, samples, list(shape), classes, percentile])
    result = subprocess.run([sys.executable, "-c", code, arguments], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ estimate


class UnitCosts:
    """Measured unit costs, each measured once per (kind, model, dataset, device)."""

    def __init__(self, params, devices: list[str], repeats: int, log: Callable[[str], None]):
        self.params, self.devices, self.repeats, self.log = params, devices, repeats, log
        self.cache: dict[tuple, Any] = {}

    def _once(self, key: tuple, measure: Callable[[], Any]) -> Any:
        if key not in self.cache:
            started = time.perf_counter()
            self.cache[key] = measure()
            self.log(f"measured {' '.join(str(k) for k in key)} in {time.perf_counter() - started:.1f} s")
        return self.cache[key]

    def dnn(self, arch: str, dataset: str, regularized: bool, device: str) -> tuple[float, float]:
        cfg = self.params.regularization.train
        shape, classes = input_shape(self.params, dataset), num_classes(self.params, dataset)
        loss = make_loss(build_regularizer("l1") if regularized else None, 1.0e-3 if regularized else 0.0)
        return self._once(("train", arch, dataset, "l1" if regularized else "none", device),
                          lambda: time_training(build_dnn(arch, shape, classes), loss, cfg, shape, classes, device,
                                                self.repeats))

    def teacher_model(self, dataset: str):
        setup = self.params.distillation.setups[dataset]
        return build_teacher(setup.teacher, input_shape=input_shape(self.params, dataset),
                             num_classes=num_classes(self.params, dataset), width=setup.teacher_width)

    def teacher(self, dataset: str, device: str) -> tuple[float, float]:
        setup = self.params.distillation.setups[dataset]
        shape, classes = input_shape(self.params, dataset), num_classes(self.params, dataset)

        def loss(model, x, y):
            logits = model(x)
            return StepOutput(F.cross_entropy(logits, y), logits)

        return self._once(("train", setup.teacher, dataset, "teacher", device),
                          lambda: time_training(self.teacher_model(dataset), loss, setup.teacher_train, shape, classes,
                                                device, self.repeats))

    def student(self, dataset: str, method: str, device: str) -> tuple[float, float]:
        """One training step and one evaluation forward of a student trained with ``method``,
        its loss built from the method's registry entry at its ``example`` setting (the teacher's
        forward, the hint projections, the penalty: what the method's steps pay)."""
        setup = self.params.distillation.setups[dataset]
        shape, classes = input_shape(self.params, dataset), num_classes(self.params, dataset)
        spec = METHODS[method]
        run = StudentRun(dataset, method, 0, tuple((key, spec.example[key]) for key in spec.settings))

        def measure():
            student = make_student(self.params, dataset, shape, classes).to(device)
            teacher = self.teacher_model(dataset).to(device).eval() if spec.uses_teacher else None
            hints, trained = None, student
            if spec.hints:
                hints = build_hint_projections(setup.student, setup.teacher, student, teacher, shape).to(device)
                trained = HintedStudent(student, hints)
            loss = make_student_loss(run, self.params.distillation.alpha, teacher, setup.precision, hints)
            return time_training(trained, loss, setup.student_train, shape, classes, device, self.repeats)

        return self._once(("train", setup.student, dataset, method, device), measure)

    def export_conversion(self, arch: str, dataset: str) -> float:
        """Seconds per timestep of one agreement batch of a converted ``arch`` (random weights,
        calibrated on 256 random inputs)."""
        shape, classes = input_shape(self.params, dataset), num_classes(self.params, dataset)

        def measure():
            torch.manual_seed(0)
            inputs = torch.rand(256, *shape)
            snn = convert(build_dnn(arch, shape, classes), inputs, percentile=self.params.conversion.percentile)
            return agreement_probe(snn, inputs, EXPORT_PROBE_STEPS, self.repeats) / EXPORT_PROBE_STEPS

        return self._once(("export", arch, dataset), measure)

    def export_student(self, dataset: str) -> float:
        """Seconds of one agreement batch of the dataset's student at its T (random weights)."""
        shape, classes = input_shape(self.params, dataset), num_classes(self.params, dataset)

        def measure():
            torch.manual_seed(0)
            student = make_student(self.params, dataset, shape, classes).eval()
            student.bfloat16 = False
            return agreement_probe(student, torch.rand(64, *shape), None, self.repeats)

        return self._once(("export", self.params.distillation.setups[dataset].student, dataset), measure)

    def conversion(self, arch: str, dataset: str) -> dict[str, float]:
        train, _, _ = split_sizes(self.params, dataset)
        samples = self.params.conversion.calibration_samples or train
        return self._once(("calibration", arch, dataset, samples),
                          lambda: run_calibration_probe(arch, dataset, samples, input_shape(self.params, dataset),
                                                        num_classes(self.params, dataset),
                                                        self.params.conversion.percentile))


def stage_seconds(stage: StageWork, units: UnitCosts, device: str) -> float | None:
    """The estimated seconds of one stage on ``device``; ``None`` for stages not priced."""
    params = units.params
    if stage.dataset is None:
        return None
    train, val, test = split_sizes(params, stage.dataset)
    if stage.family.startswith("train_dnn"):
        cfg = params.regularization.train
        step, forward = units.dnn(stage.arch, stage.dataset, stage.family != "train_dnn_baseline", device)
    elif stage.family == "train_teacher":
        cfg = params.distillation.setups[stage.dataset].teacher_train
        step, forward = units.teacher(stage.dataset, device)
    elif stage.family.startswith("train_student"):
        cfg = params.distillation.setups[stage.dataset].student_train
        step, forward = units.student(stage.dataset, stage.method, device)
    elif stage.family in ("convert", "simulate", "evaluate"):
        points = len(grid(params, stage.dataset, stage.arch))
        probe = units.conversion(stage.arch, stage.dataset)
        if stage.family == "convert":
            return points * probe["calibration_seconds"]
        if stage.family == "simulate":
            batches = math.ceil(test / 500)
            return points * batches * params.simulation.timesteps * probe["simulation_step_s"]
        _, forward = units.dnn(stage.arch, stage.dataset, False, device)
        return points * math.ceil(test / params.regularization.train.batch_size) * forward
    elif stage.family in ("export_conversion", "export_distillation"):
        batches = math.ceil(params.deploy.samples / deploy.AGREEMENT_BATCH)
        if stage.family == "export_conversion":
            models = 1 + len({point.regularizer for point in grid(params, stage.dataset, stage.arch)} - {"none"})
            return models * batches * params.simulation.timesteps * units.export_conversion(stage.arch, stage.dataset)
        families = {METHODS[run.method].family for run in student_runs(params, stage.dataset)} - {None}
        return (1 + len(families)) * batches * units.export_student(stage.dataset)
    elif stage.family == "evaluate_students":
        cfg = params.distillation.setups[stage.dataset].student_train
        _, forward = units.student(stage.dataset, "baseline", device)
        return len(student_runs(params, stage.dataset)) * math.ceil(test / cfg.batch_size) * forward
    else:
        return None
    return cfg.max_epochs * (math.ceil(train / cfg.batch_size) * step + math.ceil(val / cfg.batch_size) * forward)


def list_schedule(stages: list[StageWork], seconds: dict[str, float], workers: int) -> float:
    """Makespan of running ``stages`` on ``workers`` workers, dependencies respected, each free
    worker taking the first ready stage of the runner's queue (highest upward rank first,
    :func:`lowspike.sweep.pipeline.critical_path_order`): the wall time of the runner."""
    finish: dict[str, float] = {}
    running: list[tuple[float, str]] = []
    remaining = critical_path_order(stages, seconds)
    clock = 0.0
    while remaining or running:
        while len(running) < workers:
            ready = next((s for s in remaining if all(finish.get(u, math.inf) <= clock for u in s.upstream)), None)
            if ready is None:
                break
            remaining.remove(ready)
            heapq.heappush(running, (clock + seconds.get(ready.name, 0.0), ready.name))
        if not running:
            raise ValueError("the stage graph has a stage whose upstream never finishes")
        clock, name = heapq.heappop(running)
        finish[name] = clock
    return max(finish.values(), default=0.0)


def estimate(root: Path, params_file: Path, workers: list[int], devices: list[str], repeats: int,
             log: Callable[[str], None]) -> Estimate:
    params = read_params(params_file)
    torch.set_num_threads(1)
    stages = expand_stages(root, params_file)
    units = UnitCosts(params, devices, repeats, log)
    result = Estimate()
    per_device: dict[str, dict[str, float]] = {device: {} for device in devices}
    for stage in stages:
        row: dict[str, Any] = {"name": stage.name, "family": stage.family}
        for device in devices:
            seconds = stage_seconds(stage, units, device)
            if seconds is None:
                if stage.family not in result.not_priced:
                    result.not_priced.append(stage.family)
                continue
            row[f"{device}_s"] = seconds
            per_device[device][stage.name] = seconds
        result.stages.append(row)
        family = result.families.setdefault(stage.family, {"stages": 0, **{f"{d}_s": 0.0 for d in devices}})
        family["stages"] += 1
        for device in devices:
            family[f"{device}_s"] += row.get(f"{device}_s", 0.0)
    cpu = per_device.get("cpu", {})
    result.cpu_core_hours = sum(cpu.values()) / 3600
    result.wall_hours = {n: list_schedule(stages, cpu, n) / 3600 for n in workers}
    if "cuda" in per_device:
        gpu_stages = {name: s for name, s in per_device["cuda"].items() if name.startswith("train_")}
        result.gpu_hours = sum(gpu_stages.values()) / 3600
        mixed = {**cpu, **gpu_stages}
        result.wall_hours_gpu = {n: list_schedule(stages, mixed, n) / 3600 for n in workers}
    result.measurements = {" ".join(str(k) for k in key): value for key, value in units.cache.items()}
    return result


def duration(seconds: float) -> str:
    """``42 s``, ``12.5 min`` or ``3.2 h``."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def render(result: Estimate, params_file: Path, devices: list[str]) -> str:
    total = sum(f["stages"] for f in result.families.values())
    lines = [f"plan for {params_file}: {total} stages (as DVC expands them)", ""]
    width = max([26, *(len(family) + 2 for family in result.families)])
    lines.append(f"{'stage family':<{width}}{'stages':>7}" + "".join(f"{d + ' per stage':>18}{d + ' total':>14}"
                                                                   for d in devices))
    for family, totals in result.families.items():
        if family in result.not_priced:
            lines.append(f"{family:<{width}}{totals['stages']:>7}{'not priced':>18}")
            continue
        lines.append(f"{family:<{width}}{totals['stages']:>7}" + "".join(
            f"{duration(totals[f'{d}_s'] / totals['stages']):>18}{duration(totals[f'{d}_s']):>14}" for d in devices))
    lines += ["", f"CPU: {result.cpu_core_hours:.2f} core-hours (one core and one torch thread per stage)"]
    for n, hours in result.wall_hours.items():
        lines.append(f"  wall time on {n} CPU worker(s): {duration(hours * 3600)}")
    if result.gpu_hours is None:
        lines.append("GPU: not measured (no CUDA device here)")
    else:
        lines.append(f"GPU: {result.gpu_hours:.2f} GPU-hours for the train_* stages (one GPU each), the rest on CPU")
        for n, hours in result.wall_hours_gpu.items():
            lines.append(f"  wall time on {n} GPU worker(s): {duration(hours * 3600)}")
    for key, value in result.measurements.items():
        if key.startswith("calibration"):
            lines.append(f"{key} samples: conversion calibration +{value['calibration_bytes'] / 2 ** 30:.2f} GiB peak "
                         f"memory, {duration(value['calibration_seconds'])} per model; converted-SNN step at "
                         f"batch 500: {1000 * value['simulation_step_s']:.1f} ms")
    if result.not_priced:
        lines.append(f"not priced (file work, seconds to minutes each): {', '.join(result.not_priced)}")
    lines.append("training is priced at max_epochs: with early stopping these are upper bounds")
    return "\n".join(lines)


def main_plan(args) -> int:
    root, params_file = Path(args.root).resolve(), Path(args.params)
    if args.device == "auto":
        devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    else:
        devices = [args.device]
    result = estimate(root, params_file, args.workers, devices, args.repeats,
                      log=lambda line: print(line, file=sys.stderr, flush=True))
    print(render(result, params_file, devices))
    if args.json:
        payload = asdict(result)
        payload.update({"params": str(params_file), "devices": devices,
                        "cpu": {"threads": 1, "cores": os.cpu_count()}})
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return 0
