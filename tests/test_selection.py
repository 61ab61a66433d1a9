import math

import pytest
import torch

from datadiet import noise, selection


def slow_keep_max(scores, fraction):
    """Obvious: rank by (score, index), keep the top round(fraction * n)."""
    ranked = sorted(range(len(scores)), key=lambda i: (scores[i], i))
    k = max(1, round(fraction * len(scores)))
    return sorted(ranked[len(scores) - k :])


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


def slow_ccs_plan(scores, fraction, beta, strata):
    """Obvious: rank by (score, index), drop the hardest round(beta * n), bin the rest by equal-width
    score intervals, fill the budget from the smallest stratum up. Returns (stratum of each example
    left, {stratum: how many to take}, the dropped indices)."""
    n = len(scores)
    ranked = sorted(range(n), key=lambda i: (scores[i], i))
    dropped = ranked[n - round(beta * n) :] if round(beta * n) else []
    left = ranked[: n - len(dropped)]
    low, high = min(scores[i] for i in left), max(scores[i] for i in left)
    stratum = {}
    for i in left:
        if high == low:
            stratum[i] = 0
        else:
            stratum[i] = min(math.floor((scores[i] - low) / ((high - low) / strata)), strata - 1)
    sizes = {}
    for i in left:
        sizes[stratum[i]] = sizes.get(stratum[i], 0) + 1
    budget = max(1, round(fraction * n))
    takes, rest = {}, budget
    queue = sorted(sizes, key=lambda s: (sizes[s], s))
    for k, s in enumerate(queue):
        takes[s] = min(sizes[s], rest // (len(queue) - k))
        rest -= takes[s]
    return stratum, takes, dropped


def check_ccs(scores, fraction, seed, beta, strata):
    chosen = selection.ccs(scores, fraction, seed, beta=beta, strata=strata)
    stratum, takes, dropped = slow_ccs_plan([float(s) for s in scores], fraction, beta, strata)
    assert chosen.dtype == torch.int64 and chosen.tolist() == sorted(set(chosen.tolist()))
    assert len(chosen) == max(1, round(fraction * len(scores))) == sum(takes.values())
    assert set(chosen.tolist()).isdisjoint(dropped)
    counts = {}
    for i in chosen.tolist():
        counts[stratum[i]] = counts.get(stratum[i], 0) + 1  # a KeyError here: i was not left to choose
    assert counts == {s: k for s, k in takes.items() if k}
    return chosen


@pytest.mark.parametrize("fraction, beta, strata", [(0.1, 0.1, 50), (0.3, 0.3, 50), (0.5, 0.0, 7), (0.9, 0.1, 3)])
def test_ccs_matches_the_slow_plan(fraction, beta, strata):
    g = torch.Generator().manual_seed(5)
    # uneven strata: a bulk, a sparse middle and a small far tail
    scores = torch.cat(
        [torch.randn(800, generator=g), 4 + torch.rand(150, generator=g), 10 + torch.rand(50, generator=g)]
    )
    check_ccs(scores, fraction, seed=0, beta=beta, strata=strata)


def test_ccs_fills_from_the_smallest_stratum_up():
    # 2 strata left after dropping the hardest: 3 easy examples and 100 harder ones.
    scores = torch.tensor([0.0, 0.1, 0.2] + [9.0 + i / 100 for i in range(100)] + [50.0])
    stratum, takes, _ = slow_ccs_plan(scores.tolist(), 50 / 104, beta=1 / 104, strata=2)
    assert takes == {0: 3, 1: 47}  # not 25 + 25: the small stratum cannot use its even share
    chosen = check_ccs(scores, 50 / 104, seed=1, beta=1 / 104, strata=2)
    assert {0, 1, 2} <= set(chosen.tolist()) and 103 not in chosen.tolist()
    # even shares with a remainder: 5 over two strata of 10 -> the first in (size, index) order takes 2
    assert slow_ccs_plan([0.0] * 10 + [1.0] * 10, 0.25, beta=0, strata=2)[1] == {0: 2, 1: 3}
    check_ccs(torch.tensor([0.0] * 10 + [1.0] * 10), 0.25, seed=0, beta=0, strata=2)


def test_ccs_is_seeded_and_uniform_inside_a_stratum():
    scores = torch.rand(500, generator=torch.Generator().manual_seed(6))
    a, b = selection.ccs(scores, 0.2, seed=3), selection.ccs(scores, 0.2, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, selection.ccs(scores, 0.2, seed=4))
    # one stratum of 20 equal scores, 5 taken: each example about 1 time in 4
    hits = torch.zeros(20)
    for seed in range(400):
        hits[selection.ccs(torch.zeros(20), 0.25, seed, beta=0, strata=5)] += 1
    assert ((hits / 400 - 0.25).abs() < 0.08).all()


def test_ccs_keeps_everything_left_when_the_budget_is_all_of_it():
    scores = torch.rand(100, generator=torch.Generator().manual_seed(7))
    assert selection.ccs(scores, 0.9, seed=0, beta=0.1).tolist() == selection.keep_min(scores, 0.9).tolist()
    assert selection.ccs(scores, 1.0, seed=0, beta=0.0).tolist() == list(range(100))


def test_ccs_rejects_a_budget_beyond_what_is_left_and_bad_arguments():
    scores = torch.rand(100)
    with pytest.raises(ValueError, match="only 50 are left after dropping the hardest beta=0.5"):
        selection.ccs(scores, 0.6, seed=0, beta=0.5)
    with pytest.raises(ValueError, match="beta"):
        selection.ccs(scores, 0.1, seed=0, beta=1.0)
    with pytest.raises(ValueError, match="stratum"):
        selection.ccs(scores, 0.1, seed=0, strata=0)
    with pytest.raises(ValueError, match="kept fraction"):
        selection.ccs(scores, 0.0, seed=0)
    infinite = torch.cat([torch.rand(90), torch.full((10,), math.inf)])
    assert len(selection.ccs(infinite, 0.5, seed=0, beta=0.1)) == 50  # the infinite ones are dropped
    with pytest.raises(ValueError, match="finite"):
        selection.ccs(infinite, 0.5, seed=0, beta=0.05)


def test_window_offset_maps_positions_to_offsets():
    assert selection.window_offset(100, 0.4, 0) == 0
    assert selection.window_offset(100, 0.4, 1) == 60
    assert selection.window_offset(100, 0.4, 0.5) == 30
    assert selection.window_offset(10, 0.3, 1 / 3) == round(7 / 3)
    assert selection.window_offset(10, 1.0, 1) == 0
    scores = torch.rand(100)
    hardest = selection.window(scores, 0.4, selection.window_offset(100, 0.4, 1))
    assert torch.equal(hardest, selection.keep_max(scores, 0.4))
    for position in (-0.1, 1.1):
        with pytest.raises(ValueError, match=r"window position must be in \[0, 1\]"):
            selection.window_offset(100, 0.4, position)
    with pytest.raises(ValueError, match="kept fraction"):
        selection.window_offset(100, 0, 0.5)
    with pytest.raises(ValueError, match="at least one example"):
        selection.window_offset(0, 0.5, 0.5)
