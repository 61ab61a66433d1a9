"""Each training-dynamics measure against a slow, obvious reference implementation."""

import copy

import pytest
import torch

from datadiet.dynamics import (
    child_data_seed,
    cosine_distance,
    error_barrier,
    error_rate,
    example_sets,
    interpolate,
    ntk_gram,
    ntk_velocity,
    reestimate_bn,
)
from datadiet.models import build
from datadiet.recipe import run_seeds
from datadiet.reference import error_barrier_loop, error_loop, gram_loop, interpolated_by_hand, ntk_velocity_loop
from nets import batch as _batch, snapshot, tiny_resnet as _tiny_resnet


# float64 by default here: the Gram and barrier comparisons need tight tolerances.
def tiny_resnet(seed=0, dtype=torch.float64):
    return _tiny_resnet(dtype, seed)


def batch(n=5, dtype=torch.float64, seed=1):
    return _batch(n, dtype, seed)


def test_ntk_gram_matches_per_logit_loop():
    model = tiny_resnet()
    images, _ = batch(5)
    before = snapshot(model)
    gram = ntk_gram(model, images, chunk_size=2)  # chunks of 2, 2, 1
    assert gram.dtype == torch.float64 and gram.device.type == "cpu" and gram.shape == (50, 50)
    # Mode, parameters and running statistics are left as they were.
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    expected = gram_loop(model, images)
    assert expected.abs().max() > 0
    torch.testing.assert_close(gram, expected, rtol=1e-9, atol=1e-9 * expected.abs().max().item())


def test_ntk_gram_is_symmetric_psd_and_independent_of_chunk_size():
    model = tiny_resnet()
    model.eval()
    images, _ = batch(4)
    gram = ntk_gram(model, images, chunk_size=3)
    assert not model.training
    assert torch.equal(gram, gram.T)
    assert torch.linalg.eigvalsh(gram).min() > -1e-9 * gram.diagonal().max()
    for chunk_size in (1, 4, 16):
        torch.testing.assert_close(ntk_gram(model, images, chunk_size=chunk_size), gram, rtol=1e-10, atol=1e-10)


def test_ntk_gram_float32_agrees_with_loop():
    model = tiny_resnet(dtype=torch.float32)
    images, _ = batch(3, dtype=torch.float32)
    gram = ntk_gram(model, images)
    assert gram.dtype == torch.float64
    expected = gram_loop(model, images)
    # Batched and single-example float32 forwards may round differently (performance-notes.md).
    assert (gram - expected).norm() / expected.norm() < 1e-4


def test_ntk_gram_uses_running_statistics():
    model = tiny_resnet()
    images, _ = batch(3)
    fresh = build("resnet18", 10, width=2).double()
    fresh.load_state_dict({k: v for k, v in model.state_dict().items() if "running" not in k}, strict=False)
    assert cosine_distance(ntk_gram(model, images), ntk_gram(fresh, images)) > 1e-3


def test_cosine_distance():
    torch.manual_seed(0)
    a = torch.randn(6, 6, dtype=torch.float64)
    assert cosine_distance(a, a) == pytest.approx(0, abs=1e-12)
    assert cosine_distance(a, 7.5 * a) == pytest.approx(0, abs=1e-12)
    assert cosine_distance(a, -a) == pytest.approx(2, abs=1e-12)
    orthogonal = torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 3.0], [2.0, 0.0]])
    assert cosine_distance(*orthogonal) == pytest.approx(1, abs=1e-12)
    b = torch.randn(6, 6, dtype=torch.float64)
    expected = 1 - (a * b).sum() / (a.norm() * b.norm())
    assert isinstance(cosine_distance(a, b), float)
    assert cosine_distance(a, b) == pytest.approx(expected.item(), abs=1e-12)
    assert cosine_distance(3 * a, 0.2 * b) == pytest.approx(expected.item(), abs=1e-12)


