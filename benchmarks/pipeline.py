"""One epoch of augmented, normalised training batches: our tensor pipeline (images decoded once into
a uint8 tensor, then crop, flip and normalise by one gather per batch) against torchvision's
ImageFolder + DataLoader + PIL transforms, which decode and transform every image every epoch."""

import os
import tarfile
import time
from pathlib import Path

import torch

from benchmarks.common import Entry, rates
from datadiet import data

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def extract_folder(tar_path, out, per_class):
    """An ImageFolder tree out/{train,test}/<class>/ of the first `per_class` training images of each
    class of the CIFAR-10 JPEG archive (and a few test images: data.load wants both splits)."""
    taken = {}
    with tarfile.open(tar_path) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) != 4:
                continue
            key = (parts[1], parts[2])
            if taken.get(key, 0) >= (per_class if parts[1] == "train" else 2):
                continue
            taken[key] = taken.get(key, 0) + 1
            target = Path(out, *parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())
    return Path(out)


def tensor_epoch(images, generator, batch):
    mean, std = torch.tensor(MEAN), torch.tensor(STD)
    order = torch.randperm(len(images), generator=generator)
    for start in range(0, len(images) - batch + 1, batch):
        x = data.augment(images[order[start : start + batch]], generator)
        data.normalize(x, mean, std)


def dataloader_epoch(folder, batch, workers, yield_batches=False):
    """One epoch of torchvision's pipeline; with yield_batches, a generator of its batches."""
    batches = _dataloader_batches(folder, batch, workers)
    if yield_batches:
        return batches
    for _ in batches:
        pass


def _dataloader_batches(folder, batch, workers):
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4, padding_mode="reflect"),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    loader = torch.utils.data.DataLoader(
        datasets.ImageFolder(folder, transform),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        persistent_workers=False,
    )
    yield from loader


def run(root, tmp, batch=128):
    """root: an ImageFolder tree from `extract_folder`."""
    train = Path(root) / "train"
    start = time.perf_counter()
    images = data.load({"source": "imagefolder", "path": str(root)}, Path(tmp) / "pipeline-cache")["train"].images
    decode_seconds = time.perf_counter() - start
    n = len(images) // batch * batch
    generator = torch.Generator().manual_seed(0)
    workers = sorted({0, 1, 2, os.cpu_count() or 1})
    measured = rates(
        {
            "tensor": lambda: tensor_epoch(images, generator, batch),
            **{f"loader{w}": (lambda w=w: dataloader_epoch(train, batch, w)) for w in workers},
        },
        n,
        repeats=3,
    )
    best = max(workers, key=lambda w: measured[f"loader{w}"])
    with_decode = n / (n / measured["tensor"] + decode_seconds)
    return [
        Entry(
            "pipeline_vs_dataloader",
            measured["tensor"],
            "img/s",
            measured["loader0"],
            ">= 2",
            f"augmented batches of {batch} from {len(images)} CIFAR-10 JPEGs, single process each",
        ),
        Entry(
            "pipeline_vs_dataloader_best_workers",
            measured["tensor"],
            "img/s",
            measured[f"loader{best}"],
            "",
            f"DataLoader with its best worker count here ({best} of {workers})",
        ),
        Entry(
            "pipeline_first_epoch_vs_dataloader",
            with_decode,
            "img/s",
            measured[f"loader{best}"],
            "",
            f"our first epoch, one-off decode included ({decode_seconds:.2f} s), over the best DataLoader",
        ),
    ]
