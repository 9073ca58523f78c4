"""Feature-based knowledge distillation: FitNets hints (Romero et al., "FitNets: Hints for thin
deep nets", ICLR 2015, reference [15] of the distillation paper, named in its Sec. VI as future
work) from an FNN teacher's intermediate feature maps to a spiking student's spike rates.

The student's "guided" layer is a spiking layer, and what it offers is its spike rate
``r = (1/T) sum_t s[t]`` (per neuron, in [0, 1]). A small learned projection ``P`` (a 1x1
convolution for a map, a linear layer for a vector; FitNets' "regressor") maps the student's
channels to the teacher's, and the hint loss pulls ``P(r)`` towards the teacher's "hint" map.
The projections train with the student but are not part of it: :class:`HintedStudent` holds both
for the training loop (optimizer, resume checkpoint, best state), and only the student is saved.

Which teacher map guides which student layer is declared once, per student/teacher pair, in
the student's entry of :data:`lowspike.models.MODELS` (``hints``): each student layer gets the teacher map at the nearest spatial (or
temporal) resolution at or above its own, the last layer of the teacher at that resolution, so
the teacher map is only ever averaged down, never upsampled.

Unlike FitNets, which trains the student up to its guided layer on the hint first and then the
whole student with KD, the hint term is added to the one training loss (jointly, one stage):
``L = CE + w L_hint`` (method ``feature``) or ``L = CE + w L_hint + lambda Omega`` with the
activation regularizer of Eqs. 9-10 (method ``feature_act``); see :func:`hint_loss`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .models import HintPair, hint_pairs

def spike_rate(spikes: torch.Tensor) -> torch.Tensor:
    """``r = (1/T) sum_t s[t]``: the firing rate per neuron ``[B, ...]`` of spikes ``[T, B, ...]``."""
    return spikes.mean(dim=0)


def align_resolution(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both maps ``[B, C, *size]`` average-pooled (adaptive average pooling) to their common
    resolution ``min(size_a, size_b)`` per dimension; vectors ``[B, C]`` are returned as they are.

    Averaging (not interpolation) because it is what the students' own pooling does, it keeps
    each channel's mean over a region and never asks the student for detail the target lacks."""
    if a.dim() != b.dim():
        raise ValueError(f"cannot align a {a.dim() - 2}-D map with a {b.dim() - 2}-D map")
    if a.dim() == 2:
        return a, b
    size = tuple(min(x, y) for x, y in zip(a.shape[2:], b.shape[2:]))
    pool = F.adaptive_avg_pool1d if a.dim() == 3 else F.adaptive_avg_pool2d
    return (a if tuple(a.shape[2:]) == size else pool(a, size)), (b if tuple(b.shape[2:]) == size else pool(b, size))


def normalize_channels(feature: torch.Tensor, tiny: float = 1.0e-12) -> torch.Tensor:
    """``f_c / sqrt(mean_{b, positions} f_c^2)``: each channel of a teacher map ``[B, C, ...]``
    scaled to unit root mean square over the batch and its positions (a channel that is 0
    everywhere stays 0).

    Our choice: the teacher's post-ReLU channels differ in scale by orders of magnitude, so an
    unnormalized MSE would be dominated by a few loud channels and its size would depend on the
    teacher's width and batch norm; scaling (not centering) keeps the map non-negative like a
    spike rate, and makes one hint weight mean the same for every declared pair."""
    reduce = [0, *range(2, feature.dim())]
    rms = feature.square().mean(dim=reduce, keepdim=True).sqrt()
    shape = [1, feature.shape[1]] + [1] * (feature.dim() - 2)
    return feature / rms.clamp_min(tiny).reshape(shape)


def projection_for(student_shape: Sequence[int], teacher_shape: Sequence[int]) -> nn.Module:
    """FitNets' regressor from a student rate map to a teacher map (per-sample shapes ``(C, ...)``):
    a 1x1 convolution (``Conv2d`` for ``(C, H, W)``, ``Conv1d`` for ``(C, frames)``) or, for
    vectors ``(C,)``, a linear layer, from the student's channels to the teacher's, with a bias."""
    if len(student_shape) != len(teacher_shape):
        raise ValueError(f"student map {tuple(student_shape)} and teacher map {tuple(teacher_shape)} "
                         "have different dimensions")
    c_s, c_t = int(student_shape[0]), int(teacher_shape[0])
    if len(student_shape) == 3:
        return nn.Conv2d(c_s, c_t, 1)
    if len(student_shape) == 2:
        return nn.Conv1d(c_s, c_t, 1)
    if len(student_shape) == 1:
        return nn.Linear(c_s, c_t)
    raise ValueError(f"no projection for maps of shape {tuple(student_shape)}")


