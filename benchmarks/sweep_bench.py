"""Benchmark of the sweep runner -> reports/sweep_bench.json and reports/sweep_bench.md.

Every ratio is measured in one invocation, the serial and the parallel runs interleaved, each
from its own copy of one prepared repository (a git + DVC copy of this project's pipeline with
``prepare@mnist5k`` already reproduced and cached):

- speed-up of ``python -m lowspike.sweep`` over ``dvc repro`` on the conversion-study grid
  (``--quick``: MLP and LeNet-5 x {l1, hoyer} x {1e-3, 1e-2}, 10 DNNs; default: the default
  grid of params.yaml, 68 DNNs), with the tasks in flight (from the tasks' own start and end
  times) and the machine's CPU utilization during each run; both runs must record the same
  dvc.lock output hashes;
- the fixed cost of one stage (a 1-epoch MLP training) under ``dvc repro`` and under the
  runner, both ways: in-process in the warm Ray worker and as a fresh interpreter;
- what moving files through Ray's object store costs (16 MB: the prepared mnist5k; 113 MB:
  a VGG-13 teacher; 220 MB: the prepared real MNIST).

Serial ``dvc repro`` runs with one torch thread per stage like every runner task
(``LOWSPIKE_THREADS=1``), so both sides compute the same bytes and use the cores the same way.
The machine may be shared: its CPU load just before each run is recorded next to the run.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
QUICK_GRID = {"archs": ["mlp", "lenet5"],
              "points": {arch: ["l1-0.001", "l1-0.01", "hoyer-0.001", "hoyer-0.01"] for arch in ("mlp", "lenet5")}}
FIXED_COST_GRID = {"archs": ["mlp"], "points": {"mlp": ["l1-0.0001", "l1-0.001", "l1-0.01", "l1-0.1"], "lenet5": []},
                   "train": {"max_epochs": 1, "patience": 1}}
OFFLINE = {"DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "LOWSPIKE_THREADS": "1"}


def figure(name: str, value, target: str | None = None, passed: bool | None = None, unit: str = "",
           note: str = "") -> dict:
    return {"name": name, "value": value, "unit": unit, "target": target, "pass": passed, "note": note}


def environment(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env.update(OFFLINE)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        env.setdefault(key, "bench")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        env.setdefault(key, "bench@lowspike")
    return env


def merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


class _QuotingDumper(yaml.SafeDumper):
    """Every string single-quoted, so that YAML 1.1 and 1.2 readers agree on ``'yes'``."""


_QuotingDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'"))


def prepared_repo(folder: Path, regularization: dict) -> Path:
    """A git + DVC repository with the project's pipeline, the default params with the given
    ``regularization`` grid, and ``prepare@mnist5k`` reproduced (in its cache)."""
    root = folder / "base"
    root.mkdir(parents=True)
    shutil.copy2(ROOT / "dvc.yaml", root / "dvc.yaml")
    shutil.copytree(ROOT / "stages", root / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "src" / "lowspike", root / "src" / "lowspike", ignore=shutil.ignore_patterns("__pycache__"))
    from lowspike.config import _ParamsLoader

    params = yaml.load((ROOT / "params.yaml").read_text(), Loader=_ParamsLoader)  # YAML 1.2, as DVC reads it
    params = merge(params, {"data": {"datasets": ["mnist5k"]}, "regularization": regularization,
                            "distillation": {"datasets": ["mnist5k"]}})
    (root / "params.yaml").write_text(yaml.dump(params, Dumper=_QuotingDumper, sort_keys=False))
    (root / ".gitignore").write_text("/mlflow.db\n/mlartifacts/\n/.cache/\n__pycache__/\n")
    env = environment(root)
    subprocess.run(["git", "init", "-q"], cwd=root, env=env, check=True)
    subprocess.run([str(VENV_BIN / "dvc"), "init", "-q"], cwd=root, env=env, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "bench"], cwd=root, env=env, check=True)
    subprocess.run([str(VENV_BIN / "dvc"), "repro", "-q", "prepare@mnist5k"], cwd=root, env=env, check=True)
    return root


def copy_repo(base: Path, name: str) -> Path:
    target = base.parent / name
    shutil.copytree(base, target, symlinks=True)
    return target


def cpu_busy(seconds: float = 1.0) -> float:
    """Fraction of all cores busy over ``seconds`` (the machine's load before a run)."""
    return psutil.cpu_percent(interval=seconds) / 100


class TreeCPU(threading.Thread):
    """CPU seconds (user + system) of a process and all its descendants, sampled every
    ``step`` seconds; a process that ends counts with its last sample (at most ``step`` of its
    time is missed). The Ray daemons a run starts are its descendants, so they count."""

    def __init__(self, pid: int, step: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.step = pid, step
        self.seen: dict[int, float] = {}
        self.done = threading.Event()

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        for process in processes:
            try:
                times = process.cpu_times()
                self.seen[process.pid] = times.user + times.system
            except psutil.Error:
                continue

    def run(self) -> None:
        while not self.done.is_set():
            self._sample()
            self.done.wait(self.step)

    def stop(self) -> float:
        self.done.set()
        self.join()
        return sum(self.seen.values())


def measured(command: list[str], root: Path) -> dict:
    """Run ``command`` in ``root``: wall seconds, CPU seconds of its process tree, the share of
    the machine's cores that tree kept busy, and how busy the machine was just before."""
    background = cpu_busy()
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=root, env=environment(root), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    sampler = TreeCPU(process.pid)
    sampler.start()
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - start
    cpu = sampler.stop()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stdout[-2000:]}\n{stderr[-3000:]}")
    return {"wall_s": wall, "cpu_s": cpu, "cpu_utilization": cpu / (wall * (os.cpu_count() or 1)),
            "background_busy": background, "stdout": stdout, "stderr": stderr}


def timed_run(command: list[str], root: Path) -> dict:
    return measured(command, root)


def in_flight(stage_lines: list[dict]) -> dict:
    """Mean and largest number of stages running at once, from their start and end times."""
    if not stage_lines:
        return {"mean": 0.0, "max": 0}
    events = sorted([(s["started"], 1) for s in stage_lines] + [(s["started"] + s["seconds"], -1)
                                                                for s in stage_lines])
    span = events[-1][0] - events[0][0]
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return {"mean": sum(s["seconds"] for s in stage_lines) / span if span > 0 else 1.0, "max": peak}


def run_sweep_json(root: Path, options: dict) -> dict:
    """The runner on ``root`` with ``options`` in a fresh process (as ``make repro`` starts it),
    measured, with every finished stage's start, seconds and node from its report."""
    code = ("import json, sys; from pathlib import Path; from lowspike.sweep import SweepOptions, run_sweep; "
            "opts = json.loads(sys.argv[1]); opts['targets'] = tuple(opts.get('targets', ())); "
            "r = run_sweep(SweepOptions(root=Path('.'), **opts)); "
            "print(json.dumps({'exit': r.exit_code, 'stages': [{'name': s.name, 'started': s.started, "
            "'seconds': s.seconds, 'node': s.node_id, 'in_process': s.in_process} for s in r.results]}))")
    run = measured([sys.executable, "-c", code, json.dumps(options)], root)
    report = json.loads(run["stdout"].strip().splitlines()[-1])
    if report["exit"] != 0:
        raise RuntimeError(f"sweep exited {report['exit']}:\n{run['stderr'][-3000:]}")
    return {**run, **report}


def lock_outs(root: Path) -> dict[str, str]:
    """``{out path: md5}`` of every out recorded in dvc.lock."""
    stages = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    return {out["path"]: out.get("md5", "") for stage in stages.values() for out in stage.get("outs", [])}


def bench_speedup(folder: Path, quick: bool, workers: int) -> list[dict]:
    grid = QUICK_GRID if quick else {}
    base = prepared_repo(folder / "grid", grid)
    target = "aggregate_conversion"
    serial_root, sweep_root = copy_repo(base, "serial"), copy_repo(base, "sweep")
    serial = timed_run([str(VENV_BIN / "dvc"), "repro", target], serial_root)
    parallel = run_sweep_json(sweep_root, {"targets": [target], "workers": workers})
    same = lock_outs(serial_root) == lock_outs(sweep_root)
    flight = in_flight(parallel["stages"])
    trainings = sum(1 for s in parallel["stages"] if s["name"].startswith("train_"))
    speedup = serial["wall_s"] / parallel["wall_s"]
    return [
        figure(f"speed-up, conversion grid ({trainings} DNNs, {len(parallel['stages'])} stages)", round(speedup, 2),
               ">= 1.5x on 2 cores", speedup >= 1.5, "x",
               f"dvc repro {serial['wall_s']:.0f} s vs sweep {parallel['wall_s']:.0f} s on {workers} workers "
               "(Ray start-up included)"),
        figure("same dvc.lock output hashes as dvc repro", same, "true", same),
        figure("tasks in flight (mean / max)", f"{flight['mean']:.2f} / {flight['max']}", None, None, "",
               f"{workers} workers"),
        figure("CPU utilization, dvc repro", round(serial["cpu_utilization"], 2), None, None, "of all cores",
               f"its process tree: {serial['cpu_s']:.0f} CPU s in {serial['wall_s']:.0f} s; machine "
               f"{serial['background_busy']:.0%} busy just before"),
        figure("CPU utilization, sweep", round(parallel["cpu_utilization"], 2), None, None, "of all cores",
               f"its process tree, Ray daemons included: {parallel['cpu_s']:.0f} CPU s in {parallel['wall_s']:.0f} s; "
               f"machine {parallel['background_busy']:.0%} busy just before"),
    ]


def bench_fixed_cost(folder: Path) -> list[dict]:
    base = prepared_repo(folder / "fixed", FIXED_COST_GRID)
    targets = ["train_dnn_mlp", "train_dnn_baseline"]
    roots = {name: copy_repo(base, name) for name in ("serial", "warm", "fresh")}
    serial = timed_run([str(VENV_BIN / "dvc"), "repro", *targets], roots["serial"])
    warm = run_sweep_json(roots["warm"], {"targets": targets, "workers": 1})
    fresh = run_sweep_json(roots["fresh"], {"targets": targets, "workers": 1, "in_process": False})
    stages = len(warm["stages"])

    def later(report: dict) -> float:
        """Median in-task seconds of the stages after the first (the first pays the worker's imports)."""
        seconds = sorted(s["seconds"] for s in sorted(report["stages"], key=lambda s: s["started"])[1:])
        return seconds[len(seconds) // 2]

    warm_stage, fresh_stage = later(warm), later(fresh)
    return [
        figure("1-epoch MLP stage under dvc repro", round(serial["wall_s"] / stages, 2), None, None, "s/stage",
               f"{stages} stages, {serial['wall_s']:.1f} s"),
        figure("same stage under the sweep, in the warm worker", round(warm_stage, 2), None, None, "s/stage",
               "median task time after the first stage"),
        figure("same stage under the sweep, fresh interpreter", round(fresh_stage, 2), None, None, "s/stage",
               "median task time after the first stage"),
        figure("fixed cost saved by the warm worker", round(fresh_stage - warm_stage, 2), "> 0",
               fresh_stage > warm_stage, "s/stage"),
        figure("whole run: dvc repro / sweep (warm) / sweep (fresh), 1 worker",
               f"{serial['wall_s']:.1f} / {warm['wall_s']:.1f} / {fresh['wall_s']:.1f}", None, None, "s",
               "the sweep's wall time includes starting Ray"),
    ]


def _materialize(refs: list, run_id: str, stage: str) -> float:
    """In a task: the seconds to lay the inputs of ``refs`` into a fresh scratch directory."""
    from lowspike.sweep.files import link_tree
    from lowspike.sweep.worker import _node_input, run_folder

    start = time.perf_counter()
    base = run_folder(run_id, None)
    for ref in refs:
        link_tree(_node_input(ref, base / "inputs"), base / "stages" / stage)
    return time.perf_counter() - start


def _produce(megabytes: int) -> dict[str, bytes]:
    return {"runs/teacher/x/model.pt": os.urandom(megabytes << 20)}


def bench_transfer(sizes_mb: tuple[int, ...]) -> list[dict]:
    """What moving files through Ray's object store costs on one machine: the driver's
    ``ray.put`` of an up-to-date dep, the first task on a node (writes the node's copy) and a
    later one (hard links only); a task's out of the same size back into the workspace."""
    for key, value in OFFLINE.items():
        os.environ.setdefault(key, value)
    import logging

    import ray

    from lowspike.sweep.files import replace_in_workspace
    from lowspike.sweep.worker import remove_run_folder

    figures = []
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level=logging.ERROR)
    materialize, produce = ray.remote(_materialize), ray.remote(_produce)
    try:
        for megabytes in sizes_mb:
            run_id = f"bench-transfer-{megabytes}"
            tree = {"data/prepared/x/inputs.pt": os.urandom(megabytes << 20)}
            start = time.perf_counter()
            ref = ray.put(tree)
            put = time.perf_counter() - start
            first = ray.get(materialize.remote([ref], run_id, "first"))
            later = ray.get(materialize.remote([ref], run_id, "later"))
            ray.get(ray.remote(remove_run_folder).remote(run_id, None))
            start = time.perf_counter()
            out = ray.get(produce.remote(megabytes))
            with tempfile.TemporaryDirectory() as workspace:
                replace_in_workspace(Path(workspace), "runs/teacher/x/model.pt", out, is_dir=False)
            back = time.perf_counter() - start
            figures.append(figure(f"{megabytes} MB dep: driver put / first task on a node / later task",
                                  f"{put:.3f} / {first:.3f} / {later:.3f}", None, None, "s",
                                  "the first task writes the node's copy, later ones hard-link it"))
            figures.append(figure(f"{megabytes} MB out: task to workspace file", round(back, 3), None, None, "s",
                                  "includes making the bytes in the task"))
    finally:
        ray.shutdown()
    return figures


def write_reports(out_dir: Path, sections: dict[str, list[dict]], meta: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "sweep_bench.json").write_text(json.dumps({"meta": meta, "sections": sections}, indent=2) + "\n")
    lines = ["# Sweep runner benchmark", "",
             f"Machine: {meta['cpus']} CPUs ({meta['cpu']}), load average {meta['load_average']}; "
             f"total {meta['seconds']:.0f} s{' (--quick grid)' if meta['quick'] else ''}.", ""]
    for section, figures in sections.items():
        lines += [f"## {section}", "", "| figure | value | target | pass | note |", "|---|---|---|---|---|"]
        for f in figures:
            status = "n/a" if f["pass"] is None else ("PASS" if f["pass"] else "FAIL")
            lines.append(f"| {f['name']} | {f['value']} {f['unit']} | {f['target'] or ''} | {status} | {f['note']} |")
        lines.append("")
    (out_dir / "sweep_bench.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a 10-DNN grid instead of the default grid (68 DNNs)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="runner workers (default: cores)")
    parser.add_argument("--out", default=str(ROOT / "reports"), help="folder for sweep_bench.json and .md")
    parser.add_argument("--only", nargs="*", default=None, help="sections: transfer fixed_cost speedup")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    load = os.getloadavg()
    sections = {}
    with tempfile.TemporaryDirectory(prefix="lowspike-sweep-bench-") as scratch:
        runs = {"transfer": lambda: bench_transfer((16, 113) if args.quick else (16, 113, 220)),
                "fixed_cost": lambda: bench_fixed_cost(Path(scratch)),
                "speedup": lambda: bench_speedup(Path(scratch), args.quick, args.workers)}
        for name, run in runs.items():
            if args.only is None or name in args.only:
                t0 = time.perf_counter()
                sections[name] = run()
                print(f"{name}: {time.perf_counter() - t0:.1f} s", flush=True)
    meta = {"cpus": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
            "load_average": [round(x, 2) for x in load], "quick": args.quick, "workers": args.workers,
            "seconds": time.perf_counter() - started, "python": platform.python_version()}
    write_reports(Path(args.out), sections, meta)
    print(f"wrote {args.out}/sweep_bench.json and sweep_bench.md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
