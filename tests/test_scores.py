"""Each score against a slow, obvious reference implementation."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from datadiet.models import build
from datadiet.scores import ForgettingTracker, el2n, forgetting, grand, input_norm


def tiny_resnet(dtype=torch.float32):
    """A width-2 ResNet18 with running statistics far from the neutral mean 0 / variance 1."""
    torch.manual_seed(0)
    model = build("resnet18", 10, width=2).to(dtype)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(3 * torch.randn(16, 3, 8, 8, dtype=dtype) + 1)
    return model


def batch(n=7, dtype=torch.float32):
    torch.manual_seed(1)
    return torch.randn(n, 3, 8, 8, dtype=dtype), torch.randint(0, 10, (n,))


def grand_loop(model, images, labels):
    """One example at a time: backward, then the norm over every trainable parameter's .grad."""
    was_training = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    norms = []
    for x, y in zip(images, labels):
        model.zero_grad()
        F.cross_entropy(model(x[None]), y[None]).backward()
        norms.append(torch.sqrt(sum((p.grad**2).sum() for p in params)))
    model.zero_grad()
    model.train(was_training)
    return torch.stack(norms).detach()


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_grand_matches_per_example_loop_in_float64():
    model = tiny_resnet(torch.float64)
    images, labels = batch(dtype=torch.float64)
    before = snapshot(model)
    scores = grand(model, images, labels, chunk_size=4)
    assert scores.dtype == torch.float32 and scores.device.type == "cpu" and scores.shape == (7,)
    # The model (parameters, running statistics, mode) is left as it was.
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    expected = grand_loop(model, images, labels)
    torch.testing.assert_close(scores.double(), expected, rtol=1e-4, atol=0)


def test_grand_uses_running_statistics_not_batch_statistics():
    model = tiny_resnet(torch.float64)
    images, labels = batch(dtype=torch.float64)
    scores = grand(model, images, labels)
    # The same loop with fresh (neutral) running statistics gives clearly different norms.
    fresh = build("resnet18", 10, width=2).double()
    fresh.load_state_dict({k: v for k, v in model.state_dict().items() if "running" not in k}, strict=False)
    assert not torch.allclose(scores.double(), grand_loop(fresh, images, labels), rtol=1e-2)


def test_grand_float32_agrees_with_loop():
    model = tiny_resnet()
    images, labels = batch()
    model.eval()
    # Batched and single-example float32 forwards may round differently (performance-notes.md).
    torch.testing.assert_close(grand(model, images, labels), grand_loop(model, images, labels), rtol=1e-3, atol=0)
    assert not model.training


def test_grand_does_not_depend_on_chunk_size():
    model = tiny_resnet(torch.float64)
    images, labels = batch(dtype=torch.float64)
    torch.testing.assert_close(grand(model, images, labels, chunk_size=1), grand(model, images, labels, chunk_size=3),
                               rtol=1e-6, atol=0)


def test_grand_covers_batchnorm_and_classifier_parameters():
    model = tiny_resnet(torch.float64)
    images, labels = batch(dtype=torch.float64)
    for name, p in model.named_parameters():
        p.requires_grad_(isinstance(model.get_submodule(name.rsplit(".", 1)[0]), nn.BatchNorm2d))
    bn_only = grand(model, images, labels)
    assert (bn_only > 0).all()
    torch.testing.assert_close(bn_only.double(), grand_loop(model, images, labels), rtol=1e-4, atol=0)

    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("fc."))
    fc_only = grand(model, images, labels)
    assert (fc_only > 0).all()
    torch.testing.assert_close(fc_only.double(), grand_loop(model, images, labels), rtol=1e-4, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_grand_runs_on_the_models_device():
    model = tiny_resnet()
    images, labels = batch()
    on_cpu = grand(model, images, labels)
    on_gpu = grand(model.cuda(), images, labels)
    assert on_gpu.device.type == "cpu"
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-3, atol=0)


def test_el2n_matches_loop():
    model = tiny_resnet()
    images, labels = batch(n=9)
    before = snapshot(model)
    scores = el2n(model, images, labels, batch_size=4)
    assert scores.dtype == torch.float32 and scores.shape == (9,)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.eval()
    with torch.no_grad():
        expected = [(model(x[None])[0].softmax(0) - F.one_hot(y, 10)).norm() for x, y in zip(images, labels)]
    torch.testing.assert_close(scores, torch.stack(expected), rtol=1e-4, atol=1e-6)


