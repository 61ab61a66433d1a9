"""Each score against a slow, obvious reference implementation."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from datadiet import registry, scores
from datadiet.models import build, fit_whitening
from datadiet.reference import grand_loop
from datadiet.scores import AUMTracker, ForgettingTracker, aum, el2n, forgetting, grand, grand_vmap, input_norm
from nets import batch, snapshot, tiny_resnet

# GraNd has two implementations: layer by layer (the fast one) and vmap over whole-model gradients
# (any model); every GraNd test runs on both.
both_grands = pytest.mark.parametrize("grand", [grand, grand_vmap], ids=["layerwise", "vmap"])


@both_grands
def test_grand_matches_per_example_loop_in_float64(grand):
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


@pytest.mark.parametrize("score", [grand, grand_vmap, el2n], ids=["layerwise", "vmap", "el2n"])
def test_progress_hears_every_example_once_per_chunk(score):
    model = tiny_resnet()
    images, labels = batch()
    done = []
    score(model, images, labels, 3, progress=done.append)
    assert done == [3, 3, 1]


@both_grands
def test_grand_uses_running_statistics_not_batch_statistics(grand):
    model = tiny_resnet(torch.float64)
    images, labels = batch(dtype=torch.float64)
    scores = grand(model, images, labels)
    # The same loop with fresh (neutral) running statistics gives clearly different norms.
    fresh = build("resnet18", 10, width=2).double()
    fresh.load_state_dict({k: v for k, v in model.state_dict().items() if "running" not in k}, strict=False)
    assert not torch.allclose(scores.double(), grand_loop(fresh, images, labels), rtol=1e-2)


@both_grands
def test_grand_float32_agrees_with_loop(grand):
    model = tiny_resnet()
    images, labels = batch()
    model.eval()
    # Batched and single-example float32 forwards may round differently (performance-notes.md).
    torch.testing.assert_close(grand(model, images, labels), grand_loop(model, images, labels), rtol=1e-3, atol=0)
    assert not model.training


@both_grands
def test_grand_does_not_depend_on_chunk_size(grand):
    model = tiny_resnet(torch.float64)
    images, labels = batch(dtype=torch.float64)
    torch.testing.assert_close(
        grand(model, images, labels, chunk_size=1), grand(model, images, labels, chunk_size=3), rtol=1e-6, atol=0
    )


@both_grands
def test_grand_covers_batchnorm_and_classifier_parameters(grand):
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


@both_grands
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_grand_runs_on_the_models_device(grand):
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


def test_entropy_matches_a_loop_in_float64_and_reads_no_label():
    model = tiny_resnet()
    images, labels = batch(n=9)
    values = scores.entropy(model, images, labels, batch_size=4)
    assert values.dtype == torch.float32 and values.shape == (9,) and model.training
    model.eval()
    with torch.no_grad():
        probs = [model(x[None])[0].double().softmax(0) for x in images]
    expected = torch.tensor([-sum(p_k * math.log(p_k) for p_k in p.tolist()) for p in probs]).float()
    torch.testing.assert_close(values, expected, rtol=1e-4, atol=1e-6)
    assert torch.equal(scores.entropy(model, images, labels.roll(1), batch_size=4), values)


def test_entropy_is_zero_when_confident_and_log_c_when_uniform():
    labels = torch.tensor([0, 3, 9])
    inputs = F.one_hot(labels, 10).float()
    confident = scores.entropy(logits_model(100.0, 10), inputs, labels)
    torch.testing.assert_close(confident, torch.zeros(3), atol=1e-6, rtol=0)
    uniform = scores.entropy(logits_model(0.0, 10), inputs, labels)
    torch.testing.assert_close(uniform, torch.full((3,), math.log(10)), rtol=1e-6, atol=0)


def test_every_checkpoint_score_of_the_registry_is_computed_by_its_own_function():
    model, (images, labels) = tiny_resnet(), batch(n=6)
    for kind in registry.AT_CHECKPOINT:
        direct = getattr(scores, kind)(model, images, labels)
        torch.testing.assert_close(scores.at_checkpoint(kind, model, images, labels, {"grand_chunk_size": 2}), direct)


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


def logits_for(correct, labels, classes=3):
    """Logits whose argmax is the label where `correct`, another class elsewhere."""
    correct = torch.as_tensor(correct, dtype=torch.bool)
    predicted = torch.where(correct, labels, (labels + 1) % classes)
    return F.one_hot(predicted, classes).float()


def test_forgetting_tracker_hand_written_sequences():
    tracker = ForgettingTracker(4)
    labels = torch.tensor([0, 1, 2])
    # Example 0: correct, wrong, correct, wrong -> 2 events. Example 1: never correct.
    # Example 2: wrong first, then correct -> 0 events. Example 3: never presented.
    for step in [[1, 0, 0], [0, 0, 1], [1, 0, 1], [0, 0, 1]]:
        tracker.update(torch.tensor([0, 1, 2]), logits_for(step, labels), labels)
    assert tracker.counts.tolist() == [2, 0, 0, 0]
    assert tracker.ever_correct.tolist() == [True, False, True, False]
    assert tracker.score().tolist() == [2, math.inf, 0, math.inf]
    assert tracker.score(never_learned="max").tolist() == [2, 2, 0, 2]


def test_forgetting_tracker_matches_per_example_histories():
    torch.manual_seed(2)
    n, batch_size, epochs = 50, 8, 6
    labels = torch.randint(0, 3, (n,))
    tracker, history = ForgettingTracker(n), [[] for _ in range(n)]
    for _ in range(epochs):
        order = torch.randperm(n)
        for start in range(0, n - batch_size + 1, batch_size):  # the last partial batch is dropped
            indices = order[start : start + batch_size]
            logits = torch.randn(batch_size, 3)
            tracker.update(indices, logits, labels[indices])
            for i, row in zip(indices.tolist(), logits.tolist()):
                history[i].append(row.index(max(row)) == labels[i].item())
    expected = [sum(a and not b for a, b in zip(h, h[1:])) for h in history]
    assert tracker.counts.tolist() == expected
    assert tracker.ever_correct.tolist() == [any(h) for h in history]


def test_forgetting_tracker_state_dict_round_trip():
    labels = torch.tensor([0, 1, 2])
    tracker = ForgettingTracker(3)
    tracker.update(torch.tensor([0, 1, 2]), logits_for([True, True, False], labels), labels)
    resumed = ForgettingTracker(3)
    resumed.load_state_dict(tracker.state_dict())
    # "Previously correct" survives the round trip: example 0 forgets right after resuming.
    for t in (tracker, resumed):
        t.update(torch.tensor([0, 2]), logits_for([False, True], labels[[0, 2]]), labels[[0, 2]])
    assert resumed.counts.tolist() == tracker.counts.tolist() == [1, 0, 0]
    assert resumed.ever_correct.tolist() == tracker.ever_correct.tolist() == [True, True, True]
    # The saved state is a copy, not a view of the live tensors.
    state = tracker.state_dict()
    tracker.update(torch.tensor([1]), logits_for([False], labels[[1]]), labels[[1]])
    assert state["counts"].tolist() == [1, 0, 0]


def test_aum_tracker_hand_written_margins():
    tracker = AUMTracker(4)
    indices, labels = torch.tensor([0, 1, 2]), torch.tensor([0, 2, 1])
    # margin = logit of the assigned label - the largest other logit
    tracker.update(
        indices,
        torch.tensor(
            [
                [2.0, 1.0, 0.0],  # 2 - 1 = 1
                [1.0, 1.0, 1.0],  # a tie: 0
                [5.0, 1.0, 4.0],
            ]
        ),  # 1 - 5 = -4
        labels,
    )
    tracker.update(
        indices[:2],
        torch.tensor(
            [
                [0.0, 3.0, 1.0],  # 0 - 3 = -3
                [-1.0, -2.0, 2.0],
            ]
        ),  # 2 - (-1) = 3
        labels[:2],
    )
    assert tracker.counts.tolist() == [2, 2, 1, 0]
    # AUM: mean margin 1/-3 -> -1, 0/3 -> 1.5, -4; the score is -AUM; never presented -> +inf
    assert tracker.score().tolist() == [1.0, -1.5, 4.0, math.inf]
    assert tracker.score().dtype == torch.float32


def test_aum_uses_the_assigned_label_not_the_true_one():
    logits = torch.tensor([[4.0, 1.0, 0.0]])  # confidently class 0
    clean, noisy = AUMTracker(1), AUMTracker(1)
    clean.update(torch.tensor([0]), logits, torch.tensor([0]))
    noisy.update(torch.tensor([0]), logits, torch.tensor([2]))  # a flipped label: a large negative margin
    assert clean.score().item() == -3.0 and noisy.score().item() == 4.0


def test_aum_tracker_matches_per_example_histories():
    torch.manual_seed(3)
    n, batch_size, epochs, classes = 40, 8, 5, 4
    labels = torch.randint(0, classes, (n,))
    tracker, history = AUMTracker(n + 1), [[] for _ in range(n + 1)]  # example n is never presented
    for _ in range(epochs):
        order = torch.randperm(n)
        for start in range(0, n - batch_size + 1, batch_size):
            indices = order[start : start + batch_size]
            logits = 3 * torch.randn(batch_size, classes)
            tracker.update(indices, logits, labels[indices])
            for i, row in zip(indices.tolist(), logits.tolist()):
                y = labels[i].item()
                history[i].append(row[y] - max(v for c, v in enumerate(row) if c != y))
    expected = [-sum(h) / len(h) if h else math.inf for h in history]
    torch.testing.assert_close(tracker.score(), torch.tensor(expected), rtol=1e-5, atol=1e-6)


def test_aum_tracker_state_dict_round_trip_is_bit_identical():
    torch.manual_seed(4)
    labels = torch.randint(0, 3, (6,))
    tracker = AUMTracker(6)
    tracker.update(torch.arange(6), torch.randn(6, 3), labels)
    resumed = AUMTracker(6)
    resumed.load_state_dict(tracker.state_dict())
    state = tracker.state_dict()
    more = torch.randn(3, 3)
    for t in (tracker, resumed):
        t.update(torch.tensor([1, 3, 5]), more, labels[[1, 3, 5]])
    assert torch.equal(tracker.score(), resumed.score())
    assert torch.equal(tracker.margin_sums, resumed.margin_sums)
    # The saved state is a copy, not a view of the live tensors.
    assert state["counts"].tolist() == [1] * 6


def test_aum_score_function():
    sums = torch.tensor([2.0, -3.0, 0.0], dtype=torch.float64)
    counts = torch.tensor([4, 3, 0])
    assert aum(sums, counts).tolist() == [-0.5, 1.0, math.inf]
    assert sums.tolist() == [2.0, -3.0, 0.0]


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


@both_grands
def test_grand_on_a_channels_last_model_agrees_with_loop(grand):
    # width >= 8 models are channels_last (models.py); vmap must handle that layout too
    torch.manual_seed(0)
    model = build("resnet18", 10, width=8)
    assert model.memory_format == torch.channels_last
    images, labels = batch(5)
    images = images.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(grand(model, images, labels), grand_loop(model, images, labels), rtol=1e-3, atol=0)


def test_grand_layerwise_covers_strides_biases_and_both_norm_strategies():
    # conv1 (stride 2, bias) is cheaper to materialise per example, conv2 (dilated) by Gram matrices
    # over positions, and the classifier by the ghost norm of a single position: all must agree.
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.Conv2d(4, 64, 3, padding=2, dilation=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * 16, 10),
    ).double()
    with torch.no_grad():
        model.train()(3 * torch.randn(16, 3, 8, 8, dtype=torch.float64) + 1)
    images, labels = batch(dtype=torch.float64)
    torch.testing.assert_close(
        grand(model, images, labels, chunk_size=3).double(), grand_loop(model, images, labels), rtol=1e-6, atol=0
    )


def test_grand_layerwise_on_a_resnet50():
    torch.manual_seed(0)
    model = build("resnet50", 10, width=2).double()
    with torch.no_grad():
        model.train()(3 * torch.randn(16, 3, 16, 16, dtype=torch.float64) + 1)
        for m in model.modules():  # the zero-initialised last BN of each block would hide its branch
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
    images, labels = torch.randn(5, 3, 16, 16, dtype=torch.float64), torch.randint(0, 10, (5,))
    torch.testing.assert_close(
        grand(model, images, labels).double(), grand_loop(model, images, labels), rtol=1e-6, atol=0
    )


def test_grand_falls_back_to_vmap_for_layers_it_does_not_know():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 10)
    ).double()
    images, labels = batch(dtype=torch.float64)
    torch.testing.assert_close(
        grand(model, images, labels).double(), grand_loop(model, images, labels), rtol=1e-6, atol=0
    )


def test_grand_layerwise_refuses_shared_weights():
    linear = nn.Linear(8, 8).double()
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 8), linear, nn.ReLU(), linear).double()
    images, labels = batch(dtype=torch.float64)
    with pytest.raises(ValueError, match="shared weights"):
        grand(model, images, labels % 8)


def test_grand_layerwise_covers_every_airbench_layer(monkeypatch):
    # Frozen whitening weight and BatchNorm scales, trainable biases, a bias-free classifier: all
    # must be per-example layers that grand knows, or it would fall back to vmap.
    torch.manual_seed(0)
    model = build("airbench", 10, width=8).double()
    fit_whitening(model, torch.randn(64, 3, 32, 32, dtype=torch.float64))
    with torch.no_grad():
        model.train()(3 * torch.randn(16, 3, 32, 32, dtype=torch.float64) + 1)  # running stats
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d) or m is model.whiten:
                m.bias.uniform_(-0.5, 0.5)
    trainable = [m for m in model.modules() if any(p.requires_grad for p in m.parameters(recurse=False))]
    assert len(trainable) == 1 + 6 + 6 + 1  # whitening, convs, BatchNorms, classifier
    assert all(scores._supported(m) for m in trainable)
    images = torch.randn(5, 3, 32, 32, dtype=torch.float64).contiguous(memory_format=model.memory_format)
    labels = torch.randint(0, 10, (5,))
    expected = grand_vmap(model, images, labels)

    def no_fallback(*args, **kwargs):
        raise AssertionError("grand fell back to grand_vmap")

    monkeypatch.setattr(scores, "grand_vmap", no_fallback)
    torch.testing.assert_close(grand(model, images, labels, chunk_size=3), expected, rtol=1e-6, atol=0)