def test_ntk_velocity_matches_reference_grams_block_by_block():
    before, after = tiny_resnet(seed=0), tiny_resnet(seed=2)
    images, _ = batch(7)
    order = torch.tensor([6, 2, 0, 5, 3, 1, 4])
    velocity = ntk_velocity(before, after, images, order, block_size=3, chunk_size=2)
    # 7 examples in blocks of 3: the last partial block (example 4) is dropped.
    assert velocity.dtype == torch.float32 and velocity.shape == (2,)
    expected = ntk_velocity_loop(before, after, images, order, 3, blocks=[0, 1])  # blocks [6, 2, 0], [5, 3, 1]
    assert ((0 < expected) & (expected < 2)).all()
    torch.testing.assert_close(velocity, expected.float(), rtol=1e-5, atol=0)
    # A subset of blocks gives the same values, in the order asked.
    assert torch.equal(ntk_velocity(before, after, images, order, 3, blocks=[1, 0]), velocity.flip(0))
    assert ntk_velocity(before, after, images, order, 3, blocks=[]).shape == (0,)
    with pytest.raises(IndexError):
        ntk_velocity(before, after, images, order, 3, blocks=[2])


def test_ntk_velocity_is_zero_for_one_model():
    model = tiny_resnet()
    images, _ = batch(6)
    velocity = ntk_velocity(model, model, images, torch.arange(6), block_size=2)
    assert velocity.shape == (3,)
    assert velocity.abs().max() < 1e-6


def test_interpolate():
    a, b = tiny_resnet(seed=0).state_dict(), tiny_resnet(seed=3).state_dict()
    a["stem.1.num_batches_tracked"].fill_(5)
    b["stem.1.num_batches_tracked"].fill_(9)
    mixed = {alpha: interpolate(a, b, alpha) for alpha in (0.0, 0.25, 0.5, 1.0)}
    assert all(m.keys() == a.keys() for m in mixed.values())
    for key in a:
        if a[key].is_floating_point():
            assert torch.equal(mixed[1.0][key], a[key])
            assert torch.equal(mixed[0.0][key], b[key])
            torch.testing.assert_close(mixed[0.5][key], (a[key] + b[key]) / 2)
            torch.testing.assert_close(mixed[0.25][key], 0.25 * a[key] + 0.75 * b[key])
        else:
            assert all(torch.equal(m[key], a[key]) for m in mixed.values())
    # Running statistics are interpolated too.
    assert not torch.equal(a["stem.1.running_mean"], b["stem.1.running_mean"])
    assert torch.equal(mixed[0.0]["stem.1.running_var"], b["stem.1.running_var"])
    # The result is a new dict that does not alias the integer buffers of a.
    mixed[0.5]["stem.1.num_batches_tracked"].fill_(0)
    assert a["stem.1.num_batches_tracked"].item() == 5
    with pytest.raises(ValueError):
        interpolate(a, {k: v for k, v in b.items() if k != "fc.bias"}, 0.5)


def test_error_rate_matches_loop():
    model = tiny_resnet()
    images, labels = batch(40)
    model.train()
    rate = error_rate(model, images, labels, batch_size=16)
    assert model.training
    assert rate == error_loop(model, images, labels)
    # Labels set to the model's own predictions give no errors; shifting them gives all errors.
    predictions = model.eval()(images).argmax(1)
    assert error_rate(model, images, predictions) == 0
    assert error_rate(model, images, (predictions + 1) % 10) == 1