def logits_model(scale, classes):
    """A linear layer that maps one-hot inputs to logits `scale * input`."""
    model = nn.Linear(classes, classes, bias=False)
    with torch.no_grad():
        model.weight.copy_(scale * torch.eye(classes))
    return model


def test_el2n_is_the_plain_norm():
    classes = 10
    labels = torch.tensor([0, 3, 9])
    inputs = F.one_hot(labels, classes).float()
    confident = el2n(logits_model(100.0, classes), inputs, labels)
    torch.testing.assert_close(confident, torch.zeros(3), rtol=0, atol=1e-6)
    wrong = el2n(logits_model(100.0, classes), inputs, (labels + 1) % classes)
    torch.testing.assert_close(wrong, torch.full((3,), math.sqrt(2)), rtol=1e-6, atol=1e-6)
    uniform = el2n(logits_model(0.0, classes), inputs, labels)
    expected = math.sqrt((1 - 1 / classes) ** 2 + (classes - 1) / classes**2)
    torch.testing.assert_close(uniform, torch.full((3,), expected), rtol=1e-6, atol=0)


def test_input_norm_matches_loop():
    images, _ = batch()
    expected = torch.stack([torch.sqrt(sum(v**2 for v in x.flatten())) for x in images])
    scores = input_norm(images)
    assert scores.dtype == torch.float32
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=0)


def test_forgetting_tracker_hand_written_sequences():
    tracker = ForgettingTracker(4)
    # Example 0: correct, wrong, correct, wrong -> 2 events. Example 1: never correct.
    # Example 2: wrong first, then correct -> 0 events. Example 3: never presented.
    for step in [[1, 0, 0], [0, 0, 1], [1, 0, 1], [0, 0, 1]]:
        tracker.update(torch.tensor([0, 1, 2]), torch.tensor(step, dtype=torch.bool))
    assert tracker.counts.tolist() == [2, 0, 0, 0]
    assert tracker.ever_correct.tolist() == [True, False, True, False]


def test_forgetting_tracker_matches_per_example_histories():
    torch.manual_seed(2)
    n, batch_size, epochs = 50, 8, 6
    tracker, history = ForgettingTracker(n), [[] for _ in range(n)]
    for _ in range(epochs):
        order = torch.randperm(n)
        for start in range(0, n - batch_size + 1, batch_size):  # the last partial batch is dropped
            indices = order[start:start + batch_size]
            correct = torch.rand(batch_size) < 0.6
            tracker.update(indices, correct)
            for i, c in zip(indices.tolist(), correct.tolist()):
                history[i].append(c)
    expected = [sum(a and not b for a, b in zip(h, h[1:])) for h in history]
    assert tracker.counts.tolist() == expected
    assert tracker.ever_correct.tolist() == [any(h) for h in history]


def test_forgetting_tracker_state_dict_round_trip():
    tracker = ForgettingTracker(3)
    tracker.update(torch.tensor([0, 1, 2]), torch.tensor([True, True, False]))
    resumed = ForgettingTracker(3)
    resumed.load_state_dict(tracker.state_dict())
    # "Previously correct" survives the round trip: example 0 forgets right after resuming.
    for t in (tracker, resumed):
        t.update(torch.tensor([0, 2]), torch.tensor([False, True]))
    assert resumed.counts.tolist() == tracker.counts.tolist() == [1, 0, 0]
    assert resumed.ever_correct.tolist() == tracker.ever_correct.tolist() == [True, True, True]
    # The saved state is a copy, not a view of the live tensors.
    state = tracker.state_dict()
    tracker.update(torch.tensor([1]), torch.tensor([False]))
    assert state["counts"].tolist() == [1, 0, 0]


def test_forgetting_score():
    counts = torch.tensor([0, 3, 1, 0])
    ever_correct = torch.tensor([True, True, True, False])
    inf = forgetting(counts, ever_correct)
    assert inf.dtype == torch.float32
    assert inf.tolist() == [0, 3, 1, math.inf]
    assert forgetting(counts, ever_correct, never_learned="max").tolist() == [0, 3, 1, 3]
    assert counts.tolist() == [0, 3, 1, 0]
    with pytest.raises(ValueError):
        forgetting(counts, ever_correct, never_learned="zero")


def test_grand_on_a_channels_last_model_agrees_with_loop():
    # width >= 8 models are channels_last (models.py); vmap must handle that layout too
    torch.manual_seed(0)
    model = build("resnet18", 10, width=8)
    assert model.memory_format == torch.channels_last
    images, labels = batch(5)
    images = images.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(grand(model, images, labels), grand_loop(model, images, labels), rtol=1e-3, atol=0)
