"""Label noise as in the paper: permute the labels of a random fraction among themselves."""

import torch


def permute_labels(labels, fraction, seed):
    """Returns (new labels, sorted indices of the corrupted examples: those whose label changed).

    The labels of round(fraction * N) examples chosen at random are shuffled among themselves, as in
    the official code, so the class histogram is unchanged and about 1 in C of the chosen examples
    keeps its true label. Those are not corrupted: a ranking that puts them low is right, so counting
    them would understate how well a score finds the noise. Unlike the official code, we keep the
    corrupted indices, so figures can say where the noisy examples land in each ranking.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"noise fraction must be in [0, 1], got {fraction}")
    labels = torch.as_tensor(labels)
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(labels), generator=generator)[: round(fraction * len(labels))]
    chosen = chosen.sort().values
    new_labels = labels.clone()
    new_labels[chosen] = labels[chosen][torch.randperm(len(chosen), generator=generator)]
    return new_labels, (new_labels != labels).nonzero().flatten()
