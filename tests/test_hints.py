"""Feature-based KD (FitNets hints): the hint loss on hand-computed cases, the declared hints of
every student/teacher pair, and a hinted training step."""

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from lowspike.config import default_setups, ParamsError
from lowspike.distillation import grids_of
from lowspike.params import read_params, validate_params
from lowspike.data import sample_shape
from lowspike.hints import (
    HintedStudent,
    align_resolution,
    build_hint_projections,
    hint_loss,
    normalize_channels,
    projection_for,
    spike_rate,
)
from lowspike.models import MODELS, build_student, build_teacher, count_parameters, hint_pairs


def _conv_projection(weight: float, bias: float) -> nn.Conv2d:
    projection = nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        projection.weight.fill_(weight)
        projection.bias.fill_(bias)
    return projection


def test_hint_loss_of_a_toy_pair_by_hand():
    # hint 1, a map: spikes [T=2, B=1, C=1, 2, 2] -> rate [[1, 0], [.5, 1]];
    # teacher [B=1, C=1, 4, 4] whose 2x2 blocks average [[2, 0], [2, 4]]
    s1 = torch.tensor([[[[[1.0, 0.0], [1.0, 1.0]]]], [[[[1.0, 0.0], [0.0, 1.0]]]]])
    f1 = torch.tensor([[[[2.0, 2.0, 0.0, 0.0], [2.0, 2.0, 0.0, 0.0],
                         [1.0, 3.0, 4.0, 4.0], [3.0, 1.0, 4.0, 4.0]]]])
    p1 = _conv_projection(2.0, 0.5)  # P(r) = 2 r + .5 = [[2.5, .5], [1.5, 2.5]]
    rms1 = math.sqrt((4 + 0 + 4 + 16) / 4)  # per-channel RMS of the pooled teacher map
    h1 = ((2.5 - 2 / rms1) ** 2 + (0.5 - 0) ** 2 + (1.5 - 2 / rms1) ** 2 + (2.5 - 4 / rms1) ** 2) / 4
    # hint 2, a vector: spikes [T=2, B=2, C=2] -> rates (1, .5) and (0, 1); teacher [B=2, C=1] = 3, 4
    s2 = torch.tensor([[[1.0, 1.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    f2 = torch.tensor([[3.0], [4.0]])
    p2 = nn.Linear(2, 1)
    with torch.no_grad():
        p2.weight.copy_(torch.tensor([[1.0, 2.0]]))
        p2.bias.fill_(-1.0)  # P = (1 + 1 - 1, 0 + 2 - 1) = (1, 1)
    rms2 = math.sqrt((9 + 16) / 2)
    h2 = ((1 - 3 / rms2) ** 2 + (1 - 4 / rms2) ** 2) / 2

    assert hint_loss([s1], [f1], [p1]).item() == pytest.approx(h1, rel=1e-6)
    assert hint_loss([s2], [f2], [p2]).item() == pytest.approx(h2, rel=1e-6)
    assert hint_loss([s1, s2], [f1, f2], [p1, p2]).item() == pytest.approx((h1 + h2) / 2, rel=1e-6)


def test_pieces_of_the_hint_loss():
    spikes = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]], [[0.0, 0.0]], [[1.0, 0.0]]])  # [T=4, B=1, 2]
    assert spike_rate(spikes).tolist() == [[0.75, 0.25]]
    # frames 4 -> 2 for the teacher (windows averaged), the student kept at 2
    student, teacher = torch.ones(1, 3, 2), torch.tensor([[[1.0, 3.0, 5.0, 7.0]]])
    a, b = align_resolution(student, teacher)
    assert a is student and b.tolist() == [[[2.0, 6.0]]]
    # per dimension, the larger map is pooled to the smaller size: 4x4 and 2x8 both to 2x4
    a, b = align_resolution(torch.arange(16.0).reshape(1, 1, 4, 4), torch.arange(16.0).reshape(1, 1, 2, 8))
    assert a.tolist() == [[[[2.0, 3.0, 4.0, 5.0], [10.0, 11.0, 12.0, 13.0]]]]
    assert b.tolist() == [[[[0.5, 2.5, 4.5, 6.5], [8.5, 10.5, 12.5, 14.5]]]]
    # each channel to unit RMS over batch and positions; a silent channel stays 0
    f = torch.tensor([[[3.0, 4.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])  # [B=2, C=2, 2]
    rms = math.sqrt((9 + 16) / 4)
    expected = torch.tensor([[[3 / rms, 4 / rms], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    assert torch.allclose(normalize_channels(f), expected)
    assert isinstance(projection_for((4, 5, 5), (8, 3, 3)), nn.Conv2d)
    assert isinstance(projection_for((4, 12), (8, 24)), nn.Conv1d)
    assert isinstance(projection_for((4,), (8,)), nn.Linear)
    with pytest.raises(ValueError, match="different dimensions"):
        projection_for((4, 5, 5), (8,))


def _pairs_to_check() -> set[tuple[str, str, tuple[int, ...]]]:
    """Every student/teacher pair of the default setups and of params.yaml, with a sample shape of
    one of its datasets; and every declared pair on an input of its modality."""
    params = read_params(Path(__file__).resolve().parents[1] / "params.yaml")
    setups = {**default_setups(), **params.distillation.setups}
    pairs = {(s.student, s.teacher, sample_shape(d, params.data)) for d, s in setups.items()}
    image, audio = (1, 28, 28), sample_shape("spoken-commands", params.data)
    pairs |= {(s.name, t, audio if s.name == "sres8" else image) for s in MODELS.values() for t in s.hints}
    return pairs


@pytest.mark.parametrize("student_name, teacher_name, shape", [
    pytest.param(*pair, id=f"{pair[0]}-{pair[1]}-{'x'.join(map(str, pair[2]))}") for pair in sorted(_pairs_to_check())])
def test_every_pair_of_the_setups_has_hints_that_fit_its_models(student_name, teacher_name, shape):
    torch.manual_seed(0)
    student = build_student(student_name, input_shape=shape, num_classes=10, timesteps=2, width=0.125)
    teacher = build_teacher(teacher_name, input_shape=shape, num_classes=10, width=0.125).eval()
    pairs = hint_pairs(student_name, teacher_name)
    assert len({s for s, _ in pairs}) == len(pairs)
    assert {s for s, _ in pairs} <= set(student.spiking_layer_names)
    assert {t for _, t in pairs} <= set(teacher.feature_names)
    hints = build_hint_projections(student_name, teacher_name, student, teacher, shape)
    x = torch.rand(2, *shape)
    _, features = teacher.forward_with_features(x)
    loss = hints(student(x).spikes, features)
    assert loss.dim() == 0 and torch.isfinite(loss)
    # the teacher map is averaged down to the student's resolution, never upsampled
    spikes = dict(zip(student.spiking_layer_names, student(x).spikes))
    for s, t in pairs:
        assert all(ft >= fs for fs, ft in zip(spikes[s].shape[3:], features[t].shape[2:]))


def test_an_undeclared_pair_is_refused_by_name():
    with pytest.raises(KeyError, match="no feature hints declared for student 'scnn' with teacher 'resnet15'"):
        hint_pairs("scnn", "resnet15")


def _tiny_image_pair():
    torch.manual_seed(0)
    student = build_student("scnn", input_shape=(1, 12, 12), num_classes=3, timesteps=3, width=0.5)
    teacher = build_teacher("vgg13", input_shape=(1, 12, 12), num_classes=3, width=0.125).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    hints = build_hint_projections("scnn", "vgg13", student, teacher, (1, 12, 12))
    return student, teacher, hints


def test_feature_losses_add_the_weighted_hint_and_the_activation_penalty():
    from torch.nn import functional as F

    from lowspike.penalties import spike_activity_penalty
    from lowspike.distillation import StudentRun
    from lowspike.studies.distillation_train import make_student_loss

    student, teacher, hints = _tiny_image_pair()
    x, y = torch.rand(4, 1, 12, 12) * 3, torch.tensor([0, 1, 2, 0])
    out = student(x)
    _, features = teacher.forward_with_features(x)
    ce, hint = F.cross_entropy(out.logits, y).item(), hints(out.spikes, features).item()
    penalty = spike_activity_penalty(out.spikes, "l1").item()
    assert hint > 0 and penalty > 0

    feature = StudentRun("d", "feature", 0, (("weight", 2.5),))
    step = make_student_loss(feature, 0.1, teacher, hints=hints)(student, x, y)
    assert step.loss.item() == pytest.approx(ce + 2.5 * hint, rel=1e-5)
    assert step.extras["hint"] == pytest.approx(hint, rel=1e-5)
    both = StudentRun("d", "feature_act", 0, (("weight", 2.5), ("norm", "l1"), ("lam", 3.0)))
    step = make_student_loss(both, 0.1, teacher, hints=hints)(student, x, y)
    assert step.loss.item() == pytest.approx(ce + 2.5 * hint + 3.0 * penalty, rel=1e-5)
    with pytest.raises(ValueError, match="needs its hint projections"):
        make_student_loss(feature, 0.1, teacher)
    with pytest.raises(ValueError, match="needs a teacher"):
        make_student_loss(feature, 0.1, hints=hints)


def test_a_hinted_training_step_changes_the_projection_and_the_student_not_the_teacher():
    from lowspike.distillation import StudentRun
    from lowspike.studies.distillation_train import make_student_loss

    student, teacher, hints = _tiny_image_pair()
    trained = HintedStudent(student, hints)
    assert count_parameters(trained) == count_parameters(student) + sum(p.numel() for p in hints.parameters())
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    optimizer = torch.optim.Adam(trained.parameters(), lr=1.0e-2)
    x, y = torch.rand(4, 1, 12, 12) * 3, torch.tensor([0, 1, 2, 0])
    step = make_student_loss(StudentRun("d", "feature", 0, (("weight", 1.0),)), 0.1, teacher, hints=hints)
    optimizer.zero_grad()
    step(trained, x, y).loss.backward()
    optimizer.step()
    after = trained.state_dict()
    for key in ("hints.maps.0.weight", "hints.maps.1.weight", "student.conv1.weight", "student.conv2.weight"):
        assert not torch.equal(before[key], after[key]), key
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_before.items())

    # the hint alone reaches the student's first layer through the spike rates (surrogate gradient)
    trained.zero_grad()
    _, features = teacher.forward_with_features(x)
    hints(student(x).spikes, features).backward()
    assert student.conv1.weight.grad.abs().sum() > 0
    assert student.readout.weight.grad is None or student.readout.weight.grad.abs().sum() == 0


def test_feature_grids_are_validated_and_need_declared_hints():
    grids = {"mnist5k": {"feature": {"weights": [0.5]},
                         "feature_act": {"weights": [1.0], "norms": ["l1"], "lambdas": [2.0]}}}
    params = validate_params({"distillation": {"datasets": ["mnist5k"], "grids": grids}})
    assert grids_of(params, "mnist5k").uses_hints
    assert not grids_of(validate_params({}), "mnist5k").uses_hints  # every grid is empty by default
    with pytest.raises(ParamsError, match=r"distillation.grids.mnist5k.feature.weights\[0\]: got -1.0"):
        validate_params({"distillation": {"grids": {"mnist5k": {"feature": {"weights": [-1.0]}}}}})
    with pytest.raises(ParamsError, match=r"distillation.grids.mnist5k.feature_act.norms\[0\]: got 'l3'"):
        validate_params({"distillation": {"grids": {"mnist5k": {"feature_act": {"weights": [1.0], "norms": ["l3"]}}}}})
    unmapped = {"student": "sres8", "teacher": "vgg13", "neuron": "lif", "timesteps": 2,
                "student_train": {}, "teacher_train": {}}
    raw = {"distillation": {"datasets": ["mnist5k"], "setups": {"mnist5k": unmapped}, "grids": grids}}
    with pytest.raises(ParamsError, match="distillation.setups.mnist5k: got student 'sres8' with teacher 'vgg13': "
                                          "feature-based KD"):
        validate_params(raw)
    raw["distillation"]["grids"] = {"mnist5k": {"feature": {"weights": []}}}
    validate_params(raw)  # without hint runs the pair needs no hints
