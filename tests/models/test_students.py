"""The spiking students (SCNN, SRes-8, SVGG-11) and FNN teachers (VGG-13, ResNet-15, VGG-16):
parameter and neuron counts, and the layer-by-layer schedule against a timestep-by-timestep
reference."""

import pytest
import snntorch
import torch
from torch.nn import functional as F

from lowspike.models import build_student, build_teacher, count_parameters


def test_scnn_matches_the_paper_size():
    model = build_student("scnn", input_shape=(1, 28, 28), num_classes=10)
    assert count_parameters(model) == 42_090  # Table II: 42k
    # conv1: 16 x 26 x 26, conv2: 64 x 11 x 11 (padding 1, IF before pooling)
    assert model.neuron_counts() == [16 * 26 * 26, 64 * 11 * 11]
    assert model.spiking_layer_names == ["spike1", "spike2"]
    assert model.timesteps == 10


def test_scnn_layer_by_layer_equals_a_step_by_step_reference():
    torch.manual_seed(0)
    model = build_student("scnn", input_shape=(1, 28, 28), num_classes=10, timesteps=6)
    with torch.no_grad():
        model.conv1.weight.mul_(4.0)
        model.conv2.weight.mul_(4.0)
    x = torch.rand(3, 1, 28, 28)
    out = model(x)
    lif1 = snntorch.Leaky(beta=1.0, reset_mechanism="subtract")
    lif2 = snntorch.Leaky(beta=1.0, reset_mechanism="subtract")
    m1, m2 = lif1.init_leaky(), lif2.init_leaky()
    readout, s1_all, s2_all = [], [], []
    for _ in range(6):
        s1, m1 = lif1(model.conv1(x), m1)
        s2, m2 = lif2(model.conv2(F.avg_pool2d(s1, 2)), m2)
        readout.append(model.readout(F.avg_pool2d(s2, 2).flatten(1)))
        s1_all.append(s1)
        s2_all.append(s2)
    assert torch.equal(out.spikes[0], torch.stack(s1_all))
    assert torch.equal(out.spikes[1], torch.stack(s2_all))
    assert torch.allclose(out.readout, torch.stack(readout), atol=1e-6)
    assert torch.allclose(out.logits, torch.stack(readout).mean(0), atol=1e-6)
    assert out.spikes[0].sum() > 0 and out.spikes[1].sum() > 0


def test_scnn_trains_through_the_surrogate():
    torch.manual_seed(0)
    model = build_student("scnn", input_shape=(1, 28, 28), num_classes=10, timesteps=3)
    out = model(torch.rand(4, 1, 28, 28))
    (F.cross_entropy(out.logits, torch.tensor([0, 1, 2, 3])) + sum(s.mean() for s in out.spikes)).backward()
    assert model.conv1.weight.grad.abs().sum() > 0


def test_a_silent_student_gives_zero_spikes():
    model = build_student("scnn", input_shape=(1, 28, 28), num_classes=10, timesteps=4)
    with torch.no_grad():
        model.conv1.bias.fill_(-100.0)
    with torch.no_grad():
        out = model(torch.rand(2, 1, 28, 28))
    assert sum(float(s.sum()) for s in out.spikes) == 0.0
    assert torch.isfinite(out.logits).all()


def test_sres8_counts_and_shapes():
    model = build_student("sres8", input_shape=(1, 10, 49), num_classes=35, neuron="lif", beta=0.5, timesteps=4)
    assert count_parameters(model) == 40_040  # Table II: 42k
    # stem: 45 x 49; after pooling by 2, six layers of 45 x 24
    assert model.neuron_counts() == [45 * 49] + [45 * 24] * 6
    out = model(torch.randn(5, 1, 10, 49))
    assert out.logits.shape == (5, 35) and out.readout.shape == (4, 5, 35)
    assert [tuple(s.shape[:2]) for s in out.spikes] == [(4, 5)] * 7


def test_svgg11_size():
    model = build_student("svgg11", input_shape=(3, 32, 32), num_classes=10, neuron="lif", beta=0.5, timesteps=2)
    assert count_parameters(model) == 9_758_794  # Table II: 9.8M
    assert len(model.neuron_counts()) == 9
    out = model(torch.rand(2, 3, 32, 32))
    assert out.logits.shape == (2, 10)


@pytest.mark.parametrize("name, shape, expected", [
    ("vgg13", (1, 28, 28), 28_330_314),   # Table II: 28.3M
    ("vgg16", (3, 32, 32), 14_986_698),   # Table II: 15.3M
    ("resnet15", (1, 10, 49), 77_030),    # Table II: 89k
])
def test_teacher_sizes(name, shape, expected):
    model = build_teacher(name, input_shape=shape, num_classes=35 if name == "resnet15" else 10)
    assert count_parameters(model) == expected
    assert model(torch.zeros(2, *shape)).shape[0] == 2


def test_width_scales_the_teacher():
    small = build_teacher("vgg13", input_shape=(1, 28, 28), num_classes=10, width=0.25)
    assert count_parameters(small) < 28_330_314 / 10


def test_unknown_names_are_refused():
    with pytest.raises(KeyError, match="allowed"):
        build_student("alexnet", input_shape=(1, 28, 28), num_classes=10)
    with pytest.raises(KeyError, match="allowed"):
        build_teacher("alexnet", input_shape=(1, 28, 28), num_classes=10)


STUDENT_CASES = [
    ("scnn", (1, 28, 28), {"neuron": "if", "timesteps": 5, "width": 0.5}),
    ("sres8", (1, 10, 49), {"neuron": "lif", "beta": 0.5, "timesteps": 4, "width": 0.5}),
    ("svgg11", (3, 32, 32), {"neuron": "lif", "beta": 0.5, "timesteps": 3, "width": 0.0625}),
]


def _run_and_differentiate(model, x, labels):
    out = model(x)
    loss = F.cross_entropy(out.logits, labels) + sum(s.mean() for s in out.spikes)
    model.zero_grad(set_to_none=True)
    loss.backward()
    return out, {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("surrogate", ["atan", "fast_sigmoid", "triangular"])
@pytest.mark.parametrize("name,shape,options", STUDENT_CASES, ids=[c[0] for c in STUDENT_CASES])
def test_fused_neurons_train_the_same_student_as_snntorch(name, shape, options, surrogate):
    """Every student with the fused neurons against the same weights run through snntorch.Leaky
    step by step: identical spikes, parameter gradients equal within float32 rounding."""
    from lowspike.models.spiking import SpikingNeurons

    torch.manual_seed(0)
    model = build_student(name, input_shape=shape, num_classes=10, surrogate=surrogate, **options)
    x = torch.rand(4, *shape) * 2.0
    labels = torch.tensor([0, 1, 2, 3])
    model.train()
    fused_out, fused_grads = _run_and_differentiate(model, x, labels)
    for module in model.modules():
        if isinstance(module, SpikingNeurons):
            module.fused = False
    reference_out, reference_grads = _run_and_differentiate(model, x, labels)
    assert sum(float(s.detach().sum()) for s in reference_out.spikes) > 0
    for fused, reference in zip(fused_out.spikes, reference_out.spikes):
        assert torch.equal(fused, reference)
    torch.testing.assert_close(fused_out.logits, reference_out.logits, rtol=0, atol=0)
    assert fused_grads.keys() == reference_grads.keys()
    for key in fused_grads:  # float32 rounding, relative to the gradient's scale (sums cancel)
        scale = float(reference_grads[key].abs().max())
        torch.testing.assert_close(fused_grads[key], reference_grads[key], rtol=1e-4, atol=1e-5 * max(scale, 1.0),
                                   msg=key)
