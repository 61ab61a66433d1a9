"""Which examples to keep, given one score per example (higher = harder).

Every function returns sorted int64 indices into the scored set. Ties in the score are broken by
the example index, so a selection never depends on the sort algorithm.
"""

import torch


def kept_count(num_examples, fraction):
    if not 0 < fraction <= 1:
        raise ValueError(f"kept fraction must be in (0, 1], got {fraction}")
    return max(1, round(fraction * num_examples))


def ascending_order(scores):
    """Example indices from easiest to hardest; stable, so equal scores keep index order."""
    return torch.sort(torch.as_tensor(scores), stable=True).indices


def keep_max(scores, fraction):
    """Keep the hardest `fraction` (the paper's pruning: drop the easiest)."""
    order = ascending_order(scores)
    return order[len(order) - kept_count(len(order), fraction) :].sort().values


def keep_min(scores, fraction):
    """Keep the easiest `fraction` (better when data is scarce, Sorscher et al. 2022)."""
    order = ascending_order(scores)
    return order[: kept_count(len(order), fraction)].sort().values


def window(scores, fraction, offset):
    """Keep ascending-sorted positions [offset, offset + size): the paper's sliding window."""
    order = ascending_order(scores)
    size = kept_count(len(order), fraction)
    if not 0 <= offset <= len(order) - size:
        raise ValueError(f"window offset must be in [0, {len(order) - size}], got {offset}")
    return order[offset : offset + size].sort().values


def window_offset(num_examples, fraction, position):
    """The window offset at `position` in [0, 1] of the possible ones: 0 = the easiest window,
    1 = the hardest (the same as keep_max); lets a sweep be written independently of the data size."""
    if num_examples < 1:
        raise ValueError(f"need at least one example, got {num_examples}")
    if not 0 <= position <= 1:
        raise ValueError(f"window position must be in [0, 1], got {position}")
    return round(position * (num_examples - kept_count(num_examples, fraction)))


def random(num_examples, fraction, seed):
    """A uniform random subset, seeded."""
    generator = torch.Generator().manual_seed(seed)
    perm = torch.randperm(num_examples, generator=generator)
    return perm[: kept_count(num_examples, fraction)].sort().values


def _strata(scores, strata):
    """Stratum (0 .. strata-1) of each score: equal-width bins over [min, max], max in the last bin
    (CCS's own code stretches max by 1.0001 instead, which misbins when max <= 0)."""
    scores = torch.as_tensor(scores, dtype=torch.float64)
    low, high = scores.min(), scores.max()
    if high == low:
        return torch.zeros(len(scores), dtype=torch.int64)
    width = (high - low) / strata
    return ((scores - low) / width).floor().long().clamp(max=strata - 1)


def ccs(scores, fraction, seed, beta=0.1, strata=50):
    """Coverage-centric coreset selection (Zheng et al., ICLR 2023), keeping `fraction` of ALL examples.

    Drops the hardest `beta` fraction (likely mislabelled or ambiguous), splits the score range of the
    rest into `strata` equal-width bins, then spreads the budget evenly: from the smallest non-empty
    stratum up (ties by stratum index), each takes min(its size, remaining budget // remaining strata),
    so what small strata cannot use goes to the larger ones. Inside a stratum the examples are drawn
    uniformly at random with a generator seeded by `seed`. Keeps easy AND hard regions covered, which
    is what score-only pruning loses at high pruning rates.
    """
    scores = torch.as_tensor(scores)
    if not 0 <= beta < 1:
        raise ValueError(f"ccs beta must be in [0, 1), got {beta}")
    if strata < 1:
        raise ValueError(f"ccs needs at least one stratum, got {strata}")
    order = ascending_order(scores)
    budget = kept_count(len(order), fraction)
    left = order[: len(order) - round(beta * len(order))]
    if budget > len(left):
        raise ValueError(
            f"ccs cannot keep {budget} of {len(order)} examples: only {len(left)} are left after "
            f"dropping the hardest beta={beta}; lower beta or keep a smaller fraction"
        )
    left_scores = scores[left]
    if not torch.isfinite(left_scores).all():
        raise ValueError(
            f"ccs needs finite scores, but {(~torch.isfinite(left_scores)).sum().item()} of the "
            "examples left after dropping the hardest beta are not (never-learned forgetting "
            "examples?); raise beta or use finite scores"
        )
    left = left.sort().values  # index order inside each stratum, so sampling depends on nothing else
    bins = _strata(scores[left], strata)
    sizes = torch.bincount(bins, minlength=strata)
    takes = torch.zeros(strata, dtype=torch.int64)
    filled = [i for i in sorted(range(strata), key=lambda i: (sizes[i].item(), i)) if sizes[i] > 0]
    rest = budget
    for k, i in enumerate(filled):
        takes[i] = min(sizes[i].item(), rest // (len(filled) - k))
        rest -= takes[i].item()
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for i in range(strata):
        if takes[i] > 0:
            pool = left[bins == i]
            chosen.append(pool[torch.randperm(len(pool), generator=generator)[: takes[i]]])
    return torch.cat(chosen).sort().values


STRATEGIES = {"keep_max": keep_max, "keep_min": keep_min}


def select(how, num_examples, fraction, seed, scores=None):
    """The subset a retraining run trains on, by its selection spec `how` ({"kind": ...} and the
    kind's options); `seed` is the run's subset seed (random and ccs draw with it)."""
    if how["kind"] == "random":
        return random(num_examples, fraction, seed)
    scores = torch.as_tensor(scores)
    if how["kind"] == "ccs":
        return ccs(scores, fraction, seed, beta=how["beta"], strata=how["strata"])
    if how["kind"] == "window":
        return window(scores, fraction, window_offset(num_examples, fraction, how["position"]))
    return STRATEGIES[how["kind"]](scores, fraction)
