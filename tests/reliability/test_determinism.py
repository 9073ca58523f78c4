"""The same params and seed give byte-identical train.json and model.pt on CPU across two runs:
a tiny digits MLP of the conversion study and a tiny spiking student of the distillation study,
each trained twice in separate folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from lowspike.checkpoints import load_torch
from lowspike.artifacts import read_json
from lowspike.params import validate_params
from lowspike.studies import conversion_points
from lowspike.studies import conversion_train
from lowspike import distillation
from lowspike.studies import distillation_train

from .conftest import tiny_params

TRAIN = {"optimizer": "adam", "lr": 1.0e-2, "batch_size": 64, "max_epochs": 3, "patience": 3, "seed": 7}


def _twice(workdir: Path, train) -> list[Path]:
    """Run ``train()`` in two fresh folders sharing the prepared data; return the folders."""
    folders = []
    for name in ("first", "second"):
        folder = workdir / name
        shutil.copytree(workdir / "data", folder / "data")
        os.chdir(folder)
        train()
        folders.append(folder)
    os.chdir(workdir)
    return folders


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_torch(path)["state_dict"]


def _assert_identical(folders: list[Path], run_folder: str) -> dict:
    """Both runs wrote the same bytes (DVC hashes bytes: equal weights in different bytes would
    still re-run everything downstream)."""
    for name in ("train.json", "model.pt"):
        first_bytes, second_bytes = ((f / run_folder / name).read_bytes() for f in folders)
        assert first_bytes == second_bytes, name
    first = read_json(folders[0] / run_folder / "train.json")
    assert "train_seconds" not in first
    a, b = (_weights(f / run_folder / "model.pt") for f in folders)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return first


def test_a_dnn_point_trains_identically_twice(workdir):
    params = validate_params(tiny_params({"regularization": {"train": TRAIN}}))
    point = conversion_points.Point("digits", "mlp", "l1", 1.0e-3)
    folders = _twice(workdir, lambda: conversion_train.train_point(params, point))
    summary = _assert_identical(folders, "runs/dnn/digits/mlp/l1-0.001")
    assert (summary["status"], summary["epochs_run"], summary["seed"]) == ("ok", 3, 7)
    assert len({h["train_loss"] for h in summary["history"]}) == 3  # it trained: the loss moved


def test_a_spiking_student_trains_identically_twice(workdir):
    params = validate_params(tiny_params())
    run = distillation.StudentRun("digits", "activation", 3, (("norm", "l1"), ("lam", 1.0e-3)))
    folders = _twice(workdir, lambda: distillation_train.train_student(params, run))
    summary = _assert_identical(folders, "runs/student/digits/act-l1-0.001/seed3")
    assert summary["status"] == "ok" and summary["seed"] == 3
    assert all(h["train_spikerate"] > 0 for h in summary["history"])
