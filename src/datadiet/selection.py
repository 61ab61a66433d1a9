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
    return order[len(order) - kept_count(len(order), fraction):].sort().values


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


def random(num_examples, fraction, seed):
    """A uniform random subset, seeded."""
    generator = torch.Generator().manual_seed(seed)
    perm = torch.randperm(num_examples, generator=generator)
    return perm[: kept_count(num_examples, fraction)].sort().values


STRATEGIES = {"keep_max": keep_max, "keep_min": keep_min}
