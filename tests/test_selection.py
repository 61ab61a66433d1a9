import pytest
import torch

from datadiet import noise, selection


def slow_keep_max(scores, fraction):
    """Obvious: rank by (score, index), keep the top round(fraction * n)."""
    ranked = sorted(range(len(scores)), key=lambda i: (scores[i], i))
    k = max(1, round(fraction * len(scores)))
    return sorted(ranked[len(scores) - k:])


def test_keep_max_keeps_the_hardest_and_breaks_ties_by_index():
    scores = torch.tensor([0.5, 0.1, 0.9, 0.5, 0.3, 0.5, 0.7, 0.2])
    for fraction in (0.125, 0.25, 0.5, 0.75, 1.0):
        assert selection.keep_max(scores, fraction).tolist() == slow_keep_max(scores.tolist(), fraction)
    assert selection.keep_max(scores, 0.25).tolist() == [2, 6]


def test_keep_min_is_the_complement_of_keep_max():
    scores = torch.rand(101, generator=torch.Generator().manual_seed(0))
    kept_min = set(selection.keep_min(scores, 0.4).tolist())
    kept_max = set(selection.keep_max(scores, 0.6).tolist())
    assert kept_min.isdisjoint(kept_max) and len(kept_min | kept_max) == 101
    assert max(scores[list(kept_min)]) < min(scores[list(kept_max)])


def test_window_slides_over_the_ascending_ranking():
    scores = torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0, 0.0])  # ascending order: 5 1 3 4 2 0
    assert selection.window(scores, 0.5, 0).tolist() == [1, 3, 5]
    assert selection.window(scores, 0.5, 2).tolist() == [2, 3, 4]
    assert selection.window(scores, 0.5, 3).tolist() == selection.keep_max(scores, 0.5).tolist()
    with pytest.raises(ValueError, match="offset"):
        selection.window(scores, 0.5, 4)


def test_random_is_seeded_uniform_and_sized():
    a, b = selection.random(1000, 0.3, seed=1), selection.random(1000, 0.3, seed=1)
    assert torch.equal(a, b) and len(a) == 300 and len(set(a.tolist())) == 300
    assert not torch.equal(a, selection.random(1000, 0.3, seed=2))
    assert selection.random(10, 1.0, seed=0).tolist() == list(range(10))


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5])
def test_kept_fraction_outside_unit_interval_is_rejected(fraction):
    with pytest.raises(ValueError, match=r"kept fraction must be in \(0, 1\]"):
        selection.keep_max(torch.rand(10), fraction)


def test_permute_labels_keeps_the_histogram_and_records_the_corrupted():
    labels = torch.arange(10).repeat(100)
    noisy, corrupted = noise.permute_labels(labels, 0.2, seed=3)
    assert len(corrupted) == 200 and torch.equal(corrupted, corrupted.sort().values)
    assert torch.equal(torch.bincount(noisy), torch.bincount(labels))
    untouched = torch.ones(1000, dtype=torch.bool)
    untouched[corrupted] = False
    assert torch.equal(noisy[untouched], labels[untouched])
    # permuted among themselves: about 1 in 10 chosen labels stays right
    changed = (noisy[corrupted] != labels[corrupted]).float().mean()
    assert 0.8 < changed < 0.97
    again, _ = noise.permute_labels(labels, 0.2, seed=3)
    assert torch.equal(noisy, again)
    assert not torch.equal(noisy, noise.permute_labels(labels, 0.2, seed=4)[0])


def test_zero_noise_changes_nothing_and_bad_fraction_is_rejected():
    labels = torch.randint(0, 10, (50,))
    noisy, corrupted = noise.permute_labels(labels, 0.0, seed=0)
    assert torch.equal(noisy, labels) and len(corrupted) == 0
    with pytest.raises(ValueError, match="noise fraction"):
        noise.permute_labels(labels, 1.2, seed=0)
