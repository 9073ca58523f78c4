"""The runner's parts without a Ray cluster: file trees and atomic replacement, the stage
command run in-process, DVC's plan, ``--dry``, the fallback to ``dvc repro`` when Ray
cannot start, and the plan mode on a tiny profile."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lowspike.sweep import SweepOptions, plan, run_sweep
from lowspike.sweep.cost import list_schedule, StageWork
from lowspike.sweep.files import read_tree, replace_in_workspace, subtree
from lowspike.sweep.worker import headline, in_process_argv, run_in_process, shell_argv

from .conftest import CONVERSION_STAGES, TARGET, dvc, sweep_command, sweep_env, tiny_params_file


def test_a_directory_out_is_replaced_whole_and_a_file_out_in_one_rename(tmp_path):
    (tmp_path / "runs/sim/old").mkdir(parents=True)
    (tmp_path / "runs/sim/old/stale.json").write_text("{}")
    tree = {"runs/sim/a.json": b"1", "runs/sim/b/c.json": b"2", "runs/other.txt": b"x"}
    replace_in_workspace(tmp_path, "runs/sim", subtree(tree, "runs/sim"), is_dir=True)
    assert read_tree(tmp_path, "runs/sim") == {"runs/sim/a.json": b"1", "runs/sim/b/c.json": b"2"}

    target = tmp_path / "runs/model.pt"
    target.write_bytes(b"old")
    cache_copy = tmp_path / "cache-object"
    cache_copy.hardlink_to(target)  # DVC's cache may share the old file's inode
    replace_in_workspace(tmp_path, "runs/model.pt", {"runs/model.pt": b"new"}, is_dir=False)
    assert target.read_bytes() == b"new" and cache_copy.read_bytes() == b"old"
    assert not list(tmp_path.rglob(".*.sweep-*"))


def test_read_tree_leaves_out_the_excluded_paths(tmp_path):
    for name in ("runs/dnn/a/model.pt", "runs/dnn/b/model.pt", "runs/dnn/b/train.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    assert sorted(read_tree(tmp_path, "runs/dnn", exclude=["runs/dnn/b"])) == ["runs/dnn/a/model.pt"]
    assert read_tree(tmp_path, "runs/missing") == {}


def test_only_a_plain_python_script_command_runs_in_process(monkeypatch):
    env = {"PATH": str(Path(sys.executable).parent)}
    assert in_process_argv("python stages/train_dnn.py --dataset digits --lam 0.001", env) == [
        "stages/train_dnn.py", "--dataset", "digits", "--lam", "0.001"]
    assert in_process_argv("python stages/x.py > log.txt", env) is None
    assert in_process_argv("python stages/x.py && echo done", env) is None
    assert in_process_argv("python -m lowspike.tracking ui", env) is None
    assert in_process_argv("python stages/x.py", {"PATH": "/nonexistent"}) is None
    assert shell_argv("echo hi")[-2:] == ["-c", "echo hi"]
    assert headline("loading\n[train_dnn digits/mlp/l1] status ok, val accuracy 0.9\nsaved\n") \
        == "status ok, val accuracy 0.9"


def test_a_script_run_in_process_sees_its_own_cwd_argv_and_env_and_leaves_none_behind(tmp_path):
    script = tmp_path / "stages" / "echo.py"
    script.parent.mkdir()
    script.write_text("import os, sys\n"
                      "print('argv', sys.argv[1:], 'cwd', os.getcwd(), 'stage', os.environ['DVC_STAGE'])\n"
                      "os.environ['LEAK'] = '1'\nraise SystemExit(3)\n")
    log = tmp_path / "log.txt"
    before = (Path.cwd(), dict(__import__("os").environ), list(sys.argv))
    code = run_in_process(["stages/echo.py", "--x", "1"], tmp_path, {"DVC_STAGE": "echo@1", "PATH": "/bin"}, log)
    assert code == 3
    assert log.read_text().strip() == f"argv ['--x', '1'] cwd {tmp_path} stage echo@1"
    assert (Path.cwd(), dict(__import__("os").environ), list(sys.argv)) == before


def test_dvc_plans_the_stages_in_its_order_and_marks_downstream_of_a_stale_stage_stale(fresh_repo):
    pipeline = plan(fresh_repo, [TARGET])
    assert [spec.name for spec in pipeline.order] == CONVERSION_STAGES
    assert pipeline.stale["prepare@digits"] == "changed"
    assert pipeline.stale["convert@digits-mlp"].startswith("upstream ")
    convert = next(spec for spec in pipeline.order if spec.name == "convert@digits-mlp")
    assert set(convert.upstream) == {"prepare@digits", "train_dnn_mlp@digits-l1-0.001",
                                     "train_dnn_baseline@digits-mlp"}
    assert "data/prepared/digits" in convert.deps and convert.outs == ("runs/snn/digits/mlp",)


def test_an_edited_code_dep_is_never_restored_from_the_outs_of_the_old_code(fresh_repo):
    done = dvc(fresh_repo, "repro", "prepare@digits")
    assert done.returncode == 0, done.stderr[-2000:]
    module = fresh_repo / "src" / "lowspike" / "data" / "digits.py"
    module.write_text(module.read_text() + "\n# edited\n")
    pipeline = plan(fresh_repo, ["prepare@digits"])
    assert pipeline.restored == [] and pipeline.stale["prepare@digits"] == "changed"
    module.write_text(module.read_text().removesuffix("\n# edited\n"))
    assert plan(fresh_repo, ["prepare@digits"]).stale == {}  # the deps as locked again: up to date


def test_dry_prints_what_would_run_with_its_resources_and_starts_nothing(fresh_repo):
    out = io.StringIO()
    report = run_sweep(SweepOptions(root=fresh_repo, targets=(TARGET,), dry=True), stream=out)
    lines = out.getvalue().splitlines()
    assert report.exit_code == 0 and report.stale == len(CONVERSION_STAGES)
    assert [line.split()[2] for line in lines[:-1]] == CONVERSION_STAGES
    assert "1 GPU where the cluster has GPUs" in lines[1] and "GPU" not in lines[0]
    assert lines[-1] == f"{len(CONVERSION_STAGES)} stage(s) to run"
    assert not (fresh_repo / "dvc.lock").exists()


def test_without_ray_it_says_so_in_one_line_and_runs_dvc_repro(fresh_repo, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    for key, value in sweep_env(fresh_repo).items():
        monkeypatch.setenv(key, value)
    out = io.StringIO()
    report = run_sweep(SweepOptions(root=fresh_repo, targets=("prepare@digits",)), stream=out)
    assert out.getvalue().startswith("lowspike.sweep: Ray could not start (ModuleNotFoundError")
    assert out.getvalue().count("\n") == 1
    assert report.fallback and report.exit_code == 0
    status = dvc(fresh_repo, "status", "--json", "prepare@digits")
    assert json.loads(status.stdout or "{}") == {}


def test_list_schedule_is_the_critical_path_with_enough_workers_and_the_sum_with_one():
    stages = [StageWork("a", "a", None, None, None, ()), StageWork("b", "b", None, None, None, ("a",)),
              StageWork("c", "c", None, None, None, ("a",)), StageWork("d", "d", None, None, None, ("b", "c"))]
    seconds = {"a": 1.0, "b": 4.0, "c": 2.0, "d": 1.0}
    assert list_schedule(stages, seconds, 1) == 8.0
    assert list_schedule(stages, seconds, 2) == 6.0
    assert list_schedule(stages, seconds, 8) == 6.0


def test_plan_mode_counts_the_tiny_profile_and_prices_its_stages(tmp_path):
    params = tiny_params_file(tmp_path / "tiny.yaml")
    out = tmp_path / "plan.json"
    result = subprocess.run(sweep_command("plan", "--params", str(params), "--workers", "1", "2", "--json", str(out),
                                          "--repeats", "1"),
                            cwd=Path(__file__).resolve().parents[2], env=sweep_env(tmp_path), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "plan for" in result.stdout and "14 stages" in result.stdout
    estimate = json.loads(out.read_text())
    assert {name: family["stages"] for name, family in estimate["families"].items()} == {
        "prepare": 1, "train_dnn_mlp": 1, "train_dnn_baseline": 1, "convert": 1, "simulate": 1, "evaluate": 1,
        "aggregate_conversion": 1, "train_teacher": 1, "train_student_baseline_digits": 1, "evaluate_students": 1,
        "aggregate_distillation": 1, "export_conversion": 1, "export_distillation": 1, "report": 1}
    priced = [row for row in estimate["stages"] if "cpu_s" in row]
    assert {row["family"] for row in priced} == {"train_dnn_mlp", "train_dnn_baseline", "convert", "simulate", "evaluate",
                                                 "train_teacher", "train_student_baseline_digits", "evaluate_students",
                                                 "export_conversion", "export_distillation"}
    assert all(row["cpu_s"] > 0 for row in priced)
    assert estimate["wall_hours"]["1"] == pytest.approx(sum(row["cpu_s"] for row in priced) / 3600)
    assert estimate["wall_hours"]["2"] < estimate["wall_hours"]["1"]
    assert estimate["gpu_hours"] is None or estimate["gpu_hours"] > 0
    calibration = next(v for k, v in estimate["measurements"].items() if k.startswith("calibration"))
    assert calibration["samples"] == 1258 and calibration["calibration_bytes"] >= 0


def test_an_export_stage_is_priced_for_its_baseline_and_each_model_its_tables_can_select(tmp_path):
    from lowspike.params import read_params
    from lowspike.sweep.cost import stage_seconds

    from ..reliability.conftest import EMPTY_GRIDS, tiny_params, write_params

    grids = {**EMPTY_GRIDS, "activation": {"l1": [1.0, 2.0], "l2": [50.0]}, "logits": {"l2": [0.1], "l2sq": []}}
    params = read_params(write_params(tmp_path / "tiny.yaml", tiny_params({"distillation": {"grids": {"digits": grids}}})))
    units = type("Units", (), {})()
    units.params = params
    units.export_conversion = lambda arch, dataset: 0.01  # per step of one batch of 50 samples
    units.export_student = lambda dataset: 0.5  # per batch of 50 samples at the student's T
    conversion = StageWork("export_conversion@digits-mlp", "export_conversion", "digits", "mlp", None, ())
    # the baseline and l1's Table 1 pick: 2 models x ceil(200 / 50) = 4 batches x T = 10 steps x 0.01 s
    assert stage_seconds(conversion, units, "cpu") == pytest.approx(2 * 4 * 10 * 0.01)
    distillation = StageWork("export_distillation@digits", "export_distillation", "digits", None, None, ())
    # the baseline, ActReg's and LogReg's Table III picks: 3 models x 4 batches x 0.5 s
    assert stage_seconds(distillation, units, "cpu") == pytest.approx(3 * 4 * 0.5)


def _spec(name: str, *upstream: str):
    from lowspike.sweep.pipeline import StageSpec

    return StageSpec(name=name, commands=(), wdir=".", deps=(), params_files=(), outs=(), upstream=upstream)


# train_a -> convert -> simulate -> report, student -> report: DVC's order lists the student last
CHAIN = [_spec("train_a"), _spec("convert", "train_a"), _spec("simulate", "convert"), _spec("student"),
         _spec("report", "simulate", "student")]


def test_the_queue_puts_the_longest_chain_ahead_first_and_keeps_dependencies_in_order():
    from lowspike.sweep.pipeline import critical_path_order

    unit = [spec.name for spec in critical_path_order(CHAIN)]
    assert unit == ["train_a", "convert", "simulate", "student", "report"]  # ranks 4, 3, 2, 2 (tie: DVC), 1
    seconds = {"train_a": 1.0, "convert": 1.0, "simulate": 5.0, "student": 10.0, "report": 1.0}
    weighted = [spec.name for spec in critical_path_order(CHAIN, seconds)]
    assert weighted == ["student", "train_a", "convert", "simulate", "report"]  # 11 > 8 > 7 > 6 > 1


def test_the_runner_queue_starts_the_long_chain_beside_independent_work():
    from lowspike.sweep.cost import list_schedule

    # DVC lists the two students first: taken in that order, two workers end at 10 s
    # (s1, s2 | train_a at 3, simulate 4-9, report 9-10); by rank, train_a and its simulation
    # start at once and the students fill the other worker: 7 s
    stages = [StageWork(name, name, None, None, None, upstream) for name, upstream in
              [("s1", ()), ("s2", ()), ("train_a", ()), ("simulate", ("train_a",)),
               ("report", ("s1", "s2", "simulate"))]]
    seconds = {"s1": 3.0, "s2": 3.0, "train_a": 1.0, "simulate": 5.0, "report": 1.0}
    assert list_schedule(stages, seconds, 2) == 7.0
    assert list_schedule(stages, seconds, 1) == 13.0


def test_dispatch_submits_ready_stages_by_rank_within_the_free_cpus_and_skips_downstream_of_a_failure():
    from lowspike.sweep.runner import Dispatch

    submitted, skipped = [], {}

    def submit(spec, upstream):
        submitted.append((spec.name, tuple(upstream)))
        return f"ref-{spec.name}"

    seconds = {"train_a": 1.0, "convert": 1.0, "simulate": 5.0, "student": 10.0, "report": 1.0}
    dispatch = Dispatch(CHAIN, seconds, submit, lambda spec: (1, 0.0), skipped)
    dispatch.fill({"CPU": 1.0})
    assert submitted == [("student", ())]  # the highest rank, one CPU
    dispatch.fill({"CPU": 2.0})
    assert submitted[-1] == ("train_a", ())
    dispatch.pending.pop("ref-train_a")
    dispatch.finished(CHAIN[0], "ref-train_a")
    dispatch.fill({"CPU": 2.0})
    assert submitted[-1] == ("convert", ("ref-train_a",)) and "train_a" not in dispatch.results  # last reader took it
    dispatch.pending.pop("ref-convert")
    dispatch.finished(CHAIN[1], None)  # convert failed: simulate and report are never submitted
    dispatch.fill({"CPU": 2.0})
    assert skipped == {"simulate": "convert", "report": "convert"}
    assert [name for name, _ in submitted] == ["student", "train_a", "convert"] and dispatch.waiting == []


def test_dispatch_submits_one_stage_on_a_cluster_without_free_cpus_yet():
    from lowspike.sweep.runner import Dispatch

    submitted = []
    dispatch = Dispatch(CHAIN, {}, lambda spec, up: submitted.append(spec.name) or spec.name, lambda spec: (1, 0.0), {})
    dispatch.fill({})  # an autoscaling cluster with no worker yet: one task shows the demand
    assert submitted == ["train_a"]
    dispatch.fill({})
    assert submitted == ["train_a"]
