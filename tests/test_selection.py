import math

import pytest
import torch

from datadiet import noise, selection


def slow_keep_max(scores, fraction, seed):
    """Obvious: rank by (score, place in the seed's permutation), keep the top round(fraction * n)."""
    place = {
        i: p for p, i in enumerate(torch.randperm(len(scores), generator=torch.Generator().manual_seed(seed)).tolist())
    }
    ranked = sorted(range(len(scores)), key=lambda i: (scores[i], place[i]))
    k = max(1, round(fraction * len(scores)))
    return sorted(ranked[len(scores) - k :])


def index_keep_max(scores, fraction):
    """The old selection: ties broken by the example index (a stable sort)."""
    order = torch.sort(torch.as_tensor(scores), stable=True).indices
    return order[len(order) - max(1, round(fraction * len(order))) :].sort().values


def test_moderate_keeps_the_scores_closest_to_the_median():
    scores = torch.tensor([50.0, 0.0, 3.0, 10.0, 2.0, 20.0, 1.0, 40.0, 30.0])  # median 10
    by_distance = sorted(range(9), key=lambda i: abs(scores[i].item() - 10.0))
    for keep in (1 / 9, 3 / 9, 5 / 9):
        kept = selection.moderate(scores, keep, seed=0)
        assert kept.tolist() == sorted(by_distance[: selection.kept_count(9, keep)])
    assert selection.select({"kind": "moderate"}, 9, 3 / 9, 0, scores).tolist() == [2, 3, 4]


def test_keep_max_keeps_the_hardest_and_breaks_ties_by_the_seed():
    scores = torch.tensor([0.5, 0.1, 0.9, 0.5, 0.3, 0.5, 0.7, 0.2])
    for seed in range(4):
        for fraction in (0.125, 0.25, 0.5, 0.75, 1.0):
            assert selection.keep_max(scores, fraction, seed).tolist() == slow_keep_max(scores.tolist(), fraction, seed)
    assert selection.keep_max(scores, 0.25, seed=0).tolist() == [2, 6]
    # the 3 examples at 0.5 compete for the last 2 places: which 2 depends on the seed
    kept = {tuple(selection.keep_max(scores, 0.5, seed).tolist()) for seed in range(20)}
    assert kept == {(0, 2, 3, 6), (0, 2, 5, 6), (2, 3, 5, 6)}


def test_without_ties_every_seed_selects_as_the_index_tie_break_did():
    scores = torch.rand(500, generator=torch.Generator().manual_seed(0))
    for seed in range(5):
        assert torch.equal(selection.keep_max(scores, 0.3, seed), index_keep_max(scores, 0.3))
        assert torch.equal(selection.ascending_order(scores, seed), scores.argsort())


