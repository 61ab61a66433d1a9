"""Operations on datasets as tensors: class-balanced subsets, channel statistics, normalisation and the
training augmentation (random crop and flip on the batch), all seeded and on the tensors' device."""

import torch


def subset_per_class(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Sorted int64 indices of a seeded, class-balanced subset: per_class examples of every class."""
    return _chosen_per_class(labels, [per_class] * len(torch.bincount(labels)), seed)


def nested_subset(labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Sorted int64 indices of a seeded, class-balanced subset of `size` examples: size // classes of
    every class, one more of each of the first size % classes. Every class is drawn in one seeded
    order and cut at its count, so the subsets of one seed are nested (a larger size holds every smaller
    one), and size = per_class x classes is subset_per_class(labels, per_class, seed)."""
    classes = len(torch.bincount(labels))
    return _chosen_per_class(labels, [size // classes + (c < size % classes) for c in range(classes)], seed)


def _chosen_per_class(labels, counts, seed):
    available = torch.bincount(labels)
    short = {c: int(n) for c, (n, want) in enumerate(zip(available, counts)) if n < want}
    if short:
        raise ValueError(f"cannot take {max(counts)} examples of a class: classes {short} (class: count) have fewer")
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c, count in enumerate(counts):
        members = (labels == c).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:count]])
    return torch.cat(chosen).sort().values


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) std of uint8 images on the 0..1 scale, float32 [3] each."""
    # From a 256-bin histogram per channel: exact, and no float copy of the whole dataset.
    values = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for c in range(images.shape[1]):
        counts = torch.bincount(images[:, c].flatten().cpu(), minlength=256).double()
        mean = (counts * values).sum() / counts.sum()
        means.append(mean)
        stds.append(((counts * (values - mean) ** 2).sum() / counts.sum()).sqrt())
    return torch.stack(means).float(), torch.stack(stds).float()


def normalize(images: torch.Tensor, mean, std, memory_format=torch.channels_last) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> float32 (x/255 - mean)/std, in the model's memory format (see models)."""
    mean = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    x = images.contiguous(memory_format=memory_format).float()
    return x.div_(255).sub_(mean).div_(std)


def augment(
    images: torch.Tensor,
    generator: torch.Generator,
    pad: int = 4,
    crop_per_batch: bool = False,
    flip: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reflect-pad by `pad`, random crop back to H x W, horizontal flip, on a uint8 batch.

    One crop offset per example, or one for the whole batch with crop_per_batch (as the official TF
    code does); flips are per example: random, or given (`flip`, bool [N]). All randomness comes from
    `generator`, so a run is reproducible and resumable from the generator state. Padding, crop and
    flip are folded into one gather: each output pixel's source row and column are computed,
    reflecting indices that fall into the padding, so the padded batch is never built.
    """
    n, c, h, w = images.shape
    if pad >= min(h, w):
        raise ValueError(f"reflect padding {pad} must be smaller than the image size {h}x{w}")
    draws = 1 if crop_per_batch else n
    dy = torch.randint(0, 2 * pad + 1, (draws,), generator=generator, device=generator.device)
    dx = torch.randint(0, 2 * pad + 1, (draws,), generator=generator, device=generator.device)
    if flip is None:
        flip = torch.randint(0, 2, (n,), generator=generator, device=generator.device).bool()
    dy, dx, flip = dy.to(images.device), dx.to(images.device), flip.to(images.device)
    rows = _reflect(dy[:, None] + torch.arange(h, device=images.device) - pad, h)  # [draws, h]
    cols = _reflect(dx[:, None] + torch.arange(w, device=images.device) - pad, w)  # [draws, w]
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # [n, w]
    index = (rows[:, :, None] * w + cols[:, None, :]).expand(n, h, w).reshape(n, 1, h * w)
    return images.reshape(n, c, h * w).gather(2, index.expand(n, c, h * w)).view(n, c, h, w)


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map indices in [-size+1, 2*size-2] into [0, size) as reflect padding does (edge not repeated)."""
    index = index.abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)