def test_error_barrier_matches_hand_built_interpolation():
    model_a, model_b = tiny_resnet(seed=0), tiny_resnet(seed=4)
    torch.manual_seed(5)
    images = torch.randn(40, 3, 8, 8, dtype=torch.float64)
    # Labels from a third model, so both end points make a fair share of errors.
    labels = tiny_resnet(seed=6).eval()(images).argmax(1).detach()
    alphas = (0.25, 0.5, 0.75)
    holder = tiny_resnet(seed=7)
    result = error_barrier(holder, model_a.state_dict(), model_b.state_dict(), images, labels, alphas)
    error_a, error_b = error_loop(model_a, images, labels), error_loop(model_b, images, labels)
    assert result["error_a"] == error_a and result["error_b"] == error_b
    assert set(result["errors"]) == set(alphas)
    for alpha in alphas:
        assert result["errors"][alpha] == error_loop(interpolated_by_hand(model_a, model_b, alpha), images, labels)
    expected = max(result["errors"][alpha] - (alpha * error_a + (1 - alpha) * error_b) for alpha in alphas)
    assert result["barrier"] == pytest.approx(expected, abs=1e-12)
    assert result["barrier"] == pytest.approx(error_barrier_loop(model_a, model_b, images, labels, alphas), abs=1e-12)
    # The holder is left with the last interpolation.
    torch.testing.assert_close(holder.fc.weight, 0.75 * model_a.fc.weight + 0.25 * model_b.fc.weight)


def test_error_barrier_of_a_model_with_itself_is_zero():
    model = tiny_resnet()
    images, labels = batch(30)
    state = model.state_dict()
    result = error_barrier(tiny_resnet(seed=8), state, state, images, labels, alphas=(0.0, 0.3, 0.5, 1.0))
    assert result["barrier"] == pytest.approx(0, abs=1e-12)
    assert result["error_a"] == result["error_b"] == error_loop(model, images, labels)
    assert all(error == result["error_a"] for error in result["errors"].values())


def bn_statistics_by_hand(model, images, batches):
    """Each BatchNorm layer's per-channel input mean and unbiased variance in train-mode forward passes
    over `batches` equal batches, averaged over the batches."""
    model = copy.deepcopy(model).train()
    norms = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    seen = {n: [] for n in norms}
    for name, norm in norms.items():
        norm.register_forward_pre_hook(lambda module, inputs, name=name: seen[name].append(inputs[0]))
    with torch.no_grad():
        for x in images.chunk(batches):
            model(x)
    stats = {}
    for name, inputs in seen.items():
        dims = [0] + list(range(2, inputs[0].dim()))
        stats[name] = (
            sum(x.mean(dims) for x in inputs) / batches,
            sum(x.var(dims, unbiased=True) for x in inputs) / batches,
        )
    return stats


def set_bn_statistics(model, stats):
    with torch.no_grad():
        for name, (mean, var) in stats.items():
            model.get_submodule(name).running_mean.copy_(mean)
            model.get_submodule(name).running_var.copy_(var)


