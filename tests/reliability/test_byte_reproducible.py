"""Forcing a stage to re-run with the same inputs writes the same bytes, so DVC re-runs nothing
downstream of it (a ``torch.save`` through a temporary file name, or a wall-clock field in a
JSON artifact, used to change every output and invalidate every training)."""

from __future__ import annotations

import json

import pytest
import torch

from lowspike.checkpoints import save_torch, torch_bytes

from .conftest import dvc

pytestmark = pytest.mark.integration


def test_equal_objects_save_to_equal_bytes_whatever_the_file_name(tmp_path):
    obj = {"state_dict": {"w": torch.arange(6.0).reshape(2, 3)}, "arch": "mlp"}
    save_torch(tmp_path / "a.pt", obj)
    save_torch(tmp_path / "other" / "model.pt", obj)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "other" / "model.pt").read_bytes() == torch_bytes(obj)
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file is gone


def test_a_forced_prepare_leaves_the_trainings_and_the_conversion_up_to_date(tiny_repo):
    target = "evaluate@digits-mlp"
    first = dvc(tiny_repo, "repro", target)
    assert first.returncode == 0, first.stderr[-2000:]
    outputs = sorted(p for p in (tiny_repo / "runs").rglob("*") if p.is_file())
    before = {p: p.read_bytes() for p in outputs}

    forced = dvc(tiny_repo, "repro", "-f", "-s", "prepare@digits")
    assert forced.returncode == 0, forced.stderr[-2000:]
    status = dvc(tiny_repo, "status", "--json", target)
    assert status.returncode == 0, status.stderr[-2000:]
    assert json.loads(status.stdout or "{}") == {}, status.stdout

    again = dvc(tiny_repo, "repro", "-f", "train_dnn_mlp@digits-l1-0.001", "-s")
    assert again.returncode == 0, again.stderr[-2000:]
    after = {p: p.read_bytes() for p in outputs}
    assert after == before
    assert json.loads(dvc(tiny_repo, "status", "--json", target).stdout or "{}") == {}