def class_sorted_ties(classes=10, per_class=100, seed=0):
    """(labels sorted by class, forgetting-like scores): ~60% +inf (never learned), the rest 0..4."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(per_class)
    scores = torch.randint(0, 5, (len(labels),), generator=g).float()
    scores[torch.rand(len(labels), generator=g) < 0.6] = math.inf
    return labels, scores


def chi_square_of_kept_classes(labels, scores, kept):
    """Chi-square of the kept examples' classes against their classes' shares of the +inf group,
    the tie group the cut falls in (everything kept is +inf)."""
    tied = labels[scores == math.inf]
    expected = torch.bincount(tied, minlength=10).double() / len(tied) * len(kept)
    observed = torch.bincount(labels[kept], minlength=10).double()
    return ((observed - expected) ** 2 / expected).sum().item()


def test_keep_max_keeps_each_class_its_share_of_a_tie_group_on_class_sorted_data():
    labels, scores = class_sorted_ties()
    assert 500 < (scores == math.inf).sum() < 700
    # 9 degrees of freedom: chi-square above 27.9 has p < 0.001 (sampling without replacement is
    # tighter still); the index tie-break keeps only the last classes
    for seed in range(10):
        assert chi_square_of_kept_classes(labels, scores, selection.keep_max(scores, 0.3, seed)) < 27.9
    assert chi_square_of_kept_classes(labels, scores, index_keep_max(scores, 0.3)) > 100
    # same seed, same subset; another seed, another subset inside the tie group
    a = selection.keep_max(scores, 0.3, seed=1)
    assert torch.equal(a, selection.keep_max(scores, 0.3, seed=1))
    assert not torch.equal(a, selection.keep_max(scores, 0.3, seed=2))


def test_tie_at_cut_finds_the_split_group_and_warns_above_one_percent():
    labels, scores = class_sorted_ties()
    infinite = int((scores == math.inf).sum())
    assert selection.tie_at_cut(scores, selection.keep_max(scores, 0.3, seed=0)) == (infinite, math.inf)
    kept = selection.keep_max(scores, infinite / 1000, seed=0)  # exactly the +inf group: nothing split
    assert selection.tie_at_cut(scores, kept) == (0, None)
    # the two ends of a window can split two groups: the larger one is named
    assert selection.tie_at_cut(torch.tensor([0.0, 1, 1, 1, 2, 2]), torch.tensor([2, 3, 4])) == (3, 1.0)
    warning = selection.tie_warning(infinite, math.inf, 1000)
    assert f"tie of {infinite} examples with score inf ({infinite / 10:.1f}% of the set)" in warning
    assert selection.tie_warning(10, 3.0, 1000) is None and selection.tie_warning(11, 3.0, 1000)


def test_describe_records_the_histogram_and_for_a_ranking_cut_its_tie():
    labels, scores = class_sorted_ties()
    kept = selection.keep_max(scores, 0.3, seed=0)
    record, warning = selection.describe("keep_max", scores, kept, labels, [f"c{i}" for i in range(10)])
    infinite = int((scores == math.inf).sum())
    assert record["tie_at_cut"] == {"size": infinite, "score": "inf", "share": infinite / 1000}
    assert sum(record["class_histogram"].values()) == 300 and f"tie of {infinite} examples" in warning
    record, warning = selection.describe("random", scores, kept, labels, [f"c{i}" for i in range(10)])
    assert "tie_at_cut" not in record and warning is None  # a random subset cuts no ranking


def test_class_histogram_counts_every_class_of_the_subset():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    assert selection.class_histogram(labels, torch.tensor([0, 3, 4]), ["cat", "dog", "eel"]) == {
        "cat": 1,
        "dog": 0,
        "eel": 2,
    }


def test_keep_min_is_the_complement_of_keep_max():
    scores = torch.rand(101, generator=torch.Generator().manual_seed(0))
    kept_min = set(selection.keep_min(scores, 0.4, seed=0).tolist())
    kept_max = set(selection.keep_max(scores, 0.6, seed=0).tolist())
    assert kept_min.isdisjoint(kept_max) and len(kept_min | kept_max) == 101
    assert max(scores[list(kept_min)]) < min(scores[list(kept_max)])
    # with ties too, as long as both use the same seed
    _, tied = class_sorted_ties()
    for seed in range(3):
        kept_min, kept_max = selection.keep_min(tied, 0.4, seed), selection.keep_max(tied, 0.6, seed)
        assert set(kept_min.tolist()).isdisjoint(kept_max.tolist()) and len(kept_min) + len(kept_max) == 1000


def test_window_slides_over_the_ascending_ranking():
    scores = torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0, 0.0])  # ascending order: 5 1 3 4 2 0
    assert selection.window(scores, 0.5, 0, seed=0).tolist() == [1, 3, 5]
    assert selection.window(scores, 0.5, 2, seed=0).tolist() == [2, 3, 4]
    assert selection.window(scores, 0.5, 3, seed=0).tolist() == selection.keep_max(scores, 0.5, seed=0).tolist()
    with pytest.raises(ValueError, match="offset"):
        selection.window(scores, 0.5, 4, seed=0)
    _, tied = class_sorted_ties()
    assert not torch.equal(selection.window(tied, 0.3, 500, seed=0), selection.window(tied, 0.3, 500, seed=1))


def test_random_is_seeded_uniform_and_sized():
    a, b = selection.random(1000, 0.3, seed=1), selection.random(1000, 0.3, seed=1)
    assert torch.equal(a, b) and len(a) == 300 and len(set(a.tolist())) == 300
    assert not torch.equal(a, selection.random(1000, 0.3, seed=2))
    assert selection.random(10, 1.0, seed=0).tolist() == list(range(10))


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5])
def test_kept_fraction_outside_unit_interval_is_rejected(fraction):
    with pytest.raises(ValueError, match=r"kept fraction must be in \(0, 1\]"):
        selection.keep_max(torch.rand(10), fraction, seed=0)


def test_permute_labels_keeps_the_histogram_and_records_the_changed_labels():
    labels = torch.arange(10).repeat(100)
    noisy, corrupted = noise.permute_labels(labels, 0.2, seed=3)
    assert torch.equal(corrupted, torch.tensor([i for i in range(1000) if noisy[i] != labels[i]]))
    assert torch.equal(torch.bincount(noisy), torch.bincount(labels))
    # 200 permuted among themselves: about 1 in 10 keeps its label and is not corrupted
    assert 0.8 * 200 < len(corrupted) < 0.97 * 200
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


def test_ccs_drops_the_hardest_beta_with_the_seeded_tie_break():
    labels = torch.arange(10).repeat_interleave(100)  # sorted by class
    scores = torch.randint(0, 10, (1000,), generator=torch.Generator().manual_seed(8)).float()  # ~100 at 9
    dropped = []
    for seed in range(3):
        hardest = selection.keep_max(scores, 0.05, seed)  # 50 of the 9s: the tie-break chose them
        assert set(selection.ccs(scores, 0.5, seed, beta=0.05).tolist()).isdisjoint(hardest.tolist())
        assert torch.bincount(labels[hardest], minlength=10).min() > 0  # not the last classes' 9s
        dropped.append(hardest)
    assert not torch.equal(dropped[0], dropped[1])


def test_ccs_keeps_everything_left_when_the_budget_is_all_of_it():
    scores = torch.rand(100, generator=torch.Generator().manual_seed(7))
    assert selection.ccs(scores, 0.9, seed=0, beta=0.1).tolist() == selection.keep_min(scores, 0.9, seed=0).tolist()
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


def test_window_offset_leaves_out_the_hardest_share_above_the_window():
    assert selection.window_offset(100, 0.4, 0) == 60  # the hardest window
    assert selection.window_offset(100, 0.4, 0.01) == 59
    assert selection.window_offset(100, 0.4, 0.6) == 0  # the easiest window
    assert selection.window_offset(50_000, 0.4, 0.01) == 50_000 - 20_000 - 500  # the paper's ~500 left out
    assert selection.window_offset(10, 0.9, 0.1) == 0  # 1 - 0.9 < 0.1 in floating point
    assert selection.window_offset(7, 0.5, 0.5) == 0  # 4 kept and round(3.5) = 4 left out: clamped
    assert selection.window_offset(10, 1.0, 0) == 0
    scores = torch.rand(100)
    order = scores.argsort()  # no ties: every seed sorts the same
    for left_out in (0, 0.01, 0.05, 0.33, 0.6):
        top = 100 - round(100 * left_out)  # order[top:] are the examples left out above the window
        chosen = selection.window(scores, 0.4, selection.window_offset(100, 0.4, left_out), seed=0)
        assert torch.equal(chosen, order[top - 40 : top].sort().values)
    hardest = selection.window(scores, 0.4, selection.window_offset(100, 0.4, 0), seed=0)
    assert torch.equal(hardest, selection.keep_max(scores, 0.4, seed=0))
    for left_out in (-0.01, 0.61):
        with pytest.raises(ValueError, match=r"window left_out must be in \[0, 1 - kept\] = \[0, 0.6\]"):
            selection.window_offset(100, 0.4, left_out)
    with pytest.raises(ValueError, match="kept fraction"):
        selection.window_offset(100, 0, 0.5)
    with pytest.raises(ValueError, match="at least one example"):
        selection.window_offset(0, 0.5, 0.5)