def test_reestimate_bn_matches_batch_statistics_by_hand():
    model = tiny_resnet()
    model.eval()
    images, _ = batch(40)
    before = snapshot(model)
    momenta = [m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    reestimate_bn(model, images, batch_size=10)
    expected = bn_statistics_by_hand(model, images, batches=4)
    assert len(expected) > 10
    for name, (mean, var) in expected.items():
        norm = model.get_submodule(name)
        torch.testing.assert_close(norm.running_mean, mean, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(norm.running_var, var, rtol=1e-9, atol=1e-12)
        assert not torch.allclose(norm.running_mean, before[f"{name}.running_mean"])
    # Parameters, mode and momenta are left as they were.
    assert not model.training
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert momenta == [m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with pytest.raises(ValueError):
        reestimate_bn(model, images[:1])


def scaled_pair(images, scale=10.0):
    """Two BatchNorm nets computing one function: b is a with its first layer (and so its running
    statistics) scaled by `scale`; both with the exact statistics of `images`. At alpha, the first layer
    and the std of its output are c = alpha + (1 - alpha) scale times a's, but the interpolated running
    variance is alpha + (1 - alpha) scale**2 > c**2 times a's: eval mode shrinks the normalized output."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(12, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 3)
    ).double()
    with torch.no_grad():
        net[2].bias.copy_(torch.tensor([1.0, -1.0, 0.5, -0.5]))  # beta: shrunken activations cross it
    set_bn_statistics(net, bn_statistics_by_hand(net, images, batches=1))
    a = snapshot(net)
    b = {
        k: v * {"1.weight": scale, "1.bias": scale, "2.running_mean": scale, "2.running_var": scale**2}.get(k, 1)
        for k, v in a.items()
    }
    return net, a, b


def test_reestimated_bn_removes_the_barrier_of_mismatched_running_statistics():
    torch.manual_seed(2)
    images = torch.randn(300, 3, 2, 2, dtype=torch.float64)
    net, a, b = scaled_pair(images)
    labels = net.eval()(images).argmax(1)
    alphas = (0.25, 0.5, 0.75)
    interpolated = error_barrier(net, a, b, images, labels, alphas)
    reestimated = error_barrier(net, a, b, images, labels, alphas, bn_images=images, bn_batch_size=300)
    assert interpolated["error_a"] == interpolated["error_b"] == 0
    assert interpolated["barrier"] > 0.05
    assert reestimated["barrier"] == 0 and all(e == 0 for e in reestimated["errors"].values())


def test_reestimated_bn_equals_interpolated_when_the_running_statistics_match_the_data():
    # Two nets that differ only after the last BatchNorm, both with the exact statistics of the
    # images: the interpolated running statistics are the interpolated net's.
    images, _ = batch(30)
    model_a = tiny_resnet()
    set_bn_statistics(model_a, bn_statistics_by_hand(model_a, images, batches=1))
    model_b = copy.deepcopy(model_a)
    torch.nn.init.normal_(model_b.fc.weight, std=3.0)
    labels = tiny_resnet(seed=6).eval()(images).argmax(1).detach()
    alphas = (0.25, 0.5, 0.75)
    states = snapshot(model_a), snapshot(model_b)
    interpolated = error_barrier(tiny_resnet(seed=7), *states, images, labels, alphas)
    reestimated = error_barrier(tiny_resnet(seed=7), *states, images, labels, alphas, images, bn_batch_size=30)
    assert interpolated["errors"] == reestimated["errors"]
    assert (interpolated["error_a"], interpolated["error_b"]) == (reestimated["error_a"], reestimated["error_b"])
    assert interpolated["barrier"] == reestimated["barrier"]
    assert len(set(interpolated["errors"].values())) > 1  # the nets and their interpolations do differ


def test_child_data_seeds_differ_across_parents_and_children():
    parents = [run_seeds(p)["data"] for p in range(10)]
    children = [child_data_seed(seed, c) for seed in parents for c in (0, 1)]
    assert len(set(children)) == len(children) and not set(children) & set(parents)


def test_example_sets():
    torch.manual_seed(0)
    scores = torch.rand(50)
    sets = example_sets(scores, 10, seed=3)
    assert set(sets) == {"high", "low", "random"}
    order = scores.argsort()
    assert torch.equal(sets["high"], order[-10:].sort().values)
    assert torch.equal(sets["low"], order[:10].sort().values)
    for s in sets.values():
        assert s.dtype == torch.int64 and len(s) == 10 and len(s.unique()) == 10
        assert torch.equal(s, s.sort().values)
    assert scores[sets["high"]].min() > scores[sets["low"]].max()
    assert not set(sets["high"].tolist()) & set(sets["low"].tolist())
    # Half and half: still disjoint, and together everything.
    halves = example_sets(scores, 25, seed=0)
    assert sorted(halves["high"].tolist() + halves["low"].tolist()) == list(range(50))
    # The random set is determined by the seed and changes with it.
    assert torch.equal(example_sets(scores, 10, seed=3)["random"], sets["random"])
    assert not torch.equal(example_sets(scores, 10, seed=4)["random"], sets["random"])
    assert torch.equal(example_sets(torch.zeros(50), 10, seed=3)["random"], sets["random"])
    with pytest.raises(ValueError):
        example_sets(scores, 51, seed=0)


def test_example_sets_break_ties_by_index():
    scores = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, float("inf")])
    sets = example_sets(scores, 2, seed=0)
    assert sets["low"].tolist() == [1, 3]  # the lower indices of the tie at 0
    assert sets["high"].tolist() == [4, 6]  # inf (a never-learned forgetting score), then index 4
