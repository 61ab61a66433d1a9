"""Which examples to keep, given one score per example (higher = harder).

Every function returns sorted int64 indices into the scored set. Equal scores are ordered by a
random permutation seeded by `seed`, never by the example index: data sorted by class (ImageFolder
order) with a large tie group at the cut (forgetting scores are small integers, never-learned examples
all +inf) would otherwise keep the last classes and drop the first. The seed fixes the order, so a
selection never depends on the sort algorithm.
"""

import math

import torch

from .registry import SELECTIONS


def kept_count(num_examples, fraction):
    if not 0 < fraction <= 1:
        raise ValueError(f"kept fraction must be in (0, 1], got {fraction}")
    return max(1, round(fraction * num_examples))


def ascending_order(scores, seed=0):
    """Example indices from easiest to hardest, equal scores in a random order seeded by `seed` (a
    stable sort of the scores permuted by it; scores without ties sort the same for every seed).
    The selections pass the run's seed; the default serves orderings that are not a selection."""
    scores = torch.as_tensor(scores)
    shuffled = torch.randperm(len(scores), generator=torch.Generator().manual_seed(seed))
    return shuffled[torch.sort(scores[shuffled], stable=True).indices]


def keep_max(scores, fraction, seed):
    """Keep the hardest `fraction` (the paper's pruning: drop the easiest)."""
    order = ascending_order(scores, seed)
    return order[len(order) - kept_count(len(order), fraction) :].sort().values


def keep_min(scores, fraction, seed):
    """Keep the easiest `fraction` (better when data is scarce, Sorscher et al. 2022)."""
    order = ascending_order(scores, seed)
    return order[: kept_count(len(order), fraction)].sort().values


def moderate(scores, fraction, seed):
    """Keep the `fraction` whose scores lie closest to the median score, neither the easiest nor the
    hardest (moderate coreset, Xia et al. 2023)."""
    scores = torch.as_tensor(scores, dtype=torch.float64)
    return keep_min((scores - scores.median()).abs(), fraction, seed)


def window(scores, fraction, offset, seed):
    """Keep ascending-sorted positions [offset, offset + size): the paper's sliding window."""
    order = ascending_order(scores, seed)
    size = kept_count(len(order), fraction)
    if not 0 <= offset <= len(order) - size:
        raise ValueError(f"window offset must be in [0, {len(order) - size}], got {offset}")
    return order[offset : offset + size].sort().values


def window_offset(num_examples, fraction, left_out):
    """The offset of the window that leaves out the hardest `left_out` share of the set above it:
    0 = the hardest window (the same as keep_max), 1 - fraction = the easiest. A share, so a sweep is
    written independently of the data size and can be fine near the hard end (the paper's optimum
    leaves out ~1%)."""
    if num_examples < 1:
        raise ValueError(f"need at least one example, got {num_examples}")
    size = kept_count(num_examples, fraction)
    if not 0 <= left_out <= 1 - fraction + 1e-9:  # 1 - 0.9 is 0.0999...: allow the easiest window
        raise ValueError(f"window left_out must be in [0, 1 - kept] = [0, {1 - fraction:g}], got {left_out}")
    # At the easiest end the two roundings can overshoot by one example.
    return max(0, num_examples - size - round(left_out * num_examples))


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

    Drops the hardest `beta` fraction (likely mislabelled or ambiguous; ties broken as keep_max breaks
    them), splits the score range of the rest into `strata` equal-width bins, then spreads the budget
    evenly: from the smallest non-empty stratum up (ties by stratum index), each takes min(its size,
    remaining budget // remaining strata), so what small strata cannot use goes to the larger ones.
    Inside a stratum the examples are drawn uniformly at random with a generator seeded by `seed`.
    Keeps easy AND hard regions covered, which is what score-only pruning loses at high pruning rates.
    """
    scores = torch.as_tensor(scores)
    if not 0 <= beta < 1:
        raise ValueError(f"ccs beta must be in [0, 1), got {beta}")
    if strata < 1:
        raise ValueError(f"ccs needs at least one stratum, got {strata}")
    order = ascending_order(scores, seed)
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


# The kinds that cut a score ranking: where a cut splits a tie group, the tie-break chose.
ORDERED = ("keep_max", "keep_min", "window")


def select(spec, num_examples, fraction, seed, scores=None):
    """The subset a retraining run trains on, by its selection spec `spec` ({"kind": ...} and the
    kind's options, registry.SELECTIONS); `seed` is the run's subset seed (random and ccs draw with
    it, the others break ties with it)."""
    if spec["kind"] == "random":
        return random(num_examples, fraction, seed)
    scores = torch.as_tensor(scores)
    if spec["kind"] == "window":
        return window(scores, fraction, window_offset(num_examples, fraction, spec["left_out"]), seed)
    options = {name: spec[name] for name in SELECTIONS[spec["kind"]].options}
    return globals()[spec["kind"]](scores, fraction, seed, **options)


# A cut inside a tie group larger than this share of the set is reported: the tie-break, not the
# score, chose a noticeable part of the subset.
TIE_SHARE = 0.01


def tie_at_cut(scores, kept):
    """(size, score) of the largest group of equal scores that the subset `kept` splits, some kept and
    some not: where the tie-break chose, not the score. (0, None) when no group is split."""
    scores = torch.as_tensor(scores)
    mask = torch.zeros(len(scores), dtype=torch.bool)
    mask[kept] = True
    split = set(scores[mask].tolist()) & set(scores[~mask].tolist())
    if not split:
        return 0, None
    values, counts = torch.unique(scores, return_counts=True)
    size, value = max((c, v) for v, c in zip(values.tolist(), counts.tolist()) if v in split)
    return size, value


def tie_warning(size, value, num_examples):
    """One line for a tie group at the cut larger than TIE_SHARE of the set, else None."""
    if size <= TIE_SHARE * num_examples:
        return None
    return (
        f"warning: the cut falls inside a tie of {size} examples with score {value:g} "
        f"({size / num_examples:.1%} of the set); the seeded tie-break chose which of them are kept"
    )


def class_histogram(labels, kept, classes):
    """{class name: examples of it in the subset `kept`}, every class listed."""
    counts = torch.bincount(torch.as_tensor(labels)[kept], minlength=len(classes))
    return dict(zip(classes, counts.tolist()))


def describe(kind, scores, kept, labels, classes):
    """(what to record of the subset `kept` chosen by selection `kind`, a warning line or None): its
    class histogram and, for a cut of the score ranking, the tie group the cut splits."""
    record = {"class_histogram": class_histogram(labels, kept, classes)}
    if kind not in ORDERED:
        return record, None
    size, value = tie_at_cut(scores, kept)
    score = value if value is None or math.isfinite(value) else str(value)  # JSON has no inf
    record["tie_at_cut"] = {"size": size, "score": score, "share": size / len(scores)}
    return record, tie_warning(size, value, len(scores))
