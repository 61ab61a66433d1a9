"""Label noise as in the paper: permute the labels of a random fraction among themselves."""

import torch


def permute_labels(labels, fraction, seed):
    """Returns (new labels, sorted indices of the corrupted examples).

    The chosen labels are shuffled among themselves, so the class histogram is unchanged and about
    1 in C of the chosen examples keeps its true label (as in the official code). Unlike it, we keep
    the corrupted indices, so figures can say where the noisy examples land in each ranking.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"noise fraction must be in [0, 1], got {fraction}")
    labels = torch.as_tensor(labels)
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(labels), generator=generator)[: round(fraction * len(labels))]
    chosen = chosen.sort().values
    new_labels = labels.clone()
    new_labels[chosen] = labels[chosen][torch.randperm(len(chosen), generator=generator)]
    return new_labels, chosen