def hint_term(rate: torch.Tensor, feature: torch.Tensor, projection: nn.Module) -> torch.Tensor:
    """One hint: ``mean_{b, c, p} (P(A(r)) - N(A(f)))^2`` with ``A`` the average pooling to the
    common resolution (:func:`align_resolution`), ``N`` the per-channel normalization
    (:func:`normalize_channels`) and ``P`` the projection. Pooling the rate before the 1x1
    projection equals pooling after it (both are linear; a pooled constant is the constant)."""
    rate, feature = align_resolution(rate, feature.detach().float())
    return F.mse_loss(projection(rate), normalize_channels(feature))


class HintProjections(nn.Module):
    """The projections of one student/teacher pair, one per declared hint, and the hint loss."""

    def __init__(self, pairs: Sequence[HintPair], student_layers: Sequence[str],
                 student_shapes: dict[str, Sequence[int]], teacher_shapes: dict[str, Sequence[int]]):
        super().__init__()
        if not pairs:
            raise ValueError("no hints")
        self.pairs = tuple((str(s), str(t)) for s, t in pairs)
        unknown = [s for s, _ in self.pairs if s not in student_layers] + \
                  [t for _, t in self.pairs if t not in teacher_shapes]
        if unknown:
            raise KeyError(f"hint layers not in the models: {unknown}")
        self.student_index = [list(student_layers).index(s) for s, _ in self.pairs]
        self.maps = nn.ModuleList(projection_for(student_shapes[s], teacher_shapes[t]) for s, t in self.pairs)

    def forward(self, spikes: Sequence[torch.Tensor], teacher_features: dict[str, torch.Tensor]) -> torch.Tensor:
        return hint_loss([spikes[i] for i in self.student_index], [teacher_features[t] for _, t in self.pairs],
                         list(self.maps))


def hint_loss(student_spikes: Sequence[torch.Tensor], teacher_features: Sequence[torch.Tensor],
              projections: Sequence[nn.Module]) -> torch.Tensor:
    """The hint loss, the mean over the m declared hints of :func:`hint_term`::

        L_hint = (1/m) sum_j mean_{b, c, p} (P_j(A(r_j)) - N(A(f_j)))^2,   r_j = (1/T) sum_t s_j[t]

    for the student's spikes ``s_j`` ``[T, B, C_s, ...]`` and the teacher's maps ``f_j``
    ``[B, C_t, ...]`` (FitNets' Eq. 3, Romero et al. 2015, with the spike rate as the guided
    layer's output and our per-channel normalization of the hint). The mean over hints makes a
    hint weight independent of how many hints a pair declares."""
    if not (len(student_spikes) == len(teacher_features) == len(projections)) or not projections:
        raise ValueError("one student spike tensor, one teacher map and one projection per hint")
    terms = [hint_term(spike_rate(s), f, p) for s, f, p in zip(student_spikes, teacher_features, projections)]
    return torch.stack(terms).mean()


def build_hint_projections(student_name: str, teacher_name: str, student: nn.Module, teacher: nn.Module,
                           input_shape: Sequence[int]) -> HintProjections:
    """The :class:`HintProjections` of the declared hints, sized by running both models once on a
    zero sample (in eval mode; the student's training mode is restored)."""
    pairs = hint_pairs(student_name, teacher_name)
    was_training = student.training
    student.eval()
    with torch.no_grad():
        zeros = torch.zeros(1, *input_shape, device=next(student.parameters()).device)
        spikes = student(zeros).spikes
        _, features = teacher.forward_with_features(zeros)
    student.train(was_training)
    layers = list(student.spiking_layer_names)
    student_shapes = {name: tuple(s.shape[2:]) for name, s in zip(layers, spikes)}
    teacher_shapes = {name: tuple(f.shape[1:]) for name, f in features.items()}
    return HintProjections(pairs, layers, student_shapes, teacher_shapes)


class HintedStudent(nn.Module):
    """A student and its hint projections as one module for the training loop: the optimizer, the
    resume checkpoint and the early-stopping best state hold both; the forward pass, the
    spiking layers and the deployed model (``model.pt``, parameter count, evaluation, energy) are
    the student's alone."""

    def __init__(self, student: nn.Module, hints: HintProjections):
        super().__init__()
        self.student = student
        self.hints = hints

    def forward(self, x: torch.Tensor):
        return self.student(x)

    def neuron_counts(self) -> list[int]:
        return self.student.neuron_counts()
